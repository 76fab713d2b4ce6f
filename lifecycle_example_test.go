package apitoken_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"time"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
)

// A paused token refuses like an invalid one, stays listed, and works again
// once enabled.
func ExampleIssuer_Disable() {
	ctx := context.Background()
	iss, err := apitoken.NewIssuer(memstore.New())
	if err != nil {
		log.Fatal(err)
	}
	secret, tok, _ := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acct_42", Name: "ci"})

	_ = iss.Disable(ctx, "acct_42", tok.ID)
	_, err = iss.Verify(ctx, "acct_42", secret)
	fmt.Println("disabled:", err)
	toks, _ := iss.List(ctx, "acct_42")
	fmt.Println("listed:", toks[0].Name, iss.Status(toks[0]))

	_ = iss.Enable(ctx, "acct_42", tok.ID)
	_, err = iss.Verify(ctx, "acct_42", secret)
	fmt.Println("enabled:", err)
	// Output:
	// disabled: apitoken: invalid token
	// listed: ci disabled
	// enabled: <nil>
}

// A member who leaves loses their tokens; the account's others stay.
func ExampleIssuer_DeleteMember() {
	ctx := context.Background()
	iss, err := apitoken.NewIssuer(memstore.New())
	if err != nil {
		log.Fatal(err)
	}
	for _, member := range []string{"alice", "alice", "bob"} {
		_, _, _ = iss.Issue(ctx, apitoken.IssueParams{AccountID: "acct_42", MemberID: member})
	}
	n, err := iss.DeleteMember(ctx, "acct_42", "alice")
	fmt.Println("deleted:", n, err)
	toks, _ := iss.List(ctx, "acct_42")
	fmt.Println("left:", len(toks), toks[0].MemberID)
	// Output:
	// deleted: 2 <nil>
	// left: 1 bob
}

// Tokens live 90 days unless asked otherwise, and never more than a year.
func ExampleWithMaxLifetime() {
	ctx := context.Background()
	now := time.Date(2026, time.November, 27, 12, 0, 0, 0, time.UTC)
	iss, err := apitoken.NewIssuer(memstore.New(),
		apitoken.WithClock(func() time.Time { return now }),
		apitoken.WithDefaultLifetime(90*24*time.Hour),
		apitoken.WithMaxLifetime(365*24*time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	_, tok, _ := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acct_42"})
	fmt.Println("expires:", tok.ExpiresAt.Format(time.DateOnly))
	_, _, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: "acct_42", ExpiresAt: now.AddDate(2, 0, 0)})
	fmt.Println(err)
	// Output:
	// expires: 2027-02-25
	// apitoken: invalid input: ExpiresAt is more than 8760h0m0s away, the max lifetime (WithMaxLifetime)
}

// A scheduled job tells owners which tokens stop working within a week, and
// removes those unused for a year.
func ExampleIssuer_Expiring() {
	ctx := context.Background()
	now := time.Date(2026, time.November, 27, 12, 0, 0, 0, time.UTC)
	iss, err := apitoken.NewIssuer(memstore.New(), apitoken.WithClock(func() time.Time { return now }))
	if err != nil {
		log.Fatal(err)
	}
	for i, days := range []int{30, 6, 1} {
		_, _, _ = iss.Issue(ctx, apitoken.IssueParams{
			AccountID: fmt.Sprintf("acct_%d", i), Name: fmt.Sprintf("key %d", i), ExpiresAt: now.AddDate(0, 0, days),
		})
	}
	for tok, err := range iss.Expiring(ctx, now.AddDate(0, 0, 7)) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("tell %s: %q stops on %s\n", tok.AccountID, tok.Name, tok.ExpiresAt.Format(time.DateOnly))
	}
	n, err := iss.PruneUnused(ctx, now.AddDate(-1, 0, 0))
	fmt.Println("unused for a year, removed:", n, err)
	// Output:
	// tell acct_2: "key 2" stops on 2026-11-28
	// tell acct_1: "key 1" stops on 2026-12-03
	// unused for a year, removed: 0 <nil>
}

// A token bound to an office network verifies only from there; the
// middleware reads the connection's address.
func ExampleIssueParams_allowedIPs() {
	ctx := context.Background()
	iss, err := apitoken.NewIssuer(memstore.New())
	if err != nil {
		log.Fatal(err)
	}
	secret, tok, _ := iss.Issue(ctx, apitoken.IssueParams{
		AccountID:  "acct_42",
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
	})
	fmt.Println("hint:", tok.Hint == secret[len(secret)-4:])
	h := iss.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, remote := range []string{"192.0.2.10:50000", "198.51.100.7:50000"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+secret)
		r.Header.Set("X-Account-ID", "acct_42")
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(remote, w.Code)
	}
	// Outside net/http, say where the request came from.
	_, err = iss.Verify(apitoken.WithClientAddr(ctx, netip.MustParseAddr("192.0.2.99")), "acct_42", secret)
	fmt.Println("Verify:", err)
	// Output:
	// hint: true
	// 192.0.2.10:50000 200
	// 198.51.100.7:50000 401
	// Verify: <nil>
}
