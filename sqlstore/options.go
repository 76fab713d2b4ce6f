package sqlstore

import (
	"database/sql"
	"fmt"
	"time"

	"github.com/apitoken-go/apitoken"
)

// An Option configures a Store. Options are applied in order by New, which
// returns the first error an option reports.
type Option func(*config) error

type config struct {
	prefix    string
	replica   *sql.DB
	maxLag    time.Duration
	fallbacks int // per second
}

// maxPrefixLen keeps the longest name built from the prefix (PostgreSQL's
// <prefix>schema_version_pkey) within PostgreSQL's and MySQL's 63 and 64
// characters.
const maxPrefixLen = 32

// WithTablePrefix sets the prefix of the names of the store's tables and
// indexes, "apitoken_" otherwise: the tokens live in <prefix>tokens and the
// schema version in <prefix>schema_version. The prefix is empty or up to 32
// characters of [a-z0-9_] that start with a letter or '_', so that it is an
// identifier in every dialect without quoting. To put the tables in another
// PostgreSQL schema, set the connection's search_path instead.
func WithTablePrefix(prefix string) Option {
	return func(c *config) error {
		if !validPrefix(prefix) {
			return fmt.Errorf("sqlstore: %w: table prefix must be empty or up to %d characters of [a-z0-9_] starting with a letter or '_'", apitoken.ErrInvalidInput, maxPrefixLen)
		}
		c.prefix = prefix
		return nil
	}
}

func validPrefix(p string) bool {
	if len(p) > maxPrefixLen {
		return false
	}
	for i := range len(p) {
		c := p[i]
		if !('a' <= c && c <= 'z' || c == '_' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
