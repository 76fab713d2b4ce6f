package dbtest_test

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/sqlstore"
	"github.com/apitoken-go/apitoken/sqlstore/internal/peek"
)

func TestMigrateTwice(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			ctx := t.Context()
			db := openDB(t, d)
			s, err := sqlstore.New(db, d)
			require.NoError(t, err)
			t.Cleanup(func() { assert.NoError(t, s.Close()) })
			require.NoError(t, s.Migrate(ctx))
			versions := schemaVersions(t, db, "apitoken_")
			requireVersionRows(t, versions)
			tables := tableNames(t, db, d)
			iss := issuerOn(t, s)
			acct, secret := issueOne(t, s)

			t.Run("ok, same store again", func(t *testing.T) {
				require.NoError(t, s.Migrate(ctx))
			})
			t.Run("ok, another store on the same database", func(t *testing.T) {
				other, err := sqlstore.New(db, d)
				require.NoError(t, err)
				t.Cleanup(func() { assert.NoError(t, other.Close()) })
				require.NoError(t, other.Migrate(ctx))
				_, err = issuerOn(t, other).Verify(ctx, acct, secret)
				require.NoError(t, err)
			})
			assert.Equal(t, versions, schemaVersions(t, db, "apitoken_"), "a second Migrate records no version")
			assert.ElementsMatch(t, tables, tableNames(t, db, d), "a second Migrate creates no table")
			_, err = iss.Verify(ctx, acct, secret)
			require.NoError(t, err, "a second Migrate keeps the tokens")
			_, _, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: acct})
			require.NoError(t, err)
		})
	}
}

func TestMigrateConcurrentProcesses(t *testing.T) {
	const processes = 8
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			open := sharedDB(t, d, nil)
			// Each "process" has its own pool and its own Store.
			stores := make([]*sqlstore.Store, processes)
			dbs := make([]*sql.DB, processes)
			for i := range stores {
				dbs[i] = open()
				s, err := sqlstore.New(dbs[i], d)
				require.NoError(t, err)
				t.Cleanup(func() { assert.NoError(t, s.Close()) })
				stores[i] = s
			}
			errs := make([]error, processes)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i, s := range stores {
				wg.Go(func() {
					<-start
					errs[i] = s.Migrate(t.Context())
				})
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				assert.NoError(t, err, "process %d", i)
			}

			requireVersionRows(t, schemaVersions(t, dbs[0], "apitoken_"))
			// A token issued by one process verifies in another.
			acct, secret := issueOne(t, stores[0])
			_, err := issuerOn(t, stores[processes-1]).Verify(t.Context(), acct, secret)
			require.NoError(t, err)
		})
	}
}

// TestMigrateConcurrentIsolation runs concurrent Migrates on PostgreSQL
// connections whose default isolation is stricter than read committed: the
// process that waited for the lock must still see the version the first one
// committed, not re-apply it.
func TestMigrateConcurrentIsolation(t *testing.T) {
	const processes = 4
	for _, level := range []string{"repeatable read", "serializable"} {
		t.Run(level, func(t *testing.T) {
			dsn, schema := newPostgresSchema(t)
			for round := range 3 {
				// A new table prefix per round: a fresh schema to create.
				prefix := fmt.Sprintf("r%d_", round)
				errs := make([]error, processes)
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i := range processes {
					cfg, err := pgx.ParseConfig(dsn)
					require.NoError(t, err)
					cfg.RuntimeParams["search_path"] = schema
					cfg.RuntimeParams["default_transaction_isolation"] = level
					db := stdlib.OpenDB(*cfg)
					t.Cleanup(func() { db.Close() })
					s, err := sqlstore.New(db, sqlstore.Postgres, sqlstore.WithTablePrefix(prefix))
					require.NoError(t, err)
					wg.Go(func() {
						<-start
						errs[i] = s.Migrate(t.Context())
					})
				}
				close(start)
				wg.Wait()
				for i, err := range errs {
					assert.NoError(t, err, "round %d, process %d", round, i)
				}
			}
		})
	}
}

func TestMigrateRefusesNewerSchema(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			ctx := t.Context()
			db := openDB(t, d)
			s, err := sqlstore.New(db, d)
			require.NoError(t, err)
			t.Cleanup(func() { assert.NoError(t, s.Close()) })
			require.NoError(t, s.Migrate(ctx))
			acct, secret := issueOne(t, s)

			// A later version of the package migrated this database.
			known := schemaVersions(t, db, "apitoken_")
			newer := known[len(known)-1] + 1
			_, err = db.ExecContext(ctx, "INSERT INTO apitoken_schema_version (version) VALUES ("+strconv.Itoa(newer)+")")
			require.NoError(t, err)
			versions, tables := schemaVersions(t, db, "apitoken_"), tableNames(t, db, d)

			fresh, err := sqlstore.New(db, d)
			require.NoError(t, err)
			t.Cleanup(func() { assert.NoError(t, fresh.Close()) })
			for _, tt := range []struct {
				name string
				s    *sqlstore.Store
			}{
				{"nok, the migrated store", s},
				{"nok, a new store", fresh},
				{"nok, again: nothing left half done", fresh},
			} {
				t.Run(tt.name, func(t *testing.T) {
					start := time.Now()
					err := tt.s.Migrate(ctx)
					require.Error(t, err)
					assert.Contains(t, err.Error(), "schema version "+strconv.Itoa(newer), "the error says what the database has")
					assert.Contains(t, err.Error(), "upgrade", "the error says what to do")
					assert.Less(t, time.Since(start), 3*time.Second, "no lock left held by a previous refusal")
				})
			}
			assert.Equal(t, versions, schemaVersions(t, db, "apitoken_"), "a refused Migrate records nothing")
			assert.ElementsMatch(t, tables, tableNames(t, db, d), "a refused Migrate creates nothing")

			// The tokens stay usable, and the database writable (a refusal
			// left no transaction open on a pooled connection).
			iss := issuerOn(t, s)
			_, err = iss.Verify(ctx, acct, secret)
			require.NoError(t, err)
			for range 3 {
				_, _, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: acct})
				require.NoError(t, err)
			}
			list, err := iss.List(ctx, acct)
			require.NoError(t, err)
			assert.Len(t, list, 4)
		})
	}
}

