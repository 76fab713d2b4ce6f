package sqlstore_test

import (
	"fmt"
	"io/fs"
	"log"

	"github.com/apitoken-go/apitoken/sqlstore"
)

// The schema as goose migration files, for an app whose own migrations
// apply it: goose.NewProvider(goose.DialectPostgres, db, fsys) then
// provider.Up(ctx), or, in the UpDown layout, golang-migrate's
// iofs.New(fsys, ".").
func ExampleMigrationFiles() {
	fsys, err := sqlstore.MigrationFiles(sqlstore.Postgres, sqlstore.Goose)
	if err != nil {
		log.Fatal(err)
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(names[0])
	// Output:
	// 00001_tokens.sql
}
