package dbtest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
	"github.com/apitoken-go/apitoken/sqlstore"
)

// schemaV1 is a dialect's SQL file as it was at schema version 1, the last
// release before version 2 (testdata/schema-v1, copied from that release):
// its version table, its migration 1, and the insert its Create ran.
type schemaV1 struct {
	versionTable, setVersion, create string
	migration                        []string
}

func loadSchemaV1(t *testing.T, d sqlstore.Dialect) schemaV1 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "schema-v1", strings.ToLower(d.String())+".sql"))
	require.NoError(t, err)
	sections := map[string][]string{}
	var name string
	var stmt strings.Builder
	for line := range strings.Lines(string(b)) {
		trimmed := strings.TrimSpace(line)
		if h, ok := strings.CutPrefix(trimmed, "-- query: "); ok {
			name = h
			continue
		}
		if h, ok := strings.CutPrefix(trimmed, "-- migration: "); ok {
			name = "migration " + h
			continue
		}
		if name == "" || trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		stmt.WriteString(line)
		if strings.HasSuffix(trimmed, ";") {
			sections[name] = append(sections[name], strings.TrimSuffix(strings.TrimSpace(stmt.String()), ";"))
			stmt.Reset()
		}
	}
	require.Len(t, sections["migration 1"], map[sqlstore.Dialect]int{sqlstore.Postgres: 2, sqlstore.MySQL: 1, sqlstore.SQLite: 2}[d],
		"the statements of migration 1 in testdata/schema-v1")
	require.NotContains(t, sections, "migration 2", "testdata/schema-v1 holds version 1 only")
	return schemaV1{
		versionTable: sections["version-table"][0], setVersion: sections["set-version"][0],
		create: sections["create"][0], migration: sections["migration 1"],
	}
}

// recordingStore is a memstore that keeps each record Create stores, hash
// included: the records an Issuer makes, to write to a version-1 table as
// that version's Create did.
type recordingStore struct {
	*memstore.Store
	mu   sync.Mutex
	recs []apitoken.Record
}

func (s *recordingStore) Create(ctx context.Context, rec apitoken.Record) error {
	s.mu.Lock()
	s.recs = append(s.recs, rec)
	s.mu.Unlock()
	return s.Store.Create(ctx, rec)
}

// v1Time is a time as version 1 wrote it in dialect d.
func v1Time(d sqlstore.Dialect, t time.Time) any {
	switch {
	case t.IsZero():
		return nil
	case d == sqlstore.SQLite:
		return t.UnixMicro()
	case d == sqlstore.MySQL:
		return t.UTC().Format("2006-01-02 15:04:05.000000")
	}
	return t.UTC()
}

