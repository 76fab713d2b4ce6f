package dbtest_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
	"github.com/apitoken-go/apitoken/sqlstore"
)

// TestForgottenMigrate checks that a Store whose database has no schema
// says so, with the fix, from Ready and from every operation, and that
// Ready tells a missing or outdated schema from an outage.
func TestForgottenMigrate(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			ctx := t.Context()
			db := openDB(t, d)
			s, err := sqlstore.New(db, d)
			require.NoError(t, err)
			t.Cleanup(func() { assert.NoError(t, s.Close()) })

			err = s.Ready(ctx)
			require.ErrorIs(t, err, sqlstore.ErrSchema, "Ready before Migrate")
			assert.Contains(t, err.Error(), "no schema in the database: run Store.Migrate")

			iss, err := apitoken.NewIssuer(s, apitoken.WithLastUseInterval(0))
			require.NoError(t, err)
			_, _, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
			assertSchemaError(t, err, "Issue")
			_, err = s.Lookup(ctx, apitoken.Hash{1})
			assertSchemaError(t, err, "Lookup")
			_, err = iss.List(ctx, "acme")
			assertSchemaError(t, err, "List")
			err = s.Delete(ctx, "acme", "tok")
			assertSchemaError(t, err, "Delete")
			other, err := apitoken.NewIssuer(memstoreFor(t))
			require.NoError(t, err)
			secret, _, err := other.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
			require.NoError(t, err)
			_, err = iss.Verify(ctx, "acme", secret)
			assertSchemaError(t, err, "Verify")
			assert.NotErrorIs(t, err, apitoken.ErrInvalidToken, "a missing table is no invalid token")

			require.NoError(t, s.Migrate(ctx))
			require.NoError(t, s.Ready(ctx), "Ready after Migrate")

			// An outdated schema: the database has an older version.
			_, err = db.ExecContext(ctx, "DELETE FROM apitoken_schema_version")
			require.NoError(t, err)
			err = s.Ready(ctx)
			require.ErrorIs(t, err, sqlstore.ErrSchema)
			assert.Contains(t, err.Error(), fmt.Sprintf("schema version 0, this package needs %d: run Store.Migrate", len(fileNames(t, d, sqlstore.Goose))))
			require.NoError(t, s.Migrate(ctx))
			require.NoError(t, s.Ready(ctx))

			// A newer one: another version of the package migrated it.
			_, err = db.ExecContext(ctx, "INSERT INTO apitoken_schema_version (version) VALUES (99)")
			require.NoError(t, err)
			err = s.Ready(ctx)
			require.ErrorIs(t, err, sqlstore.ErrSchema)
			assert.Contains(t, err.Error(), fmt.Sprintf("schema version 99; this package knows versions up to %d", len(fileNames(t, d, sqlstore.Goose))))

			// An outage is not a schema error.
			require.NoError(t, db.Close())
			err = s.Ready(ctx)
			require.Error(t, err)
			assert.NotErrorIs(t, err, sqlstore.ErrSchema, "an outage reported as a schema problem")
		})
	}
}

func memstoreFor(*testing.T) apitoken.Store { return memstore.New() }

func assertSchemaError(t *testing.T, err error, op string) {
	t.Helper()
	require.Error(t, err, op)
	assert.ErrorIs(t, err, sqlstore.ErrSchema, op)
	assert.Contains(t, err.Error(), "run Store.Migrate", op)
}

// TestDialectMismatch checks that a Store given another dialect than its
// database's says which dialect the database is, from Migrate and Ready.
func TestDialectMismatch(t *testing.T) {
	for _, server := range dialects {
		for _, given := range dialects {
			if given == server {
				continue
			}
			t.Run(server.String()+" given "+given.String(), func(t *testing.T) {
				ctx := t.Context()
				db := openDB(t, server)
				s, err := sqlstore.New(db, given)
				require.NoError(t, err)
				t.Cleanup(func() { assert.NoError(t, s.Close()) })
				want := map[sqlstore.Dialect]string{sqlstore.Postgres: "PostgreSQL", sqlstore.MySQL: "MySQL or MariaDB", sqlstore.SQLite: "SQLite"}[server]
				for _, op := range []struct {
					name string
					run  func() error
				}{
					{"Migrate", func() error { return s.Migrate(ctx) }},
					{"Ready", func() error { return s.Ready(ctx) }},
				} {
					err := op.run()
					require.Error(t, err, op.name)
					assert.ErrorIs(t, err, apitoken.ErrInvalidInput, op.name)
					assert.Contains(t, err.Error(), "the database is "+want+", but the Store was made with sqlstore."+given.String()+": pass sqlstore."+server.String()+" to sqlstore.New", op.name)
				}
				// Migrated with the right dialect, Ready still tells.
				right, err := sqlstore.New(db, server)
				require.NoError(t, err)
				t.Cleanup(func() { assert.NoError(t, right.Close()) })
				require.NoError(t, right.Migrate(ctx))
				err = s.Ready(ctx)
				if !errors.Is(err, apitoken.ErrInvalidInput) {
					t.Errorf("Ready on a migrated %v database with dialect %v: %v", server, given, err)
				}
			})
		}
	}
}
