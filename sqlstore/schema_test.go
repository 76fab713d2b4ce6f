package sqlstore_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/sqlstore"
)

func TestSchema(t *testing.T) {
	for _, tc := range []struct {
		d                  sqlstore.Dialect
		versionTable, blob string
	}{
		{sqlstore.Postgres, "CREATE TABLE IF NOT EXISTS apitoken_schema_version (", "bytea"},
		{sqlstore.MySQL, "CREATE TABLE IF NOT EXISTS apitoken_schema_version (", "BINARY(32)"},
		{sqlstore.SQLite, "CREATE TABLE IF NOT EXISTS apitoken_schema_version (", "BLOB"},
	} {
		t.Run(tc.d.String(), func(t *testing.T) {
			ddl, err := sqlstore.Schema(tc.d)
			require.NoError(t, err)
			assert.Contains(t, ddl, tc.versionTable)
			assert.Contains(t, ddl, "CREATE TABLE IF NOT EXISTS apitoken_tokens (")
			assert.Contains(t, ddl, tc.blob)
			assert.Contains(t, ddl, "INSERT INTO apitoken_schema_version (version) VALUES (1);\n", "the version row, with its number")
			assert.NotContains(t, ddl, "$1")
			assert.Less(t, strings.Index(ddl, tc.versionTable), strings.Index(ddl, "apitoken_tokens ("), "the version table comes first")
			prefixed, err := sqlstore.Schema(tc.d, sqlstore.WithTablePrefix("acme_"))
			require.NoError(t, err)
			assert.NotContains(t, prefixed, "apitoken_tokens")
			assert.Contains(t, prefixed, "CREATE TABLE IF NOT EXISTS acme_tokens (")
		})
	}
	_, err := sqlstore.Schema(sqlstore.Dialect(99))
	assert.ErrorContains(t, err, "unknown dialect")
	_, err = sqlstore.Schema(sqlstore.SQLite, sqlstore.WithTablePrefix("Bad-Prefix"))
	assert.ErrorIs(t, err, apitoken.ErrInvalidInput)
}
