package grpcauth_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/grpcauth"
	"github.com/apitoken-go/apitoken/internal/logcheck"
)

// msgUnauthenticated is the one message of every Unauthenticated refusal.
const msgUnauthenticated = "grpcauth: missing or invalid credentials"

// secretPattern matches every secret an Issuer issues.
var secretPattern = regexp.MustCompile(apitoken.Pattern)

// assertNoSecret fails if s holds any of secrets or anything that looks like
// a secret. (logcheck.Leak would also see an Authorization value in the
// core's reason "malformed Basic credentials".)
func assertNoSecret(t *testing.T, s string, secrets []string) {
	t.Helper()
	for _, secret := range secrets {
		assert.NotContains(t, s, secret)
	}
	assert.NotRegexp(t, secretPattern, s)
}

// assertNoLeakInLogs fails if logs hold any of secrets, a secret or an
// Authorization value.
func assertNoLeakInLogs(t *testing.T, logs string, secrets []string) {
	t.Helper()
	assertNoSecret(t, logs, secrets)
	assert.Empty(t, logcheck.Leak(logs))
}

// TestAuthentication runs each request of the table as a unary call and as
// a stream, over a real connection.
func TestAuthentication(t *testing.T) {
	fx := newFixture(t)
	s := startServer(t, fx.iss, nil)
	huge := "Bearer " + strings.Repeat("a", 5000)
	tests := []struct {
		name string
		md   []string
		want codes.Code
	}{
		{"ok, Bearer with account", bearer(acctA, fx.secret), codes.OK},
		{"ok, Basic", basic(acctA, fx.secret), codes.OK},
		{"ok, Bearer scheme in upper case", []string{"authorization", "BEARER " + fx.secret, "x-account-id", acctA}, codes.OK},
		{"nok, no credentials", nil, codes.Unauthenticated},
		{"nok, account id without a token", []string{"x-account-id", acctA}, codes.Unauthenticated},
		{"nok, another scheme", []string{"authorization", "Digest " + fx.secret}, codes.Unauthenticated},
		{"nok, unknown token", bearer(acctA, fx.alien), codes.Unauthenticated},
		{"nok, expired token", bearer(acctA, fx.expired), codes.Unauthenticated},
		{"nok, deleted token", bearer(acctA, fx.deleted), codes.Unauthenticated},
		{"nok, token of another account", bearer(acctA, fx.otherSecret), codes.Unauthenticated},
		{"nok, Basic with a token of another account", basic(acctA, fx.otherSecret), codes.Unauthenticated},
		{"nok, not a secret", bearer(acctA, "hunter2"), codes.Unauthenticated},
		{"nok, Bearer without account", []string{"authorization", "Bearer " + fx.secret}, codes.InvalidArgument},
		{"nok, Bearer with an empty account", bearer("", fx.secret), codes.InvalidArgument},
		{"nok, Bearer with two spaces", []string{"authorization", "Bearer  " + fx.secret, "x-account-id", acctA}, codes.InvalidArgument},
		{"nok, Bearer without token", []string{"authorization", "Bearer", "x-account-id", acctA}, codes.InvalidArgument},
		{"nok, Basic not base64", []string{"authorization", "Basic " + fx.secret + "!"}, codes.InvalidArgument},
		{"nok, oversized authorization", []string{"authorization", huge, "x-account-id", acctA}, codes.InvalidArgument},
		{"nok, two authorization values", append(bearer(acctA, fx.secret), "authorization", "Bearer "+fx.secret), codes.InvalidArgument},
		{"nok, Bearer plus Basic", append(bearer(acctA, fx.secret), basic(acctA, fx.secret)...), codes.InvalidArgument},
		{"nok, two account ids", append(bearer(acctA, fx.secret), "x-account-id", acctA), codes.InvalidArgument},
	}
	for _, tt := range tests {
		for _, kind := range []string{"unary", "stream"} {
			t.Run(tt.name+", "+kind, func(t *testing.T) {
				before := s.echo.calls.Load()
				var (
					got []string
					err error
				)
				if kind == "unary" {
					var who string
					who, err = s.who(t.Context(), methodWho, tt.md...)
					if err == nil {
						got = []string{who}
					}
				} else {
					got, err = s.watch(t.Context(), tt.md...)
				}
				st := status.Convert(err)
				require.Equal(t, tt.want, st.Code(), "status %v", st.Message())
				assertNoSecret(t, st.Message(), append(fx.secrets(), huge))
				switch tt.want {
				case codes.OK:
					if kind == "unary" {
						assert.Equal(t, []string{acctA}, got)
					} else {
						assert.Equal(t, []string{acctA, acctA}, got, "the stream's context holds the token for the whole stream")
					}
					return
				case codes.Unauthenticated:
					assert.Equal(t, msgUnauthenticated, st.Message(), "one message for every refusal: no oracle")
				case codes.InvalidArgument:
					assert.True(t, strings.HasPrefix(st.Message(), "grpcauth: malformed credentials: apitoken: invalid request: "), st.Message())
				}
				assert.Empty(t, got)
				assert.Equal(t, before, s.echo.calls.Load(), "a refused call never reaches the handler")
			})
		}
	}
}