// TestMigrateFromVersion1 creates a database with the schema of version 1
// from its SQL file, writes tokens as version 1 did, migrates it, and
// checks that the tokens still verify (with an empty Hint, as List shows
// them), that the new columns and capabilities work on them, and that
// tokens issued after the upgrade have every field.
func TestMigrateFromVersion1(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			ctx := t.Context()
			db := openDB(t, d)
			v1 := loadSchemaV1(t, d)
			for _, stmt := range append([]string{v1.versionTable}, v1.migration...) {
				_, err := db.ExecContext(ctx, stmt)
				require.NoError(t, err, "schema version 1: %s", stmt)
			}
			_, err := db.ExecContext(ctx, v1.setVersion, 1)
			require.NoError(t, err)

			// Tokens as an Issuer made them, written by version 1's Create.
			rs := &recordingStore{Store: memstore.New()}
			old := issuerOn(t, rs)
			acct := "acct-" + newName()
			secrets := map[string]string{} // token id → secret
			for _, p := range []apitoken.IssueParams{
				{AccountID: acct, MemberID: "alice", Name: "laptop", Scopes: []string{"read"}},
				{AccountID: acct, MemberID: "bob", ExpiresAt: time.Now().Add(time.Hour)},
			} {
				secret, tok, err := old.Issue(ctx, p)
				require.NoError(t, err)
				secrets[tok.ID] = secret
			}
			for _, rec := range rs.recs {
				_, err := db.ExecContext(ctx, v1.create, rec.Hash[:], rec.ID, rec.AccountID, rec.MemberID, rec.Name,
					strings.Join(rec.Scopes, " "), v1Time(d, rec.CreatedAt), v1Time(d, rec.ExpiresAt), v1Time(d, rec.LastUsedAt))
				require.NoError(t, err, "version 1's create")
			}

			s, err := sqlstore.New(db, d)
			require.NoError(t, err)
			t.Cleanup(func() { assert.NoError(t, s.Close()) })
			require.NoError(t, s.Migrate(ctx), "Migrate upgrades a database of version 1")
			requireVersionRows(t, schemaVersions(t, db, "apitoken_"))
			require.NoError(t, s.Migrate(ctx), "and again: idempotent")

			iss := issuerOn(t, s)
			for _, rec := range rs.recs {
				tok, err := iss.Verify(ctx, acct, secrets[rec.ID])
				require.NoError(t, err, "a token issued before the upgrade still verifies")
				want := rec.Token
				want.Hint = "" // version 1 kept no hint
				assert.Equal(t, want, tok)
			}
			listed, err := iss.List(ctx, acct)
			require.NoError(t, err)
			require.Len(t, listed, 2)
			for _, tok := range listed {
				assert.Empty(t, tok.Hint, "tokens issued before version 2 have no hint")
				assert.False(t, tok.Disabled)
				assert.Nil(t, tok.AllowedIPs)
			}
			// The new columns work on the old rows.
			require.NoError(t, iss.Disable(ctx, acct, listed[0].ID))
			_, err = iss.Verify(ctx, acct, secrets[listed[0].ID])
			require.Equal(t, apitoken.ErrInvalidToken, err, "an old token can be disabled")
			n, err := iss.DeleteMember(ctx, acct, "bob")
			require.NoError(t, err)
			assert.Equal(t, 1, n)

			secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: acct})
			require.NoError(t, err)
			assert.Equal(t, secret[len(secret)-4:], tok.Hint)
			got, err := iss.Verify(ctx, acct, secret)
			require.NoError(t, err)
			assert.Equal(t, tok.Hint, got.Hint, "a token issued after the upgrade keeps its hint")
		})
	}
}

// TestMigrateMySQLResumes checks that a MySQL migration that stopped after
// some of its statements (MySQL commits each DDL statement at once) is
// completed by the next Migrate, which skips the columns and indexes that
// exist.
func TestMigrateMySQLResumes(t *testing.T) {
	ctx := t.Context()
	db := openDB(t, sqlstore.MySQL)
	v1 := loadSchemaV1(t, sqlstore.MySQL)
	for _, stmt := range append([]string{v1.versionTable}, v1.migration...) {
		_, err := db.ExecContext(ctx, stmt)
		require.NoError(t, err)
	}
	_, err := db.ExecContext(ctx, v1.setVersion, 1)
	require.NoError(t, err)
	// Half of version 2: a column and an index, not the rest.
	for _, stmt := range []string{
		"ALTER TABLE apitoken_tokens ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE",
		"CREATE INDEX apitoken_tokens_expiry ON apitoken_tokens (expires_at, id)",
	} {
		_, err := db.ExecContext(ctx, stmt)
		require.NoError(t, err)
	}
	s, err := sqlstore.New(db, sqlstore.MySQL)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	require.NoError(t, s.Migrate(ctx), "Migrate completes a version that stopped halfway")
	requireVersionRows(t, schemaVersions(t, db, "apitoken_"))
	acct, secret := issueOne(t, s)
	_, err = issuerOn(t, s).Verify(ctx, acct, secret)
	require.NoError(t, err)

	// Any other error still fails the migration.
	_, err = db.ExecContext(ctx, "DELETE FROM apitoken_schema_version WHERE version > 1")
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, "DROP TABLE apitoken_tokens")
	require.NoError(t, err)
	require.Error(t, s.Migrate(ctx), "an ALTER of a missing table is not skipped")
}
