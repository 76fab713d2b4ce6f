package sqlstore

// Failure injection with go-sqlmock: the database fails in ways a real
// server cannot be made to on demand, and the tests check what the Store
// returns and which statements it ran (the mock's expectations are ordered,
// so a statement run after a failure, such as recording a schema version,
// is caught).

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
)

// newMockStore returns a Store of dialect d over a go-sqlmock database that
// matches SQL text exactly, with the database and its mock.
func newMockStore(t *testing.T, d Dialect) (*Store, *sql.DB, sqlmock.Sqlmock) {
	t.Helper()
	db, mock, err := sqlmock.New(sqlmock.QueryMatcherOption(sqlmock.QueryMatcherEqual))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	s, err := New(db, d)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s, db, mock
}

// tokenColumns are the columns the lookup and list queries select.
var tokenColumns = []string{"id", "account_id", "member_id", "name", "scopes", "created_at", "expires_at", "last_used_at",
	"disabled", "hint", "allowed_ips", "last_used_ip"}

var testCreatedAt = time.Date(2026, 11, 27, 12, 34, 56, 123456000, time.UTC)

// testCreatedAtMySQL is testCreatedAt as written to a MySQL DATETIME(6): the
// UTC wall clock as text, whatever the driver's loc setting.
const testCreatedAtMySQL = "2026-11-27 12:34:56.123456"

func testRecord() apitoken.Record {
	var h apitoken.Hash
	for i := range h {
		h[i] = byte(i + 1)
	}
	return apitoken.Record{Hash: h, Token: apitoken.Token{
		ID: "tok-1", AccountID: "acct-1", MemberID: "member-1", Name: "laptop",
		Scopes: []string{"read", "write"}, CreatedAt: testCreatedAt,
	}}
}

// createArgs are the arguments the create statement gets for rec, a
// testRecord (created at testCreatedAt, expiry and last use zero: NULL).
func createArgs(d Dialect, rec apitoken.Record) []driver.Value {
	var created driver.Value = rec.CreatedAt
	switch d {
	case SQLite:
		created = rec.CreatedAt.UnixMicro()
	case MySQL:
		created = testCreatedAtMySQL
	}
	return []driver.Value{rec.Hash[:], rec.ID, rec.AccountID, rec.MemberID, rec.Name,
		strings.Join(rec.Scopes, " "), created, nil, nil, false, "", "", nil}
}

// tokenRow is rec as the lookup and list queries return it.
func tokenRow(rec apitoken.Record) []driver.Value {
	return []driver.Value{rec.ID, rec.AccountID, rec.MemberID, rec.Name,
		strings.Join(rec.Scopes, " "), rec.CreatedAt, nil, nil, false, "", "", nil}
}

// requireSystemError checks that err is a failure of the store's op caused
// by cause: none of the answers that the Issuer and the middleware read as
// a verdict on the token.
func requireSystemError(t *testing.T, err error, op string, cause error) {
	t.Helper()
	require.Error(t, err)
	assert.ErrorIs(t, err, cause)
	for _, sentinel := range []error{apitoken.ErrNotFound, apitoken.ErrDuplicate, apitoken.ErrInvalidToken, apitoken.ErrInvalidInput} {
		assert.NotErrorIs(t, err, sentinel)
	}
	assert.True(t, strings.HasPrefix(err.Error(), "sqlstore: "+op+": "), "error %q", err)
	requireNoUnexpectedCall(t, err)
}

// requireNoUnexpectedCall fails if err carries go-sqlmock's report of a
// statement that was not expected.
func requireNoUnexpectedCall(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		require.NotContains(t, err.Error(), "was not expected")
	}
}

func TestLookupFailure(t *testing.T) {
	errDown := errors.New("connection refused")
	rec := testRecord()
	for _, tc := range []struct {
		name   string
		expect func(mock sqlmock.Sqlmock, lookup string)
		check  func(t *testing.T, err error)
	}{
		{
			name: "nok, query error is a system error",
			expect: func(mock sqlmock.Sqlmock, lookup string) {
				mock.ExpectPrepare(lookup).ExpectQuery().WithArgs(rec.Hash[:]).WillReturnError(errDown)
			},
			check: func(t *testing.T, err error) { requireSystemError(t, err, "lookup", errDown) },
		},
		{
			name: "nok, prepare error is a system error",
			expect: func(mock sqlmock.Sqlmock, lookup string) {
				mock.ExpectPrepare(lookup).WillReturnError(errDown)
			},
			check: func(t *testing.T, err error) { requireSystemError(t, err, "lookup", errDown) },
		},
		{
			name: "nok, unreadable time is a system error",
			expect: func(mock sqlmock.Sqlmock, lookup string) {
				row := tokenRow(rec)
				row[5] = []byte("yesterday")
				mock.ExpectPrepare(lookup).ExpectQuery().WithArgs(rec.Hash[:]).
					WillReturnRows(sqlmock.NewRows(tokenColumns).AddRow(row...)).RowsWillBeClosed()
			},
			check: func(t *testing.T, err error) {
				require.Error(t, err)
				assert.NotErrorIs(t, err, apitoken.ErrNotFound)
				assert.True(t, strings.HasPrefix(err.Error(), "sqlstore: lookup: "), err.Error())
				assert.Contains(t, err.Error(), `cannot read a time from "yesterday"`)
			},
		},
		{
			name: "ok, no row is ErrNotFound",
			expect: func(mock sqlmock.Sqlmock, lookup string) {
				mock.ExpectPrepare(lookup).ExpectQuery().WithArgs(rec.Hash[:]).
					WillReturnRows(sqlmock.NewRows(tokenColumns)).RowsWillBeClosed()
			},
			check: func(t *testing.T, err error) {
				assert.ErrorIs(t, err, apitoken.ErrNotFound)
				requireNoUnexpectedCall(t, err)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, mock := newMockStore(t, Postgres)
			tc.expect(mock, s.script.queries["lookup"])

			got, err := s.Lookup(t.Context(), rec.Hash)
			tc.check(t, err)
			assert.Zero(t, got)
			require.NoError(t, mock.ExpectationsWereMet())
		})
	}
}

