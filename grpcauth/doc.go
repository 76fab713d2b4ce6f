// Package grpcauth protects gRPC services with API tokens of
// github.com/apitoken-go/apitoken.
//
// UnaryServerInterceptor and StreamServerInterceptor authenticate each call
// by its metadata, either of
//
//	authorization: Bearer <secret>   with   x-account-id: <account id>
//	authorization: Basic base64(<account id>:<secret>)
//
// They hand those metadata values, as HTTP headers, to the Authenticate of
// an apitoken.Guard, so that a gRPC call is read by the very code that reads
// an HTTP request, with the same rules and limits (one authorization value,
// at most 4096 bytes, one credential, an account id with a Bearer secret).
// A verified token is in the handler's context, and in a stream's Context,
// where apitoken.FromContext finds it. A refused call never reaches the
// handler:
//
//	no credentials; an invalid, expired or deleted token, or another account's   Unauthenticated (one message for all)
//	malformed or ambiguous credentials                                           InvalidArgument
//	a token without a scope the method requires (WithMethodScopes)               PermissionDenied
//	the store failing, or the call's context ending                              Unavailable (logged, see WithLogger)
//
// No status message holds anything from the call, the secret least of all.
// WithPublicMethods exempts health checks and reflection. A token with
// AllowedIPs verifies only when the call's peer (the connection gRPC
// accepted, from peer.FromContext) is in them; behind a proxy that is the
// proxy's address.
//
// A handler may check scopes itself, when the rule depends on the request,
// with Token.HasScope:
//
//	func (s *server) DeleteItem(ctx context.Context, req *pb.DeleteItemRequest) (*pb.DeleteItemResponse, error) {
//		tok, _ := apitoken.FromContext(ctx)
//		if !tok.HasScope("write") {
//			return nil, status.Error(codes.PermissionDenied, "the token lacks the write scope")
//		}
//		…
//	}
//
// A client sends its credentials with PerRPCCredentials:
//
//	conn, err := grpc.NewClient(addr,
//		grpc.WithTransportCredentials(credentials.NewTLS(nil)),
//		grpc.WithPerRPCCredentials(grpcauth.NewPerRPCCredentials(accountID, secret)))
package grpcauth
