package grpcauth_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/grpcauth"
	"github.com/apitoken-go/apitoken/memstore"
)

// panicOf returns what f panics with, or nil.
func panicOf(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}

// TestOptions checks that both constructors accept the valid options and
// panic, with an error wrapping apitoken.ErrInvalidInput that names the
// problem, on each invalid one.
func TestOptions(t *testing.T) {
	iss, err := apitoken.NewIssuer(memstore.New())
	require.NoError(t, err)
	tests := []struct {
		name    string
		iss     *apitoken.Issuer
		opts    []grpcauth.Option
		wantErr string // "" for none
	}{
		{"ok, no options", iss, nil, ""},
		{"ok, every option", iss, []grpcauth.Option{
			grpcauth.WithMethodScopes(map[string][]string{"/pkg.Svc/Write": {"write", "items:delete"}, "/Svc/Read": nil}),
			grpcauth.WithMethodScopes(map[string][]string{"/pkg.Svc/Other": {"a"}}),
			grpcauth.WithPublicMethods("/grpc.health.v1.Health/Check", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
			grpcauth.WithPublicMethods("/grpc.health.v1.Health/Check"),
			grpcauth.WithLogger(slog.New(slog.DiscardHandler)),
			grpcauth.WithLogger(nil),
		}, ""},
		{"nok, nil Issuer", nil, nil, "grpcauth: apitoken: invalid input: Issuer is nil"},
		{"nok, nil option", iss, []grpcauth.Option{nil}, "nil Option"},
		{"nok, scoped method without leading slash", iss, []grpcauth.Option{
			grpcauth.WithMethodScopes(map[string][]string{"pkg.Svc/Write": {"write"}}),
		}, `method name "pkg.Svc/Write" is not of the form /package.Service/Method`},
		{"nok, scoped method without method", iss, []grpcauth.Option{
			grpcauth.WithMethodScopes(map[string][]string{"/pkg.Svc/": {"write"}}),
		}, "is not of the form"},
		{"nok, scoped method without service", iss, []grpcauth.Option{
			grpcauth.WithMethodScopes(map[string][]string{"//Write": {"write"}}),
		}, "is not of the form"},
		{"nok, scoped method with a third part", iss, []grpcauth.Option{
			grpcauth.WithMethodScopes(map[string][]string{"/pkg.Svc/Write/x": {"write"}}),
		}, "is not of the form"},
		{"nok, scoped method with a space", iss, []grpcauth.Option{
			grpcauth.WithMethodScopes(map[string][]string{"/pkg.Svc/Write ": {"write"}}),
		}, "is not of the form"},
		{"nok, empty scope", iss, []grpcauth.Option{
			grpcauth.WithMethodScopes(map[string][]string{"/pkg.Svc/Write": {"write", ""}}),
		}, "scope 1 of /pkg.Svc/Write must be 1 to 64 printable ASCII characters"},
		{"nok, scope with a space", iss, []grpcauth.Option{
			grpcauth.WithMethodScopes(map[string][]string{"/pkg.Svc/Write": {"read write"}}),
		}, "scope 0 of /pkg.Svc/Write must be"},
		{"nok, oversized scope", iss, []grpcauth.Option{
			grpcauth.WithMethodScopes(map[string][]string{"/pkg.Svc/Write": {strings.Repeat("s", 65)}}),
		}, "scope 0 of /pkg.Svc/Write must be"},
		{"nok, method given scopes twice", iss, []grpcauth.Option{
			grpcauth.WithMethodScopes(map[string][]string{"/pkg.Svc/Write": {"write"}}),
			grpcauth.WithMethodScopes(map[string][]string{"/pkg.Svc/Write": {"admin"}}),
		}, "/pkg.Svc/Write is given scopes twice"},
		{"nok, public method without leading slash", iss, []grpcauth.Option{
			grpcauth.WithPublicMethods("grpc.health.v1.Health/Check"),
		}, `method name "grpc.health.v1.Health/Check" is not of the form`},
		{"nok, empty public method", iss, []grpcauth.Option{grpcauth.WithPublicMethods("")}, "is not of the form"},
		{"nok, public method given scopes", iss, []grpcauth.Option{
			grpcauth.WithPublicMethods("/pkg.Svc/Write"),
			grpcauth.WithMethodScopes(map[string][]string{"/pkg.Svc/Write": {"write"}}),
		}, "/pkg.Svc/Write is both public and given scopes"},
	}
	for _, tt := range tests {
		for _, kind := range []string{"unary", "stream"} {
			t.Run(tt.name+", "+kind, func(t *testing.T) {
				got := panicOf(func() {
					if kind == "unary" {
						assert.NotNil(t, grpcauth.UnaryServerInterceptor(tt.iss, tt.opts...))
					} else {
						assert.NotNil(t, grpcauth.StreamServerInterceptor(tt.iss, tt.opts...))
					}
				})
				if tt.wantErr == "" {
					assert.Nil(t, got)
					return
				}
				err, ok := got.(error)
				require.True(t, ok, "panics with an error, not %v", got)
				assert.True(t, errors.Is(err, apitoken.ErrInvalidInput), err.Error())
				assert.True(t, strings.HasPrefix(err.Error(), "grpcauth: "), err.Error())
				assert.Contains(t, err.Error(), tt.wantErr)
			})
		}
	}
}

// TestMethodScopesCopied checks that changing the map or the slices given
// to WithMethodScopes afterwards changes nothing.
func TestMethodScopesCopied(t *testing.T) {
	fx := newFixture(t)
	required := []string{"write"}
	scopes := map[string][]string{methodWrite: required}
	s := startServer(t, fx.iss, []grpcauth.Option{grpcauth.WithMethodScopes(scopes)})
	required[0] = "read"
	delete(scopes, methodWrite)
	_, err := s.who(t.Context(), methodWrite, bearer(acctA, fx.readOnly)...)
	assert.Error(t, err, "still requires write")
}
