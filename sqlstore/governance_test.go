package sqlstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
)

// TestGovernanceFailures checks that each new capability reports a
// database failure as a system error, never as ErrNotFound (which the
// Issuer would read as "no such token") nor as a count of zero, and that
// an unreadable column is an error too.
func TestGovernanceFailures(t *testing.T) {
	errDown := errors.New("connection refused")
	ctx := context.Background()
	t.Run("nok, SetDisabled: the transaction cannot begin", func(t *testing.T) {
		s, _, mock := newMockStore(t, Postgres)
		mock.ExpectBegin().WillReturnError(errDown)
		requireSystemError(t, s.SetDisabled(ctx, "acct-1", "tok-1", true), "set disabled", errDown)
	})
	t.Run("nok, SetDisabled: the existence check fails", func(t *testing.T) {
		s, _, mock := newMockStore(t, Postgres)
		mock.ExpectBegin()
		mock.ExpectExec(s.script.queries["set-disabled"]).WithArgs(false, "tok-1", "acct-1").WillReturnResult(sqlmock.NewResult(0, 0))
		mock.ExpectCommit()
		mock.ExpectPrepare(s.script.queries["exists"]).ExpectQuery().WithArgs("tok-1", "acct-1").WillReturnError(errDown)
		requireSystemError(t, s.SetDisabled(ctx, "acct-1", "tok-1", false), "set disabled", errDown)
	})
	t.Run("ok, SetDisabled: a token that already had the value", func(t *testing.T) {
		s, _, mock := newMockStore(t, MySQL)
		mock.ExpectBegin()
		mock.ExpectExec(s.script.queries["set-disabled"]).WithArgs(false, "tok-1", "acct-1").WillReturnResult(sqlmock.NewResult(0, 0))
		mock.ExpectCommit()
		mock.ExpectPrepare(s.script.queries["exists"]).ExpectQuery().WithArgs("tok-1", "acct-1").
			WillReturnRows(sqlmock.NewRows([]string{"n"}).AddRow(1))
		require.NoError(t, s.SetDisabled(ctx, "acct-1", "tok-1", false), "MySQL counts changed rows only")
		require.NoError(t, mock.ExpectationsWereMet())
	})
	t.Run("nok, DeleteMember", func(t *testing.T) {
		s, _, mock := newMockStore(t, Postgres)
		mock.ExpectBegin()
		mock.ExpectExec(s.script.queries["delete-member"]).WithArgs("acct-1", "alice").WillReturnError(errDown)
		mock.ExpectRollback()
		n, err := s.DeleteMember(ctx, "acct-1", "alice")
		requireSystemError(t, err, "delete member", errDown)
		assert.Zero(t, n)
	})
	t.Run("nok, DeleteUnused", func(t *testing.T) {
		s, _, mock := newMockStore(t, MySQL)
		mock.ExpectQuery(s.script.queries["select-unused"]).WillReturnError(errDown)
		_, err := s.DeleteUnused(ctx, testCreatedAt, 10)
		requireSystemError(t, err, "delete unused", errDown)
	})
	t.Run("nok, ListExpiring: the query fails", func(t *testing.T) {
		s, _, mock := newMockStore(t, Postgres)
		mock.ExpectPrepare(s.script.queries["list-expiring"]).ExpectQuery().WillReturnError(errDown)
		_, err := s.ListExpiring(ctx, testCreatedAt, "", testCreatedAt.Add(time.Hour), 10)
		requireSystemError(t, err, "list expiring", errDown)
	})
	t.Run("nok, ListExpiring: an unreadable allowed_ips", func(t *testing.T) {
		s, _, mock := newMockStore(t, Postgres)
		row := tokenRow(testRecord())
		row[10] = "not-a-prefix"
		mock.ExpectPrepare(s.script.queries["list-expiring"]).ExpectQuery().WillReturnRows(sqlmock.NewRows(tokenColumns).AddRow(row...))
		_, err := s.ListExpiring(ctx, testCreatedAt, "", testCreatedAt.Add(time.Hour), 10)
		require.Error(t, err)
		assert.NotErrorIs(t, err, apitoken.ErrNotFound)
		assert.ErrorContains(t, err, "cannot read allowed_ips")
	})
	t.Run("nok, bad limits and records", func(t *testing.T) {
		s, _, _ := newMockStore(t, SQLite)
		_, err := s.DeleteUnused(ctx, testCreatedAt, 0)
		require.ErrorIs(t, err, apitoken.ErrInvalidInput)
		_, err = s.ListExpiring(ctx, testCreatedAt, "", testCreatedAt, 0)
		require.ErrorIs(t, err, apitoken.ErrInvalidInput)
		rec := testRecord()
		rec.Hint = "12345"
		require.ErrorIs(t, s.Create(ctx, rec), apitoken.ErrInvalidInput, "a hint longer than its column")
	})
}
