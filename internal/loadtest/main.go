// Command loadtest serves one route, bare or behind the apitoken middleware,
// for a loopback load test with wrk (see run.sh beside it). It is a
// benchmark tool, not an example: it prints a live secret to stdout so that
// the load generator can use it.
//
// Both modes preload the same store, so that they run with the same heap:
// a large resident store slows even a handler that never reads it (GC), and
// the comparison must show the middleware's cost, not the heap's.
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8089", "listen address (loopback only)")
	mode := flag.String("mode", "middleware", "bare: the handler alone; middleware: behind iss.Middleware")
	tokens := flag.Int("tokens", 100_000, "tokens preloaded into the memstore, in both modes")
	flag.Parse()

	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		log.Fatalf("loadtest: -addr: %v", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		log.Fatalf("loadtest: -addr must be a loopback address, got %q", host)
	}
	if *tokens < 1 {
		log.Fatal("loadtest: -tokens must be at least 1")
	}

	store := memstore.New()
	iss, err := apitoken.NewIssuer(store)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	const account = "acct-loadtest"
	secret, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: account, Name: "loadtest", Scopes: []string{"tokens:read"}})
	if err != nil {
		log.Fatal(err)
	}
	if err := preload(ctx, store, *tokens-1); err != nil {
		log.Fatal(err)
	}

	ok := []byte("ok\n")
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write(ok)
	})
	switch *mode {
	case "bare":
	case "middleware":
		h = iss.Middleware(h)
	default:
		log.Fatalf("loadtest: -mode must be bare or middleware, got %q", *mode)
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	// One line, read by run.sh: the server is ready once it is printed.
	fmt.Printf("account=%s secret=%s\n", account, secret)
	_ = os.Stdout.Sync()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.Serve(ln))
}

// preload creates n records with random hashes, shaped like issued tokens
// and spread over 1,000 accounts, directly in the store: issuing them would
// only make the start slower.
func preload(ctx context.Context, store *memstore.Store, n int) error {
	now := time.Now().UTC().Truncate(time.Microsecond)
	scopes := []string{"tokens:read"}
	accounts := make([]string, 1000)
	for i := range accounts {
		accounts[i] = "acct-" + strconv.Itoa(i)
	}
	for i := range n {
		rec := apitoken.Record{Token: apitoken.Token{
			ID:        fmt.Sprintf("00000000-0000-7000-8000-%012d", i),
			AccountID: accounts[i%len(accounts)],
			Name:      "preloaded",
			Scopes:    scopes,
			CreatedAt: now,
		}}
		rand.Read(rec.Hash[:])
		if err := store.Create(ctx, rec); err != nil {
			return err
		}
	}
	return nil
}
