package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/apitoken-go/apitoken"
)

// Dialect is the SQL dialect of a database: Postgres, MySQL or SQLite.
type Dialect int

// The dialects sqlstore speaks.
const (
	// Postgres is PostgreSQL 11 or later, through pgx's database/sql
	// driver (github.com/jackc/pgx/v5/stdlib) or github.com/lib/pq.
	Postgres Dialect = iota + 1

	// MySQL is MySQL 8 or MariaDB 10.5 or later, through
	// github.com/go-sql-driver/mysql.
	MySQL

	// SQLite is SQLite 3.35 or later, through modernc.org/sqlite (pure Go)
	// or github.com/mattn/go-sqlite3.
	SQLite
)

// String returns the dialect's name.
func (d Dialect) String() string {
	switch d {
	case Postgres:
		return "Postgres"
	case MySQL:
		return "MySQL"
	case SQLite:
		return "SQLite"
	}
	return fmt.Sprintf("Dialect(%d)", int(d))
}

// file is the name of the dialect's SQL file, without ".sql".
func (d Dialect) file() string { return strings.ToLower(d.String()) }

// An Option configures a Store. Options are applied in order by New, which
// returns the first error an option reports.
type Option func(*config) error

type config struct {
	prefix string
}

// maxPrefixLen keeps the longest name built from the prefix (PostgreSQL's
// <prefix>schema_version_pkey) within PostgreSQL's and MySQL's 63 and 64
// characters.
const maxPrefixLen = 32

// WithTablePrefix sets the prefix of the names of the store's tables and
// indexes, "apitoken_" otherwise: the tokens live in <prefix>tokens and the
// schema version in <prefix>schema_version. The prefix is empty or up to 32
// characters of [a-z0-9_] that start with a letter or '_', so that it is an
// identifier in every dialect without quoting. To put the tables in another
// PostgreSQL schema, set the connection's search_path instead.
func WithTablePrefix(prefix string) Option {
	return func(c *config) error {
		if !validPrefix(prefix) {
			return fmt.Errorf("sqlstore: %w: table prefix must be empty or up to %d characters of [a-z0-9_] starting with a letter or '_'", apitoken.ErrInvalidInput, maxPrefixLen)
		}
		c.prefix = prefix
		return nil
	}
}

