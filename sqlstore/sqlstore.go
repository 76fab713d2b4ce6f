package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apitoken-go/apitoken"
)

// Store is an apitoken.Store in a SQL database, through database/sql. It is
// safe for concurrent use. Lookup is one indexed SELECT in one round trip,
// and Create and List one statement each (on MySQL, Create runs in a
// transaction of its own), run as prepared statements (prepared on first
// use, so New needs no connection), with the caller's context. Delete and
// the other changes that revoke a token run in one transaction with the
// revocation log's insert (see Bus). With WithReplica, Lookup and List read
// a replica.
//
// Call Migrate once at start-up to create or upgrade the schema, or apply
// the schema with your own migration tool (MigrationFiles gives its files;
// the package documentation shows it per dialect).
type Store struct {
	db      *sql.DB
	dialect Dialect
	script  *script
	stmts   *statements // shared with the Stores made by WithTx
	tx      DBTX        // set in a Store made by WithTx
	replica *replica    // set by WithReplica; shared with the Stores made by WithTx
}

// statements are the Store's prepared statements. The writes that revoke
// tokens run in a transaction with the revocation log's insert (see
// revoking), as text: they are not among them.
type statements struct {
	create, lookup, list, deleteExpired, setLastUsed preparedStmt
	closed                                           atomic.Bool // set by Close

	exists, listExpiring preparedStmt
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
	_ apitoken.Disabler        = (*Store)(nil)
	_ apitoken.MemberDeleter   = (*Store)(nil)
	_ apitoken.UnusedDeleter   = (*Store)(nil)
	_ apitoken.ExpiringLister  = (*Store)(nil)
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
	cfg := config{prefix: defaultPrefix, fallbacks: DefaultReplicaFallbacks}
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
		"create": &st.create, "lookup": &st.lookup, "list": &st.list, "delete-expired": &st.deleteExpired,
		"set-last-used": &st.setLastUsed,
		"exists":        &st.exists, "list-expiring": &st.listExpiring,
	} {
		p.db, p.query = db, sc.queries[name]
	}
	s := &Store{db: db, dialect: d, script: sc, stmts: st}
	if cfg.replica != nil {
		s.replica = newReplica(cfg.replica, sc, cfg.maxLag, cfg.fallbacks)
	}
	return s, nil
}

// WithTx returns a Store that runs its statements through tx, typically a
// *sql.Tx, so that tokens are created and deleted in the caller's
// transaction: give it to the main Issuer's InTx (apitoken.Issuer.InTx) for
// the length of the transaction, which keeps the Issuer's prefix, hash keys
// and limit, and call Committed on the Issuer it returns after the commit.
// It shares s's configuration; its Migrate still runs on the *sql.DB given
// to New, and its Close does nothing. With a *sql.Tx, the revocations its
// deletes write to the log (see Bus) commit or roll back with tx; with a
// *sql.Conn or *sql.DB, each statement commits on its own.
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
	st.closed.Store(true)
	var replicaErr error
	if s.replica != nil {
		replicaErr = s.replica.close()
	}
	return errors.Join(st.create.close(), st.lookup.close(), st.list.close(), st.deleteExpired.close(), st.setLastUsed.close(),
		st.exists.close(), st.listExpiring.close(), replicaErr)
}