// TestMethodScopes checks WithMethodScopes on unary calls and streams, and
// that a method without scopes needs only a verified token.
func TestMethodScopes(t *testing.T) {
	fx := newFixture(t)
	s := startServer(t, fx.iss, []grpcauth.Option{
		grpcauth.WithMethodScopes(map[string][]string{methodWrite: {"write"}, methodWatch: {"read"}}),
		grpcauth.WithMethodScopes(map[string][]string{methodWho: {}}),
	})
	call := func(ctx context.Context, method string, md []string) error {
		if method == methodWatch {
			_, err := s.watch(ctx, md...)
			return err
		}
		_, err := s.who(ctx, method, md...)
		return err
	}
	tests := []struct {
		name   string
		method string
		secret string
		want   codes.Code
	}{
		{"ok, method with the required scope", methodWrite, fx.secret, codes.OK},
		{"ok, method listed with no scopes", methodWho, fx.otherSecret, codes.OK},
		{"ok, stream with the required scope", methodWatch, fx.readOnly, codes.OK},
		{"nok, method without the required scope", methodWrite, fx.readOnly, codes.PermissionDenied},
		{"nok, method, token without any scope", methodWrite, fx.otherSecret, codes.PermissionDenied},
		{"nok, stream without the required scope", methodWatch, fx.otherSecret, codes.PermissionDenied},
		{"nok, method, invalid token", methodWrite, fx.deleted, codes.Unauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			account := acctA
			if tt.secret == fx.otherSecret {
				account = acctB
			}
			before := s.echo.calls.Load()
			st := status.Convert(call(t.Context(), tt.method, bearer(account, tt.secret)))
			require.Equal(t, tt.want, st.Code(), st.Message())
			assertNoSecret(t, st.Message(), fx.secrets())
			if tt.want == codes.OK {
				assert.Greater(t, s.echo.calls.Load(), before)
				return
			}
			assert.Equal(t, before, s.echo.calls.Load())
			if tt.want == codes.PermissionDenied {
				want := "grpcauth: the access token lacks a required scope: requires write"
				if tt.method == methodWatch {
					want = "grpcauth: the access token lacks a required scope: requires read"
				}
				assert.Equal(t, want, st.Message())
			}
		})
	}
}

// TestPublicMethods checks that a public method is served without
// credentials, whatever the call carries, and that the others are not.
func TestPublicMethods(t *testing.T) {
	fx := newFixture(t)
	s := startServer(t, fx.iss, []grpcauth.Option{grpcauth.WithPublicMethods(methodHealth, methodWatch)})
	health := healthpb.NewHealthClient(s.conn)
	tests := []struct {
		name string
		md   []string
	}{
		{"ok, no credentials", nil},
		{"ok, invalid credentials are not read", bearer(acctA, fx.deleted)},
		{"ok, malformed credentials are not read", []string{"authorization", "Bearer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := health.Check(outgoing(t.Context(), tt.md), &healthpb.HealthCheckRequest{})
			require.NoError(t, err)
			assert.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())

			got, err := s.watch(t.Context(), tt.md...)
			require.NoError(t, err)
			assert.Equal(t, []string{noToken, noToken}, got, "a public stream has no token")
		})
	}
	t.Run("nok, other methods still need credentials", func(t *testing.T) {
		_, err := s.who(t.Context(), methodWho)
		assert.Equal(t, codes.Unauthenticated, status.Code(err))
	})
	t.Run("ok, a public method with credentials has no token", func(t *testing.T) {
		got, err := s.watch(t.Context(), bearer(acctA, fx.secret)...)
		require.NoError(t, err)
		assert.Equal(t, []string{noToken, noToken}, got)
	})
}

var errDBDown = errors.New("db down")

