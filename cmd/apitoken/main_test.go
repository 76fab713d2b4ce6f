package main_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/sqlstore"
)

// binary is the command, built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "apitoken-cmd")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "apitoken")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the command:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// A run is one run of the command.
type run struct {
	args           []string
	stdout, stderr string
	code           int
}

// cli runs the command with env (and no APITOKEN_ variable of the test's
// own environment), stdin as its standard input.
type cli struct {
	env  []string
	runs []run // every run, to check where secrets were printed
}

func (c *cli) run(t *testing.T, stdin string, args ...string) run {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "APITOKEN_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, c.env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := run{args: args, stdout: out.String(), stderr: errOut.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	c.runs = append(c.runs, r)
	return r
}

// must runs the command and requires exit status want.
func (c *cli) must(t *testing.T, want int, stdin string, args ...string) run {
	t.Helper()
	r := c.run(t, stdin, args...)
	require.Equal(t, want, r.code, "apitoken %s\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.stdout, r.stderr)
	return r
}

// A testDB is a database the command and the test's own Issuer share.
type testDB struct {
	name        string
	dsn         string // as the command's --db takes it
	otherDSN    string // another form of the same database
	dialect     sqlstore.Dialect
	open        func(t *testing.T) *sql.DB
	tablePrefix string
	skip        string // why the test cannot run on it, if it cannot
}

func newTablePrefix() string { return "cli_" + strings.ToLower(rand.Text()[:10]) + "_" }

// databases returns the three databases; a server whose variable is not
// set is skipped, and says so.
func databases(t *testing.T) []testDB {
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens.db")
	dbs := []testDB{{
		name: "SQLite", dsn: file, otherDSN: "file:" + file + "?_pragma=busy_timeout(5000)", dialect: sqlstore.SQLite,
		open: func(t *testing.T) *sql.DB {
			db, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(5000)")
			require.NoError(t, err)
			return db
		},
	}}
	if dsn := os.Getenv("APITOKEN_PG_DSN"); dsn != "" {
		u, err := url.Parse(dsn)
		require.NoError(t, err)
		kv := fmt.Sprintf("host=%s port=%s user=%s dbname=%s sslmode=disable", u.Hostname(), u.Port(), u.User.Username(), strings.TrimPrefix(u.Path, "/"))
		if pw, ok := u.User.Password(); ok {
			kv += " password=" + pw
		}
		dbs = append(dbs, testDB{name: "PostgreSQL", dsn: dsn, otherDSN: kv, dialect: sqlstore.Postgres,
			open: func(t *testing.T) *sql.DB {
				db, err := sql.Open("pgx", dsn)
				require.NoError(t, err)
				return db
			}})
	} else {
		dbs = append(dbs, testDB{name: "PostgreSQL", skip: "APITOKEN_PG_DSN is not set: set it to a PostgreSQL server's DSN to run this test against it"})
	}
	if dsn := os.Getenv("APITOKEN_MYSQL_DSN"); dsn != "" {
		cfg, err := mysql.ParseDSN(dsn)
		require.NoError(t, err)
		u := url.URL{Scheme: "mysql", Host: cfg.Addr, Path: "/" + cfg.DBName, RawQuery: "parseTime=true"}
		u.User = url.User(cfg.User)
		if cfg.Passwd != "" {
			u.User = url.UserPassword(cfg.User, cfg.Passwd)
		}
		dbs = append(dbs, testDB{name: "MariaDB", dsn: dsn, otherDSN: u.String(), dialect: sqlstore.MySQL,
			open: func(t *testing.T) *sql.DB {
				db, err := sql.Open("mysql", dsn)
				require.NoError(t, err)
				return db
			}})
	} else {
		dbs = append(dbs, testDB{name: "MariaDB", skip: "APITOKEN_MYSQL_DSN is not set: set it to a MySQL or MariaDB server's DSN to run this test against it"})
	}
	return dbs
}

// TestEndToEnd: issue, list, inspect, scan a file holding the secret,
// revoke it from standard input, and the app's own Issuer (in this process,
// on the same database) refuses it; on each database.
func TestEndToEnd(t *testing.T) {
	for _, db := range databases(t) {
		t.Run(db.name, func(t *testing.T) {
			if db.skip != "" {
				t.Skip(db.skip)
			}
			db.tablePrefix = newTablePrefix()
			key := make([]byte, 32)
			_, _ = rand.Read(key)
			keyFile := filepath.Join(t.TempDir(), "hash.key")
			require.NoError(t, os.WriteFile(keyFile, []byte("hex:"+hex.EncodeToString(key)+"\n"), 0o600))
			auditLog := filepath.Join(t.TempDir(), "audit.jsonl")
			c := &cli{env: []string{"APITOKEN_DB=" + db.dsn, "APITOKEN_TABLE_PREFIX=" + db.tablePrefix,
				"APITOKEN_PREFIX=acme", "APITOKEN_HASH_KEY_FILE=" + keyFile, "APITOKEN_AUDIT_LOG=" + auditLog}}

			sqlDB := db.open(t)
			t.Cleanup(func() {
				// Every table of the schema, newest first: the shared servers
				// keep nothing of this test.
				ddl, err := sqlstore.Schema(db.dialect, sqlstore.WithTablePrefix(db.tablePrefix))
				require.NoError(t, err)
				tables := regexp.MustCompile(`CREATE TABLE IF NOT EXISTS (\w+)`).FindAllStringSubmatch(ddl, -1)
				for i := len(tables) - 1; i >= 0; i-- {
					_, err := sqlDB.Exec("DROP TABLE IF EXISTS " + tables[i][1])
					assert.NoError(t, err)
				}
				sqlDB.Close()
			})

			c.must(t, 0, "", "migrate")
			issued := c.must(t, 0, "", "issue", "--account", "acct_1", "--member", "alice", "--name", "deploy", "--scope", "read", "--expires-in", "720h")
			secret := strings.TrimSuffix(issued.stdout, "\n")
			require.True(t, apitoken.WellFormed(secret), "issue prints the secret alone on standard output")
			require.True(t, strings.HasPrefix(secret, "acme_"))

			// The app: its own Issuer on the same database, key and prefix.
			store, err := sqlstore.New(sqlDB, db.dialect, sqlstore.WithTablePrefix(db.tablePrefix))
			require.NoError(t, err)
			app, err := apitoken.NewIssuer(store, apitoken.WithPrefix("acme"), apitoken.WithHashKey(key), apitoken.WithLastUseInterval(0))
			require.NoError(t, err)
			defer app.Close()
			tok, err := app.Verify(t.Context(), "acct_1", secret)
			require.NoError(t, err, "the control: the app accepts the secret the command issued")
			assert.Equal(t, "deploy", tok.Name)
			assert.Contains(t, issued.stderr, tok.ID)

			list := c.must(t, 0, "", "list", "--account", "acct_1")
			assert.Contains(t, list.stdout, tok.ID)
			assert.Contains(t, list.stdout, "deploy")
			assert.Contains(t, list.stdout, "…"+secret[len(secret)-4:], "the hint: the end of the secret, as its owner sees it")
			other := c.must(t, 0, "", "list", "--account", "acct_1", "--json", "--db", db.otherDSN)
			assert.Contains(t, other.stdout, `"id": "`+tok.ID+`"`, "the other DSN form names the same database")

			inspect := c.must(t, 0, secret+"\n", "inspect", "--json")
			assert.Contains(t, inspect.stdout, `"account_id": "acct_1"`)
			assert.Contains(t, inspect.stdout, `"id": "`+tok.ID+`"`)

			dir := t.TempDir()
			require.NoError(t, os.MkdirAll(filepath.Join(dir, "deploy"), 0o755))
			leak := filepath.Join(dir, "deploy", "env.sh")
			require.NoError(t, os.WriteFile(leak, []byte("#!/bin/sh\n\nexport ACME_TOKEN="+secret+"\n"), 0o644))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "README.md"), []byte("nothing here\n"), 0o644))
			scan := c.must(t, 1, "", "scan", dir)
			assert.Equal(t, leak+":3: acme_…"+secret[len(secret)-4:]+"\n", scan.stdout)

			revoke := c.must(t, 0, "# from the incident\n"+secret+"\n", "revoke", "--reason", "incident 7")
			assert.Contains(t, revoke.stdout, "revoked")
			assert.Contains(t, revoke.stdout, tok.ID)

			_, err = app.Verify(t.Context(), "acct_1", secret)
			assert.Equal(t, apitoken.ErrInvalidToken, err, "the app refuses the revoked secret")

			again := c.must(t, 0, secret+"\n", "revoke")
			assert.Contains(t, again.stdout, "not found", "revoking again changes nothing")
			c.must(t, 1, secret+"\n", "inspect")
			scanRevoke := c.must(t, 1, "", "scan", "--revoke", dir)
			assert.Contains(t, scanRevoke.stdout, "not found")

			// rotate, delete, delete-all and prune on the same database.
			s2 := strings.TrimSpace(c.must(t, 0, "", "issue", "--account", "acct_2", "--name", "one").stdout)
			t2, err := app.Verify(t.Context(), "acct_2", s2)
			require.NoError(t, err)
			s3 := strings.TrimSpace(c.must(t, 0, "", "rotate", "--account", "acct_2", t2.ID).stdout)
			_, err = app.Verify(t.Context(), "acct_2", s2)
			assert.Equal(t, apitoken.ErrInvalidToken, err, "rotated with no grace: the old one stops")
			t3, err := app.Verify(t.Context(), "acct_2", s3)
			require.NoError(t, err)
			c.must(t, 0, "", "delete", "--account", "acct_2", t3.ID)
			c.must(t, 1, "", "delete", "--account", "acct_2", t3.ID)
			for range 2 {
				c.must(t, 0, "", "issue", "--account", "acct_3")
			}
			assert.Contains(t, c.must(t, 0, "", "delete-all", "--account", "acct_3", "--json").stdout, `"deleted": 2`)
			// At least a second ahead, whatever the fraction RFC 3339 drops.
			expires := time.Now().Add(2 * time.Second).UTC().Truncate(time.Second)
			s4 := strings.TrimSpace(c.must(t, 0, "", "issue", "--account", "acct_4", "--expires-at", expires.Format(time.RFC3339)).stdout)
			time.Sleep(time.Until(expires) + 50*time.Millisecond)
			assert.Contains(t, c.must(t, 0, s4+"\n", "inspect").stdout, "found (expired)", "inspect finds an expired token too")
			assert.Contains(t, c.must(t, 0, "", "prune", "--json").stdout, `"deleted": 1`)

			// The audit log of what the command did, with no secret.
			audit, err := os.ReadFile(auditLog)
			require.NoError(t, err)
			assert.Contains(t, string(audit), `"msg":"apitoken: token issued","account_id":"acct_1","token_id":"`+tok.ID+`"`)
			assert.Contains(t, string(audit), `"msg":"apitoken: token revoked","account_id":"acct_1","token_id":"`+tok.ID+`","reason":"incident 7"`)
			assert.Contains(t, string(audit), `"msg":"apitoken: token rotated"`)
			for _, s := range []string{secret, s2, s3} {
				assert.NotContains(t, string(audit), s)
			}

			// Each secret was printed once, by the command that created it.
			for _, s := range []string{secret, s2, s3, s4} {
				n := 0
				for _, r := range c.runs {
					n += strings.Count(r.stdout, s)
					assert.NotContains(t, r.stderr, s, "apitoken %s printed a secret on standard error", r.args)
				}
				assert.Equal(t, 1, n, "a secret is printed once, by issue or rotate")
			}
		})
	}
}
