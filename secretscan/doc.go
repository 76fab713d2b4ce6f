// Package secretscan receives the leak reports of the secret-scanning
// partner programs (GitHub, GitLab, Google's deps.dev) and revokes the
// reported secrets of an apitoken.Issuer, and generates the scanner rules
// (gitleaks, trufflehog, a GitHub custom pattern) that find its secrets.
//
// When a secret matching a provider's pattern is pushed to a public
// repository or package, the program POSTs a JSON array of the matches to
// the provider's endpoint, signed with ECDSA P-256/SHA-256 by a key it
// publishes. NewHandler returns that endpoint: it verifies the signature
// over the raw body with the published key before it reads anything,
// checks each reported secret's format and checksum without a store call,
// revokes the ones that name a token (Issuer.RevokeSecret) or, if so
// configured, only reports them, hands each to the application's hook to
// tell the owner, and answers without saying which secrets exist (204), or
// with GitHub's feedback when asked.
//
// The package imports only the standard library and apitoken.
package secretscan