func validPrefix(p string) bool {
	if len(p) > maxPrefixLen {
		return false
	}
	for i := range len(p) {
		c := p[i]
		if !('a' <= c && c <= 'z' || c == '_' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// Store is an apitoken.Store in a SQL database, through database/sql. It is
// safe for concurrent use. Lookup is one indexed SELECT in one round trip,
// and Create, List and Delete one statement each (on MySQL, Create runs in a
// transaction of its own), run as prepared statements (prepared on first
// use, so New needs no connection), with the caller's context.
//
// Call Migrate once at start-up to create or upgrade the schema, or apply
// the schema with your own migration tool (the package documentation shows
// it per dialect).
type Store struct {
	db      *sql.DB
	dialect Dialect
	script  *script
	stmts   *statements // shared with the Stores made by WithTx
	tx      DBTX        // set in a Store made by WithTx
}

// statements are the Store's prepared statements.
type statements struct {
	create, lookup, list, delete, deleteAccount, deleteExpired, setExpiry, rehash preparedStmt
}

// DBTX is what a Store made by WithTx needs of its handle: *sql.Tx,
// *sql.Conn and *sql.DB have these methods.
type DBTX interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

var (
	_ apitoken.Store           = (*Store)(nil)
	_ apitoken.AccountDeleter  = (*Store)(nil)
	_ apitoken.ExpiredDeleter  = (*Store)(nil)
	_ apitoken.ExpiryUpdater   = (*Store)(nil)
	_ apitoken.LimitedCreator  = (*Store)(nil)
	_ apitoken.LastUseRecorder = (*Store)(nil)
	_ apitoken.Rehasher        = (*Store)(nil)
)

// New returns a Store that keeps tokens in db, which speaks dialect d. It
// does not touch the database: call Migrate, or apply the schema yourself,
// before the first use. The Store does not own db; close the Store when done
// with it, and db when done with that.
func New(db *sql.DB, d Dialect, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, fmt.Errorf("sqlstore: %w: db is nil", apitoken.ErrInvalidInput)
	}
	if d != Postgres && d != MySQL && d != SQLite {
		return nil, fmt.Errorf("sqlstore: %w: unknown dialect %v", apitoken.ErrInvalidInput, d)
	}
	cfg := config{prefix: defaultPrefix}
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("sqlstore: %w: option is nil", apitoken.ErrInvalidInput)
		}
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	sc, err := loadScript(d, cfg.prefix)
	if err != nil {
		return nil, err
	}
	st := &statements{}
	for name, p := range map[string]*preparedStmt{
		"create": &st.create, "lookup": &st.lookup, "list": &st.list, "delete": &st.delete,
		"delete-account": &st.deleteAccount, "delete-expired": &st.deleteExpired, "set-expiry": &st.setExpiry,
		"rehash": &st.rehash,
	} {
		p.db, p.query = db, sc.queries[name]
	}
	return &Store{db: db, dialect: d, script: sc, stmts: st}, nil
}

// WithTx returns a Store that runs its statements through tx, typically a
// *sql.Tx, so that tokens are created and deleted in the caller's
// transaction: give it to apitoken.NewIssuer for the length of the
// transaction. It shares s's configuration; its Migrate still runs on the
// *sql.DB given to New, and its Close does nothing.
func (s *Store) WithTx(tx DBTX) *Store {
	if tx == nil {
		panic("sqlstore: WithTx with a nil tx")
	}
	c := *s
	c.tx = tx
	return &c
}

// Close closes the Store's prepared statements, after which Create, Lookup,
// List and Delete fail (Migrate and the Stores made by WithTx still work).
// It does not close the database.
func (s *Store) Close() error {
	if s.tx != nil {
		return nil
	}
	st := s.stmts
	return errors.Join(st.create.close(), st.lookup.close(), st.list.close(), st.delete.close(),
		st.deleteAccount.close(), st.deleteExpired.close(), st.setExpiry.close(), st.rehash.close())
}

// Create implements apitoken.Store.
func (s *Store) Create(ctx context.Context, rec apitoken.Record) error {
	args, err := s.createArgs(rec)
	if err != nil {
		return err
	}
	var res sql.Result
	if s.dialect == MySQL && s.tx == nil {
		res, err = s.insertInTx(ctx, args)
	} else {
		res, err = s.exec(ctx, &s.stmts.create, args...)
	}
	return createError(s.created(res, err))
}

// CreateLimited implements apitoken.LimitedCreator: it counts the account's
// tokens and inserts in one transaction, under a lock on the account
// (PostgreSQL: an advisory lock; MySQL: GET_LOCK; SQLite: the write lock).
// In a Store made by WithTx it needs PostgreSQL and a *sql.Tx at read
// committed or serializable isolation, and returns an error wrapping
// errors.ErrUnsupported otherwise: MySQL's and SQLite's locks cannot be held
// to the end of the caller's transaction, and under repeatable read the
// count would not see what the lock's last holder committed.
func (s *Store) CreateLimited(ctx context.Context, rec apitoken.Record, max int) error {
	args, err := s.createArgs(rec)
	if err != nil {
		return err
	}
	q := s.script.queries
	// count and insert run under the lock.
	insert := func(db execQuerier) error {
		var n int
		if err := db.QueryRowContext(ctx, q["count-account"], rec.AccountID).Scan(&n); err != nil {
			return err
		}
		if n >= max {
			return errLimitReached
		}
		return s.created(db.ExecContext(ctx, q["create"], args...))
	}
	if s.tx != nil {
		// The account's lock must be held to the end of a transaction.
		if _, inTx := s.tx.(*sql.Tx); !inTx || s.dialect != Postgres {
			return fmt.Errorf("sqlstore: a token limit in the caller's transaction needs PostgreSQL and a *sql.Tx: %w", errors.ErrUnsupported)
		}
		// Under repeatable read the count would see the snapshot taken
		// before the lock was granted, not what its last holder committed.
		var level string
		if err := s.tx.QueryRowContext(ctx, q["isolation"]).Scan(&level); err != nil {
			return createError(err)
		}
		if level == "repeatable read" {
			return fmt.Errorf("sqlstore: a token limit in the caller's transaction needs read committed or serializable isolation: %w", errors.ErrUnsupported)
		}
		if _, err := s.tx.ExecContext(ctx, q["lock-account"], rec.AccountID); err != nil {
			return createError(err)
		}
		return createError(insert(s.tx))
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return createError(err)
	}
	defer conn.Close()
	switch s.dialect {
	case Postgres:
		err = inTx(ctx, conn, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, q["lock-account"], rec.AccountID); err != nil {
				return err
			}
			return insert(tx)
		})
	case MySQL:
		err = withNamedLock(ctx, conn, q["lock-account"], q["unlock-account"], []any{rec.AccountID}, func() error {
			return inTx(ctx, conn, func(tx *sql.Tx) error { return insert(tx) })
		})
	case SQLite:
		err = inImmediateTx(ctx, conn, q, func() error { return insert(conn) })
	}
	return createError(err)
}

