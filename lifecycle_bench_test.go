package apitoken_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
)

// BenchmarkAuthenticateAllowedIPs measures Guard.Authenticate of a token
// bound to four prefixes, from an allowed RemoteAddr, beside the same for
// tokens without a list, in one run: the price of an allowlist is the
// address's parse and a few prefix comparisons, paid only by the tokens
// that have one.
func BenchmarkAuthenticateAllowedIPs(b *testing.B) {
	ctx := context.Background()
	iss, err := apitoken.NewIssuer(memstore.New(), apitoken.WithLastUseInterval(0))
	if err != nil {
		b.Fatal(err)
	}
	list := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("192.0.2.0/24"),
	}
	g, err := iss.NewGuard(apitoken.MiddlewareConfig{})
	if err != nil {
		b.Fatal(err)
	}
	requests := func(allowed []netip.Prefix) []*http.Request {
		reqs := make([]*http.Request, 256)
		for i := range reqs {
			account := fmt.Sprintf("acct_%d", i)
			secret, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: account, AllowedIPs: allowed})
			if err != nil {
				b.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Authorization", "Bearer "+secret)
			r.Header.Set("X-Account-ID", account)
			r.RemoteAddr = "192.0.2.10:50123" // in the last prefix
			reqs[i] = r
		}
		return reqs
	}
	for _, c := range []struct {
		name string
		reqs []*http.Request
	}{{"list=none", requests(nil)}, {"list=4-prefixes", requests(list)}} {
		b.Run(c.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				if _, err := g.Authenticate(c.reqs[i]); err != nil {
					b.Fatal(err)
				}
				if i++; i == len(c.reqs) {
					i = 0
				}
			}
		})
	}
}