// A connection lost for good: database/sql tries the statement's connection
// and then new ones (maxBadConnRetries cached-or-new, then one new), each
// failing; the Store reports a system error, and recovers once the database
// is back.
func TestLookupBadConn(t *testing.T) {
	s, db, mock := newMockStore(t, Postgres)
	lookup := s.script.queries["lookup"]
	rec := testRecord()

	// sqlmock forgets its database when its last connection closes; this
	// one stays open while database/sql closes the bad ones.
	pin, err := db.Conn(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() { _ = pin.Close() })

	mock.ExpectPrepare(lookup).ExpectQuery().WithArgs(rec.Hash[:]).
		WillReturnRows(sqlmock.NewRows(tokenColumns).AddRow(tokenRow(rec)...))
	_, err = s.Lookup(t.Context(), rec.Hash)
	require.NoError(t, err)

	// The prepared statement's connection breaks, and so does every new
	// one: the statement is prepared again on each.
	mock.ExpectQuery(lookup).WithArgs(rec.Hash[:]).WillReturnError(driver.ErrBadConn)
	mock.ExpectPrepare(lookup).WillReturnError(driver.ErrBadConn)
	mock.ExpectPrepare(lookup).WillReturnError(driver.ErrBadConn)
	got, err := s.Lookup(t.Context(), rec.Hash)
	requireSystemError(t, err, "lookup", driver.ErrBadConn)
	assert.Zero(t, got)
	require.NoError(t, mock.ExpectationsWereMet())

	// Back: the next call works on a new connection.
	mock.ExpectPrepare(lookup).ExpectQuery().WithArgs(rec.Hash[:]).
		WillReturnRows(sqlmock.NewRows(tokenColumns).AddRow(tokenRow(rec)...))
	got, err = s.Lookup(t.Context(), rec.Hash)
	require.NoError(t, err)
	assert.Equal(t, rec, got)
	require.NoError(t, mock.ExpectationsWereMet())
}

// hashArg matches a 32-byte hash argument and keeps it.
type hashArg struct{ got *[]byte }

func (a hashArg) Match(v driver.Value) bool {
	b, ok := v.([]byte)
	if !ok || len(b) != len(apitoken.Hash{}) {
		return false
	}
	*a.got = bytes.Clone(b)
	return true
}

// A store failure while verifying a well-formed secret is not a verdict on
// the token: Verify does not say ErrInvalidToken, and the middleware answers
// 503 (where a missing row answers 401). The secret is never in the error,
// the response or the log.
func TestVerifyStoreFailure(t *testing.T) {
	s, _, mock := newMockStore(t, Postgres)
	q := s.script.queries
	iss, err := apitoken.NewIssuer(s)
	require.NoError(t, err)
	errDown := errors.New("connection refused")

	var hash []byte
	mock.ExpectPrepare(q["create"]).ExpectExec().
		WithArgs(hashArg{&hash}, sqlmock.AnyArg(), "acct-1", "member-1", "laptop", "read", sqlmock.AnyArg(), nil, nil, false, sqlmock.AnyArg(), "", nil).
		WillReturnResult(sqlmock.NewResult(0, 1))
	secret, _, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: "acct-1", MemberID: "member-1", Name: "laptop", Scopes: []string{"read"}})
	require.NoError(t, err)
	require.NoError(t, mock.ExpectationsWereMet())

	// Verify looks up the hash that Create stored.
	mock.ExpectPrepare(q["lookup"]).ExpectQuery().WithArgs(hash).WillReturnError(errDown)
	_, err = iss.Verify(t.Context(), "acct-1", secret)
	require.Error(t, err)
	assert.NotErrorIs(t, err, apitoken.ErrInvalidToken)
	assert.ErrorIs(t, err, errDown)
	assert.NotContains(t, err.Error(), secret)
	require.NoError(t, mock.ExpectationsWereMet())

	var logs bytes.Buffer
	mw, err := iss.NewMiddleware(apitoken.MiddlewareConfig{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("next called") }))
	serve := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+secret)
		r.Header.Set("X-Account-ID", "acct-1")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	mock.ExpectQuery(q["lookup"]).WithArgs(hash).WillReturnError(errDown)
	w := serve()
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.NotContains(t, w.Body.String(), secret)
	assert.Contains(t, logs.String(), "sqlstore: lookup: connection refused")
	assert.NotContains(t, logs.String(), secret)
	require.NoError(t, mock.ExpectationsWereMet())

	// The same request when the row is missing: a verdict, 401.
	mock.ExpectQuery(q["lookup"]).WithArgs(hash).WillReturnRows(sqlmock.NewRows(tokenColumns))
	w = serve()
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	require.NoError(t, mock.ExpectationsWereMet())
}

// A failed preparation (the table is not there yet, the database is down)
// is not kept: the next call prepares again, and a prepared statement is
// then reused.
func TestPrepareFailureNotCached(t *testing.T) {
	s, _, mock := newMockStore(t, Postgres)
	lookup := s.script.queries["lookup"]
	rec := testRecord()
	errNoTable := errors.New(`relation "apitoken_tokens" does not exist`)

	mock.ExpectPrepare(lookup).WillReturnError(errNoTable)
	_, err := s.Lookup(t.Context(), rec.Hash)
	requireSystemError(t, err, "lookup", errNoTable)
	require.NoError(t, mock.ExpectationsWereMet())

	mock.ExpectPrepare(lookup).ExpectQuery().WithArgs(rec.Hash[:]).
		WillReturnRows(sqlmock.NewRows(tokenColumns).AddRow(tokenRow(rec)...))
	got, err := s.Lookup(t.Context(), rec.Hash)
	require.NoError(t, err)
	assert.Equal(t, rec, got)
	require.NoError(t, mock.ExpectationsWereMet())

	// No second preparation.
	mock.ExpectQuery(lookup).WithArgs(rec.Hash[:]).WillReturnRows(sqlmock.NewRows(tokenColumns))
	_, err = s.Lookup(t.Context(), rec.Hash)
	assert.ErrorIs(t, err, apitoken.ErrNotFound)
	require.NoError(t, mock.ExpectationsWereMet())
}

