package grpcauth_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/grpcauth"
	"github.com/apitoken-go/apitoken/memstore"
)

// The test service: a hand-written grpc.ServiceDesc with wrapperspb
// messages, so that no protoc is needed. Who and Write answer with the
// account of the token in their context, or noToken; Watch sends it on a
// stream, from the stream's Context.
const (
	serviceName  = "grpcauth.test.Echo"
	methodWho    = "/" + serviceName + "/Who"
	methodWrite  = "/" + serviceName + "/Write"
	methodWatch  = "/" + serviceName + "/Watch"
	methodHealth = "/grpc.health.v1.Health/Check"
	noToken      = "(no token)"
)

// echo counts the calls that reached a handler.
type echo struct{ calls atomic.Int64 }

// answer is what every handler answers with: the account id of the
// context's token and the id of the token.
func (e *echo) answer(ctx context.Context) *wrapperspb.StringValue {
	e.calls.Add(1)
	tok, ok := apitoken.FromContext(ctx)
	if !ok {
		return wrapperspb.String(noToken)
	}
	return wrapperspb.String(tok.AccountID)
}

func unaryHandler(method string) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
		in := new(wrapperspb.StringValue)
		if err := dec(in); err != nil {
			return nil, err
		}
		h := func(ctx context.Context, _ any) (any, error) { return srv.(*echo).answer(ctx), nil }
		if icpt == nil {
			return h(ctx, in)
		}
		return icpt(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: method}, h)
	}
}

var echoDesc = grpc.ServiceDesc{
	ServiceName: serviceName,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Who", Handler: unaryHandler(methodWho)},
		{MethodName: "Write", Handler: unaryHandler(methodWrite)},
	},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Watch",
		ServerStreams: true,
		Handler: func(srv any, ss grpc.ServerStream) error {
			in := new(wrapperspb.StringValue)
			if err := ss.RecvMsg(in); err != nil {
				return err
			}
			// Twice, to show the context holds for the whole stream.
			for range 2 {
				if err := ss.SendMsg(srv.(*echo).answer(ss.Context())); err != nil {
					return err
				}
			}
			return nil
		},
	}},
}

// clock is a settable clock for apitoken.WithClock.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

const (
	acctA = "acct_A"
	acctB = "acct_B"
)

// fixture is an Issuer over a memstore holding, for acctA, a token with
// scopes read and write, one with read only, a deleted one and an expired
// one, a token of acctB, and a well-formed secret this store never saw.
type fixture struct {
	iss                     *apitoken.Issuer
	secret, readOnly        string
	otherSecret             string
	deleted, expired, alien string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := t.Context()
	clk := &clock{}
	clk.ns.Store(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	iss, err := apitoken.NewIssuer(memstore.New(), apitoken.WithClock(clk.now))
	require.NoError(t, err)
	t.Cleanup(func() { _ = iss.Close() })
	fx := &fixture{iss: iss}
	issue := func(p apitoken.IssueParams) (string, apitoken.Token) {
		secret, tok, err := iss.Issue(ctx, p)
		require.NoError(t, err)
		return secret, tok
	}
	fx.secret, _ = issue(apitoken.IssueParams{AccountID: acctA, Scopes: []string{"read", "write"}})
	fx.readOnly, _ = issue(apitoken.IssueParams{AccountID: acctA, Scopes: []string{"read"}})
	fx.otherSecret, _ = issue(apitoken.IssueParams{AccountID: acctB})
	var del apitoken.Token
	fx.deleted, del = issue(apitoken.IssueParams{AccountID: acctA})
	require.NoError(t, iss.Delete(ctx, acctA, del.ID))
	fx.expired, _ = issue(apitoken.IssueParams{AccountID: acctA, ExpiresAt: clk.now().Add(time.Hour)})
	clk.advance(2 * time.Hour)

	other, err := apitoken.NewIssuer(memstore.New())
	require.NoError(t, err)
	fx.alien, _, err = other.Issue(ctx, apitoken.IssueParams{AccountID: acctA})
	require.NoError(t, err)
	return fx
}

// secrets returns every secret of the fixture, for leak checks.
func (fx *fixture) secrets() []string {
	return []string{fx.secret, fx.readOnly, fx.otherSecret, fx.deleted, fx.expired, fx.alien}
}

// server is a gRPC server on a loopback listener, with the echo and health
// services behind the interceptors, and a client connection to it.
type server struct {
	conn *grpc.ClientConn
	echo *echo
	// codes receives the status code of each call as the interceptors
	// leave it, seen on the server, before any client-side deadline.
	codes chan error
}

// startServer serves the echo and health services on 127.0.0.1 behind the
// interceptors of iss and opts, and dials it with dialOpts (default:
// insecure transport).
func startServer(t *testing.T, iss *apitoken.Issuer, opts []grpcauth.Option, dialOpts ...grpc.DialOption) *server {
	t.Helper()
	s := &server{echo: &echo{}, codes: make(chan error, 64)}
	record := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		resp, err := h(ctx, req)
		s.codes <- err
		return resp, err
	}
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(record, grpcauth.UnaryServerInterceptor(iss, opts...)),
		grpc.ChainStreamInterceptor(grpcauth.StreamServerInterceptor(iss, opts...)),
	)
	srv.RegisterService(&echoDesc, s.echo)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	s.conn = listenAndDial(t, srv, dialOpts...)
	return s
}

