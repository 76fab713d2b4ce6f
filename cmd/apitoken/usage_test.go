package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
)

var commandNames = []string{"migrate", "schema", "issue", "list", "inspect", "delete", "delete-all", "rotate", "prune", "revoke", "scan", "rules", "help"}

func TestHelp(t *testing.T) {
	c := &cli{}
	over := c.must(t, 0, "", "help")
	for _, name := range commandNames {
		assert.Contains(t, over.stdout, "\n  "+name+" ", "the overview lists %s", name)
		t.Run(name, func(t *testing.T) {
			for _, args := range [][]string{{"help", name}, {name, "-h"}, {name, "--help"}} {
				r := c.must(t, 0, "", args...)
				assert.Contains(t, r.stdout, "usage: apitoken "+name, "apitoken %v", args)
				assert.Empty(t, r.stderr)
			}
		})
	}
	assert.Contains(t, c.must(t, 0, "", "--help").stdout, "Exit status: 0 done; 1 failed")
	r := c.must(t, 2, "")
	assert.Contains(t, r.stderr, "usage: apitoken COMMAND")
}

func TestUsageAndFailures(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "tokens.db")
	c := &cli{env: []string{"APITOKEN_DB=" + db, "APITOKEN_PREFIX=acme"}}
	c.must(t, 0, "", "migrate")
	secret := strings.TrimSpace(c.must(t, 0, "", "issue", "--account", "acct_1").stdout)
	keyFile := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(keyFile, []byte(strings.Repeat("k", 32)), 0o600))

	for _, tc := range []struct {
		name  string
		env   []string
		stdin string
		args  []string
		code  int
		want  string // in standard error
	}{
		{"unknown command", nil, "", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"unknown flag", nil, "", []string{"list", "--acount", "a"}, 2, "flag provided but not defined: -acount"},
		{"the hash key is never a flag", nil, "", []string{"list", "--hash-key", "s3cret-key", "--account", "a"}, 2, "flag provided but not defined: -hash-key"},
		{"issue without an account", nil, "", []string{"issue"}, 2, "--account is required"},
		{"list without an account", nil, "", []string{"list"}, 2, "--account is required"},
		{"a secret on the command line", nil, "", []string{"revoke", secret}, 2, "never from the command line"},
		{"a secret on inspect's command line", nil, "", []string{"inspect", secret}, 2, "never from the command line"},
		{"no secret on standard input", nil, "\n# nothing\n", []string{"revoke"}, 2, "no secret on standard input"},
		{"rotate without an id", nil, "", []string{"rotate", "--account", "a"}, 2, "missing arguments"},
		{"both expiries", nil, "", []string{"issue", "--account", "a", "--expires-in", "1h", "--expires-at", "2030-01-01T00:00:00Z"}, 2, "not both"},
		{"a bad expiry", nil, "", []string{"issue", "--account", "a", "--expires-at", "tomorrow"}, 2, "RFC 3339"},
		{"an unknown dialect", nil, "", []string{"schema", "--dialect", "oracle"}, 2, "--dialect is postgres, mysql or sqlite"},
		{"an audit log for a command that writes none", nil, "", []string{"schema", "--dialect", "sqlite", "--audit-log", "-"}, 2, "flag provided but not defined: -audit-log"},
		{"a hash key for a command that hashes nothing", nil, "", []string{"migrate", "--hash-key-file", "k"}, 2, "flag provided but not defined: -hash-key-file"},
		{"an unknown rules format", nil, "", []string{"rules", "--format", "semgrep"}, 2, "--format is gitleaks"},
		{"an invalid account", nil, "", []string{"issue", "--account", "a:b"}, 1, "AccountID contains ':'"},
		{"a database form it does not know", []string{"APITOKEN_DB=redis://:s3cret@cache:6379"}, "", []string{"list", "--account", "a"}, 1, "a redis:// URL is not a database"},
		{"a MySQL DSN the driver refuses", []string{"APITOKEN_DB=u:s3cret@tcp(db:3306)db"}, "", []string{"list", "--account", "a"}, 1, "--db: not a valid MySQL DSN"},
		{"a mysql:// URL with parameters the driver refuses", []string{"APITOKEN_DB=mysql://u:s3cret@db/app?parseTime=maybe"}, "", []string{"list", "--account", "a"}, 1, "--db: the parameters of the mysql:// URL are not go-sql-driver/mysql's"},
		{"no database", []string{"APITOKEN_DB= "}, "", []string{"list", "--account", "a"}, 1, "no database: set --db or APITOKEN_DB"},
		{"an unreachable PostgreSQL", []string{"APITOKEN_DB=postgres://u:s3cret@127.0.0.1:1/db?connect_timeout=2"}, "", []string{"list", "--account", "a"}, 1, "database (Postgres) not reached"},
		{"an unreachable MySQL", []string{"APITOKEN_DB=u:s3cret@tcp(127.0.0.1:1)/db?timeout=2s"}, "", []string{"list", "--account", "a"}, 1, "database (MySQL) not reached"},
		{"a database without the tables", []string{"APITOKEN_DB=" + filepath.Join(dir, "empty.db")}, "", []string{"list", "--account", "a"}, 1, "apitoken list:"},
		{"a short hash key", []string{"APITOKEN_HASH_KEY=s3cret"}, "", []string{"list", "--account", "a"}, 1, "hash key is 6 bytes, want at least 32"},
		{"a hash key that does not decode", []string{"APITOKEN_HASH_KEY=base64:s3cret!"}, "", []string{"list", "--account", "a"}, 1, "does not decode"},
		{"two hash keys", []string{"APITOKEN_HASH_KEY=" + strings.Repeat("s3cret", 6), "APITOKEN_HASH_KEY_FILE=" + keyFile}, "", []string{"list", "--account", "a"}, 2, "not both"},
		{"a malformed line", nil, "acme_nope\n", []string{"revoke"}, 1, ""},
		{"another prefix", []string{"APITOKEN_PREFIX=globex"}, secret + "\n", []string{"inspect"}, 1, ""},
		{"an unknown token id", nil, "", []string{"delete", "--account", "acct_1", "01a24d33-0000-7000-8000-000000000000"}, 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := &cli{env: append(append([]string(nil), c.env...), tc.env...)}
			r := cc.must(t, tc.code, tc.stdin, tc.args...)
			assert.Contains(t, r.stderr, tc.want)
			for _, s := range []string{secret, "s3cret"} {
				assert.NotContains(t, r.stderr+r.stdout, s, "a secret, a key or a password was echoed")
			}
		})
	}

	t.Run("issue --json", func(t *testing.T) {
		r := c.must(t, 0, "", "issue", "--account", "acct_9", "--name", "ci", "--json")
		var out struct {
			Secret string `json:"secret"`
			Token  struct {
				ID        string   `json:"id"`
				AccountID string   `json:"account_id"`
				Scopes    []string `json:"scopes"`
			} `json:"token"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
		assert.True(t, apitoken.WellFormed(out.Secret))
		assert.Equal(t, "acct_9", out.Token.AccountID)
		assert.Equal(t, 1, strings.Count(r.stdout, out.Secret))
		assert.Empty(t, r.stderr)
	})
	t.Run("scan finds nothing: exit 0", func(t *testing.T) {
		clean := t.TempDir()
		typo := "x" // a checksum that no longer matches
		if strings.HasSuffix(secret, typo) {
			typo = "y"
		}
		require.NoError(t, os.WriteFile(filepath.Join(clean, "a.txt"), []byte("acme_ but no secret\n"+secret[:len(secret)-1]+typo+"\n"), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(clean, "bin"), append([]byte{0, 1, 2}, secret...), 0o644))
		r := c.must(t, 0, "", "scan", clean)
		assert.Empty(t, r.stdout, "a bad checksum and a binary file are not findings")
	})
	t.Run("scan --any-prefix", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "x.yaml")
		require.NoError(t, os.WriteFile(other, []byte("token: "+secret+"\n"), 0o644))
		g := &cli{env: []string{"APITOKEN_PREFIX=globex"}}
		g.must(t, 0, "", "scan", other)
		r := g.must(t, 1, "", "scan", "--any-prefix", "--json", other)
		assert.Contains(t, r.stdout, `"line": 1`)
		assert.NotContains(t, r.stdout, secret)
	})
	t.Run("schema and rules", func(t *testing.T) {
		r := c.must(t, 0, "", "schema", "--dialect", "postgres", "--table-prefix", "acme_")
		assert.Contains(t, r.stdout, "CREATE TABLE IF NOT EXISTS acme_tokens (")
		r = c.must(t, 0, "", "schema")
		assert.Contains(t, r.stdout, "for SQLite", "the dialect of APITOKEN_DB")
		r = c.must(t, 0, "", "rules")
		for _, want := range []string{"useDefault = true", `keywords = ["acme_"]`, "detectors:", "Secret format:  acme_[0-9A-Za-z]{38}"} {
			assert.Contains(t, r.stdout, want)
		}
		assert.Empty(t, r.stderr)
		d := &cli{}
		assert.Contains(t, d.must(t, 0, "", "rules", "--format", "trufflehog").stderr, `warning: these rules are for the default prefix "apitoken"`)
		var j map[string]any
		require.NoError(t, json.Unmarshal([]byte(c.must(t, 0, "", "rules", "--json").stdout), &j))
		assert.Contains(t, j, "gitleaks")
		assert.Contains(t, j, "github")
	})
}