func TestCreateFailure(t *testing.T) {
	errDown := errors.New("connection refused")
	errResult := errors.New("driver cannot count rows")
	dupEntry := &fakeMySQLError{Number: 1062, SQLState: [5]byte{'2', '3', '0', '0', '0'}, Message: "Duplicate entry"}
	noTable := &fakeMySQLError{Number: 1146, SQLState: [5]byte{'4', '2', 'S', '0', '2'}, Message: "Table doesn't exist"}
	duplicate := func(t *testing.T, err error) {
		assert.ErrorIs(t, err, apitoken.ErrDuplicate)
		assert.True(t, strings.HasPrefix(err.Error(), "sqlstore: "), err.Error())
		requireNoUnexpectedCall(t, err)
	}
	for _, tc := range []struct {
		name    string
		dialect Dialect
		answer  func(e *sqlmock.ExpectedExec)
		check   func(t *testing.T, err error)
	}{
		{
			name: "nok, exec error is a system error", dialect: Postgres,
			answer: func(e *sqlmock.ExpectedExec) { e.WillReturnError(errDown) },
			check:  func(t *testing.T, err error) { requireSystemError(t, err, "create", errDown) },
		},
		{
			name: "ok, Postgres inserts no row: ErrDuplicate", dialect: Postgres,
			answer: func(e *sqlmock.ExpectedExec) { e.WillReturnResult(sqlmock.NewResult(0, 0)) },
			check:  duplicate,
		},
		{
			name: "ok, SQLite inserts no row: ErrDuplicate", dialect: SQLite,
			answer: func(e *sqlmock.ExpectedExec) { e.WillReturnResult(sqlmock.NewResult(0, 0)) },
			check:  duplicate,
		},
		{
			name: "ok, MySQL error 1062: ErrDuplicate", dialect: MySQL,
			answer: func(e *sqlmock.ExpectedExec) { e.WillReturnError(dupEntry) },
			check:  duplicate,
		},
		{
			name: "nok, MySQL error of another number is a system error", dialect: MySQL,
			answer: func(e *sqlmock.ExpectedExec) { e.WillReturnError(noTable) },
			check: func(t *testing.T, err error) {
				requireSystemError(t, err, "create", noTable)
				var myErr *fakeMySQLError
				require.ErrorAs(t, err, &myErr)
				assert.Equal(t, uint16(1146), myErr.Number)
			},
		},
		{
			// Only MySQL's errors are read for a number.
			name: "nok, Postgres error with a Number field is a system error", dialect: Postgres,
			answer: func(e *sqlmock.ExpectedExec) { e.WillReturnError(dupEntry) },
			check:  func(t *testing.T, err error) { requireSystemError(t, err, "create", dupEntry) },
		},
		{
			name: "nok, Postgres RowsAffected error is a system error", dialect: Postgres,
			answer: func(e *sqlmock.ExpectedExec) { e.WillReturnResult(sqlmock.NewErrorResult(errResult)) },
			check:  func(t *testing.T, err error) { requireSystemError(t, err, "create", errResult) },
		},
		{
			name: "nok, MySQL RowsAffected error is a system error", dialect: MySQL,
			answer: func(e *sqlmock.ExpectedExec) { e.WillReturnResult(sqlmock.NewErrorResult(errResult)) },
			check:  func(t *testing.T, err error) { requireSystemError(t, err, "create", errResult) },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, mock := newMockStore(t, tc.dialect)
			rec := testRecord()
			prep := mock.ExpectPrepare(s.script.queries["create"])
			// One INSERT on its own on every database (MySQL's runs to its
			// end with a context of its own: see TestCancelledCreateLeavesNoRow).
			exec := prep.ExpectExec().WithArgs(createArgs(tc.dialect, rec)...)
			tc.answer(exec)

			err := s.Create(t.Context(), rec)
			require.Error(t, err)
			tc.check(t, err)
			require.NoError(t, mock.ExpectationsWereMet())
		})
	}

	t.Run("nok, scope with a space refused before the database", func(t *testing.T) {
		s, _, mock := newMockStore(t, Postgres)
		rec := testRecord()
		rec.Scopes = []string{"read write"}
		err := s.Create(t.Context(), rec)
		assert.ErrorIs(t, err, apitoken.ErrInvalidInput)
		requireNoUnexpectedCall(t, err)
		require.NoError(t, mock.ExpectationsWereMet())
	})
}

// The Issuer draws a new secret and id when MySQL reports a duplicate key.
func TestIssueRetriesMySQLDuplicate(t *testing.T) {
	s, _, mock := newMockStore(t, MySQL)
	create := s.script.queries["create"]
	iss, err := apitoken.NewIssuer(s)
	require.NoError(t, err)

	var hash1, hash2 []byte
	var id1, id2 string
	prep := mock.ExpectPrepare(create)
	prep.ExpectExec().
		WithArgs(hashArg{&hash1}, stringArg{&id1}, "acct-1", "", "", "", sqlmock.AnyArg(), nil, nil, false, sqlmock.AnyArg(), "", nil).
		WillReturnError(&fakeMySQLError{Number: 1062, Message: "Duplicate entry"})
	prep.ExpectExec().
		WithArgs(hashArg{&hash2}, stringArg{&id2}, "acct-1", "", "", "", sqlmock.AnyArg(), nil, nil, false, sqlmock.AnyArg(), "", nil).
		WillReturnResult(sqlmock.NewResult(0, 1))

	_, tok, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: "acct-1"})
	require.NoError(t, err)
	require.NoError(t, mock.ExpectationsWereMet())
	assert.NotEqual(t, hash1, hash2)
	assert.NotEqual(t, id1, id2)
	assert.Equal(t, id2, tok.ID)
}

// stringArg matches a string argument and keeps it.
type stringArg struct{ got *string }

func (a stringArg) Match(v driver.Value) bool {
	s, ok := v.(string)
	if ok {
		*a.got = s
	}
	return ok
}

func TestListFailure(t *testing.T) {
	errDown := errors.New("connection refused")
	errRow := errors.New("connection reset while reading rows")
	rows := func(n int) *sqlmock.Rows {
		r := sqlmock.NewRows(tokenColumns)
		for i := range n {
			rec := testRecord()
			rec.ID = rec.ID + "-" + string(rune('a'+i))
			r.AddRow(tokenRow(rec)...)
		}
		return r
	}
	for _, tc := range []struct {
		name    string
		dialect Dialect
		answer  func(e *sqlmock.ExpectedQuery)
		check   func(t *testing.T, err error)
	}{
		{
			name: "nok, query error is a system error", dialect: Postgres,
			answer: func(e *sqlmock.ExpectedQuery) { e.WillReturnError(errDown) },
			check:  func(t *testing.T, err error) { requireSystemError(t, err, "list", errDown) },
		},
		{
			name: "nok, error on the second row: no partial list", dialect: Postgres,
			answer: func(e *sqlmock.ExpectedQuery) {
				e.WillReturnRows(rows(3).RowError(1, errRow)).RowsWillBeClosed()
			},
			check: func(t *testing.T, err error) { requireSystemError(t, err, "list", errRow) },
		},
		{
			name: "nok, unreadable time on the second row: no partial list", dialect: MySQL,
			answer: func(e *sqlmock.ExpectedQuery) {
				r := rows(1)
				bad := tokenRow(testRecord())
				bad[5] = []byte("2026-11-27T12:34:56Z") // not MySQL's text form
				e.WillReturnRows(r.AddRow(bad...)).RowsWillBeClosed()
			},
			check: func(t *testing.T, err error) {
				require.Error(t, err)
				assert.True(t, strings.HasPrefix(err.Error(), "sqlstore: list: "), err.Error())
				assert.Contains(t, err.Error(), `cannot read a time from "2026-11-27T12:34:56Z"`)
				requireNoUnexpectedCall(t, err)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, mock := newMockStore(t, tc.dialect)
			tc.answer(mock.ExpectPrepare(s.script.queries["list"]).ExpectQuery().WithArgs("acct-1"))

			got, err := s.List(t.Context(), "acct-1")
			tc.check(t, err)
			assert.Nil(t, got)
			require.NoError(t, mock.ExpectationsWereMet())
		})
	}
}

