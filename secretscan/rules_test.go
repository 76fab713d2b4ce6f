package secretscan_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
	"github.com/apitoken-go/apitoken/secretscan"
)

func TestRulesFor(t *testing.T) {
	for _, prefix := range []string{"acme", "my_app", apitoken.DefaultPrefix} {
		t.Run(prefix, func(t *testing.T) {
			iss, err := apitoken.NewIssuer(memstore.New(), apitoken.WithPrefix(prefix))
			require.NoError(t, err)
			secret, _, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: "a"})
			require.NoError(t, err)
			longer, err := apitoken.NewIssuer(memstore.New(), apitoken.WithPrefix("x"+prefix))
			require.NoError(t, err)
			other, _, err := longer.Issue(t.Context(), apitoken.IssueParams{AccountID: "a"})
			require.NoError(t, err)

			r, err := secretscan.RulesFor(iss)
			require.NoError(t, err)
			id := strings.ReplaceAll(prefix, "_", "-") + "-api-token"
			assert.Contains(t, r.Gitleaks, "[extend]\nuseDefault = true\n")
			assert.Contains(t, r.Gitleaks, `id = "`+id+`"`)
			assert.Contains(t, r.Gitleaks, "regex = '''"+iss.Pattern()+"'''\n")
			assert.Contains(t, r.Gitleaks, `keywords = ["`+prefix+`_"]`)
			assert.Contains(t, r.Trufflehog, "      token: '"+iss.Pattern()+"'\n")
			assert.Contains(t, r.Trufflehog, "      - "+prefix+"_\n")
			assert.NotContains(t, strings.ToLower(r.Trufflehog), "verify:", "no verify endpoint: it would be a validity oracle")

			gh := regexp.MustCompile(`(?:` + r.GitHub.BeforeSecret + `)(` + r.GitHub.SecretFormat + `)(?:` + r.GitHub.AfterSecret + `)`)
			for _, text := range []string{secret, "TOKEN=" + secret + "\n", `"` + secret + `"`} {
				m := gh.FindStringSubmatch(text)
				require.Len(t, m, 2, "the GitHub pattern finds the secret")
				assert.Equal(t, secret, m[1])
			}
			assert.Empty(t, gh.FindStringSubmatch(other), "nor another prefix that ends in this one")
			assert.Empty(t, gh.FindStringSubmatch(secret+"0"), "nor a longer string")
		})
	}
	_, err := secretscan.RulesFor(nil)
	require.ErrorIs(t, err, apitoken.ErrInvalidInput)
}