// listenAndDial serves srv on a loopback listener and returns a client
// connection to it, both closed at the end of the test.
func listenAndDial(t testing.TB, srv *grpc.Server, dialOpts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		require.NoError(t, <-done)
	})
	if len(dialOpts) == 0 {
		dialOpts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	conn, err := grpc.NewClient(lis.Addr().String(), dialOpts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// who calls method (Who or Write) with the metadata pairs md and returns
// the account the handler saw, or the call's error.
func (s *server) who(ctx context.Context, method string, md ...string) (string, error) {
	out := new(wrapperspb.StringValue)
	err := s.conn.Invoke(outgoing(ctx, md), method, wrapperspb.String("hi"), out)
	return out.GetValue(), err
}

// watch opens the Watch stream with the metadata pairs md and returns what
// it sent, or the stream's error.
func (s *server) watch(ctx context.Context, md ...string) ([]string, error) {
	ctx, cancel := context.WithCancel(outgoing(ctx, md))
	defer cancel()
	st, err := s.conn.NewStream(ctx, &echoDesc.Streams[0], methodWatch)
	if err != nil {
		return nil, err
	}
	if err := st.SendMsg(wrapperspb.String("hi")); err != nil {
		return nil, err
	}
	if err := st.CloseSend(); err != nil {
		return nil, err
	}
	var got []string
	for {
		out := new(wrapperspb.StringValue)
		if err := st.RecvMsg(out); errors.Is(err, io.EOF) {
			return got, nil
		} else if err != nil {
			return got, err
		}
		got = append(got, out.GetValue())
	}
}

func outgoing(ctx context.Context, md []string) context.Context {
	if len(md) == 0 {
		return ctx
	}
	return metadata.NewOutgoingContext(ctx, metadata.Pairs(md...))
}

// bearer returns the metadata pairs of Bearer credentials.
func bearer(account, secret string) []string {
	return []string{"authorization", "Bearer " + secret, "x-account-id", account}
}

// basic returns the metadata pairs of Basic credentials.
func basic(account, secret string) []string {
	return []string{"authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(account+":"+secret))}
}

// failStore is a Store whose Lookup fails with err, or, when err is nil,
// with the error of the call's context once it ends.
type failStore struct {
	err     error
	lookups atomic.Int64
}

func (s *failStore) Create(context.Context, apitoken.Record) error { return nil }

func (s *failStore) Lookup(ctx context.Context, _ apitoken.Hash) (apitoken.Record, error) {
	s.lookups.Add(1)
	if s.err != nil {
		return apitoken.Record{}, s.err
	}
	select {
	case <-ctx.Done():
		return apitoken.Record{}, ctx.Err()
	case <-time.After(10 * time.Second):
		return apitoken.Record{}, errors.New("test store: the context never ended")
	}
}

func (s *failStore) List(context.Context, string) ([]apitoken.Token, error) { return nil, nil }
func (s *failStore) Delete(context.Context, string, string) error           { return nil }

// newFailing returns an Issuer over a failing store and a well-formed secret
// whose lookup fails.
func newFailing(t *testing.T, err error) (*apitoken.Issuer, *failStore, string) {
	t.Helper()
	st := &failStore{err: err}
	iss, e := apitoken.NewIssuer(st)
	require.NoError(t, e)
	secret, _, e := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: acctA})
	require.NoError(t, e)
	return iss, st, secret
}