// createArgs checks rec and returns the arguments of the create statement.
func (s *Store) createArgs(rec apitoken.Record) ([]any, error) {
	for _, sc := range rec.Scopes {
		if sc == "" || strings.Contains(sc, " ") {
			// Scopes are stored space-separated.
			return nil, fmt.Errorf("sqlstore: %w: a scope is empty or holds a space", apitoken.ErrInvalidInput)
		}
	}
	if rec.CreatedAt.IsZero() {
		return nil, fmt.Errorf("sqlstore: %w: CreatedAt is required", apitoken.ErrInvalidInput)
	}
	for _, t := range []time.Time{rec.CreatedAt, rec.ExpiresAt, rec.LastUsedAt} {
		if !t.IsZero() && !storableTime(t) {
			// Outside MySQL's DATETIME, and SQLite's microseconds would
			// overflow: refuse rather than store another time.
			return nil, fmt.Errorf("sqlstore: %w: a time is outside the years %d to %d", apitoken.ErrInvalidInput, minYear, maxYear)
		}
	}
	return []any{rec.Hash[:], rec.ID, rec.AccountID, rec.MemberID, rec.Name, strings.Join(rec.Scopes, " "),
		s.timeArg(rec.CreatedAt), s.timeArg(rec.ExpiresAt), s.timeArg(rec.LastUsedAt)}, nil
}

// created tells a duplicate from the outcome of the create statement: it
// returns errDuplicate, nil, or the database's error.
func (s *Store) created(res sql.Result, err error) error {
	if err != nil {
		if s.dialect == MySQL && mysqlErrorNumber(err) == mysqlDuplicateEntry {
			return errDuplicate
		}
		return err
	}
	// PostgreSQL and SQLite insert with ON CONFLICT DO NOTHING: no row
	// inserted means the id or the hash exists.
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return errDuplicate
	}
	return nil
}

// createError is err as Create and CreateLimited return it: the Store
// contract's errors as they are, any other as a system error.
func createError(err error) error {
	if err == nil || errors.Is(err, apitoken.ErrDuplicate) || errors.Is(err, apitoken.ErrLimitReached) {
		return err
	}
	return fmt.Errorf("sqlstore: create: %w", err)
}

