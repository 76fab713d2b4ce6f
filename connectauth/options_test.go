package connectauth_test

import (
	"log/slog"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/connectauth"
	"github.com/apitoken-go/apitoken/internal/logcheck"
)

func TestNewMiddlewareInvalid(t *testing.T) {
	fx := newFixture(t)
	tests := []struct {
		name string
		iss  *apitoken.Issuer
		opts []connectauth.Option
		msg  string
	}{
		{name: "nok, nil Issuer", msg: "Issuer is nil"},
		{name: "nok, nil Option", iss: fx.iss, opts: []connectauth.Option{nil}, msg: "nil Option"},
		{name: "nok, procedure without a leading slash", iss: fx.iss,
			opts: []connectauth.Option{connectauth.WithPublicProcedures("test.v1.Who/Ping")}, msg: "not of the form"},
		{name: "nok, procedure without a method", iss: fx.iss,
			opts: []connectauth.Option{connectauth.WithPublicProcedures("/test.v1.Who/")}, msg: "not of the form"},
		{name: "nok, procedure without a service", iss: fx.iss,
			opts: []connectauth.Option{connectauth.WithProcedureScopes(map[string][]string{"//Ping": {"read"}})}, msg: "not of the form"},
		{name: "nok, procedure of three segments", iss: fx.iss,
			opts: []connectauth.Option{connectauth.WithProcedureScopes(map[string][]string{"/api/test.v1.Who/Ping": {"read"}})}, msg: "not of the form"},
		{name: "nok, procedure with a space", iss: fx.iss,
			opts: []connectauth.Option{connectauth.WithPublicProcedures("/test.v1.Who/Pi ng")}, msg: "not of the form"},
		{name: "nok, empty scope", iss: fx.iss,
			opts: []connectauth.Option{connectauth.WithProcedureScopes(map[string][]string{procRead: {""}})}, msg: "scope 0 of " + procRead},
		{name: "nok, scope with a space", iss: fx.iss,
			opts: []connectauth.Option{connectauth.WithProcedureScopes(map[string][]string{procRead: {"read", "a b"}})}, msg: "scope 1 of " + procRead},
		{name: "nok, scope too long", iss: fx.iss,
			opts: []connectauth.Option{connectauth.WithProcedureScopes(map[string][]string{procRead: {strings.Repeat("a", 65)}})}, msg: "scope 0"},
		{name: "nok, procedure given scopes twice", iss: fx.iss, opts: []connectauth.Option{
			connectauth.WithProcedureScopes(map[string][]string{procRead: {"read"}}),
			connectauth.WithProcedureScopes(map[string][]string{procRead: {"write"}}),
		}, msg: "given scopes twice"},
		{name: "nok, procedure public and scoped", iss: fx.iss, opts: []connectauth.Option{
			connectauth.WithPublicProcedures(procRead),
			connectauth.WithProcedureScopes(map[string][]string{procRead: {"read"}}),
		}, msg: "both public and given scopes"},
		{name: "nok, nil HandlerOption", iss: fx.iss,
			opts: []connectauth.Option{connectauth.WithHandlerOptions(nil)}, msg: "nil HandlerOption"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw, err := connectauth.NewMiddleware(tt.iss, tt.opts...)
			require.ErrorIs(t, err, apitoken.ErrInvalidInput)
			assert.Nil(t, mw)
			assert.True(t, strings.HasPrefix(err.Error(), "connectauth: "), err.Error())
			assert.Contains(t, err.Error(), tt.msg)
		})
	}
}

// TestOptionsCombine gives options several times, and procedures no
// scopes.
func TestOptionsCombine(t *testing.T) {
	fx := newFixture(t)
	s := serve(t, fx.iss, []connectauth.Option{
		connectauth.WithProcedureScopes(map[string][]string{procRead: {"read"}, procWho: {}}),
		connectauth.WithProcedureScopes(map[string][]string{procAdmin: {"admin"}}),
		connectauth.WithPublicProcedures(),
		connectauth.WithPublicProcedures(procPing),
		connectauth.WithHandlerOptions(),
		connectauth.WithHandlerOptions(connect.WithRequireConnectProtocolHeader()),
	}, nil)
	tests := []struct {
		name  string
		proc  string
		creds creds
		code  connect.Code
	}{
		{"ok, a procedure listed without scopes needs a token", procWho, bearer(fx.secret, acctA), 0},
		{"nok, a procedure listed without scopes needs a token", procWho, creds{}, connect.CodeUnauthenticated},
		{"ok, the scopes of the first option", procRead, bearer(fx.secret, acctA), 0},
		{"nok, the scopes of the second option", procAdmin, bearer(fx.secret, acctA), connect.CodePermissionDenied},
		{"ok, the public procedure of the second option", procPing, creds{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err, _ := s.call(t.Context(), t, protocols[0], tt.proc, tt.creds)
			if tt.code == 0 {
				require.Nil(t, err)
				return
			}
			require.NotNil(t, err)
			assert.Equal(t, tt.code, err.Code())
		})
	}
}

// TestScopesAreCopied checks that changing the map or slice given to
// WithProcedureScopes after the fact changes nothing.
func TestScopesAreCopied(t *testing.T) {
	fx := newFixture(t)
	scopes := map[string][]string{procRead: {"admin"}}
	s := serve(t, fx.iss, []connectauth.Option{connectauth.WithProcedureScopes(scopes)}, nil)
	scopes[procRead][0] = "read"
	scopes[procWho] = []string{"admin"}
	_, err, _ := s.call(t.Context(), t, protocols[0], procRead, bearer(fx.secret, acctA))
	require.NotNil(t, err)
	assert.Equal(t, connect.CodePermissionDenied, err.Code())
	_, err, _ = s.call(t.Context(), t, protocols[0], procWho, bearer(fx.secret, acctA))
	assert.Nil(t, err)
}

// TestDefaultLogger logs a failure to check to slog.Default() at the time
// of the failure when no logger is given.
func TestDefaultLogger(t *testing.T) {
	fx := newFixture(t)
	iss, _ := failing(t, errDBDown)
	tests := []struct {
		name string
		opts []connectauth.Option
	}{
		{"ok, no WithLogger", []connectauth.Option{}},
		{"ok, WithLogger(nil)", []connectauth.Option{connectauth.WithLogger(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := serve(t, iss, tt.opts, nil)
			logs := &logcheck.Buffer{}
			prev := slog.Default()
			slog.SetDefault(slog.New(slog.NewJSONHandler(logs, nil)))
			t.Cleanup(func() { slog.SetDefault(prev) })
			for _, p := range []protocol{protocols[0], protocols[2]} {
				_, err, _ := s.call(t.Context(), t, p, procWho, bearer(fx.secret, acctA))
				require.NotNil(t, err)
				assert.Equal(t, connect.CodeUnavailable, err.Code())
			}
			assert.Equal(t, 2, strings.Count(logs.String(), msgLogged), logs.String())
			assert.Contains(t, logs.String(), `"level":"ERROR"`)
			assertNoSecretLogged(t, logs.String(), fx.secrets())
		})
	}
}