// Create implements apitoken.Store.
func (s *Store) Create(ctx context.Context, rec apitoken.Record) error {
	args, err := s.createArgs(rec)
	if err != nil {
		return err
	}
	s.replica.created(rec.AccountID, rec.Hash)
	if s.dialect == MySQL && s.tx == nil {
		return createError(s.detached(ctx, rec.AccountID, rec.ID, func(ctx context.Context) error {
			return s.created(s.exec(ctx, &s.stmts.create, args...))
		}))
	}
	return createError(s.created(s.exec(ctx, &s.stmts.create, args...)))
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
	if len(rec.Hint) > maxHintLen {
		return nil, fmt.Errorf("sqlstore: %w: Hint is longer than %d bytes", apitoken.ErrInvalidInput, maxHintLen)
	}
	if len(rec.AllowedIPs) > maxAllowedIPs {
		return nil, fmt.Errorf("sqlstore: %w: AllowedIPs has more than %d prefixes", apitoken.ErrInvalidInput, maxAllowedIPs)
	}
	for _, p := range rec.AllowedIPs {
		if !p.IsValid() {
			return nil, fmt.Errorf("sqlstore: %w: an allowed prefix is not valid", apitoken.ErrInvalidInput)
		}
	}
	for _, t := range []time.Time{rec.CreatedAt, rec.ExpiresAt, rec.LastUsedAt} {
		if !t.IsZero() && !storableTime(t) {
			// Outside MySQL's DATETIME, and SQLite's microseconds would
			// overflow: refuse rather than store another time.
			return nil, fmt.Errorf("sqlstore: %w: a time is outside the years %d to %d", apitoken.ErrInvalidInput, minYear, maxYear)
		}
	}
	return []any{rec.Hash[:], rec.ID, rec.AccountID, rec.MemberID, rec.Name, strings.Join(rec.Scopes, " "),
		s.timeArg(rec.CreatedAt), s.timeArg(rec.ExpiresAt), s.timeArg(rec.LastUsedAt),
		rec.Disabled, rec.Hint, allowedIPsArg(rec.AllowedIPs), addrArg(rec.LastUsedIP)}, nil
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

// Lookup implements apitoken.Store. With WithReplica, it reads the replica
// first (see WithReplica).
func (s *Store) Lookup(ctx context.Context, h apitoken.Hash) (apitoken.Record, error) {
	if s.replica != nil && s.tx == nil {
		return s.replica.lookup(ctx, s, h)
	}
	return s.lookupOn(ctx, &s.stmts.lookup, h)
}

// lookupOn is Lookup through p, the lookup statement of the primary or of
// the replica.
func (s *Store) lookupOn(ctx context.Context, p *preparedStmt, h apitoken.Hash) (apitoken.Record, error) {
	row, err := s.queryRow(ctx, p, h[:])
	if err != nil {
		return apitoken.Record{}, fmt.Errorf("sqlstore: lookup: %w", err)
	}
	rec := apitoken.Record{Hash: h}
	err = scanToken(row, &rec.Token)
	if errors.Is(err, sql.ErrNoRows) {
		return apitoken.Record{}, errNotFound
	}
	if err != nil {
		return apitoken.Record{}, fmt.Errorf("sqlstore: lookup: %w", schemaHint(err))
	}
	return rec, nil
}

// List implements apitoken.Store. With WithReplica, it reads the replica,
// unless the account was written recently (see WithReplica).
func (s *Store) List(ctx context.Context, accountID string) ([]apitoken.Token, error) {
	if !storable(accountID) {
		return []apitoken.Token{}, nil
	}
	p := &s.stmts.list
	if s.replica != nil && s.tx == nil {
		p = s.replica.listOn(accountID, p)
	}
	rows, err := s.query(ctx, p, accountID)
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

// Delete implements apitoken.Store. The token's revocation is logged in
// the same transaction (see Bus).
func (s *Store) Delete(ctx context.Context, accountID, id string) error {
	if !storable(accountID) || !storable(id) {
		return errNotFound
	}
	var n int
	err := s.revoking(ctx, func(db execer) (_ []revocation, err error) {
		n, err = execCount(ctx, db, s.script.queries["delete"], id, accountID)
		return revokedIf(n, accountID, id), err
	})
	if err != nil {
		return fmt.Errorf("sqlstore: delete: %w", err)
	}
	if n == 0 {
		return errNotFound
	}
	return nil
}

// execCount runs query through db and returns how many rows it changed.
func execCount(ctx context.Context, db execer, query string, args ...any) (int, error) {
	res, err := db.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// exec, queryRow and query run p's statement through the transaction of a
// Store made by WithTx, or prepared on the database (unprepared while
// another caller prepares it); exec, outside a transaction of the caller's,
// runs it again if it was the victim of a deadlock (see retry).
func (s *Store) exec(ctx context.Context, p *preparedStmt, args ...any) (sql.Result, error) {
	if s.tx != nil {
		res, err := s.tx.ExecContext(ctx, p.query, args...)
		return res, schemaHint(err)
	}
	stmt, err := p.get(ctx)
	if err != nil {
		return nil, schemaHint(err)
	}
	// One statement on its own: the victim of a deadlock runs again.
	var res sql.Result
	err = retry(ctx, func() (err error) {
		if stmt == nil { // being prepared by another caller
			res, err = s.db.ExecContext(ctx, p.query, args...)
		} else {
			res, err = stmt.ExecContext(ctx, args...)
		}
		return err
	})
	return res, err
}

func (s *Store) queryRow(ctx context.Context, p *preparedStmt, args ...any) (*sql.Row, error) {
	if s.tx != nil {
		return s.tx.QueryRowContext(ctx, p.query, args...), nil
	}
	stmt, err := p.get(ctx)
	if err != nil {
		return nil, schemaHint(err)
	}
	if stmt == nil {
		return s.db.QueryRowContext(ctx, p.query, args...), nil
	}
	return stmt.QueryRowContext(ctx, args...), nil
}

func (s *Store) query(ctx context.Context, p *preparedStmt, args ...any) (*sql.Rows, error) {
	if s.tx != nil {
		rows, err := s.tx.QueryContext(ctx, p.query, args...)
		return rows, schemaHint(err)
	}
	stmt, err := p.get(ctx)
	if err != nil {
		return nil, schemaHint(err)
	}
	if stmt == nil {
		return s.db.QueryContext(ctx, p.query, args...)
	}
	return stmt.QueryContext(ctx, args...)
}