// insertInTx runs the create statement in a transaction of its own. MySQL's
// driver answers a cancelled context by dropping the connection, and the
// server would still commit an INSERT running on its own: in a transaction,
// the dropped connection rolls it back, so a failed Issue leaves no row.
func (s *Store) insertInTx(ctx context.Context, args []any) (sql.Result, error) {
	stmt, err := s.stmts.create.get(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	res, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, args...)
	if err != nil {
		_ = tx.Rollback() // err says what went wrong; the row is not there
		return nil, err
	}
	return res, tx.Commit()
}

// Lookup implements apitoken.Store.
func (s *Store) Lookup(ctx context.Context, h apitoken.Hash) (apitoken.Record, error) {
	row, err := s.queryRow(ctx, &s.stmts.lookup, h[:])
	if err != nil {
		return apitoken.Record{}, fmt.Errorf("sqlstore: lookup: %w", err)
	}
	rec := apitoken.Record{Hash: h}
	err = scanToken(row, &rec.Token)
	if errors.Is(err, sql.ErrNoRows) {
		return apitoken.Record{}, errNotFound
	}
	if err != nil {
		return apitoken.Record{}, fmt.Errorf("sqlstore: lookup: %w", err)
	}
	return rec, nil
}

// List implements apitoken.Store.
func (s *Store) List(ctx context.Context, accountID string) ([]apitoken.Token, error) {
	if !storable(accountID) {
		return []apitoken.Token{}, nil
	}
	rows, err := s.query(ctx, &s.stmts.list, accountID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list: %w", err)
	}
	defer rows.Close()
	toks := []apitoken.Token{}
	for rows.Next() {
		var t apitoken.Token
		if err := scanToken(rows, &t); err != nil {
			return nil, fmt.Errorf("sqlstore: list: %w", err)
		}
		toks = append(toks, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list: %w", err)
	}
	return toks, nil
}

// Delete implements apitoken.Store.
func (s *Store) Delete(ctx context.Context, accountID, id string) error {
	if !storable(accountID) || !storable(id) {
		return errNotFound
	}
	res, err := s.exec(ctx, &s.stmts.delete, id, accountID)
	if err != nil {
		return fmt.Errorf("sqlstore: delete: %w", err)
	}
	n, err := rowsAffected("delete", res)
	if err != nil {
		return err
	}
	if n == 0 {
		return errNotFound
	}
	return nil
}

// exec, queryRow and query run p's statement through the transaction of a
// Store made by WithTx, or prepared on the database.
func (s *Store) exec(ctx context.Context, p *preparedStmt, args ...any) (sql.Result, error) {
	if s.tx != nil {
		return s.tx.ExecContext(ctx, p.query, args...)
	}
	stmt, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	return stmt.ExecContext(ctx, args...)
}

func (s *Store) queryRow(ctx context.Context, p *preparedStmt, args ...any) (*sql.Row, error) {
	if s.tx != nil {
		return s.tx.QueryRowContext(ctx, p.query, args...), nil
	}
	stmt, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	return stmt.QueryRowContext(ctx, args...), nil
}

func (s *Store) query(ctx context.Context, p *preparedStmt, args ...any) (*sql.Rows, error) {
	if s.tx != nil {
		return s.tx.QueryContext(ctx, p.query, args...)
	}
	stmt, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	return stmt.QueryContext(ctx, args...)
}

// DeleteAccount implements apitoken.AccountDeleter.
func (s *Store) DeleteAccount(ctx context.Context, accountID string) (int, error) {
	if !storable(accountID) {
		return 0, nil
	}
	res, err := s.exec(ctx, &s.stmts.deleteAccount, accountID)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: delete account: %w", err)
	}
	return rowsAffected("delete account", res)
}

// DeleteExpired implements apitoken.ExpiredDeleter. The database scans the
// table for it: a job for a quiet moment, not the request path.
func (s *Store) DeleteExpired(ctx context.Context, before time.Time) (int, error) {
	if !storableTime(before) {
		return 0, fmt.Errorf("sqlstore: %w: before is outside the years %d to %d", apitoken.ErrInvalidInput, minYear, maxYear)
	}
	res, err := s.exec(ctx, &s.stmts.deleteExpired, s.timeArg(before))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: delete expired: %w", err)
	}
	return rowsAffected("delete expired", res)
}