// TestStoreFailure checks that a store failure, on a unary call and on a
// stream, is Unavailable, never reaches the handler, and is logged without
// the secret.
func TestStoreFailure(t *testing.T) {
	iss, st, secret := newFailing(t, errDBDown)
	var logs logcheck.Buffer
	s := startServer(t, iss, []grpcauth.Option{grpcauth.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil)))})
	tests := []struct {
		name   string
		md     []string
		stream bool
	}{
		{"nok, Bearer", bearer(acctA, secret), false},
		{"nok, Basic", basic(acctA, secret), false},
		{"nok, stream", bearer(acctA, secret), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookups := st.lookups.Load()
			var err error
			if tt.stream {
				_, err = s.watch(t.Context(), tt.md...)
			} else {
				_, err = s.who(t.Context(), methodWho, tt.md...)
			}
			sts := status.Convert(err)
			require.Equal(t, codes.Unavailable, sts.Code(), sts.Message())
			assert.Equal(t, "grpcauth: the credentials could not be checked; try again later", sts.Message())
			assert.NotContains(t, sts.Message(), errDBDown.Error(), "the store's error is logged, not told to the client")
			assertNoSecret(t, sts.Message(), []string{secret})
			assert.Greater(t, st.lookups.Load(), lookups, "the store was asked")
			assert.Zero(t, s.echo.calls.Load(), "the handler never runs")
		})
	}
	out := logs.String()
	assert.Equal(t, len(tests), strings.Count(out, `"msg":"grpcauth: credentials could not be checked"`), out)
	assert.Contains(t, out, `"method":"`+methodWho+`"`)
	assert.Contains(t, out, `"method":"`+methodWatch+`"`)
	assert.Contains(t, out, errDBDown.Error())
	assertNoLeakInLogs(t, out, []string{secret})
}

// TestContextEnded checks that a call whose context ends while its token is
// looked up is Unavailable on the server, never Unauthenticated, and never
// reaches the handler. The server-side code is read before any client-side
// deadline answers the client.
func TestContextEnded(t *testing.T) {
	iss, st, secret := newFailing(t, nil)
	var logs logcheck.Buffer
	s := startServer(t, iss, []grpcauth.Option{grpcauth.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil)))})
	tests := []struct {
		name string
		end  func(ctx context.Context) (context.Context, context.CancelFunc)
		want []codes.Code // on the client: the first, or, when its own timer fires late, the server's answer
	}{
		{"nok, deadline exceeded", func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, 100*time.Millisecond)
		}, []codes.Code{codes.DeadlineExceeded, codes.Unavailable}},
		{"nok, canceled", func(ctx context.Context) (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(ctx)
			lookups := st.lookups.Load()
			go func() {
				for st.lookups.Load() == lookups {
					time.Sleep(time.Millisecond)
				}
				cancel()
			}()
			return ctx, cancel
		}, []codes.Code{codes.Canceled}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.end(t.Context())
			defer cancel()
			_, err := s.who(ctx, methodWho, bearer(acctA, secret)...)
			assert.Contains(t, tt.want, status.Code(err))
			select {
			case err := <-s.codes:
				sts := status.Convert(err)
				assert.Equal(t, codes.Unavailable, sts.Code(), sts.Message())
			case <-time.After(5 * time.Second):
				t.Fatal("the server did not finish the call")
			}
			assert.Zero(t, s.echo.calls.Load(), "the handler never runs")
		})
	}
	assert.Contains(t, logs.String(), "grpcauth: credentials could not be checked")
	assertNoLeakInLogs(t, logs.String(), []string{secret})
}

// TestClosedIssuer checks that the calls of a closed Issuer are
// Unavailable, as for any failure to check credentials.
func TestClosedIssuer(t *testing.T) {
	fx := newFixture(t)
	s := startServer(t, fx.iss, []grpcauth.Option{grpcauth.WithLogger(slog.New(slog.DiscardHandler))})
	require.NoError(t, fx.iss.Close())
	_, err := s.who(t.Context(), methodWho, bearer(acctA, fx.secret)...)
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.Zero(t, s.echo.calls.Load())
}

// TestDefaultLogger checks that without WithLogger a store failure goes to
// slog.Default(), and that the record holds no secret.
func TestDefaultLogger(t *testing.T) {
	iss, _, secret := newFailing(t, errDBDown)
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	s := startServer(t, iss, []grpcauth.Option{grpcauth.WithLogger(nil)})
	_, err := s.who(t.Context(), methodWho, basic(acctA, secret)...)
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.Contains(t, logs.String(), "grpcauth: credentials could not be checked")
	assertNoLeakInLogs(t, logs.String(), []string{secret})
}
