package secretscan

import (
	"fmt"
	"strings"

	"github.com/apitoken-go/apitoken"
)

// Rules are the secret-scanner rules that find the secrets of one
// Issuer's prefix, and no other's: commit one of them, and the scanner
// knows the app's tokens. They match the format only; `apitoken scan`
// also checks the checksum.
type Rules struct {
	// Gitleaks is a gitleaks configuration (TOML) that adds a rule for the
	// prefix to gitleaks' default rules ([extend] useDefault = true): save
	// it as .gitleaks.toml at the root of a repository, or pass it with
	// --config. Its keyword, "<prefix>_", lets gitleaks skip every text
	// without it; its rule finds the secrets of the default prefix, which
	// gitleaks' generic rule drops for the word "token" in them.
	Gitleaks string

	// Trufflehog is a trufflehog custom detector configuration (YAML), for
	// --config. It has no verify endpoint, on purpose: an endpoint that
	// tells whether a secret is live would be an oracle for anyone who
	// found one.
	Trufflehog string

	// GitHub holds the fields of a GitHub secret-scanning custom pattern
	// (repository, organisation or enterprise settings, "New pattern").
	GitHub GitHubPattern
}

// GitHubPattern holds the fields of a GitHub secret-scanning custom
// pattern, as its form names them.
type GitHubPattern struct {
	Name         string // "Pattern name"
	SecretFormat string // "Secret format": the secret itself, without anchors
	BeforeSecret string // "Before secret"
	AfterSecret  string // "After secret"
}

// body is the part of every secret after its prefix and '_', as Pattern
// writes it.
const body = `[0-9A-Za-z]{38}`

// RulesFor returns the scanner rules of iss's prefix.
func RulesFor(iss *apitoken.Issuer) (Rules, error) {
	if iss == nil {
		return Rules{}, fmt.Errorf("%w: secretscan: the Issuer is nil", apitoken.ErrInvalidInput)
	}
	re := iss.Pattern()
	head, ok := strings.CutPrefix(re, `\b`)
	if ok {
		head, ok = strings.CutSuffix(head, body+`\b`)
	}
	prefix, ok2 := strings.CutSuffix(head, "_")
	if !ok || !ok2 || prefix == "" || strings.ContainsAny(prefix, `\[]{}()|.*+?^$`) {
		return Rules{}, fmt.Errorf("secretscan: the Issuer's pattern %q is not of the form this package knows", re)
	}
	id := strings.ReplaceAll(prefix, "_", "-") + "-api-token"
	name := prefix + " API token"
	return Rules{
		Gitleaks: fmt.Sprintf(`# gitleaks configuration: gitleaks' default rules and one for the API tokens
# of prefix %[1]q (github.com/apitoken-go/apitoken), made by "apitoken rules".
# Save it as .gitleaks.toml at the root of a repository, or pass --config.
# A match is a token to revoke: apitoken revoke < file-of-secrets
title = "gitleaks default rules and %[2]s"

[extend]
useDefault = true

[[rules]]
id = %[3]q
description = "%[2]s (github.com/apitoken-go/apitoken): revoke it with apitoken revoke"
regex = '''%[4]s'''
keywords = [%[5]q]
`, prefix, name, id, re, head),
		Trufflehog: fmt.Sprintf(`# trufflehog custom detector for the API tokens of prefix %[1]q
# (github.com/apitoken-go/apitoken), made by "apitoken rules".
# trufflehog filesystem --config this-file.yaml PATH
# It has no verify endpoint, on purpose: one would tell anyone who found a
# secret whether it is live. "apitoken scan" checks the checksum.
detectors:
  - name: %[2]s
    keywords:
      - %[3]s
    regex:
      token: '%[4]s'
`, prefix, name, head, re),
		GitHub: GitHubPattern{
			Name:         name,
			SecretFormat: head + body,
			BeforeSecret: `\A|[^0-9A-Za-z_]`,
			AfterSecret:  `\z|[^0-9A-Za-z_]`,
		},
	}, nil
}