// SetExpiry implements apitoken.ExpiryUpdater.
func (s *Store) SetExpiry(ctx context.Context, accountID, id string, from, to time.Time) error {
	if !storableTime(to) || to.Equal(from) {
		return fmt.Errorf("sqlstore: %w: the new expiry is zero, the old one, or outside the years %d to %d", apitoken.ErrInvalidInput, minYear, maxYear)
	}
	if !storable(accountID) || !storable(id) || !from.IsZero() && !storableTime(from) {
		return errNotFound
	}
	res, err := s.exec(ctx, &s.stmts.setExpiry, s.timeArg(to), id, accountID, s.timeArg(from))
	if err != nil {
		return fmt.Errorf("sqlstore: set expiry: %w", err)
	}
	// to differs from from, so even MySQL, which counts changed rows only,
	// counts the row.
	n, err := rowsAffected("set expiry", res)
	if err != nil || n > 0 {
		return err
	}
	return errNotFound
}

// Rehash implements apitoken.Rehasher: one UPDATE of the primary key.
func (s *Store) Rehash(ctx context.Context, accountID, id string, from, to apitoken.Hash) error {
	if !storable(accountID) || !storable(id) {
		return errNotFound
	}
	res, err := s.exec(ctx, &s.stmts.rehash, to[:], id, accountID, from[:])
	if err != nil {
		if s.dialect == MySQL && mysqlErrorNumber(err) == mysqlDuplicateEntry {
			return errDuplicate
		}
		return fmt.Errorf("sqlstore: rehash: %w", err)
	}
	n, err := rowsAffected("rehash", res)
	if err != nil {
		return err
	}
	if n == 0 {
		return errNotFound
	}
	return nil
}

