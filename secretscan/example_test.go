package secretscan_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"strings"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
	"github.com/apitoken-go/apitoken/secretscan"
)

// An app with its own prefix mounts the leak endpoint beside its API, and
// e-mails the owner of each revoked token from the hook.
func ExampleNewHandler() {
	iss, err := apitoken.NewIssuer(memstore.New(), apitoken.WithPrefix("acme"))
	if err != nil {
		log.Fatal(err)
	}
	gitlab := secretscan.GitLab
	gitlab.KeysURL = "https://gitlab.example/keys" // given on enrolment
	leaks, err := secretscan.NewHandler(iss, secretscan.Config{
		Origins: []secretscan.Origin{secretscan.GitHub, gitlab, secretscan.DepsDev},
		OnLeak: func(ctx context.Context, l secretscan.Leak) {
			// Queue an e-mail to the token's owner; never block here.
			slog.InfoContext(ctx, "token leaked", "account_id", l.Token.AccountID, "token_id", l.Token.ID, "origin", l.Origin, "url", l.URL)
		},
		Feedback: true, // GitHub's true/false-positive labels
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /integrations/secret-scanning", leaks) // no API authentication: the report is signed
	mux.Handle("/api/", iss.Middleware(http.NotFoundHandler()))
	_ = mux // http.ListenAndServe(addr, mux)
	// Output:
}

// The scanner rules of an app's prefix: a gitleaks configuration to commit
// as .gitleaks.toml, a trufflehog detector and a GitHub custom pattern.
func ExampleRulesFor() {
	iss, err := apitoken.NewIssuer(memstore.New(), apitoken.WithPrefix("acme"))
	if err != nil {
		log.Fatal(err)
	}
	rules, err := secretscan.RulesFor(iss)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.Contains(rules.Gitleaks, "useDefault = true"))
	fmt.Println(rules.GitHub.SecretFormat)
	fmt.Println(rules.GitHub.BeforeSecret)
	// Output:
	// true
	// acme_[0-9A-Za-z]{38}
	// \A|[^0-9A-Za-z_]
}
