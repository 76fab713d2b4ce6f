package apitoken_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
)

func TestTokenHasScope(t *testing.T) {
	tok := apitoken.Token{Scopes: []string{"prefs:read", "prefs:write"}}
	tests := []struct {
		name  string
		tok   apitoken.Token
		scope string
		want  bool
	}{
		{"ok, a held scope", tok, "prefs:read", true},
		{"ok, another held scope", tok, "prefs:write", true},
		{"nok, a scope not held", tok, "admin", false},
		{"nok, case matters", tok, "PREFS:READ", false},
		{"nok, no prefix match", tok, "prefs", false},
		{"nok, no wildcard", tok, "prefs:*", false},
		{"nok, the empty scope", tok, "", false},
		{"nok, a token without scopes", apitoken.Token{}, "prefs:read", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.tok.HasScope(tt.scope))
		})
	}
}

func TestWellFormed(t *testing.T) {
	ctx := t.Context()
	var good []string
	for _, prefix := range []string{"a", "acme", "my_app", "x9", strings.Repeat("p", 32), apitoken.DefaultPrefix} {
		s, _, err := newIssuer(t, memstore.New(), apitoken.WithPrefix(prefix)).Issue(ctx, apitoken.IssueParams{AccountID: "a"})
		require.NoError(t, err)
		good = append(good, s)
		t.Run("ok, prefix "+prefix, func(t *testing.T) {
			assert.True(t, apitoken.WellFormed(s))
			assert.Zero(t, testing.AllocsPerRun(100, func() { apitoken.WellFormed(s) }))
		})
	}
	s := good[1] // acme_…
	body := s[len("acme_"):]
	for name, bad := range map[string]string{
		"empty":                       "",
		"no prefix":                   body,
		"no separator":                "acme" + body,
		"empty prefix":                "_" + body,
		"prefix of 33":                strings.Repeat("p", 33) + "_" + body,
		"upper-case prefix":           "Acme_" + body,
		"prefix starts with a digit":  "9acme_" + body,
		"prefix with a dash":          "ac-me_" + body,
		"checksum changed":            s[:len(s)-1] + string(s[len(s)-1]^1),
		"body changed":                s[:6] + string(s[6]^1) + s[7:],
		"a character dropped":         s[:10] + s[11:],
		"a character added":           s[:10] + "x" + s[10:],
		"prefix changed, sum kept":    "acmf_" + body,
		"dash for underscore":         "acme-" + body,
		"trailing newline":            s + "\n",
		"zero-width space inside":     s[:10] + "\u200b" + s[10:],
		"only the separator and body": "_" + body[1:],
	} {
		t.Run("nok, "+name, func(t *testing.T) { assert.False(t, apitoken.WellFormed(bad)) })
	}
}

func TestIssuerPattern(t *testing.T) {
	ctx := t.Context()
	acme := newIssuer(t, memstore.New(), apitoken.WithPrefix("acme"))
	re := regexp.MustCompile(acme.Pattern())
	secret, _, err := acme.Issue(ctx, apitoken.IssueParams{AccountID: "a"})
	require.NoError(t, err)
	other, _, err := newIssuer(t, memstore.New(), apitoken.WithPrefix("globex")).Issue(ctx, apitoken.IssueParams{AccountID: "a"})
	require.NoError(t, err)
	longer, _, err := newIssuer(t, memstore.New(), apitoken.WithPrefix("xacme")).Issue(ctx, apitoken.IssueParams{AccountID: "a"})
	require.NoError(t, err)
	nested, _, err := newIssuer(t, memstore.New(), apitoken.WithPrefix("my_acme")).Issue(ctx, apitoken.IssueParams{AccountID: "a"})
	require.NoError(t, err)

	assert.Equal(t, `\bacme_[0-9A-Za-z]{38}\b`, acme.Pattern())
	for _, text := range []string{secret, "TOKEN=" + secret + "\n", `{"token":"` + secret + `"}`, "Bearer " + secret} {
		assert.Equal(t, secret, re.FindString(text), "in %q", strings.ReplaceAll(text, secret, "<secret>"))
	}
	for name, text := range map[string]string{
		"another prefix":          other,
		"a longer prefix":         longer,
		"a prefix ending in ours": nested,
		"one character too many":  secret + "x",
	} {
		assert.Empty(t, re.FindString(text), name)
	}
	assert.Regexp(t, apitoken.Pattern, other, "the package's Pattern matches every prefix")
	assert.Equal(t, `\bapitoken_[0-9A-Za-z]{38}\b`, newIssuer(t, memstore.New()).Pattern())
}