func TestDeleteFailure(t *testing.T) {
	errDown := errors.New("connection refused")
	errResult := errors.New("driver cannot count rows")
	for _, tc := range []struct {
		name   string
		answer func(e *sqlmock.ExpectedExec)
		check  func(t *testing.T, err error)
	}{
		{
			name:   "ok, no row deleted: ErrNotFound",
			answer: func(e *sqlmock.ExpectedExec) { e.WillReturnResult(sqlmock.NewResult(0, 0)) },
			check: func(t *testing.T, err error) {
				assert.ErrorIs(t, err, apitoken.ErrNotFound)
				requireNoUnexpectedCall(t, err)
			},
		},
		{
			name:   "nok, exec error is a system error",
			answer: func(e *sqlmock.ExpectedExec) { e.WillReturnError(errDown) },
			check:  func(t *testing.T, err error) { requireSystemError(t, err, "delete", errDown) },
		},
		{
			name:   "nok, RowsAffected error is a system error",
			answer: func(e *sqlmock.ExpectedExec) { e.WillReturnResult(sqlmock.NewErrorResult(errResult)) },
			check:  func(t *testing.T, err error) { requireSystemError(t, err, "delete", errResult) },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, mock := newMockStore(t, Postgres)
			mock.ExpectBegin()
			tc.answer(mock.ExpectExec(s.script.queries["delete"]).WithArgs("tok-1", "acct-1"))
			if strings.HasPrefix(tc.name, "ok") {
				mock.ExpectCommit() // nothing deleted: nothing to log
			} else {
				mock.ExpectRollback()
			}

			err := s.Delete(t.Context(), "acct-1", "tok-1")
			require.Error(t, err)
			tc.check(t, err)
			require.NoError(t, mock.ExpectationsWereMet())
		})
	}
}

// migrationPlan says which migration statement expectMigrations makes fail.
type migrationPlan struct {
	failVersion int // 0: none fails
	failStmt    int // from 1; len(statements)+1 fails recording the version
	failErr     error
}

// expectMigrations expects the statements of every migration, each
// migration followed by set-version, up to the failure p plans: nothing
// after it is expected.
func expectMigrations(mock sqlmock.Sqlmock, sc *script, p migrationPlan) {
	for v := 1; v <= len(sc.migrations); v++ {
		stmts := sc.migrations[v-1]
		for i, stmt := range stmts {
			e := mock.ExpectExec(stmt)
			if v == p.failVersion && i+1 == p.failStmt {
				e.WillReturnError(p.failErr)
				return
			}
			e.WillReturnResult(sqlmock.NewResult(0, 0))
		}
		e := mock.ExpectExec(sc.queries["set-version"]).WithArgs(v)
		if v == p.failVersion && p.failStmt == len(stmts)+1 {
			e.WillReturnError(p.failErr)
			return
		}
		e.WillReturnResult(sqlmock.NewResult(0, 1))
	}
}

func versionRows(v int) *sqlmock.Rows {
	return sqlmock.NewRows([]string{"coalesce"}).AddRow(v)
}

func TestMigrateFailurePostgres(t *testing.T) {
	errStmt := errors.New("permission denied for schema public")
	errCommit := errors.New("could not serialize access")
	errRollback := errors.New("connection reset during rollback")
	ok := sqlmock.NewResult(0, 0)
	for _, tc := range []struct {
		name    string
		expect  func(t *testing.T, mock sqlmock.Sqlmock, sc *script)
		wantErr []error // nil: Migrate succeeds
		wantMsg string
	}{
		{
			name: "nok, second statement of migration 1 fails: rolled back, version not recorded",
			expect: func(t *testing.T, mock sqlmock.Sqlmock, sc *script) {
				require.GreaterOrEqual(t, len(sc.migrations[0]), 2, "migration 1 has two statements")
				mock.ExpectBegin()
				mock.ExpectExec(sc.queries["lock"]).WillReturnResult(ok)
				mock.ExpectExec(sc.queries["version-table"]).WillReturnResult(ok)
				mock.ExpectQuery(sc.queries["version"]).WillReturnRows(versionRows(0))
				expectMigrations(mock, sc, migrationPlan{failVersion: 1, failStmt: 2, failErr: errStmt})
				mock.ExpectRollback()
			},
			wantErr: []error{errStmt},
			wantMsg: "version 1: ",
		},
		{
			name: "nok, recording the version fails: rolled back",
			expect: func(t *testing.T, mock sqlmock.Sqlmock, sc *script) {
				mock.ExpectBegin()
				mock.ExpectExec(sc.queries["lock"]).WillReturnResult(ok)
				mock.ExpectExec(sc.queries["version-table"]).WillReturnResult(ok)
				mock.ExpectQuery(sc.queries["version"]).WillReturnRows(versionRows(0))
				expectMigrations(mock, sc, migrationPlan{failVersion: 1, failStmt: len(sc.migrations[0]) + 1, failErr: errStmt})
				mock.ExpectRollback()
			},
			wantErr: []error{errStmt},
			wantMsg: "version 1: ",
		},
		{
			name: "nok, rollback fails too: both reported",
			expect: func(t *testing.T, mock sqlmock.Sqlmock, sc *script) {
				mock.ExpectBegin()
				mock.ExpectExec(sc.queries["lock"]).WillReturnResult(ok)
				mock.ExpectExec(sc.queries["version-table"]).WillReturnResult(ok)
				mock.ExpectQuery(sc.queries["version"]).WillReturnRows(versionRows(0))
				expectMigrations(mock, sc, migrationPlan{failVersion: 1, failStmt: 1, failErr: errStmt})
				mock.ExpectRollback().WillReturnError(errRollback)
			},
			wantErr: []error{errStmt, errRollback},
			wantMsg: "version 1: ",
		},
		{
			name: "nok, commit fails",
			expect: func(t *testing.T, mock sqlmock.Sqlmock, sc *script) {
				mock.ExpectBegin()
				mock.ExpectExec(sc.queries["lock"]).WillReturnResult(ok)
				mock.ExpectExec(sc.queries["version-table"]).WillReturnResult(ok)
				mock.ExpectQuery(sc.queries["version"]).WillReturnRows(versionRows(0))
				expectMigrations(mock, sc, migrationPlan{})
				mock.ExpectCommit().WillReturnError(errCommit)
			},
			wantErr: []error{errCommit},
		},
		{
			name: "nok, begin fails: nothing runs",
			expect: func(t *testing.T, mock sqlmock.Sqlmock, sc *script) {
				mock.ExpectBegin().WillReturnError(errStmt)
			},
			wantErr: []error{errStmt},
		},
		{
			name: "nok, lock fails: nothing else runs, rolled back",
			expect: func(t *testing.T, mock sqlmock.Sqlmock, sc *script) {
				mock.ExpectBegin()
				mock.ExpectExec(sc.queries["lock"]).WillReturnError(errStmt)
				mock.ExpectRollback()
			},
			wantErr: []error{errStmt},
		},
		{
			name: "nok, version query fails: rolled back",
			expect: func(t *testing.T, mock sqlmock.Sqlmock, sc *script) {
				mock.ExpectBegin()
				mock.ExpectExec(sc.queries["lock"]).WillReturnResult(ok)
				mock.ExpectExec(sc.queries["version-table"]).WillReturnResult(ok)
				mock.ExpectQuery(sc.queries["version"]).WillReturnError(errStmt)
				mock.ExpectRollback()
			},
			wantErr: []error{errStmt},
		},
		{
			name: "nok, schema newer than known: refused, nothing applied, rolled back",
			expect: func(t *testing.T, mock sqlmock.Sqlmock, sc *script) {
				mock.ExpectBegin()
				mock.ExpectExec(sc.queries["lock"]).WillReturnResult(ok)
				mock.ExpectExec(sc.queries["version-table"]).WillReturnResult(ok)
				mock.ExpectQuery(sc.queries["version"]).WillReturnRows(versionRows(len(sc.migrations) + 1))
				mock.ExpectRollback()
			},
			wantMsg: "upgrade it",
		},
		{
			name: "ok, up to date: nothing applied, committed",
			expect: func(t *testing.T, mock sqlmock.Sqlmock, sc *script) {
				mock.ExpectBegin()
				mock.ExpectExec(sc.queries["lock"]).WillReturnResult(ok)
				mock.ExpectExec(sc.queries["version-table"]).WillReturnResult(ok)
				mock.ExpectQuery(sc.queries["version"]).WillReturnRows(versionRows(len(sc.migrations)))
				mock.ExpectCommit()
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, mock := newMockStore(t, Postgres)
			tc.expect(t, mock, s.script)

			err := s.Migrate(t.Context())
			checkMigrateError(t, err, tc.wantErr, tc.wantMsg)
			require.NoError(t, mock.ExpectationsWereMet())
		})
	}
}

