// Package peek hands the tests of the sqlstore/internal/dbtest module, which
// need the database drivers and so live in a module of their own, what
// package sqlstore keeps unexported. Package sqlstore sets its variables;
// nothing but those tests may read them.
package peek

// Query returns the text of the statement name as store, a *sqlstore.Store,
// runs it (with its table prefix), for the tests that EXPLAIN it or time it
// raw.
var Query func(store any, name string) string
