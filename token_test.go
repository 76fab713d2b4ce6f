package apitoken_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/apitoken-go/apitoken"
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