// checkMigrateError checks Migrate's error: none when neither wantErr nor
// wantMsg is set, else one wrapping every error of wantErr and saying
// wantMsg.
func checkMigrateError(t *testing.T, err error, wantErr []error, wantMsg string) {
	t.Helper()
	if wantErr == nil && wantMsg == "" {
		require.NoError(t, err)
		return
	}
	require.Error(t, err)
	requireNoUnexpectedCall(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "sqlstore: migrate: "), err.Error())
	for _, want := range wantErr {
		assert.ErrorIs(t, err, want)
	}
	assert.Contains(t, err.Error(), wantMsg)
}

func lockRows(v any) *sqlmock.Rows { return sqlmock.NewRows([]string{"lock"}).AddRow(v) }

func TestMigrateFailureMySQL(t *testing.T) {
	errStmt := errors.New("Error 1142: CREATE command denied")
	errUnlock := errors.New("invalid connection")
	ok := sqlmock.NewResult(0, 0)
	for _, tc := range []struct {
		name    string
		expect  func(mock sqlmock.Sqlmock, sc *script)
		wantErr []error
		wantMsg string
	}{
		{
			name: "nok, lock timed out (0): nothing runs",
			expect: func(mock sqlmock.Sqlmock, sc *script) {
				mock.ExpectQuery(sc.queries["lock"]).WillReturnRows(lockRows(0))
			},
			wantMsg: "did not get the lock in time",
		},
		{
			name: "nok, lock error (NULL): nothing runs",
			expect: func(mock sqlmock.Sqlmock, sc *script) {
				mock.ExpectQuery(sc.queries["lock"]).WillReturnRows(lockRows(nil))
			},
			wantMsg: "did not get the lock in time",
		},
		{
			name: "nok, lock query fails: nothing runs",
			expect: func(mock sqlmock.Sqlmock, sc *script) {
				mock.ExpectQuery(sc.queries["lock"]).WillReturnError(errStmt)
			},
			wantErr: []error{errStmt},
		},
		{
			name: "nok, migration statement fails: lock released, version not recorded",
			expect: func(mock sqlmock.Sqlmock, sc *script) {
				mock.ExpectQuery(sc.queries["lock"]).WillReturnRows(lockRows(1))
				mock.ExpectExec(sc.queries["version-table"]).WillReturnResult(ok)
				mock.ExpectQuery(sc.queries["version"]).WillReturnRows(versionRows(0))
				expectMigrations(mock, sc, migrationPlan{failVersion: 1, failStmt: 1, failErr: errStmt})
				mock.ExpectQuery(sc.queries["unlock"]).WillReturnRows(lockRows(1))
			},
			wantErr: []error{errStmt},
			wantMsg: "version 1: ",
		},
		{
			name: "nok, version table fails: lock released",
			expect: func(mock sqlmock.Sqlmock, sc *script) {
				mock.ExpectQuery(sc.queries["lock"]).WillReturnRows(lockRows(1))
				mock.ExpectExec(sc.queries["version-table"]).WillReturnError(errStmt)
				mock.ExpectQuery(sc.queries["unlock"]).WillReturnRows(lockRows(1))
			},
			wantErr: []error{errStmt},
		},
		{
			// The migration stands; the connection that may still hold the
			// lock is closed, never pooled, and the lock ends with it.
			name: "ok, unlock fails after the migration: the connection is discarded",
			expect: func(mock sqlmock.Sqlmock, sc *script) {
				mock.ExpectQuery(sc.queries["lock"]).WillReturnRows(lockRows(1))
				mock.ExpectExec(sc.queries["version-table"]).WillReturnResult(ok)
				mock.ExpectQuery(sc.queries["version"]).WillReturnRows(versionRows(0))
				expectMigrations(mock, sc, migrationPlan{})
				mock.ExpectQuery(sc.queries["unlock"]).WillReturnError(errUnlock)
				mock.ExpectClose()
			},
		},
		{
			name: "ok, unlock answers 0 (not held): the connection is discarded",
			expect: func(mock sqlmock.Sqlmock, sc *script) {
				mock.ExpectQuery(sc.queries["lock"]).WillReturnRows(lockRows(1))
				mock.ExpectExec(sc.queries["version-table"]).WillReturnResult(ok)
				mock.ExpectQuery(sc.queries["version"]).WillReturnRows(versionRows(len(sc.migrations)))
				mock.ExpectQuery(sc.queries["unlock"]).WillReturnRows(lockRows(0))
				mock.ExpectClose()
			},
		},
		{
			name: "nok, statement and unlock fail: the statement's error, the connection discarded",
			expect: func(mock sqlmock.Sqlmock, sc *script) {
				mock.ExpectQuery(sc.queries["lock"]).WillReturnRows(lockRows(1))
				mock.ExpectExec(sc.queries["version-table"]).WillReturnResult(ok)
				mock.ExpectQuery(sc.queries["version"]).WillReturnRows(versionRows(0))
				expectMigrations(mock, sc, migrationPlan{failVersion: 1, failStmt: 1, failErr: errStmt})
				mock.ExpectQuery(sc.queries["unlock"]).WillReturnError(errUnlock)
				mock.ExpectClose()
			},
			wantErr: []error{errStmt},
			wantMsg: "version 1: ",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, mock := newMockStore(t, MySQL)
			tc.expect(mock, s.script)

			err := s.Migrate(t.Context())
			checkMigrateError(t, err, tc.wantErr, tc.wantMsg)
			require.NoError(t, mock.ExpectationsWereMet())
		})
	}
}

