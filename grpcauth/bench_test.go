package grpcauth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/grpcauth"
	"github.com/apitoken-go/apitoken/memstore"
)

// BenchmarkOverhead measures what authentication adds to a call, on gRPC
// and on net/http, in one run:
//
//   - grpc/bare and grpc/auth: a unary call over a real loopback
//     connection, without and with UnaryServerInterceptor; both carry the
//     same Bearer credentials.
//   - http/bare and http/auth: the same request served by an httptest
//     handler through ServeHTTP into an httptest.ResponseRecorder, without
//     and with the core's Issuer.Middleware.
//   - interleaved: the four of them in turn in every iteration, timed one by
//     one, so that a machine whose load drifts during the run slows bare and
//     auth alike. It reports the added cost of each (auth minus bare, in
//     ns/call) and their ratio (grpc-added/http-added); its ns/op is the
//     sum of the four. On a loaded machine the jitter of a loopback round
//     trip dwarfs a few microseconds, so it also reports the added cost
//     as the gRPC server sees it (grpc-server-added-ns/call: the time of the
//     interceptors and the handler, timed by an outermost interceptor on
//     both servers) and its ratio to the HTTP one (server-ratio).
//
// The Issuer is over memstore, without a cache.
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
	dial := func(b *testing.B, interceptors ...grpc.UnaryServerInterceptor) func() {
		srv := grpc.NewServer(grpc.ChainUnaryInterceptor(interceptors...))
		srv.RegisterService(&echoDesc, &echo{})
		conn := listenAndDial(b, srv)
		ctx := metadata.NewOutgoingContext(b.Context(), metadata.Pairs(bearer(acctA, secret)...))
		in := wrapperspb.String("hi")
		return func() {
			out := new(wrapperspb.StringValue)
			if err := conn.Invoke(ctx, methodWho, in, out); err != nil {
				b.Fatal(err)
			}
		}
	}
	auth := grpcauth.UnaryServerInterceptor(iss)
	// timer adds to *spent the time of the rest of the chain.
	timer := func(spent *time.Duration) grpc.UnaryServerInterceptor {
		return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			start := time.Now()
			resp, err := h(ctx, req)
			*spent += time.Since(start) // the client waits for the call: no race
			return resp, err
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
		{"grpc/bare", func(b *testing.B) func() { return dial(b) }},
		{"grpc/auth", func(b *testing.B) func() { return dial(b, auth) }},
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
			spent  [4]time.Duration
			server [2]time.Duration // of the gRPC bare and auth servers
			n      int
		)
		calls := [4]func(){
			dial(b, timer(&server[0])), dial(b, timer(&server[1]), auth),
			serve(b, handler), serve(b, iss.Middleware(handler)),
		}
		for b.Loop() {
			// Bare first in one iteration, auth first in the next.
			for j := range 4 {
				k := j ^ n&1
				start := time.Now()
				calls[k]()
				spent[k] += time.Since(start)
			}
			n++
		}
		perCall := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(n) }
		grpcAdded := perCall(spent[1]) - perCall(spent[0])
		httpAdded := perCall(spent[3]) - perCall(spent[2])
		serverAdded := perCall(server[1]) - perCall(server[0])
		b.ReportMetric(grpcAdded, "grpc-added-ns/call")
		b.ReportMetric(serverAdded, "grpc-server-added-ns/call")
		b.ReportMetric(httpAdded, "http-added-ns/call")
		b.ReportMetric(grpcAdded/httpAdded, "ratio")
		b.ReportMetric(serverAdded/httpAdded, "server-ratio")
	})
}
