package sqlstore

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// allDialects are the dialects whose SQL file is embedded.
var allDialects = []Dialect{Postgres, MySQL, SQLite}

// wantQueries are the "query: name" sections each dialect's file must have:
// the ones the Store and Migrate run, and no stray ones (a misspelt section
// name would leave a query empty at run time).
func wantQueries(d Dialect) []string {
	q := []string{"lock", "version-table", "version", "set-version", "create", "lookup", "list", "delete", "delete-account", "delete-expired", "set-expiry", "count-account", "set-last-used", "rehash",
		"revoke", "revocations-after", "revocations-in", "revocations-since", "revocations-last", "revocations-prune", // the revocation log
		"set-disabled", "exists", "delete-member", "delete-unused", "list-expiring"}
	switch d {
	case Postgres:
		q = append(q, "lock-account", "isolation") // CreateLimited's lock, and its check of the caller's transaction
	case MySQL:
		q = append(q, "unlock", "lock-account", "unlock-account", "create-limited", "select-unused") // RELEASE_LOCK; CreateLimited's lock and counting INSERT; PruneUnused's read
	case SQLite:
		q = append(q, "unlock", "rollback") // COMMIT, ROLLBACK
	}
	return q
}

// statementsOf returns every statement of sc: its queries and migrations.
func statementsOf(sc *script) []string {
	stmts := slices.Collect(maps.Values(sc.queries))
	for _, m := range sc.migrations {
		stmts = append(stmts, m...)
	}
	return stmts
}

func TestLoadScript(t *testing.T) {
	for _, d := range allDialects {
		t.Run("ok, "+d.String(), func(t *testing.T) {
			sc, err := loadScript(d, defaultPrefix)
			require.NoError(t, err)

			assert.ElementsMatch(t, wantQueries(d), slices.Collect(maps.Keys(sc.queries)), "query sections")
			require.NotEmpty(t, sc.migrations, "migration 1")
			require.NotEmpty(t, sc.migrations[0], "statements of migration 1")
			assert.Contains(t, strings.Join(sc.migrations[0], "\n"), "CREATE TABLE IF NOT EXISTS apitoken_tokens")

			for _, stmt := range statementsOf(sc) {
				assert.NotEmpty(t, strings.TrimSpace(stmt))
				// Some drivers refuse a prepared statement with its ';'.
				assert.False(t, strings.HasSuffix(strings.TrimSpace(stmt), ";"), "statement ends with ';': %q", stmt)
				for line := range strings.Lines(stmt) {
					assert.False(t, strings.HasPrefix(strings.TrimSpace(line), "--"), "comment line kept in %q", stmt)
				}
			}
		})
	}
}

func TestScriptCheck(t *testing.T) {
	for _, d := range []Dialect{Postgres, MySQL, SQLite} {
		t.Run(d.String(), func(t *testing.T) {
			sc, err := loadScript(d, defaultPrefix)
			require.NoError(t, err)
			require.NoError(t, sc.check(d))
			for name := range sc.queries {
				t.Run("nok, without "+name, func(t *testing.T) {
					lacking := &script{queries: maps.Clone(sc.queries), migrations: sc.migrations}
					delete(lacking.queries, name)
					err := lacking.check(d)
					require.Error(t, err)
					assert.Contains(t, err.Error(), fmt.Sprintf("has no query %q", name))
				})
			}
		})
	}
}

func TestLoadScriptPrefix(t *testing.T) {
	for _, d := range allDialects {
		for _, prefix := range []string{"p_", ""} {
			t.Run(fmt.Sprintf("ok, %v, prefix %q renames every table and index", d, prefix), func(t *testing.T) {
				def, err := loadScript(d, defaultPrefix)
				require.NoError(t, err)
				sc, err := loadScript(d, prefix)
				require.NoError(t, err)

				for _, stmt := range statementsOf(sc) {
					assert.NotContains(t, stmt, defaultPrefix)
				}
				// Same sections, and each names the same tables under the
				// new prefix.
				require.Len(t, sc.queries, len(def.queries))
				require.Len(t, sc.migrations, len(def.migrations))
				for name, q := range def.queries {
					for _, table := range []string{"tokens", "schema_version"} {
						assert.Equal(t, strings.Count(q, defaultPrefix+table), strings.Count(sc.queries[name], prefix+table),
							"query %s, table %s", name, table)
					}
				}
				migration := strings.Join(sc.migrations[0], "\n")
				assert.Contains(t, migration, "CREATE TABLE IF NOT EXISTS "+prefix+"tokens")
				assert.Contains(t, migration, prefix+"tokens_account")
			})
		}
	}
}