func TestMigrateFailureSQLite(t *testing.T) {
	errStmt := errors.New("database is locked")
	errCommit := errors.New("disk I/O error")
	errRollback := errors.New("cannot rollback - no transaction is active")
	ok := sqlmock.NewResult(0, 0)
	for _, tc := range []struct {
		name    string
		expect  func(mock sqlmock.Sqlmock, sc *script)
		wantErr []error
		wantMsg string
	}{
		{
			name: "nok, second statement of migration 1 fails: rolled back, version not recorded",
			expect: func(mock sqlmock.Sqlmock, sc *script) {
				mock.ExpectExec(sc.queries["lock"]).WillReturnResult(ok)
				mock.ExpectExec(sc.queries["version-table"]).WillReturnResult(ok)
				mock.ExpectQuery(sc.queries["version"]).WillReturnRows(versionRows(0))
				expectMigrations(mock, sc, migrationPlan{failVersion: 1, failStmt: 2, failErr: errStmt})
				mock.ExpectExec(sc.queries["rollback"]).WillReturnResult(ok)
			},
			wantErr: []error{errStmt},
			wantMsg: "version 1: ",
		},
		{
			name: "nok, commit fails: rolled back",
			expect: func(mock sqlmock.Sqlmock, sc *script) {
				mock.ExpectExec(sc.queries["lock"]).WillReturnResult(ok)
				mock.ExpectExec(sc.queries["version-table"]).WillReturnResult(ok)
				mock.ExpectQuery(sc.queries["version"]).WillReturnRows(versionRows(0))
				expectMigrations(mock, sc, migrationPlan{})
				mock.ExpectExec(sc.queries["unlock"]).WillReturnError(errCommit)
				mock.ExpectExec(sc.queries["rollback"]).WillReturnResult(ok)
			},
			wantErr: []error{errCommit},
		},
		{
			name: "nok, rollback fails too: both reported",
			expect: func(mock sqlmock.Sqlmock, sc *script) {
				mock.ExpectExec(sc.queries["lock"]).WillReturnResult(ok)
				mock.ExpectExec(sc.queries["version-table"]).WillReturnError(errStmt)
				mock.ExpectExec(sc.queries["rollback"]).WillReturnError(errRollback)
			},
			wantErr: []error{errStmt, errRollback},
		},
		{
			// BEGIN may have taken effect although it reported an error (a
			// cancelled context): a ROLLBACK follows all the same, and its
			// "no transaction is active" is not the error reported.
			name: "nok, BEGIN IMMEDIATE fails (busy): nothing runs, rolled back in case",
			expect: func(mock sqlmock.Sqlmock, sc *script) {
				mock.ExpectExec(sc.queries["lock"]).WillReturnError(errStmt)
				mock.ExpectExec(sc.queries["rollback"]).WillReturnError(errRollback)
			},
			wantErr: []error{errStmt},
		},
		{
			name: "nok, schema newer than known: refused, rolled back",
			expect: func(mock sqlmock.Sqlmock, sc *script) {
				mock.ExpectExec(sc.queries["lock"]).WillReturnResult(ok)
				mock.ExpectExec(sc.queries["version-table"]).WillReturnResult(ok)
				mock.ExpectQuery(sc.queries["version"]).WillReturnRows(versionRows(len(sc.migrations) + 1))
				mock.ExpectExec(sc.queries["rollback"]).WillReturnResult(ok)
			},
			wantMsg: "upgrade it",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, mock := newMockStore(t, SQLite)
			tc.expect(mock, s.script)

			err := s.Migrate(t.Context())
			checkMigrateError(t, err, tc.wantErr, tc.wantMsg)
			require.NoError(t, mock.ExpectationsWereMet())
		})
	}
}

// When the caller's context ends in the middle of a migration, the MySQL
// lock is still released and the SQLite transaction still rolled back: the
// connection goes back to the pool clean.
func TestMigrateContextEnds(t *testing.T) {
	ok := sqlmock.NewResult(0, 0)
	// Delaying the cleanup statement makes the mock answer ErrCancelled
	// every time, not one time in two, if it gets the ended context.
	const cleanupDelay = 10 * time.Millisecond
	for _, tc := range []struct {
		dialect Dialect
		lock    func(mock sqlmock.Sqlmock, sc *script)
		cleanup func(mock sqlmock.Sqlmock, sc *script)
	}{
		{
			dialect: MySQL,
			lock: func(mock sqlmock.Sqlmock, sc *script) {
				mock.ExpectQuery(sc.queries["lock"]).WillReturnRows(lockRows(1))
			},
			cleanup: func(mock sqlmock.Sqlmock, sc *script) {
				mock.ExpectQuery(sc.queries["unlock"]).WillReturnRows(lockRows(1)).WillDelayFor(cleanupDelay)
			},
		},
		{
			dialect: SQLite,
			lock: func(mock sqlmock.Sqlmock, sc *script) {
				mock.ExpectExec(sc.queries["lock"]).WillReturnResult(ok)
			},
			cleanup: func(mock sqlmock.Sqlmock, sc *script) {
				mock.ExpectExec(sc.queries["rollback"]).WillReturnResult(ok).WillDelayFor(cleanupDelay)
			},
		},
	} {
		t.Run("nok, "+tc.dialect.String()+", cleanup runs after the context ends", func(t *testing.T) {
			s, _, mock := newMockStore(t, tc.dialect)
			sc := s.script
			tc.lock(mock, sc)
			mock.ExpectExec(sc.queries["version-table"]).WillReturnResult(ok)
			mock.ExpectQuery(sc.queries["version"]).WillReturnRows(versionRows(0))
			// The first statement outlasts the context: the mock answers
			// ErrCancelled when the context ends.
			mock.ExpectExec(sc.migrations[0][0]).WillReturnResult(ok).WillDelayFor(time.Minute)
			tc.cleanup(mock, sc)

			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			err := s.Migrate(ctx)
			checkMigrateError(t, err, []error{sqlmock.ErrCancelled}, "version 1: ")
			// The statement was cancelled; the cleanup was not.
			assert.Equal(t, 1, strings.Count(err.Error(), sqlmock.ErrCancelled.Error()), err.Error())
			require.NoError(t, mock.ExpectationsWereMet())
		})
	}
}

