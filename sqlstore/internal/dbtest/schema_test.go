package dbtest_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/sqlstore"
)

// TestSchemaAppliedByHand: the DDL that Schema prints, applied statement
// by statement as a migration tool would, leaves the database as Migrate
// would: Migrate then has nothing to do, and the store works.
func TestSchemaAppliedByHand(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			db := openDB(t, d)
			ddl, err := sqlstore.Schema(d, sqlstore.WithTablePrefix("byhand_"))
			require.NoError(t, err)
			assert.NotContains(t, ddl, "apitoken_tokens", "the table prefix applies")
			versions := strings.Count(ddl, "INSERT INTO byhand_schema_version (version) VALUES (")
			require.Positive(t, versions)
			for stmt := range strings.SplitSeq(ddl, ";\n") {
				var lines []string
				for line := range strings.Lines(stmt) {
					if !strings.HasPrefix(strings.TrimSpace(line), "--") {
						lines = append(lines, line)
					}
				}
				if s := strings.TrimSpace(strings.Join(lines, "")); s != "" {
					_, err := db.ExecContext(t.Context(), s)
					require.NoError(t, err, "%s", s)
				}
			}
			var n int
			require.NoError(t, db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM byhand_schema_version").Scan(&n))
			require.Equal(t, versions, n)

			store, err := sqlstore.New(db, d, sqlstore.WithTablePrefix("byhand_"))
			require.NoError(t, err)
			defer store.Close()
			require.NoError(t, store.Migrate(t.Context()))
			require.NoError(t, db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM byhand_schema_version").Scan(&n))
			assert.Equal(t, versions, n, "Migrate found nothing to do")
			iss, err := apitoken.NewIssuer(store)
			require.NoError(t, err)
			secret, tok, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: "acct_1"})
			require.NoError(t, err)
			got, err := iss.Verify(t.Context(), "acct_1", secret)
			require.NoError(t, err)
			assert.Equal(t, tok.ID, got.ID)
		})
	}
}
