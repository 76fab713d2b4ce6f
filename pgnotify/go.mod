module github.com/apitoken-go/apitoken/pgnotify

go 1.26.0

replace github.com/apitoken-go/apitoken => ../

replace github.com/apitoken-go/apitoken/sqlstore => ../sqlstore

require (
	github.com/apitoken-go/apitoken v0.0.0-00010101000000-000000000000
	github.com/apitoken-go/apitoken/sqlstore v0.0.0-00010101000000-000000000000
	github.com/jackc/pgx/v5 v5.12.0
	github.com/stretchr/testify v1.12.1
)

require (
	github.com/google/uuid v1.6.0 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/puddle/v2 v2.2.3 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/text v0.44.0 // indirect
)
