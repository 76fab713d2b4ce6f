// Package connectauth protects Connect services (connectrpc.com/connect)
// with API tokens of github.com/apitoken-go/apitoken.
//
// NewMiddleware returns net/http middleware that goes around the Connect
// handlers. It authenticates each request by its headers, either of
//
//	Authorization: Bearer <secret>   with   X-Account-ID: <account id>
//	Authorization: Basic base64(<account id>:<secret>)
//
// with the Authenticate of an apitoken.Guard, the very code of the core's
// net/http middleware, before the request body is read or decoded. A
// verified token is in the request context, where apitoken.FromContext
// finds it in the ctx of a Connect handler. A refused request
// never reaches the handler, and is answered as a Connect error in the
// client's protocol (Connect, gRPC or gRPC-Web), unary or streaming:
//
//	no credentials; an invalid, expired or deleted token, or another account's   CodeUnauthenticated (one message for all)
//	malformed or ambiguous credentials                                           CodeInvalidArgument
//	a token without a scope the procedure requires (WithProcedureScopes)        CodePermissionDenied
//	the store failing, the request's context or the client's deadline ending   CodeUnavailable (logged, see WithLogger)
//
// No error message holds anything from the request, the secret least of
// all. A request in no RPC protocol gets the core's plain HTTP answer
// instead (401, 400, 403 or 503 with a problem+json body).
// WithPublicProcedures exempts health checks and reflection.
//
//	auth, err := connectauth.NewMiddleware(iss,
//		connectauth.WithProcedureScopes(map[string][]string{
//			ordersv1connect.OrdersCancelOrderProcedure: {"orders:write"},
//		}))
//	if err != nil {
//		log.Fatal(err)
//	}
//	mux := http.NewServeMux()
//	mux.Handle(ordersv1connect.NewOrdersHandler(&orders{}))
//	srv := &http.Server{Addr: ":8080", Handler: auth(mux), Protocols: &protocols}
//
// A handler may check a scope itself, when the rule depends on the request,
// with Token.HasScope on the token of apitoken.FromContext.
package connectauth
