package connectauth_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/connectauth"
	"github.com/apitoken-go/apitoken/memstore"
)

// A Connect service whose procedures need a verified token, one of them
// the scope "admin", and one of them public, called by a Connect client.
func Example() {
	iss, err := apitoken.NewIssuer(memstore.New())
	if err != nil {
		log.Fatal(err)
	}
	defer iss.Close()
	secret, _, err := iss.Issue(context.Background(), apitoken.IssueParams{
		AccountID: "acct_42",
		Scopes:    []string{"read"},
	})
	if err != nil {
		log.Fatal(err)
	}

	// The procedures, as generated code would name them.
	const (
		whoami = "/acme.account.v1.AccountService/Whoami"
		purge  = "/acme.account.v1.AccountService/Purge"
		health = "/acme.account.v1.AccountService/Health"
	)
	mux := http.NewServeMux()
	mux.Handle(whoami, connect.NewUnaryHandler(whoami,
		func(ctx context.Context, _ *connect.Request[emptypb.Empty]) (*connect.Response[wrapperspb.StringValue], error) {
			tok, _ := apitoken.FromContext(ctx) // always there behind the middleware
			return connect.NewResponse(wrapperspb.String(tok.AccountID)), nil
		}))
	mux.Handle(purge, connect.NewUnaryHandler(purge,
		func(context.Context, *connect.Request[emptypb.Empty]) (*connect.Response[wrapperspb.StringValue], error) {
			return connect.NewResponse(wrapperspb.String("purged")), nil
		}))
	mux.Handle(health, connect.NewUnaryHandler(health,
		func(context.Context, *connect.Request[emptypb.Empty]) (*connect.Response[wrapperspb.StringValue], error) {
			return connect.NewResponse(wrapperspb.String("serving")), nil
		}))

	auth, err := connectauth.NewMiddleware(iss,
		connectauth.WithProcedureScopes(map[string][]string{purge: {"admin"}}),
		connectauth.WithPublicProcedures(health))
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(auth(mux))
	defer srv.Close()

	call := func(proc string, authorize bool) {
		client := connect.NewClient[emptypb.Empty, wrapperspb.StringValue](srv.Client(), srv.URL+proc)
		req := connect.NewRequest(&emptypb.Empty{})
		if authorize {
			req.Header().Set("Authorization", "Bearer "+secret)
			req.Header().Set("X-Account-ID", "acct_42")
		}
		resp, err := client.CallUnary(context.Background(), req)
		if err != nil {
			fmt.Printf("%s: %v\n", proc, err)
			return
		}
		fmt.Printf("%s: %s\n", proc, resp.Msg.GetValue())
	}
	call(whoami, true)
	call(whoami, false)
	call(purge, true)
	call(health, false)
	// Output:
	// /acme.account.v1.AccountService/Whoami: acct_42
	// /acme.account.v1.AccountService/Whoami: unauthenticated: connectauth: missing or invalid credentials
	// /acme.account.v1.AccountService/Purge: permission_denied: connectauth: the access token lacks a required scope: requires admin
	// /acme.account.v1.AccountService/Health: serving
}