// RecordLastUse implements apitoken.LastUseRecorder: one UPDATE per token,
// in one transaction (the Issuer calls it in the background, at most once
// per token per interval).
func (s *Store) RecordLastUse(ctx context.Context, uses []apitoken.LastUse) error {
	q := s.script.queries["set-last-used"]
	write := func(db execQuerier) error {
		for _, u := range uses {
			if !storable(u.ID) || u.At.IsZero() {
				continue
			}
			at := s.timeArg(u.At)
			args := []any{at, u.ID, at}
			if s.dialect == Postgres {
				args = args[:2] // $1 is used twice
			}
			if _, err := db.ExecContext(ctx, q, args...); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	if s.tx != nil {
		err = write(s.tx)
	} else {
		var tx *sql.Tx
		if tx, err = s.db.BeginTx(ctx, nil); err == nil {
			if err = write(tx); err == nil {
				err = tx.Commit()
			} else {
				_ = tx.Rollback()
			}
		}
	}
	if err != nil {
		return fmt.Errorf("sqlstore: record last use: %w", err)
	}
	return nil
}

// rowsAffected returns how many rows the statement op changed.
func rowsAffected(op string, res sql.Result) (int, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	return int(n), nil
}

// storable reports whether s could be in a text column: PostgreSQL refuses
// invalid UTF-8 and NUL with an error, which must not turn a lookup of an
// id no one could have stored into a system error.
func storable(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// Static errors, so that a miss (the path of a guessing client) allocates no
// error.
var (
	errNotFound     = fmt.Errorf("sqlstore: %w", apitoken.ErrNotFound)
	errDuplicate    = fmt.Errorf("sqlstore: %w: id or hash exists", apitoken.ErrDuplicate)
	errLimitReached = fmt.Errorf("sqlstore: %w", apitoken.ErrLimitReached)
	errClosed       = errors.New("the store is closed")
)

// scanToken reads the columns that the lookup and list queries select.
func scanToken(row interface{ Scan(...any) error }, t *apitoken.Token) error {
	var scopes string
	err := row.Scan(&t.ID, &t.AccountID, &t.MemberID, &t.Name, &scopes,
		timeColumn{&t.CreatedAt}, timeColumn{&t.ExpiresAt}, timeColumn{&t.LastUsedAt})
	if err != nil {
		return err
	}
	if scopes != "" {
		t.Scopes = strings.Split(scopes, " ")
	}
	return nil
}

// The years a stored time may fall in: those of MySQL's DATETIME.
const minYear, maxYear = 1000, 9999

// storableTime reports whether t falls in the years every dialect can store.
func storableTime(t time.Time) bool {
	y := t.UTC().Year()
	return minYear <= y && y <= maxYear
}

// timeArg is how a time is written: NULL when zero; microseconds since the
// epoch in SQLite; in MySQL, the UTC wall clock as text, so that the driver's
// loc setting cannot shift it; a time.Time (an instant) in PostgreSQL.
func (s *Store) timeArg(t time.Time) any {
	switch {
	case t.IsZero():
		return nil
	case s.dialect == SQLite:
		return t.UnixMicro()
	case s.dialect == MySQL:
		return t.UTC().Format(mysqlTimeLayout)
	default:
		return t.UTC()
	}
}

// timeColumn reads a time column as a UTC time.Time, whatever the driver
// gives: NULL (a zero time), a time.Time (pgx, lib/pq), microseconds since
// the epoch (SQLite), or text holding the UTC wall clock (MySQL).
type timeColumn struct{ t *time.Time }

// mysqlTimeLayout is how a time is written to a MySQL DATETIME(6).
const mysqlTimeLayout = "2006-01-02 15:04:05.000000"

// Scan implements sql.Scanner.
func (c timeColumn) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*c.t = time.Time{}
	case time.Time:
		*c.t = v.UTC()
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	case []byte:
		return c.parse(string(v))
	case string:
		return c.parse(v)
	default:
		return fmt.Errorf("sqlstore: cannot read a time from %T", v)
	}
	return nil
}

func (c timeColumn) parse(s string) error {
	t, err := time.Parse(time.DateTime, s) // and the fraction after the seconds, if any
	if err != nil {
		return fmt.Errorf("sqlstore: cannot read a time from %q", s)
	}
	*c.t = t
	return nil
}

// mysqlDuplicateEntry is MySQL's error number for a duplicate key.
const mysqlDuplicateEntry = 1062

// mysqlErrorNumber returns the Number of a *mysql.MySQLError in err's chain,
// or 0. It reads the field by reflection so that the library does not import
// the driver (github.com/go-sql-driver/mysql).
func mysqlErrorNumber(err error) uint64 {
	for ; err != nil; err = errors.Unwrap(err) {
		v := reflect.ValueOf(err)
		if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
			continue
		}
		if f := v.Elem().FieldByName("Number"); f.IsValid() && f.CanUint() {
			return f.Uint()
		}
	}
	return 0
}

// preparedStmt is a statement prepared on first use. A failed preparation
// (the table does not exist yet, the database is down) is not kept: the next
// call tries again.
type preparedStmt struct {
	db     *sql.DB
	query  string
	stmt   atomic.Pointer[sql.Stmt]
	mu     sync.Mutex // held while preparing and closing
	closed bool
}

func (p *preparedStmt) get(ctx context.Context) (*sql.Stmt, error) {
	if stmt := p.stmt.Load(); stmt != nil {
		return stmt, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errClosed
	}
	if stmt := p.stmt.Load(); stmt != nil {
		return stmt, nil
	}
	stmt, err := p.db.PrepareContext(ctx, p.query)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	p.stmt.Store(stmt)
	return stmt, nil
}

func (p *preparedStmt) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if stmt := p.stmt.Swap(nil); stmt != nil {
		return stmt.Close()
	}
	return nil
}
