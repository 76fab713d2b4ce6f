module github.com/apitoken-go/apitoken/connectauth

go 1.26.0

replace github.com/apitoken-go/apitoken => ../

require (
	connectrpc.com/connect v1.21.1
	github.com/apitoken-go/apitoken v0.0.0-00010101000000-000000000000
	github.com/stretchr/testify v1.12.1
	google.golang.org/protobuf v1.36.12
)

require (
	github.com/google/uuid v1.6.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
)
