// Package dbtest holds the tests of package sqlstore that need the database
// drivers (SQLite, PostgreSQL through pgx and lib/pq, MySQL/MariaDB) and
// real servers: the conformance suite on every dialect, migrations, query
// plans, load, benchmarks and the runnable examples. They live in a module
// of their own so that the sqlstore module requires no driver: an app that
// imports sqlstore brings in only the driver it chooses.
//
// The PostgreSQL and MySQL tests read their servers from APITOKEN_PG_DSN
// (postgres://postgres@127.0.0.1:5432/test?sslmode=disable) and
// APITOKEN_MYSQL_DSN (root@tcp(127.0.0.1:3306)/test?parseTime=true), and
// skip, saying so, when they are not set.
package dbtest