func TestMigrateCancelled(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			t.Run("nok, context already cancelled", func(t *testing.T) {
				db := openDB(t, d)
				s, err := sqlstore.New(db, d)
				require.NoError(t, err)
				t.Cleanup(func() { assert.NoError(t, s.Close()) })
				ctx, cancel := context.WithCancel(t.Context())
				cancel()
				err = s.Migrate(ctx)
				require.ErrorIs(t, err, context.Canceled)
				assert.Contains(t, err.Error(), "sqlstore: migrate")
				assert.Empty(t, tableNames(t, db, d), "a cancelled Migrate creates nothing")

				require.NoError(t, s.Migrate(t.Context()), "a later Migrate succeeds")
				requireVersionRows(t, schemaVersions(t, db, "apitoken_"))
				acct, secret := issueOne(t, s)
				_, err = issuerOn(t, s).Verify(t.Context(), acct, secret)
				require.NoError(t, err)
			})

			t.Run("nok, cancelled while another process migrates", func(t *testing.T) {
				open := sharedDB(t, d, nil)
				db, other := open(), open()
				s, err := sqlstore.New(db, d)
				require.NoError(t, err)
				t.Cleanup(func() { assert.NoError(t, s.Close()) })
				release := holdMigrationLock(t, d, other, peek.Query(s, "lock"), peek.Query(s, "unlock"))

				ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
				defer cancel()
				start := time.Now()
				err = s.Migrate(ctx)
				require.Error(t, err, "Migrate must wait for the lock, and give up with its context")
				assert.Less(t, time.Since(start), 5*time.Second, "Migrate must give up when its context ends, not when the lock wait times out")
				assert.NotContains(t, tableNames(t, db, d), "apitoken_tokens", "a cancelled Migrate creates no token table")

				release()
				require.NoError(t, s.Migrate(t.Context()), "a later Migrate succeeds")
				requireVersionRows(t, schemaVersions(t, db, "apitoken_"))
				acct, secret := issueOne(t, s)
				_, err = issuerOn(t, s).Verify(t.Context(), acct, secret)
				require.NoError(t, err)
			})
		})
	}
}

func TestMigrateOfWithTxRunsOnTheDB(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			db := openDB(t, d)
			s, err := sqlstore.New(db, d)
			require.NoError(t, err)
			t.Cleanup(func() { assert.NoError(t, s.Close()) })
			tx := beginTx(t, db)
			require.NoError(t, s.WithTx(tx).Migrate(t.Context()))
			require.NoError(t, tx.Rollback())
			// Rolling the transaction back did not undo the migration.
			requireVersionRows(t, schemaVersions(t, db, "apitoken_"))
			acct, secret := issueOne(t, s)
			_, err = issuerOn(t, s).Verify(t.Context(), acct, secret)
			require.NoError(t, err)
		})
	}
}

// holdMigrationLock takes the lock Migrate takes (its statement lock) on
// db, as another process migrating would, and returns the function that
// releases it (unlock is its statement, where there is one).
func holdMigrationLock(t *testing.T, d sqlstore.Dialect, db *sql.DB, lock, unlock string) (release func()) {
	t.Helper()
	ctx := t.Context()
	switch d {
	case sqlstore.Postgres:
		// A transaction-level advisory lock: held until the end of tx.
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		_, err = tx.ExecContext(ctx, lock)
		require.NoError(t, err)
		t.Cleanup(func() { _ = tx.Rollback() })
		return func() { require.NoError(t, tx.Rollback()) }
	case sqlstore.MySQL:
		conn, err := db.Conn(ctx)
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		var got int
		require.NoError(t, conn.QueryRowContext(ctx, lock).Scan(&got))
		require.Equal(t, 1, got, "GET_LOCK")
		return func() {
			require.NoError(t, conn.QueryRowContext(ctx, unlock).Scan(&got))
			require.Equal(t, 1, got, "RELEASE_LOCK")
		}
	case sqlstore.SQLite:
		// BEGIN IMMEDIATE: the write lock, on one connection.
		conn, err := db.Conn(ctx)
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		_, err = conn.ExecContext(ctx, lock)
		require.NoError(t, err)
		return func() {
			_, err := conn.ExecContext(ctx, unlock)
			require.NoError(t, err)
		}
	}
	t.Fatalf("no lock for dialect %v", d)
	return nil
}

// schemaVersions returns the versions recorded in <prefix>schema_version,
// in order.
func schemaVersions(t *testing.T, db *sql.DB, prefix string) []int {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "SELECT version FROM "+prefix+"schema_version ORDER BY version")
	require.NoError(t, err)
	defer rows.Close()
	var versions []int
	for rows.Next() {
		var v int
		require.NoError(t, rows.Scan(&v))
		versions = append(versions, v)
	}
	require.NoError(t, rows.Err())
	return versions
}

// requireVersionRows checks that a migrated database has one row per schema
// version, 1 to its latest.
func requireVersionRows(t *testing.T, versions []int) {
	t.Helper()
	require.NotEmpty(t, versions, "a migrated database records its schema version")
	for i, v := range versions {
		require.Equal(t, i+1, v, "one row per version, from 1: %v", versions)
	}
}
