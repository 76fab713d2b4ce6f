package dbtest_test

import (
	"crypto/rand"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/sqlstore"
	"github.com/apitoken-go/apitoken/sqlstore/internal/peek"
)

// TestQueryPlans checks that the database answers Lookup through the hash
// index and List through the account index, already in order (no sort), so
// that both stay flat as the table grows.
func TestQueryPlans(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			db := openDB(t, d)
			s, err := sqlstore.New(db, d)
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })
			require.NoError(t, s.Migrate(t.Context()))
			// Enough accounts for an index to be worth it, with the planner's
			// statistics up to date.
			var hash apitoken.Hash
			for i := range 300 {
				rand.Read(hash[:])
				require.NoError(t, s.Create(t.Context(), apitoken.Record{Hash: hash, Token: apitoken.Token{
					ID: fmt.Sprintf("id-%03d", i), AccountID: fmt.Sprintf("acct-%d", i%100),
					CreatedAt: time.Now().UTC().Truncate(time.Microsecond),
				}}))
			}
			_, err = db.ExecContext(t.Context(), map[sqlstore.Dialect]string{
				sqlstore.Postgres: "ANALYZE apitoken_tokens",
				sqlstore.MySQL:    "ANALYZE TABLE apitoken_tokens",
				sqlstore.SQLite:   "ANALYZE",
			}[d])
			require.NoError(t, err)
			tests := []struct {
				name, query string
				arg         any
				want        []string // in the plan
				notWant     []string // not in the plan
			}{
				{"Lookup by the hash key", "lookup", hash[:],
					map[sqlstore.Dialect][]string{
						sqlstore.Postgres: {"Index Scan using apitoken_tokens_pkey"},
						sqlstore.MySQL:    {"PRIMARY"},
						sqlstore.SQLite:   {"USING PRIMARY KEY (hash=?)"},
					}[d],
					[]string{"Seq Scan", "ALL", "SCAN apitoken_tokens"}},
				{"List by the account index, in order", "list", "acct-1",
					map[sqlstore.Dialect][]string{
						sqlstore.Postgres: {"apitoken_tokens_account"},
						sqlstore.MySQL:    {"apitoken_tokens_account"},
						sqlstore.SQLite:   {"USING INDEX apitoken_tokens_account (account_id=?)"},
					}[d],
					[]string{"Seq Scan", "Sort", "filesort", "TEMP B-TREE"}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					plan := explain(t, db, d, peek.Query(s, tt.query), tt.arg)
					for _, w := range tt.want {
						assert.Contains(t, plan, w)
					}
					for _, nw := range tt.notWant {
						assert.NotContains(t, plan, nw)
					}
				})
			}
		})
	}
}

// explain returns the database's plan for query with arg, as text.
func explain(t *testing.T, db *sql.DB, d sqlstore.Dialect, query string, arg any) string {
	t.Helper()
	// A small table is cheaper to scan and sort than to read through an
	// index: make the planner show whether the index can answer the query,
	// in order.
	return explainWith(t, db, d, []string{"SET enable_seqscan = off", "SET enable_bitmapscan = off", "SET enable_sort = off"}, query, arg)
}

// explainWith returns the database's plan for query with args, after the
// PostgreSQL settings pgSets.
func explainWith(t *testing.T, db *sql.DB, d sqlstore.Dialect, pgSets []string, query string, args ...any) string {
	t.Helper()
	conn, err := db.Conn(t.Context())
	require.NoError(t, err)
	defer conn.Close()
	prefix := map[sqlstore.Dialect]string{
		sqlstore.Postgres: "EXPLAIN ",
		sqlstore.MySQL:    "EXPLAIN FORMAT=JSON ",
		sqlstore.SQLite:   "EXPLAIN QUERY PLAN ",
	}[d]
	if d == sqlstore.Postgres {
		for _, set := range pgSets {
			_, err := conn.ExecContext(t.Context(), set)
			require.NoError(t, err)
		}
	}
	rows, err := conn.QueryContext(t.Context(), prefix+query, args...)
	require.NoError(t, err)
	defer rows.Close()
	cols, err := rows.Columns()
	require.NoError(t, err)
	var plan strings.Builder
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		require.NoError(t, rows.Scan(ptrs...))
		for _, v := range vals {
			plan.WriteString(v.String + " ")
		}
		plan.WriteString("\n")
	}
	require.NoError(t, rows.Err())
	return plan.String()
}

