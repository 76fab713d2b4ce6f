package dbtest_test

import (
	"database/sql"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/sqlstore"
)

// readmeGrants returns the statements of the Grants block of the README's
// section for d, in order, each with the comment line it comes under ("As
// an administrator, once", ...), with the README's names replaced: the
// schema or database myapp by db, the roles myapp_migrate and myapp by
// migrator and app.
func readmeGrants(t *testing.T, d sqlstore.Dialect, db, migrator, app string) (stmts, whos []string) {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	section, ok := readmeSection(string(readme), readmeHeadings[d])
	require.True(t, ok)
	_, rest, ok := strings.Cut(section, "### Grants")
	require.True(t, ok, "the README's %s section has a Grants heading", d)
	_, rest, ok = strings.Cut(rest, "```sql\n")
	require.True(t, ok)
	block, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)
	replace := []struct{ re, with string }{
		{`SCHEMA myapp\b`, "SCHEMA " + db},
		{`DATABASE myapp\b`, "DATABASE " + db},
		{`\bmyapp\.`, db + "."},
		{`\bmyapp_migrate\b`, migrator},
		{`\bmyapp\b`, app},
	}
	who := ""
	var stmt strings.Builder
	for line := range strings.Lines(block) {
		trimmed := strings.TrimSpace(line)
		if c, ok := strings.CutPrefix(trimmed, "-- "); ok {
			who = c
			continue
		}
		if trimmed == "" {
			continue
		}
		stmt.WriteString(line)
		if strings.HasSuffix(trimmed, ";") {
			s := strings.TrimSuffix(strings.TrimSpace(stmt.String()), ";")
			for _, r := range replace {
				s = regexp.MustCompile(r.re).ReplaceAllString(s, r.with)
			}
			stmts, whos = append(stmts, s), append(whos, who)
			stmt.Reset()
		}
	}
	require.NotEmpty(t, stmts)
	return stmts, whos
}

// TestDocumentedGrants runs Migrate as the README's migration role and the
// app as the README's app role, each with exactly the grants the README
// gives, on PostgreSQL and MySQL: every operation of the Issuer must work,
// the ones that change a token in place included, and the app must not be
// able to migrate. The roles are made for the test and dropped after it.
func TestDocumentedGrants(t *testing.T) {
	for _, d := range []sqlstore.Dialect{sqlstore.Postgres, sqlstore.MySQL} {
		t.Run(d.String(), func(t *testing.T) {
			name := newName()
			migrator, app := name+"_m", name+"_a"
			stmts, whos := readmeGrants(t, d, name, migrator, app)
			var admin *sql.DB
			var as func(user, password string) *sql.DB
			switch d {
			case sqlstore.Postgres:
				dsn := serverDSN(t, pgDSNVar)
				admin = openPostgres(t, dsn, "")
				t.Cleanup(func() {
					for _, q := range []string{"DROP SCHEMA IF EXISTS " + name + " CASCADE",
						"DROP OWNED BY " + migrator, "DROP OWNED BY " + app, "DROP ROLE IF EXISTS " + migrator, "DROP ROLE IF EXISTS " + app} {
						_, err := admin.Exec(q)
						assert.NoError(t, err, q)
					}
				})
				as = func(user, password string) *sql.DB {
					cfg, err := pgx.ParseConfig(dsn)
					require.NoError(t, err)
					cfg.User, cfg.Password = user, password
					cfg.RuntimeParams["search_path"] = name
					db := stdlib.OpenDB(*cfg)
					t.Cleanup(func() { db.Close() })
					return db
				}
			case sqlstore.MySQL:
				cfg, err := mysql.ParseDSN(serverDSN(t, mysqlDSNVar))
				require.NoError(t, err)
				admin, err = sql.Open("mysql", cfg.FormatDSN())
				require.NoError(t, err)
				t.Cleanup(func() {
					for _, q := range []string{"DROP DATABASE IF EXISTS " + name,
						"DROP USER IF EXISTS '" + migrator + "'@'%'", "DROP USER IF EXISTS '" + app + "'@'%'"} {
						_, err := admin.Exec(q)
						assert.NoError(t, err, q)
					}
					admin.Close()
				})
				as = func(user, password string) *sql.DB {
					c := cfg.Clone()
					c.User, c.Passwd, c.DBName = user, password, name
					connector, err := mysql.NewConnector(c)
					require.NoError(t, err)
					db := sql.OpenDB(connector)
					t.Cleanup(func() { db.Close() })
					return db
				}
			}
			ctx := t.Context()
			migratorDB, appDB := as(migrator, "change me"), as(app, "change me too")
			migrated := false
			for i, stmt := range stmts {
				if !migrated && strings.Contains(whos[i], "after") {
					s, err := sqlstore.New(migratorDB, d)
					require.NoError(t, err)
					require.NoError(t, s.Migrate(ctx), "Migrate as the migration role, with the documented grants")
					require.NoError(t, s.Migrate(ctx), "and again")
					migrated = true
				}
				db := admin
				if strings.HasPrefix(whos[i], "As myapp_migrate") {
					db = migratorDB
				}
				_, err := db.ExecContext(ctx, stmt)
				require.NoError(t, err, "%s: %s", whos[i], stmt)
			}
			require.True(t, migrated, "the README grants the app its rights after the first Migrate")

			s, err := sqlstore.New(appDB, d)
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })
			require.NoError(t, s.Ready(ctx), "the app sees the schema")
			require.Error(t, s.Migrate(ctx), "the app cannot migrate")
			exerciseIssuer(t, s)
		})
	}
}

