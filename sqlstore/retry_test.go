package sqlstore

import (
	"errors"
	"testing"

	"github.com/DATA-DOG/go-sqlmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
)

// fakePgError has what pgx's *pgconn.PgError and lib/pq's *pq.Error have:
// a SQLSTATE in a Code field and a SQLState method.
type fakePgError struct{ Code string }

func (e *fakePgError) Error() string    { return "ERROR: " + e.Code }
func (e *fakePgError) SQLState() string { return e.Code }

// codeOnlyPgError has the SQLSTATE in its Code field only.
type codeOnlyPgError struct{ Code string }

func (e *codeOnlyPgError) Error() string { return "ERROR: " + e.Code }

func TestRetryable(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"ok, PostgreSQL deadlock", &fakePgError{"40P01"}, true},
		{"ok, PostgreSQL serialization failure", &fakePgError{"40001"}, true},
		{"ok, PostgreSQL deadlock in a Code field only", &codeOnlyPgError{"40P01"}, true},
		{"ok, wrapped", errors.Join(errors.New("exec"), &fakePgError{"40P01"}), true},
		{"ok, MySQL deadlock", &fakeMySQLError{Number: 1213}, true},
		{"ok, MySQL lock wait timeout", &fakeMySQLError{Number: 1205}, true},
		{"ok, MySQL deadlock joined with a rollback's error", errors.Join(&fakeMySQLError{Number: 1213}, errors.New("rollback")), true},
		{"ok, PostgreSQL deadlock in a Code field, joined", errors.Join(errors.New("rollback"), &codeOnlyPgError{"40P01"}), true},
		{"nok, PostgreSQL unique violation", &fakePgError{"23505"}, false},
		{"nok, MySQL duplicate entry", &fakeMySQLError{Number: 1062}, false},
		{"nok, another error", errors.New("connection refused"), false},
		{"nok, nil", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, retryable(tt.err)) })
	}
}

// TestDeadlockVictimRunsAgain checks that a statement of the Store's own
// that the database chose as a deadlock's victim runs again, and that it
// gives up after retryAttempts with the database's error, a system error.
func TestDeadlockVictimRunsAgain(t *testing.T) {
	for _, d := range []Dialect{Postgres, MySQL} {
		victim := error(&fakePgError{"40P01"})
		if d == MySQL {
			victim = &fakeMySQLError{Number: 1213, Message: "Deadlock found"}
		}
		// Each attempt is a transaction of its own, with the revocation.
		t.Run(d.String()+"/ok, Delete runs again", func(t *testing.T) {
			s, _, mock := newMockStore(t, d)
			for range 2 {
				mock.ExpectBegin()
				mock.ExpectExec(s.script.queries["delete"]).WithArgs("id", "acct").WillReturnError(victim)
				mock.ExpectRollback()
			}
			mock.ExpectBegin()
			mock.ExpectExec(s.script.queries["delete"]).WithArgs("id", "acct").WillReturnResult(sqlmock.NewResult(0, 1))
			mock.ExpectExec(s.script.queries["revoke"]).WithArgs("acct", "id", sqlmock.AnyArg()).WillReturnResult(sqlmock.NewResult(1, 1))
			mock.ExpectCommit()
			require.NoError(t, s.Delete(t.Context(), "acct", "id"))
			require.NoError(t, mock.ExpectationsWereMet())
		})
		t.Run(d.String()+"/nok, gives up after retryAttempts", func(t *testing.T) {
			s, _, mock := newMockStore(t, d)
			for range retryAttempts {
				mock.ExpectBegin()
				mock.ExpectExec(s.script.queries["delete-account"]).WithArgs("acct").WillReturnError(victim)
				mock.ExpectRollback()
			}
			_, err := s.DeleteAccount(t.Context(), "acct")
			requireSystemError(t, err, "delete account", victim)
			require.NoError(t, mock.ExpectationsWereMet())
		})
		t.Run(d.String()+"/nok, another error does not run again", func(t *testing.T) {
			s, _, mock := newMockStore(t, d)
			errDown := errors.New("connection refused")
			mock.ExpectBegin()
			mock.ExpectExec(s.script.queries["delete"]).WithArgs("id", "acct").WillReturnError(errDown)
			mock.ExpectRollback()
			requireSystemError(t, s.Delete(t.Context(), "acct", "id"), "delete", errDown)
			require.NoError(t, mock.ExpectationsWereMet())
		})
	}
}

// TestLastUseChunkFallsBackToOneTokenEach checks that a chunk of last uses
// whose transaction keeps losing deadlocks is written one token at a time,
// and that a deadlock-free chunk is one transaction.
func TestLastUseChunkFallsBackToOneTokenEach(t *testing.T) {
	victim := &fakePgError{"40P01"}
	uses := []apitoken.LastUse{{ID: "b", At: testCreatedAt}, {ID: "a", At: testCreatedAt}}
	q := func(s *Store) string { return s.script.queries["set-last-used"] }

	t.Run("ok, one transaction in id order", func(t *testing.T) {
		s, _, mock := newMockStore(t, Postgres)
		mock.ExpectPrepare(q(s))
		mock.ExpectBegin()
		mock.ExpectExec(q(s)).WithArgs(testCreatedAt, "a", nil).WillReturnResult(sqlmock.NewResult(0, 1))
		mock.ExpectExec(q(s)).WithArgs(testCreatedAt, "b", nil).WillReturnResult(sqlmock.NewResult(0, 1))
		mock.ExpectCommit()
		require.NoError(t, s.RecordLastUse(t.Context(), uses))
		require.NoError(t, mock.ExpectationsWereMet())
	})
	t.Run("ok, a chunk that keeps losing is written one token at a time", func(t *testing.T) {
		s, _, mock := newMockStore(t, Postgres)
		mock.ExpectPrepare(q(s))
		for range retryAttempts {
			mock.ExpectBegin()
			mock.ExpectExec(q(s)).WithArgs(testCreatedAt, "a", nil).WillReturnError(victim)
			mock.ExpectRollback()
		}
		// One transaction per token, each run again if it loses.
		mock.ExpectBegin()
		mock.ExpectExec(q(s)).WithArgs(testCreatedAt, "a", nil).WillReturnError(victim)
		mock.ExpectRollback()
		for _, id := range []string{"a", "b"} {
			mock.ExpectBegin()
			mock.ExpectExec(q(s)).WithArgs(testCreatedAt, id, nil).WillReturnResult(sqlmock.NewResult(0, 1))
			mock.ExpectCommit()
		}
		require.NoError(t, s.RecordLastUse(t.Context(), uses))
		require.NoError(t, mock.ExpectationsWereMet())
	})
}
