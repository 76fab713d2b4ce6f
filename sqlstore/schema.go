package sqlstore

import (
	"fmt"
	"strconv"
	"strings"
)

// Schema returns the DDL that Migrate runs on an empty database of dialect
// d, as one SQL text: the version table, each schema version's statements
// and the row that records it, each statement ending with ";" on its line.
// It is for teams that apply schemas with their own migration tool (or
// review them first: `apitoken schema`); applied in full, it leaves the
// database as Migrate would, and Migrate then has nothing to do. opts are
// New's: WithTablePrefix renames the tables. An unknown dialect or a bad
// option is an error.
func Schema(d Dialect, opts ...Option) (string, error) {
	c := config{prefix: defaultPrefix}
	for _, opt := range opts {
		if opt == nil {
			return "", fmt.Errorf("sqlstore: option is nil")
		}
		if err := opt(&c); err != nil {
			return "", err
		}
	}
	if d != Postgres && d != MySQL && d != SQLite {
		return "", fmt.Errorf("sqlstore: unknown dialect %d", int(d))
	}
	sc, err := loadScript(d, c.prefix)
	if err != nil {
		return "", err
	}
	placeholder := "?"
	if d == Postgres {
		placeholder = "$1"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "-- The schema of github.com/apitoken-go/apitoken/sqlstore for %v, as Migrate creates it.\n\n", d)
	b.WriteString("-- The version table, created first.\n")
	b.WriteString(sc.queries["version-table"] + ";\n")
	for i, stmts := range sc.migrations {
		v := strconv.Itoa(i + 1)
		fmt.Fprintf(&b, "\n-- Version %s.\n", v)
		for _, s := range stmts {
			b.WriteString(s + ";\n")
		}
		b.WriteString(strings.Replace(sc.queries["set-version"], placeholder, v, 1) + ";\n")
	}
	return b.String(), nil
}
