package grpcauth_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/grpcauth"
	"github.com/apitoken-go/apitoken/memstore"
)

// whoAmI is the handler of the example's service: it answers with the
// account of the verified token.
func whoAmI(ctx context.Context, _ *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	tok, _ := apitoken.FromContext(ctx) // always there: the interceptor let the call through
	return wrapperspb.String(tok.AccountID), nil
}

// exampleDesc describes the example's service, "example.Accounts" with the
// methods WhoAmI and Delete, by hand, as protoc-gen-go-grpc would generate
// it, so that the example needs no generated code.
var exampleDesc = grpc.ServiceDesc{
	ServiceName: "example.Accounts",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "WhoAmI", Handler: exampleHandler("/example.Accounts/WhoAmI")},
		{MethodName: "Delete", Handler: exampleHandler("/example.Accounts/Delete")},
	},
}

func exampleHandler(method string) grpc.MethodHandler {
	return func(_ any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
		in := new(wrapperspb.StringValue)
		if err := dec(in); err != nil {
			return nil, err
		}
		handler := func(ctx context.Context, req any) (any, error) { return whoAmI(ctx, req.(*wrapperspb.StringValue)) }
		if icpt == nil {
			return handler(ctx, in)
		}
		return icpt(ctx, in, &grpc.UnaryServerInfo{FullMethod: method}, handler)
	}
}

// serveExample serves the example's service and the health service on a
// loopback port behind the interceptors of iss and opts, and returns its
// address and a function that stops it.
func serveExample(iss *apitoken.Issuer, opts ...grpcauth.Option) (addr string, stop func()) {
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(grpcauth.UnaryServerInterceptor(iss, opts...)),
		grpc.StreamInterceptor(grpcauth.StreamServerInterceptor(iss, opts...)),
	)
	srv.RegisterService(&exampleDesc, nil)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	return lis.Addr().String(), srv.Stop
}

// A gRPC server whose calls are authenticated by API tokens, and a client
// that sends its token with every call. Over the network, use TLS and drop
// WithoutTransportSecurity.
func Example() {
	ctx := context.Background()
	iss, err := apitoken.NewIssuer(memstore.New())
	if err != nil {
		log.Fatal(err)
	}
	secret, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acct_demo", Name: "CI"})
	if err != nil {
		log.Fatal(err)
	}
	addr, stop := serveExample(iss, grpcauth.WithPublicMethods("/grpc.health.v1.Health/Check"))
	defer stop()

	// A client with the token.
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(grpcauth.NewPerRPCCredentials("acct_demo", secret, grpcauth.WithoutTransportSecurity())))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	out := new(wrapperspb.StringValue)
	if err := conn.Invoke(ctx, "/example.Accounts/WhoAmI", wrapperspb.String(""), out); err != nil {
		log.Fatal(err)
	}
	fmt.Println("authenticated as", out.GetValue())

	// A client without one: refused, except for the public health check.
	anon, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer anon.Close()
	err = anon.Invoke(ctx, "/example.Accounts/WhoAmI", wrapperspb.String(""), out)
	fmt.Println(status.Code(err), status.Convert(err).Message())
	resp, err := healthpb.NewHealthClient(anon).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("health:", resp.GetStatus())
	// Output:
	// authenticated as acct_demo
	// Unauthenticated grpcauth: missing or invalid credentials
	// health: SERVING
}

// Methods that need a scope. Inside a handler, Token.HasScope checks a scope
// for rules that depend on the request.
func ExampleWithMethodScopes() {
	ctx := context.Background()
	iss, err := apitoken.NewIssuer(memstore.New())
	if err != nil {
		log.Fatal(err)
	}
	readOnly, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acct_demo", Scopes: []string{"read"}})
	if err != nil {
		log.Fatal(err)
	}
	addr, stop := serveExample(iss, grpcauth.WithMethodScopes(map[string][]string{
		"/example.Accounts/WhoAmI": {"read"},
		"/example.Accounts/Delete": {"write"},
	}))
	defer stop()
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(grpcauth.NewPerRPCCredentials("acct_demo", readOnly, grpcauth.WithoutTransportSecurity())))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	for _, method := range []string{"/example.Accounts/WhoAmI", "/example.Accounts/Delete"} {
		err := conn.Invoke(ctx, method, wrapperspb.String(""), new(wrapperspb.StringValue))
		fmt.Println(method, status.Code(err))
	}
	// Output:
	// /example.Accounts/WhoAmI OK
	// /example.Accounts/Delete PermissionDenied
}

// The credentials never print their secret.
func ExampleNewPerRPCCredentials() {
	creds := grpcauth.NewPerRPCCredentials("acct_demo", "apitoken_0123456789ABCDEFGHIJabcdefghij00000000")
	fmt.Println(creds)
	fmt.Printf("%#v\n", creds)
	fmt.Println("needs TLS:", creds.RequireTransportSecurity())
	// Output:
	// grpcauth.PerRPCCredentials{AccountID: "acct_demo", Secret: [REDACTED]}
	// grpcauth.PerRPCCredentials{AccountID: "acct_demo", Secret: [REDACTED]}
	// needs TLS: true
}
