package apitoken_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
)

// An app counts the verifications of each account (for billing, say) and
// reacts to a revoked token, from the Issuer's events. The hook runs inside
// the call: it must be quick, and hand slow work (mail) to a goroutine.
func ExampleWithEvents() {
	perAccount := map[string]int{} // a real app guards it: hooks run concurrently
	hook := func(ctx context.Context, e apitoken.Event) {
		switch e.Kind {
		case apitoken.KindVerified:
			perAccount[e.AccountID]++
		case apitoken.KindRefused:
			fmt.Printf("refused for account %q: %s\n", e.AccountID, e.Reason)
		case apitoken.KindRevoked:
			fmt.Printf("revoked token of %s (%s): tell its owner\n", e.AccountID, e.Related)
		}
	}
	iss, err := apitoken.NewIssuer(memstore.New(), apitoken.WithEvents(hook), apitoken.WithLastUseInterval(0))
	if err != nil {
		log.Fatal(err)
	}
	defer iss.Close()

	ctx := context.Background()
	secret, _, _ := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
	_, _ = iss.Verify(ctx, "acme", secret)
	_, _ = iss.Verify(ctx, "acme", secret)
	_, _ = iss.Verify(ctx, "globex", secret)
	_, _ = iss.RevokeSecret(ctx, secret)
	fmt.Println("verifications of acme:", perAccount["acme"])
	// Output:
	// refused for account "globex": wrong account
	// revoked token of acme (leaked): tell its owner
	// verifications of acme: 2
}

// Stats is a snapshot to read at scrape time: verifications by outcome,
// the cache, the bus, the last uses.
func ExampleIssuer_Stats() {
	iss, err := apitoken.NewIssuer(memstore.New(), apitoken.WithCache(1000, time.Minute))
	if err != nil {
		log.Fatal(err)
	}
	defer iss.Close()
	ctx := context.Background()
	secret, _, _ := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
	for range 4 {
		_, _ = iss.Verify(ctx, "acme", secret)
	}
	_, _ = iss.Verify(ctx, "acme", "not a token")

	s := iss.Stats()
	fmt.Println("verified:", s.Verifications.Verified)
	fmt.Println("refused as malformed:", s.Verifications.RefusedFor(apitoken.ReasonMalformed))
	fmt.Printf("cache: %d entry, hit ratio %.2f\n", s.Cache.Entries, s.Cache.HitRatio())
	fmt.Println("bus:", s.Bus.State)
	// Output:
	// verified: 4
	// refused as malformed: 1
	// cache: 1 entry, hit ratio 0.75
	// bus: none
}