func TestParseScript(t *testing.T) {
	t.Run("ok, sections split, comment lines and ';' dropped, multi-line statements kept", func(t *testing.T) {
		sc, err := parseScript(`-- A preamble of comments.

-- query: one
-- What it does.
SELECT a,
       b -- trailing comment kept
FROM t;

-- migration: 1 first
CREATE TABLE t (a int);
  -- indented comment
CREATE INDEX i ON t (a);
-- down: 1
DROP TABLE t;
-- migration: 2 second_one
ALTER TABLE t ADD b int;
-- down: 2
ALTER TABLE t DROP b;
`)
		require.NoError(t, err)
		assert.Equal(t, map[string]string{"one": "SELECT a,\n       b -- trailing comment kept\nFROM t"}, sc.queries)
		assert.Equal(t, [][]string{
			{"CREATE TABLE t (a int)", "CREATE INDEX i ON t (a)"},
			{"ALTER TABLE t ADD b int"},
		}, sc.migrations)
		assert.Equal(t, []string{"first", "second_one"}, sc.names)
		assert.Equal(t, [][]string{{"DROP TABLE t"}, {"ALTER TABLE t DROP b"}}, sc.downs)
	})

	for _, tc := range []struct {
		name, text, wantErr string
	}{
		{
			name:    "nok, statement without a final ';'",
			text:    "-- query: one\nSELECT 1\n",
			wantErr: `section "query: one": statement without a final ';'`,
		},
		{
			name:    "nok, ';' followed by a comment is not the end of a statement",
			text:    "-- query: one\nSELECT 1; -- done\n-- query: two\nSELECT 2;\n",
			wantErr: `section "query: one": statement without a final ';'`,
		},
		{
			name:    "nok, unterminated statement in a migration",
			text:    "-- migration: 1\nCREATE TABLE t (a int);\nCREATE INDEX i ON t (a)\n",
			wantErr: `section "migration: 1": statement without a final ';'`,
		},
		{
			name:    "nok, query with two statements",
			text:    "-- query: one\nSELECT 1;\nSELECT 2;\n",
			wantErr: `query "one" has 2 statements, want 1`,
		},
		{
			name:    "nok, query defined twice",
			text:    "-- query: one\nSELECT 1;\n-- query: one\nSELECT 2;\n",
			wantErr: `query "one" is defined twice`,
		},
		{
			name:    "nok, query without a statement",
			text:    "-- query: one\n-- nothing here\n-- query: two\nSELECT 2;\n",
			wantErr: `query "one" has 0 statements, want 1`,
		},
		{
			name:    "nok, migrations start at 2",
			text:    "-- migration: 2\nCREATE TABLE t (a int);\n",
			wantErr: `section "migration: 2": want migration 1 with statements`,
		},
		{
			name:    "nok, migration skips a number",
			text:    "-- migration: 1 t\nCREATE TABLE t (a int);\n-- down: 1\nDROP TABLE t;\n-- migration: 3\nCREATE TABLE u (a int);\n",
			wantErr: `section "migration: 3": want migration 2 with statements`,
		},
		{
			name:    "nok, migrations out of order",
			text:    "-- migration: 2\nCREATE TABLE u (a int);\n-- migration: 1\nCREATE TABLE t (a int);\n",
			wantErr: `section "migration: 2": want migration 1 with statements`,
		},
		{
			name:    "nok, migration number repeated",
			text:    "-- migration: 1 t\nCREATE TABLE t (a int);\n-- down: 1\nDROP TABLE t;\n-- migration: 1\nCREATE TABLE u (a int);\n",
			wantErr: `section "migration: 1": want migration 2 with statements`,
		},
		{
			name:    "nok, migration number not a number",
			text:    "-- migration: one\nCREATE TABLE t (a int);\n",
			wantErr: `section "migration: one": want migration 1 with statements`,
		},
		{
			name:    "nok, empty migration",
			text:    "-- migration: 1\n-- only a comment\n\n-- query: one\nSELECT 1;\n",
			wantErr: `section "migration: 1": want migration 1 with statements`,
		},
		{
			name:    "nok, empty last migration",
			text:    "-- migration: 1 t\nCREATE TABLE t (a int);\n-- down: 1\nDROP TABLE t;\n-- migration: 2\n",
			wantErr: `section "migration: 2": want migration 2 with statements`,
		},
		{
			name:    "nok, migration without a name",
			text:    "-- migration: 1\nCREATE TABLE t (a int);\n-- down: 1\nDROP TABLE t;\n",
			wantErr: `section "migration: 1": want a name of [a-z0-9_] after the number`,
		},
		{
			name:    "nok, migration with a name outside [a-z0-9_]",
			text:    "-- migration: 1 Tokens\nCREATE TABLE t (a int);\n-- down: 1\nDROP TABLE t;\n",
			wantErr: `section "migration: 1 Tokens": want a name of [a-z0-9_] after the number`,
		},
		{
			name:    "nok, migration without a down section, before another",
			text:    "-- migration: 1 t\nCREATE TABLE t (a int);\n-- migration: 2 u\nCREATE TABLE u (a int);\n-- down: 2\nDROP TABLE u;\n",
			wantErr: `section "migration: 2 u": migration 1 has no down section`,
		},
		{
			name:    "nok, last migration without a down section",
			text:    "-- migration: 1 t\nCREATE TABLE t (a int);\n",
			wantErr: `migration 1 has no down section`,
		},
		{
			name:    "nok, down section of another migration",
			text:    "-- migration: 1 t\nCREATE TABLE t (a int);\n-- down: 2\nDROP TABLE t;\n",
			wantErr: `section "down: 2": want the statements that undo migration 1, right after it`,
		},
		{
			name:    "nok, empty down section",
			text:    "-- migration: 1 t\nCREATE TABLE t (a int);\n-- down: 1\n-- nothing\n",
			wantErr: `section "down: 1": want the statements that undo migration 1, right after it`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := parseScript(tc.text)
			require.Error(t, err)
			assert.Nil(t, sc)
			assert.Equal(t, "sqlstore: "+tc.wantErr, err.Error())
		})
	}
}

