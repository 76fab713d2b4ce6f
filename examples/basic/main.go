// Command basic is the smallest app that uses apitoken: it issues one token
// for a demo account, prints it once with the curl commands that use it, and
// serves GET /api/v1/whoami behind the middleware.
//
//	go run ./examples/basic [-addr 127.0.0.1:8080] [-db path/to/tokens.db]
//
// Tokens live in an SQLite file (sqlstore over the pure-Go modernc.org/sqlite
// driver): only their hashes, and they outlast a restart.
package main

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	_ "modernc.org/sqlite"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/sqlstore"
)

// demoAccount is the account the demo token is issued for. A real app takes
// it from the signed-in member's session.
const demoAccount = "acct_demo"

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	dbPath := flag.String("db", filepath.Join(os.TempDir(), "apitoken-basic.db"), "SQLite file that keeps the tokens")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *dbPath, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "basic:", err)
		os.Exit(1)
	}
}

// run opens the SQLite database at dbPath, issues the demo token, writes it
// and the curl commands to stdout, and serves the API on addr until ctx ends,
// then shuts down gracefully.
func run(ctx context.Context, addr, dbPath string, stdout io.Writer) (err error) {
	store, closeStore, err := openStore(ctx, dbPath)
	if err != nil {
		return err
	}
	defer closeStore()
	iss, err := apitoken.NewIssuer(store)
	if err != nil {
		return err
	}
	defer func() {
		// Writes the last uses still pending, after the server stopped.
		err = cmp.Or(err, iss.Close())
	}()
	secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{
		AccountID: demoAccount,
		MemberID:  "demo",
		Name:      "demo token",
		Scopes:    []string{"whoami"},
	})
	if err != nil {
		return err
	}

	// Listen before printing, so that the printed address is the real one
	// (also with port 0) and the commands work as soon as they appear.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	url := "http://" + ln.Addr().String() + "/api/v1/whoami"

	// The secret is printed here and nowhere else: not in a log, not in a
	// response. The curl commands refer to it through $TOKEN.
	fmt.Fprintf(stdout, `Issued a token for account %s.

Account ID: %s
Copy the token now: it is shown only this once and cannot be recovered.

  TOKEN=%s

Call the API with a Bearer token and the account header:

  curl -H "Authorization: Bearer $TOKEN" -H "X-Account-ID: %s" %s

or with HTTP Basic (account id as user, token as password):

  curl -u "%s:$TOKEN" %s

Without a token the API answers 401:

  curl -i %s

Serving on http://%s; press Ctrl+C to stop.
`, tok.AccountID, tok.AccountID, secret, tok.AccountID, url, tok.AccountID, url, url, ln.Addr())

	api := http.NewServeMux()
	api.HandleFunc("GET /api/v1/whoami", whoami)
	mux := http.NewServeMux()
	// Everything under /api/ needs a token, so an unknown API path without
	// one is 401, not 404.
	mux.Handle("/api/", iss.Middleware(api))

	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// openStore opens (or creates) the SQLite database at path with the pragmas
// sqlstore recommends, and migrates it. The returned function closes both.
func openStore(ctx context.Context, path string) (*sqlstore.Store, func(), error) {
	// WAL lets readers run beside a writer; busy_timeout makes a writer wait
	// for another instead of failing.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return nil, nil, err
	}
	store, err := sqlstore.New(db, sqlstore.SQLite)
	if err == nil {
		err = store.Migrate(ctx)
	}
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return store, func() { store.Close(); db.Close() }, nil
}

// whoamiResponse is the token metadata the API returns: never the secret.
type whoamiResponse struct {
	AccountID  string    `json:"account_id"`
	MemberID   string    `json:"member_id,omitempty"`
	TokenID    string    `json:"token_id"`
	TokenName  string    `json:"token_name,omitempty"`
	Scopes     []string  `json:"scopes,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// whoami answers with the verified token that the middleware put in the
// request context.
func whoami(w http.ResponseWriter, r *http.Request) {
	tok, ok := apitoken.FromContext(r.Context())
	if !ok {
		// Only reachable if the middleware is missing: fail closed.
		http.Error(w, "unauthenticated", http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(whoamiResponse{
		AccountID:  tok.AccountID,
		MemberID:   tok.MemberID,
		TokenID:    tok.ID,
		TokenName:  tok.Name,
		Scopes:     tok.Scopes,
		CreatedAt:  tok.CreatedAt,
		ExpiresAt:  tok.ExpiresAt,
		LastUsedAt: tok.LastUsedAt,
	})
}