// TestGovernancePlans checks that the statements of schema version 3 run
// on its indexes, never scanning the table: Prune and Expiring on the
// expiry index (Expiring in its order, without a sort), PruneUnused on the
// last-use index, DeleteMember on the account index.
func TestGovernancePlans(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			db := openDB(t, d)
			s, err := sqlstore.New(db, d)
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })
			require.NoError(t, s.Migrate(t.Context()))
			now := time.Now().UTC().Truncate(time.Microsecond)
			var hash apitoken.Hash
			for i := range 300 {
				rand.Read(hash[:])
				rec := apitoken.Record{Hash: hash, Token: apitoken.Token{
					ID: fmt.Sprintf("id-%03d", i), AccountID: fmt.Sprintf("acct-%d", i%100), MemberID: fmt.Sprintf("m-%d", i%7),
					CreatedAt: now.Add(-time.Duration(i) * time.Hour),
				}}
				if i%3 == 0 {
					rec.ExpiresAt = now.Add(time.Duration(i) * time.Hour)
				}
				if i%2 == 0 {
					rec.LastUsedAt = now.Add(-time.Duration(i) * time.Minute)
				}
				require.NoError(t, s.Create(t.Context(), rec))
			}
			_, err = db.ExecContext(t.Context(), map[sqlstore.Dialect]string{
				sqlstore.Postgres: "ANALYZE apitoken_tokens",
				sqlstore.MySQL:    "ANALYZE TABLE apitoken_tokens",
				sqlstore.SQLite:   "ANALYZE",
			}[d])
			require.NoError(t, err)
			ts := func(t time.Time) any {
				switch d {
				case sqlstore.SQLite:
					return t.UnixMicro()
				case sqlstore.MySQL:
					return t.Format("2006-01-02 15:04:05.000000")
				}
				return t
			}
			// The cut of a real prune is selective (a year of disuse): here,
			// 10 of the 300 tokens, so that MySQL's optimizer, which scans a
			// small table when a third of it matches, shows the index too.
			cut, later := ts(now.Add(-280*time.Hour)), ts(now.Add(100*time.Hour))
			expiringArgs := []any{later, ts(now), "", 256}
			unusedArgs := []any{cut, cut, 500}
			switch d {
			case sqlstore.MySQL:
				expiringArgs = []any{later, ts(now), ts(now), "", 256}
			case sqlstore.Postgres:
				unusedArgs = []any{cut, 500}
			}
			noScan := []string{"Seq Scan", `"access_type": "ALL"`, "SCAN apitoken_tokens\n"}
			// On MySQL, PruneUnused reads the hashes (a plain read, which
			// locks nothing), then deletes by primary key.
			unusedQuery := "delete-unused"
			if d == sqlstore.MySQL {
				unusedQuery = "select-unused"
			}
			tests := []struct {
				name, query string
				args        []any
				want        map[sqlstore.Dialect][]string
				notWant     []string
			}{
				{"Expiring: a page of the expiry index, in order", "list-expiring", expiringArgs,
					map[sqlstore.Dialect][]string{
						sqlstore.Postgres: {"apitoken_tokens_expiry"},
						sqlstore.MySQL:    {"apitoken_tokens_expiry"},
						sqlstore.SQLite:   {"USING INDEX apitoken_tokens_expiry"},
					}, append([]string{"Sort", "filesort", "TEMP B-TREE"}, noScan...)},
				{"Prune: the expiry index", "delete-expired", []any{cut},
					map[sqlstore.Dialect][]string{
						sqlstore.Postgres: {"apitoken_tokens_expiry"},
						sqlstore.MySQL:    {"apitoken_tokens_expiry"},
						sqlstore.SQLite:   {"apitoken_tokens_expiry"},
					}, noScan},
				{"PruneUnused: the last-use index", unusedQuery, unusedArgs,
					map[sqlstore.Dialect][]string{
						sqlstore.Postgres: {"apitoken_tokens_last_use"},
						sqlstore.MySQL:    {"apitoken_tokens_last_use"},
						sqlstore.SQLite:   {"apitoken_tokens_last_use"},
					}, noScan},
				{"DeleteMember: the account index", "delete-member", []any{"acct-1", "m-1"},
					map[sqlstore.Dialect][]string{
						sqlstore.Postgres: {"apitoken_tokens_account"},
						sqlstore.MySQL:    {"apitoken_tokens_account"},
						sqlstore.SQLite:   {"apitoken_tokens_account"},
					}, noScan},
			}
			if d == sqlstore.MySQL {
				tests = append(tests, struct {
					name, query string
					args        []any
					want        map[sqlstore.Dialect][]string
					notWant     []string
				}{"PruneUnused's delete: by primary key", "delete-unused", []any{cut, cut, hash[:]},
					map[sqlstore.Dialect][]string{sqlstore.MySQL: {`"key": "PRIMARY"`}}, noScan})
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					// Bitmap scans allowed: PostgreSQL reads an OR of two
					// ranges of one index with a BitmapOr.
					plan := explainWith(t, db, d, []string{"SET enable_seqscan = off", "SET enable_sort = off"}, peek.Query(s, tt.query), tt.args...)
					for _, w := range tt.want[d] {
						assert.Contains(t, plan, w, "plan:\n%s", plan)
					}
					for _, nw := range tt.notWant {
						assert.NotContains(t, plan, nw, "plan:\n%s", plan)
					}
				})
			}
		})
	}
}