func TestTimeColumnScan(t *testing.T) {
	want := time.Date(2026, 11, 27, 12, 34, 56, 123456000, time.UTC)
	plus5 := time.FixedZone("UTC+5", 5*3600)
	for _, tc := range []struct {
		name string
		in   any
		want time.Time
	}{
		{name: "ok, NULL is the zero time", in: nil, want: time.Time{}},
		{name: "ok, time.Time in another zone: the same instant in UTC", in: want.In(plus5), want: want},
		{name: "ok, time.Time in UTC", in: want, want: want},
		{name: "ok, int64 microseconds since the epoch (SQLite)", in: want.UnixMicro(), want: want},
		{name: "ok, int64 before the epoch", in: int64(-1), want: time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC)},
		{name: "ok, MySQL text as []byte", in: []byte("2026-11-27 12:34:56.123456"), want: want},
		{name: "ok, MySQL text as string", in: "2026-11-27 12:34:56.123456", want: want},
		{name: "ok, MySQL text without fraction", in: "2026-11-27 12:34:56", want: want.Truncate(time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Not zero, so that a NULL that leaves it alone is caught.
			got := time.Date(2000, 1, 1, 0, 0, 0, 0, time.Local)
			require.NoError(t, timeColumn{t: &got}.Scan(tc.in))
			assert.True(t, tc.want.Equal(got), "got %v, want %v", got, tc.want)
			if !tc.want.IsZero() {
				assert.Equal(t, time.UTC, got.Location())
			} else {
				assert.True(t, got.IsZero())
			}
		})
	}

	for _, tc := range []struct {
		name    string
		in      any
		wantErr string
	}{
		{"nok, text that is not a time, as []byte", []byte("27/11/2026"), `"27/11/2026"`},
		{"nok, text that is not a time, as string", "2026-13-45 99:99:99", `"2026-13-45 99:99:99"`},
		{"nok, RFC 3339 is not MySQL's text", "2026-11-27T12:34:56Z", `"2026-11-27T12:34:56Z"`},
		{"nok, empty text", "", `""`},
		{"nok, float64 is not a time", 1.5, "float64"},
		{"nok, bool is not a time", true, "bool"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got time.Time
			var err error
			require.NotPanics(t, func() { err = timeColumn{t: &got}.Scan(tc.in) })
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "sqlstore: cannot read a time from "), err.Error())
			assert.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

// fakeMySQLError has the shape of github.com/go-sql-driver/mysql's
// *MySQLError, which the library reads by reflection.
type fakeMySQLError struct {
	Number   uint16
	SQLState [5]byte
	Message  string
}

func (e *fakeMySQLError) Error() string { return fmt.Sprintf("Error %d: %s", e.Number, e.Message) }

// otherNumberError has a Number that is not a MySQL error number.
type otherNumberError struct{ Number string }

func (e *otherNumberError) Error() string { return "numbered " + e.Number }

func TestMySQLErrorNumber(t *testing.T) {
	dup := &fakeMySQLError{Number: 1062, SQLState: [5]byte{'2', '3', '0', '0', '0'}, Message: "Duplicate entry"}
	for _, tc := range []struct {
		name string
		err  error
		want uint64
	}{
		{"ok, the driver's error itself", dup, 1062},
		{"ok, wrapped with %w", fmt.Errorf("exec: %w", dup), 1062},
		{"ok, wrapped twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", dup)), 1062},
		{"ok, another number", fmt.Errorf("exec: %w", &fakeMySQLError{Number: 1213}), 1213},
		{"ok, nil is 0", nil, 0},
		{"ok, plain error is 0", errors.New("boom"), 0},
		{"ok, wrapped plain error is 0", fmt.Errorf("exec: %w", errors.New("boom")), 0},
		{"ok, %v does not wrap: 0", fmt.Errorf("exec: %v", dup), 0},
		{"ok, Number that is not an unsigned integer is 0", &otherNumberError{Number: "1062"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got uint64
			require.NotPanics(t, func() { got = mysqlErrorNumber(tc.err) })
			assert.Equal(t, tc.want, got)
		})
	}
}
