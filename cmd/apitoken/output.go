package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/apitoken-go/apitoken"
)

// tokenJSON is a token as --json writes it: nothing secret.
type tokenJSON struct {
	ID         string     `json:"id"`
	AccountID  string     `json:"account_id"`
	MemberID   string     `json:"member_id"`
	Name       string     `json:"name"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	Expired    bool       `json:"expired"`
	Disabled   bool       `json:"disabled"`
	Hint       string     `json:"hint"` // the last 4 characters of the secret; empty for tokens issued before hints
}

func toJSON(t apitoken.Token, now time.Time) tokenJSON {
	j := tokenJSON{ID: t.ID, AccountID: t.AccountID, MemberID: t.MemberID, Name: t.Name, Scopes: t.Scopes, CreatedAt: t.CreatedAt,
		Expired: expired(t, now), Disabled: t.Disabled, Hint: t.Hint}
	if j.Scopes == nil {
		j.Scopes = []string{}
	}
	if !t.ExpiresAt.IsZero() {
		j.ExpiresAt = &t.ExpiresAt
	}
	if !t.LastUsedAt.IsZero() {
		j.LastUsedAt = &t.LastUsedAt
	}
	return j
}

func expired(t apitoken.Token, now time.Time) bool {
	return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes rows under a header, in aligned columns, for people.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// when formats a time for a table: UTC, to the second; "-" when zero.
func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.DateTime) + "Z"
}

func expiry(t apitoken.Token, now time.Time) string {
	switch {
	case t.ExpiresAt.IsZero():
		return "never"
	case expired(t, now):
		return when(t.ExpiresAt) + " (expired)"
	}
	return when(t.ExpiresAt)
}

// redact returns what may be shown of a secret: its prefix and its last
// four characters (what a person sees at the end of theirs), or
// "[malformed]" for a line that is not a secret, which may hold anything.
func redact(secret string) string {
	if !apitoken.WellFormed(secret) {
		return "[malformed]"
	}
	i := strings.LastIndexByte(secret, '_')
	return secret[:i+1] + "…" + secret[len(secret)-4:]
}
