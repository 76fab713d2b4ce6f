package dbtest_test

import (
	"database/sql"
	"net/url"
	"testing"

	_ "github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/sqlstore"
	"github.com/apitoken-go/apitoken/storetest"
)

func TestConformance(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) apitoken.Store { return newStore(t, d) })
		})
	}
}

// TestConformanceLibPQ runs the suite on PostgreSQL through lib/pq, the other
// common driver, which encodes parameters and reports results its own way.
func TestConformanceLibPQ(t *testing.T) {
	storetest.Run(t, func(t *testing.T) apitoken.Store {
		dsn, schema := newPostgresSchema(t)
		u, err := url.Parse(dsn)
		require.NoError(t, err)
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		db, err := sql.Open("postgres", u.String())
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		s, err := sqlstore.New(db, sqlstore.Postgres)
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		require.NoError(t, s.Migrate(t.Context()))
		var where string
		require.NoError(t, db.QueryRowContext(t.Context(), "SELECT current_schema()").Scan(&where))
		require.Equal(t, schema, where, "lib/pq passes search_path on")
		return s
	})
}