func TestClose(t *testing.T) {
	rec := testRecord()

	t.Run("nok, every method fails after Close, without touching the database", func(t *testing.T) {
		s, _, mock := newMockStore(t, Postgres)
		mock.ExpectPrepare(s.script.queries["lookup"]).WillBeClosed().ExpectQuery().WithArgs(rec.Hash[:]).
			WillReturnRows(sqlmock.NewRows(tokenColumns).AddRow(tokenRow(rec)...))
		_, err := s.Lookup(t.Context(), rec.Hash)
		require.NoError(t, err)

		require.NoError(t, s.Close())
		require.NoError(t, s.Close(), "second Close")

		for op, call := range map[string]func() error{
			"lookup": func() error { _, err := s.Lookup(t.Context(), rec.Hash); return err },
			"create": func() error { return s.Create(t.Context(), rec) },
			"list":   func() error { _, err := s.List(t.Context(), rec.AccountID); return err },
			"delete": func() error { return s.Delete(t.Context(), rec.AccountID, rec.ID) },
		} {
			// errClosed, not go-sqlmock's "not expected": nothing was
			// prepared again.
			requireSystemError(t, call(), op, errClosed)
		}
		// The lookup statement was closed.
		require.NoError(t, mock.ExpectationsWereMet())
	})

	t.Run("nok, Close before any use", func(t *testing.T) {
		s, _, mock := newMockStore(t, Postgres)
		require.NoError(t, s.Close())
		_, err := s.Lookup(t.Context(), rec.Hash)
		requireSystemError(t, err, "lookup", errClosed)
		require.NoError(t, mock.ExpectationsWereMet())
	})

	t.Run("ok, Close of a WithTx store leaves the store's statements open", func(t *testing.T) {
		s, db, mock := newMockStore(t, Postgres)
		require.NoError(t, s.WithTx(db).Close())
		mock.ExpectPrepare(s.script.queries["lookup"]).ExpectQuery().WithArgs(rec.Hash[:]).
			WillReturnRows(sqlmock.NewRows(tokenColumns).AddRow(tokenRow(rec)...))
		got, err := s.Lookup(t.Context(), rec.Hash)
		require.NoError(t, err)
		assert.Equal(t, rec, got)
		require.NoError(t, mock.ExpectationsWereMet())
	})
}

func TestBulkDeleteFailure(t *testing.T) {
	errDown := errors.New("connection refused")
	errResult := errors.New("driver cannot count rows")
	before := time.Date(2026, 11, 27, 12, 34, 56, 123456000, time.UTC)
	ops := []struct {
		op, query string
		arg       any
		revokes   bool // logs a revocation
		call      func(s *Store) (int, error)
	}{
		{"delete account", "delete-account", "acct-1", true, func(s *Store) (int, error) { return s.DeleteAccount(t.Context(), "acct-1") }},
		{"delete expired", "delete-expired", before, false, func(s *Store) (int, error) { return s.DeleteExpired(t.Context(), before) }},
	}
	for _, op := range ops {
		for _, tc := range []struct {
			name   string
			answer func(e *sqlmock.ExpectedExec)
			check  func(t *testing.T, n int, err error)
		}{
			{
				name:   "ok, the rows deleted are counted",
				answer: func(e *sqlmock.ExpectedExec) { e.WillReturnResult(sqlmock.NewResult(0, 3)) },
				check: func(t *testing.T, n int, err error) {
					require.NoError(t, err)
					assert.Equal(t, 3, n)
				},
			},
			{
				name:   "nok, exec error is a system error",
				answer: func(e *sqlmock.ExpectedExec) { e.WillReturnError(errDown) },
				check: func(t *testing.T, n int, err error) {
					requireSystemError(t, err, op.op, errDown)
					assert.Zero(t, n)
				},
			},
			{
				name:   "nok, RowsAffected error is a system error",
				answer: func(e *sqlmock.ExpectedExec) { e.WillReturnResult(sqlmock.NewErrorResult(errResult)) },
				check: func(t *testing.T, n int, err error) {
					requireSystemError(t, err, op.op, errResult)
					assert.Zero(t, n)
				},
			},
		} {
			t.Run(op.op+"/"+tc.name, func(t *testing.T) {
				s, _, mock := newMockStore(t, Postgres)
				if op.revokes {
					// In a transaction with its revocation, when rows went.
					mock.ExpectBegin()
					tc.answer(mock.ExpectExec(s.script.queries[op.query]).WithArgs(op.arg))
					if tc.name == "ok, the rows deleted are counted" {
						mock.ExpectExec(s.script.queries["revoke"]).WithArgs("acct-1", "", sqlmock.AnyArg()).WillReturnResult(sqlmock.NewResult(1, 1))
						mock.ExpectCommit()
					} else {
						mock.ExpectRollback()
					}
				} else {
					tc.answer(mock.ExpectPrepare(s.script.queries[op.query]).ExpectExec().WithArgs(op.arg))
				}

				n, err := op.call(s)
				tc.check(t, n, err)
				require.NoError(t, mock.ExpectationsWereMet())
			})
		}
	}

	t.Run("nok, a time outside the years 1000 to 9999 is refused before the database", func(t *testing.T) {
		s, _, mock := newMockStore(t, Postgres)
		n, err := s.DeleteExpired(t.Context(), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))
		require.ErrorIs(t, err, apitoken.ErrInvalidInput)
		assert.Zero(t, n)
		require.NoError(t, mock.ExpectationsWereMet())
	})
}

func TestSetExpiryFailure(t *testing.T) {
	errDown := errors.New("connection refused")
	at := time.Date(2026, 11, 27, 12, 34, 56, 123456000, time.UTC)
	for _, tc := range []struct {
		name    string
		dialect Dialect
		expect  func(mock sqlmock.Sqlmock, sc *script, exec *sqlmock.ExpectedExec)
		check   func(t *testing.T, err error)
	}{
		{
			name: "nok, exec error is a system error", dialect: Postgres,
			expect: func(m sqlmock.Sqlmock, _ *script, e *sqlmock.ExpectedExec) {
				e.WillReturnError(errDown)
				m.ExpectRollback()
			},
			check: func(t *testing.T, err error) { requireSystemError(t, err, "set expiry", errDown) },
		},
		{
			name: "nok, no row changed in PostgreSQL: ErrNotFound", dialect: Postgres,
			expect: func(m sqlmock.Sqlmock, _ *script, e *sqlmock.ExpectedExec) {
				e.WillReturnResult(sqlmock.NewResult(0, 0))
				m.ExpectCommit() // nothing to log
			},
			check: func(t *testing.T, err error) { require.ErrorIs(t, err, apitoken.ErrNotFound) },
		},
		{
			name: "nok, no row changed in MySQL: ErrNotFound, as the new expiry always differs", dialect: MySQL,
			expect: func(m sqlmock.Sqlmock, _ *script, e *sqlmock.ExpectedExec) {
				e.WillReturnResult(sqlmock.NewResult(0, 0))
				m.ExpectCommit() // nothing to log
			},
			check: func(t *testing.T, err error) { require.ErrorIs(t, err, apitoken.ErrNotFound) },
		},
		{
			name: "ok, one row changed in MySQL", dialect: MySQL,
			expect: func(m sqlmock.Sqlmock, sc *script, e *sqlmock.ExpectedExec) {
				e.WillReturnResult(sqlmock.NewResult(0, 1))
				m.ExpectExec(sc.queries["revoke"]).WithArgs("acct-1", "tok-1", sqlmock.AnyArg()).WillReturnResult(sqlmock.NewResult(1, 1))
				m.ExpectCommit()
			},
			check: func(t *testing.T, err error) { require.NoError(t, err) },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, mock := newMockStore(t, tc.dialect)
			mock.ExpectBegin()
			exec := mock.ExpectExec(s.script.queries["set-expiry"]).WithArgs(s.timeArg(at), "tok-1", "acct-1", nil)
			tc.expect(mock, s.script, exec)

			tc.check(t, s.SetExpiry(t.Context(), "acct-1", "tok-1", time.Time{}, at))
			require.NoError(t, mock.ExpectationsWereMet())
		})
	}
}

