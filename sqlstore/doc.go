// Package sqlstore keeps API tokens in a SQL database through database/sql:
// PostgreSQL, MySQL or MariaDB, or SQLite. It is the apitoken.Store for
// production, and for several processes that share one database; SQLite
// through the pure-Go modernc.org/sqlite is the embedded default, a file
// beside the app with no server and no cgo.
//
// The package imports no driver: the app imports the one it uses and gives
// New the *sql.DB with its [Dialect].
//
//	Dialect   driver                                 name for sql.Open
//	Postgres  github.com/jackc/pgx/v5/stdlib         "pgx"
//	Postgres  github.com/lib/pq                      "postgres"
//	MySQL     github.com/go-sql-driver/mysql         "mysql"   (MySQL and MariaDB)
//	SQLite    modernc.org/sqlite (pure Go)           "sqlite"
//	SQLite    github.com/mattn/go-sqlite3 (cgo)      "sqlite3"
//
// # Quick start
//
//	import _ "modernc.org/sqlite"
//
//	db, err := sql.Open("sqlite", "file:tokens.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer db.Close()
//	store, err := sqlstore.New(db, sqlstore.SQLite)
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer store.Close()
//	if err := store.Migrate(ctx); err != nil { // at start-up: creates or upgrades the tables
//		log.Fatal(err)
//	}
//	iss, err := apitoken.NewIssuer(store, apitoken.WithHashKey(key))
//
// # Connection strings
//
// MySQL and MariaDB, user:password@tcp(host:3306)/app:
//
//   - parseTime and loc do not matter: the store writes and reads its
//     DATETIME(6) columns as text holding the UTC wall clock, so no zone
//     setting, daylight saving included, can shift a time.
//   - Each Create runs in a transaction of its own: the driver answers a
//     cancelled context by dropping the connection, and the server rolls
//     the insert back instead of keeping a token whose secret no one has.
//   - Keep a strict sql_mode (the default), so that a value too long for its
//     column is refused rather than truncated.
//   - interpolateParams is not needed: the store prepares its statements.
//
// SQLite through modernc.org/sqlite,
// file:tokens.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL):
//
//   - busy_timeout is needed: with it, concurrent writers and a concurrent
//     Migrate wait for the write lock instead of failing with SQLITE_BUSY.
//   - journal_mode(WAL) lets Verify read while another connection writes;
//     synchronous(NORMAL) is safe with WAL and spares an fsync per write.
//   - An in-memory database is one per connection: use
//     file:tokens?mode=memory&cache=shared, or db.SetMaxOpenConns(1).
//   - With github.com/mattn/go-sqlite3 the same settings are
//     _busy_timeout=5000&_journal_mode=WAL&_synchronous=NORMAL.
//
// PostgreSQL, postgres://app@host:5432/app?sslmode=verify-full&search_path=myschema:
//
//   - The tables go in the connection's search_path: set search_path in the
//     DSN to keep them out of public.
//   - Statements are prepared on each connection, so behind PgBouncer use
//     session pooling, or transaction pooling with its prepared-statement
//     support (max_prepared_statements).
//
// # Storage
//
// Migrate creates two tables: apitoken_tokens, one row per token, and
// apitoken_schema_version ([WithTablePrefix] changes "apitoken_"). The keyed
// hash of the secret is the primary key, so Verify is one primary-key read;
// the token id is unique; an index on (account_id, created_at, id) serves
// List in order. The package README shows the schema of each dialect, the
// grants the app's database user needs, and how to apply the schema with
// your own migration tool instead of Migrate.
//
// Ids, account ids and hashes compare byte for byte in every dialect: bytea
// and text COLLATE "C" in PostgreSQL, BINARY and VARBINARY in MySQL (never
// its case-insensitive default collation), BLOB and TEXT in SQLite. Times
// are stored in UTC to the microsecond (timestamptz, DATETIME(6), integer
// microseconds since the epoch in SQLite) and read back in UTC; a zero time
// is NULL.
//
// # Errors
//
// An unknown hash in Lookup, and an unknown id or another account's token in
// Delete, give an error wrapping apitoken.ErrNotFound; an existing id or hash
// in Create gives one wrapping apitoken.ErrDuplicate, and the Issuer draws a
// new secret. Every other error (the database is down, the context ended, a
// table is missing, a grant is missing) is returned as "sqlstore: <op>: ..."
// and is a system error: Verify passes it on and the middleware answers 503,
// never 401. The store never sees a secret, so no error can contain one.
//
// # Migrations
//
// [Store.Migrate] is idempotent; run it at start-up or from a deploy step.
// Several processes may run it at once: they take turns under a database
// lock (PostgreSQL: an advisory lock, the whole migration in one
// transaction; MySQL: GET_LOCK, waiting up to 60 seconds; SQLite: BEGIN
// IMMEDIATE, waiting up to busy_timeout). It returns an error, and changes
// nothing, for a database whose schema is newer than this package knows.
//
// # Several instances and read replicas
//
// Every change that revokes a token writes its revocation to a log table in
// the change's transaction; [NewBus] returns an apitoken.Bus that polls it,
// so that with apitoken.WithCacheBus every instance's cache forgets a token
// revoked through any other within the poll interval plus a round trip, on
// every dialect, and a change made in the app's transaction is announced
// when it commits, never after a rollback. [WithReplica] sends Lookup and
// List to a read replica, with capped fallbacks to the primary and the
// primary read for what was written within the replica's lag.
//
// [MigrationFiles] returns the schema as goose or golang-migrate files.
//
// # Rotation, limits and bulk deletions
//
// Store implements every optional capability of apitoken.Store:
// Issuer.DeleteAll is one DELETE by the account index, and
// Issuer.DeleteMember one DELETE of the member's rows in it; Issuer.Prune
// one DELETE of the rows whose expires_at is at or before the time given,
// through the expiry index; Issuer.PruneUnused DELETEs of at most a few
// hundred rows each, through the last-use index, so that none holds a lock
// for long; Issuer.Expiring reads the expiry index a page at a time;
// Issuer.Rotate's grace is one UPDATE of expires_at, and Issuer.Disable and
// Enable one UPDATE of disabled. With apitoken.WithMaxTokensPerAccount,
// CreateLimited counts the account's tokens and inserts in one transaction
// under a lock on the account (PostgreSQL: an advisory lock; MySQL:
// GET_LOCK; SQLite: the write lock), so the limit holds across processes.
//
// Schema version 3 added the columns disabled, hint, allowed_ips and
// last_used_ip, and the expiry and last-use indexes; Migrate adds them to a
// database of version 1 or 2, whose tokens keep verifying (with an empty
// Hint).
//
// # Faults
//
// Last uses are written one UPDATE per token, in the order of the tokens'
// ids, 100 per transaction: every writer locks rows in that one order, so
// the last-use writes of several instances cannot deadlock with each other,
// nor with a Delete or Rotate. Where the database still reports a deadlock
// or a serialization failure (PostgreSQL 40P01 and 40001, MySQL 1213 and
// 1205; a DeleteAll, or an InnoDB delete that locks an account's rows in
// its own order), the victim, a statement or transaction of the Store's
// own, runs again, up to 8 times, and a last-use transaction that keeps
// losing is written one token at a time; in the caller's transaction
// (WithTx), the error is the caller's to handle. A Store not yet warm
// prepares each statement once, with the context of the call that needs it
// first; calls that come meanwhile run the statement unprepared, so that
// each call ends within its own deadline, also while the database stalls.
//
// # Transactions and closing
//
// [Store.WithTx] returns a Store that runs its statements in the caller's
// *sql.Tx (or *sql.Conn): give it to the main Issuer's InTx to issue or
// delete a token in the same transaction as the app's own writes, and call
// Committed on the Issuer InTx returned once the transaction committed. [Store.Close]
// closes the prepared statements; it does not close the *sql.DB, which the
// app owns and closes after the Store.
package sqlstore
