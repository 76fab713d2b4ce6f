package connectauth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/connectauth"
	"github.com/apitoken-go/apitoken/memstore"
)

// BenchmarkOverhead measures what authentication adds to a call, on Connect
// and on net/http, in one run:
//
//   - connect/bare and connect/auth: a unary call in the Connect protocol
//     over a real loopback connection (HTTP/1.1, keep-alive), without and
//     with NewMiddleware's middleware; both carry the same Bearer
//     credentials.
//   - connect/core: the same call with the core's Issuer.Middleware in
//     front of the Connect route instead, the control for the cost of
//     verification in a Connect server.
//   - http/bare and http/auth: a request served by a net/http handler
//     through ServeHTTP into an httptest.ResponseRecorder, without and with
//     the core's Issuer.Middleware.
//   - interleaved: the five of them in turn in every iteration, timed one
//     by one, so that a machine whose load drifts during the run slows bare
//     and auth alike. It reports the added cost of connectauth and of the
//     core middleware (auth minus bare, in ns/call) and their ratio
//     (connect-added/http-added); its ns/op is the sum of the five. The
//     jitter of a loopback round trip can dwarf a few microseconds, so it
//     also reports the added costs as the Connect server sees them
//     (connect-server-added-ns/call for connectauth,
//     core-server-added-ns/call for the core middleware in front of the
//     same route: the time of the middleware and the handler, timed by an
//     outermost net/http middleware on the three servers), the ratio of the
//     first to the HTTP one (server-ratio), and to the second
//     (vs-core-ratio: what connectauth costs beside the core middleware in
//     the same place).
//
// The Issuer is over memstore, without a cache. From this folder:
//
//	GOWORK=off go test -run '^$' -bench Overhead -benchmem -count 6 . | tee bench.txt
//	benchstat bench.txt
func BenchmarkOverhead(b *testing.B) {
	iss, err := apitoken.NewIssuer(memstore.New())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = iss.Close() })
	secret, _, err := iss.Issue(b.Context(), apitoken.IssueParams{AccountID: acctA})
	if err != nil {
		b.Fatal(err)
	}
	auth, err := connectauth.NewMiddleware(iss)
	if err != nil {
		b.Fatal(err)
	}

	unary := func(ctx context.Context, _ *connect.Request[wrapperspb.StringValue]) (*connect.Response[wrapperspb.StringValue], error) {
		tok, _ := apitoken.FromContext(ctx)
		return connect.NewResponse(wrapperspb.String(tok.AccountID)), nil
	}
	// timer adds to *spent the time of the rest of the chain.
	timer := func(spent *time.Duration, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			next.ServeHTTP(w, r)
			*spent += time.Since(start) // the client waits for the call: no race
		})
	}
	dial := func(b *testing.B, spent *time.Duration, mw func(http.Handler) http.Handler) func() {
		mux := http.NewServeMux()
		mux.Handle(procWho, connect.NewUnaryHandler(procWho, unary))
		var h http.Handler = mux
		if mw != nil {
			h = mw(h)
		}
		if spent != nil {
			h = timer(spent, h)
		}
		srv := httptest.NewServer(h)
		b.Cleanup(srv.Close)
		client := connect.NewClient[wrapperspb.StringValue, wrapperspb.StringValue](srv.Client(), srv.URL+procWho)
		req := connect.NewRequest(wrapperspb.String("hi"))
		req.Header().Set("Authorization", "Bearer "+secret)
		req.Header().Set("X-Account-ID", acctA)
		ctx := b.Context()
		return func() {
			if _, err := client.CallUnary(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	}

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := apitoken.FromContext(r.Context())
		_, _ = w.Write([]byte(tok.AccountID))
	})
	serve := func(b *testing.B, h http.Handler) func() {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/whoami", nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set("X-Account-ID", acctA)
		return func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatal(rec.Code)
			}
		}
	}

	for _, bc := range []struct {
		name string
		call func(b *testing.B) func()
	}{
		{"connect/bare", func(b *testing.B) func() { return dial(b, nil, nil) }},
		{"connect/auth", func(b *testing.B) func() { return dial(b, nil, auth) }},
		{"connect/core", func(b *testing.B) func() { return dial(b, nil, iss.Middleware) }},
		{"http/bare", func(b *testing.B) func() { return serve(b, handler) }},
		{"http/auth", func(b *testing.B) func() { return serve(b, iss.Middleware(handler)) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			call := bc.call(b)
			b.ReportAllocs()
			for b.Loop() {
				call()
			}
		})
	}

	b.Run("interleaved", func(b *testing.B) {
		var (
			spent  [5]time.Duration
			server [3]time.Duration // of the Connect bare, auth and core servers
			n      int
		)
		calls := [5]func(){
			dial(b, &server[0], nil), dial(b, &server[1], auth), dial(b, &server[2], iss.Middleware),
			serve(b, handler), serve(b, iss.Middleware(handler)),
		}
		for b.Loop() {
			// Each one first in turn.
			for j := range 5 {
				k := (j + n) % 5
				start := time.Now()
				calls[k]()
				spent[k] += time.Since(start)
			}
			n++
		}
		perCall := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(n) }
		connectAdded := perCall(spent[1]) - perCall(spent[0])
		httpAdded := perCall(spent[4]) - perCall(spent[3])
		serverAdded := perCall(server[1]) - perCall(server[0])
		coreAdded := perCall(server[2]) - perCall(server[0])
		b.ReportMetric(connectAdded, "connect-added-ns/call")
		b.ReportMetric(serverAdded, "connect-server-added-ns/call")
		b.ReportMetric(coreAdded, "core-server-added-ns/call")
		b.ReportMetric(httpAdded, "http-added-ns/call")
		b.ReportMetric(connectAdded/httpAdded, "ratio")
		b.ReportMetric(serverAdded/httpAdded, "server-ratio")
		b.ReportMetric(serverAdded/coreAdded, "vs-core-ratio")
	})
}