// exerciseIssuer runs every operation of an Issuer over s, each of the
// store's statements at least once, and checks that none fails.
func exerciseIssuer(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	oldKey, newKey := []byte(strings.Repeat("k", 32)), []byte(strings.Repeat("n", 32))
	before, err := apitoken.NewIssuer(s, apitoken.WithHashKey(oldKey), apitoken.WithLastUseInterval(0))
	require.NoError(t, err)
	acct := "acct-1"
	oldSecret, _, err := before.Issue(ctx, apitoken.IssueParams{AccountID: acct, MemberID: "carol"})
	require.NoError(t, err)

	iss, err := apitoken.NewIssuer(s, apitoken.WithHashKey(newKey), apitoken.WithPreviousHashKeys(oldKey),
		apitoken.WithMaxTokensPerAccount(10), apitoken.WithLastUseInterval(time.Second))
	require.NoError(t, err)
	_, err = iss.Verify(ctx, acct, oldSecret)
	require.NoError(t, err, "Verify under a previous key (and its re-hash, an UPDATE)")

	secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: acct, MemberID: "alice", ExpiresAt: time.Now().Add(time.Hour)})
	require.NoError(t, err, "Issue under the limit")
	_, err = iss.Verify(ctx, acct, secret)
	require.NoError(t, err)
	require.NoError(t, iss.Close(), "the last uses written (UPDATE)")

	iss, err = apitoken.NewIssuer(s, apitoken.WithHashKey(newKey), apitoken.WithLastUseInterval(time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { iss.Close() })
	toks, err := iss.List(ctx, acct)
	require.NoError(t, err)
	require.Len(t, toks, 2)
	for _, tk := range toks {
		assert.False(t, tk.LastUsedAt.IsZero(), "the last use was recorded")
	}
	require.NoError(t, iss.Disable(ctx, acct, tok.ID), "Disable (UPDATE)")
	require.NoError(t, iss.Enable(ctx, acct, tok.ID), "Enable (UPDATE)")
	_, rotated, err := iss.Rotate(ctx, acct, tok.ID, time.Minute)
	require.NoError(t, err, "Rotate with a grace (UPDATE of the expiry)")
	for _, err := range iss.Expiring(ctx, time.Now().Add(24*time.Hour)) {
		require.NoError(t, err)
	}
	_, err = iss.Prune(ctx, time.Now())
	require.NoError(t, err)
	_, err = iss.PruneUnused(ctx, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	n, err := iss.DeleteMember(ctx, acct, "carol")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	require.NoError(t, iss.Delete(ctx, acct, rotated.ID))
	_, err = iss.DeleteAll(ctx, acct)
	require.NoError(t, err)

	// Another instance, with a cache kept current by the Store's Bus: it
	// reads the revocation log that Disable and DeleteMember write.
	bus, err := sqlstore.NewBus(s, sqlstore.WithPollInterval(10*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { bus.Close() })
	other, err := apitoken.NewIssuer(s, apitoken.WithHashKey(newKey), apitoken.WithLastUseInterval(0),
		apitoken.WithCache(100, time.Hour), apitoken.WithCacheBus(bus))
	require.NoError(t, err)
	t.Cleanup(func() { other.Close() })
	secret, tok, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: acct, MemberID: "dave"})
	require.NoError(t, err)
	member, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: acct, MemberID: "erin"})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err1 := other.Verify(ctx, acct, secret)
		_, err2 := other.Verify(ctx, acct, member)
		return err1 == nil && err2 == nil
	}, 5*time.Second, 10*time.Millisecond, "the other instance verifies, and caches, both tokens")
	require.NoError(t, iss.Disable(ctx, acct, tok.ID))
	require.Eventually(t, func() bool {
		_, err := other.Verify(ctx, acct, secret)
		return errors.Is(err, apitoken.ErrInvalidToken)
	}, 5*time.Second, 10*time.Millisecond, "Disable reaches the other instance's cache through the revocation log")
	_, err = other.Verify(ctx, acct, member)
	require.NoError(t, err, "the account's other tokens stay cached")
	_, err = iss.DeleteMember(ctx, acct, "erin")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := other.Verify(ctx, acct, member)
		return errors.Is(err, apitoken.ErrInvalidToken)
	}, 5*time.Second, 10*time.Millisecond, "DeleteMember reaches the other instance's cache through the revocation log")
}
