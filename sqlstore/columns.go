package sqlstore

import (
	"database/sql"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apitoken-go/apitoken"
)

// rowsAffected returns how many rows the statement op changed.
func rowsAffected(op string, res sql.Result) (int, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	return int(n), nil
}

// storable reports whether s could be in a text column: PostgreSQL refuses
// invalid UTF-8 and NUL with an error, which must not turn a lookup of an
// id no one could have stored into a system error.
func storable(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// scanToken reads the columns that the lookup, list and list-expiring
// queries select.
func scanToken(row interface{ Scan(...any) error }, t *apitoken.Token) error {
	var scopes, allowed string
	var lastIP sql.NullString
	err := row.Scan(&t.ID, &t.AccountID, &t.MemberID, &t.Name, &scopes,
		timeColumn{&t.CreatedAt}, timeColumn{&t.ExpiresAt}, timeColumn{&t.LastUsedAt},
		&t.Disabled, &t.Hint, &allowed, &lastIP)
	if err != nil {
		return err
	}
	if scopes != "" {
		t.Scopes = strings.Split(scopes, " ")
	}
	if allowed != "" {
		for f := range strings.SplitSeq(allowed, " ") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return fmt.Errorf("sqlstore: cannot read allowed_ips: %w", err)
			}
			t.AllowedIPs = append(t.AllowedIPs, p)
		}
	}
	if lastIP.Valid {
		if t.LastUsedIP, err = netip.ParseAddr(lastIP.String); err != nil {
			return fmt.Errorf("sqlstore: cannot read last_used_ip: %w", err)
		}
	}
	return nil
}

// allowedIPsArg is how AllowedIPs are written: space-separated prefixes,
// "" for none.
func allowedIPsArg(prefixes []netip.Prefix) string {
	var b strings.Builder
	for i, p := range prefixes {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// addrArg is how an address is written: NULL when unknown, its text
// without a zone otherwise.
func addrArg(a netip.Addr) any {
	if !a.IsValid() {
		return nil
	}
	return a.WithZone("").String()
}

// The years a stored time may fall in: those of MySQL's DATETIME.
const minYear, maxYear = 1000, 9999

// storableTime reports whether t falls in the years every dialect can store.
func storableTime(t time.Time) bool {
	y := t.UTC().Year()
	return minYear <= y && y <= maxYear
}

// timeArg is how a time is written: NULL when zero; microseconds since the
// epoch in SQLite; in MySQL, the UTC wall clock as text, so that the driver's
// loc setting cannot shift it; a time.Time (an instant) in PostgreSQL.
func (s *Store) timeArg(t time.Time) any {
	switch {
	case t.IsZero():
		return nil
	case s.dialect == SQLite:
		return t.UnixMicro()
	case s.dialect == MySQL:
		return t.UTC().Format(mysqlTimeLayout)
	default:
		return t.UTC()
	}
}

// timeColumn reads a time column as a UTC time.Time, whatever the driver
// gives: NULL (a zero time), a time.Time (pgx, lib/pq), microseconds since
// the epoch (SQLite), or text holding the UTC wall clock (MySQL).
type timeColumn struct{ t *time.Time }

// mysqlTimeLayout is how a time is written to a MySQL DATETIME(6).
const mysqlTimeLayout = "2006-01-02 15:04:05.000000"

// Scan implements sql.Scanner.
func (c timeColumn) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*c.t = time.Time{}
	case time.Time:
		*c.t = v.UTC()
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	case []byte:
		return c.parse(string(v))
	case string:
		return c.parse(v)
	default:
		return fmt.Errorf("sqlstore: cannot read a time from %T", v)
	}
	return nil
}

func (c timeColumn) parse(s string) error {
	t, err := time.Parse(time.DateTime, s) // and the fraction after the seconds, if any
	if err != nil {
		return fmt.Errorf("sqlstore: cannot read a time from %q", s)
	}
	*c.t = t
	return nil
}