func TestCreateLimitedFailure(t *testing.T) {
	errDown := errors.New("connection refused")
	ok := sqlmock.NewResult(0, 1)
	countRows := func(n int) *sqlmock.Rows { return sqlmock.NewRows([]string{"count"}).AddRow(n) }
	for _, tc := range []struct {
		name    string
		dialect Dialect
		expect  func(mock sqlmock.Sqlmock, sc *script, rec apitoken.Record)
		check   func(t *testing.T, err error)
	}{
		{
			name: "ok, room left: counted and inserted under the lock", dialect: Postgres,
			expect: func(mock sqlmock.Sqlmock, sc *script, rec apitoken.Record) {
				mock.ExpectBegin()
				mock.ExpectExec(sc.queries["lock-account"]).WithArgs("acct-1").WillReturnResult(ok)
				mock.ExpectQuery(sc.queries["count-account"]).WithArgs("acct-1").WillReturnRows(countRows(4))
				mock.ExpectExec(sc.queries["create"]).WithArgs(createArgs(Postgres, rec)...).WillReturnResult(ok)
				mock.ExpectCommit()
			},
			check: func(t *testing.T, err error) { require.NoError(t, err) },
		},
		{
			name: "nok, at the limit: ErrLimitReached, nothing inserted, rolled back", dialect: Postgres,
			expect: func(mock sqlmock.Sqlmock, sc *script, _ apitoken.Record) {
				mock.ExpectBegin()
				mock.ExpectExec(sc.queries["lock-account"]).WithArgs("acct-1").WillReturnResult(ok)
				mock.ExpectQuery(sc.queries["count-account"]).WithArgs("acct-1").WillReturnRows(countRows(5))
				mock.ExpectRollback()
			},
			check: func(t *testing.T, err error) {
				require.ErrorIs(t, err, apitoken.ErrLimitReached)
				requireNoUnexpectedCall(t, err)
			},
		},
		{
			name: "nok, the lock fails: a system error, rolled back", dialect: Postgres,
			expect: func(mock sqlmock.Sqlmock, sc *script, _ apitoken.Record) {
				mock.ExpectBegin()
				mock.ExpectExec(sc.queries["lock-account"]).WithArgs("acct-1").WillReturnError(errDown)
				mock.ExpectRollback()
			},
			check: func(t *testing.T, err error) { requireSystemError(t, err, "create", errDown) },
		},
		{
			name: "nok, MySQL's counting insert fails: a system error, released", dialect: MySQL,
			expect: func(mock sqlmock.Sqlmock, sc *script, _ apitoken.Record) {
				mock.ExpectQuery(sc.queries["lock-account"]).WithArgs("acct-1").WillReturnRows(lockRows(1))
				mock.ExpectExec(sc.queries["create-limited"]).WillReturnError(errDown)
				mock.ExpectQuery(sc.queries["unlock-account"]).WithArgs("acct-1").WillReturnRows(lockRows(1))
			},
			check: func(t *testing.T, err error) { requireSystemError(t, err, "create", errDown) },
		},
		{
			name: "nok, at the limit on MySQL: the insert adds no row, ErrLimitReached, released", dialect: MySQL,
			expect: func(mock sqlmock.Sqlmock, sc *script, _ apitoken.Record) {
				mock.ExpectQuery(sc.queries["lock-account"]).WithArgs("acct-1").WillReturnRows(lockRows(1))
				mock.ExpectExec(sc.queries["create-limited"]).WillReturnResult(sqlmock.NewResult(0, 0))
				mock.ExpectQuery(sc.queries["unlock-account"]).WithArgs("acct-1").WillReturnRows(lockRows(1))
			},
			check: func(t *testing.T, err error) { require.ErrorIs(t, err, apitoken.ErrLimitReached) },
		},
		{
			name: "ok, room left on MySQL: one counting insert under the lock", dialect: MySQL,
			expect: func(mock sqlmock.Sqlmock, sc *script, _ apitoken.Record) {
				mock.ExpectQuery(sc.queries["lock-account"]).WithArgs("acct-1").WillReturnRows(lockRows(1))
				mock.ExpectExec(sc.queries["create-limited"]).WillReturnResult(sqlmock.NewResult(0, 1))
				mock.ExpectQuery(sc.queries["unlock-account"]).WithArgs("acct-1").WillReturnRows(lockRows(1))
			},
			check: func(t *testing.T, err error) { require.NoError(t, err) },
		},
		{
			name: "nok, MySQL's lock times out: nothing counted or inserted", dialect: MySQL,
			expect: func(mock sqlmock.Sqlmock, sc *script, _ apitoken.Record) {
				mock.ExpectQuery(sc.queries["lock-account"]).WithArgs("acct-1").WillReturnRows(lockRows(0))
			},
			check: func(t *testing.T, err error) {
				require.Error(t, err)
				assert.True(t, strings.HasPrefix(err.Error(), "sqlstore: create: "), err.Error())
				assert.NotErrorIs(t, err, apitoken.ErrLimitReached)
				requireNoUnexpectedCall(t, err)
			},
		},
		{
			name: "nok, at the limit in SQLite: rolled back", dialect: SQLite,
			expect: func(mock sqlmock.Sqlmock, sc *script, _ apitoken.Record) {
				mock.ExpectExec(sc.queries["lock"]).WillReturnResult(ok)
				mock.ExpectQuery(sc.queries["count-account"]).WithArgs("acct-1").WillReturnRows(countRows(5))
				mock.ExpectExec(sc.queries["rollback"]).WillReturnResult(ok)
			},
			check: func(t *testing.T, err error) { require.ErrorIs(t, err, apitoken.ErrLimitReached) },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, mock := newMockStore(t, tc.dialect)
			rec := testRecord()
			tc.expect(mock, s.script, rec)

			tc.check(t, s.CreateLimited(t.Context(), rec, 5))
			require.NoError(t, mock.ExpectationsWereMet())
		})
	}
}
