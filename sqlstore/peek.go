package sqlstore

import "github.com/apitoken-go/apitoken/sqlstore/internal/peek"

// init lets the driver-backed tests in internal/dbtest read a Store's
// statements (see package peek).
func init() {
	peek.Query = func(store any, name string) string { return store.(*Store).script.queries[name] }
}
