package secretscan

import "net/http"

// An Origin is a sender of leak reports: its name, the request headers that
// carry the id of its signing key and the signature, and the URL of its
// public keys, a JSON document
//
//	{"public_keys": [{"key_identifier": "…", "key": "-----BEGIN PUBLIC KEY-----…", "is_current": true}]}
//
// of PEM-encoded ECDSA P-256 keys.
type Origin struct {
	// Name names the origin in the hook's Leak, the audit reason and logs.
	// KeyIDHeader and SignatureHeader are the headers a report of this
	// origin carries; KeysURL is where its public keys are.
	Name, KeyIDHeader, SignatureHeader, KeysURL string

	// Client fetches the keys; nil is a client with a 10-second timeout.
	// A client whose Transport adds an Authorization header lifts GitHub's
	// rate limit for unauthenticated calls.
	Client *http.Client
}

// The origins that send leak reports, with their documented headers and key
// URLs. GitLab gives its key URL on enrolment, so GitLab's KeysURL is empty:
// copy GitLab and set it. Copy an origin to change it; never assign to
// these variables, which every handler of the program shares.
var (
	GitHub = Origin{
		Name:            "GitHub",
		KeyIDHeader:     "Github-Public-Key-Identifier",
		SignatureHeader: "Github-Public-Key-Signature",
		KeysURL:         "https://api.github.com/meta/public_keys/secret_scanning",
	}
	GitLab = Origin{
		Name:            "GitLab",
		KeyIDHeader:     "Gitlab-Public-Key-Identifier",
		SignatureHeader: "Gitlab-Public-Key-Signature",
	}
	DepsDev = Origin{
		Name:            "deps.dev",
		KeyIDHeader:     "Gosst-Public-Key-Identifier",
		SignatureHeader: "Gosst-Public-Key-Signature",
		KeysURL:         "https://storage.googleapis.com/depsdev-gcp-public-keys/secret_scanning",
	}
)
