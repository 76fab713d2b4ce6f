package grpcauth_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/apitoken-go/apitoken/grpcauth"
)

// TestPerRPCCredentials calls the server with a client that sends its
// credentials with PerRPCCredentials, as a dial option and as a call
// option, on unary calls and streams.
func TestPerRPCCredentials(t *testing.T) {
	fx := newFixture(t)
	plain := grpc.WithTransportCredentials(insecure.NewCredentials())

	t.Run("ok, dial option", func(t *testing.T) {
		s := startServer(t, fx.iss, nil, plain,
			grpc.WithPerRPCCredentials(grpcauth.NewPerRPCCredentials(acctA, fx.secret, grpcauth.WithoutTransportSecurity())))
		got, err := s.who(t.Context(), methodWho)
		require.NoError(t, err)
		assert.Equal(t, acctA, got)
		gotStream, err := s.watch(t.Context())
		require.NoError(t, err)
		assert.Equal(t, []string{acctA, acctA}, gotStream)
	})
	t.Run("ok, call option", func(t *testing.T) {
		s := startServer(t, fx.iss, nil)
		out := new(wrapperspb.StringValue)
		creds := grpcauth.NewPerRPCCredentials(acctB, fx.otherSecret, grpcauth.WithoutTransportSecurity())
		require.NoError(t, s.conn.Invoke(t.Context(), methodWho, wrapperspb.String("hi"), out, grpc.PerRPCCredentials(creds)))
		assert.Equal(t, acctB, out.GetValue())
	})
	t.Run("nok, deleted token", func(t *testing.T) {
		s := startServer(t, fx.iss, nil, plain,
			grpc.WithPerRPCCredentials(grpcauth.NewPerRPCCredentials(acctA, fx.deleted, grpcauth.WithoutTransportSecurity())))
		_, err := s.who(t.Context(), methodWho)
		st := status.Convert(err)
		assert.Equal(t, codes.Unauthenticated, st.Code())
		assert.Equal(t, msgUnauthenticated, st.Message())
	})
	t.Run("nok, wrong account", func(t *testing.T) {
		s := startServer(t, fx.iss, nil, plain,
			grpc.WithPerRPCCredentials(grpcauth.NewPerRPCCredentials(acctB, fx.secret, grpcauth.WithoutTransportSecurity())))
		_, err := s.who(t.Context(), methodWho)
		assert.Equal(t, codes.Unauthenticated, status.Code(err))
	})
	for _, tc := range []struct{ name, account, secret string }{
		{"nok, empty secret", acctA, ""},
		{"nok, empty account id", "", fx.secret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, fx.iss, nil, plain,
				grpc.WithPerRPCCredentials(grpcauth.NewPerRPCCredentials(tc.account, tc.secret, grpcauth.WithoutTransportSecurity())))
			_, err := s.who(t.Context(), methodWho)
			st := status.Convert(err)
			assert.Equal(t, codes.Unauthenticated, st.Code())
			assert.Contains(t, st.Message(), "grpcauth: PerRPCCredentials without an account id or a secret")
			assertNoSecret(t, st.Message(), fx.secrets())
			assert.Zero(t, s.echo.calls.Load(), "nothing was sent")
		})
	}
}

// TestPerRPCCredentialsTransportSecurity checks that the credentials are
// sent over TLS by default and refused on a plain connection, as a dial
// option and as a call option.
func TestPerRPCCredentialsTransportSecurity(t *testing.T) {
	fx := newFixture(t)
	creds := grpcauth.NewPerRPCCredentials(acctA, fx.secret)

	t.Run("ok, TLS", func(t *testing.T) {
		serverTLS, clientTLS := newTLS(t)
		srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(serverTLS)),
			grpc.UnaryInterceptor(grpcauth.UnaryServerInterceptor(fx.iss)))
		e := &echo{}
		srv.RegisterService(&echoDesc, e)
		conn := listenAndDial(t, srv, grpc.WithTransportCredentials(credentials.NewTLS(clientTLS)), grpc.WithPerRPCCredentials(creds))
		out := new(wrapperspb.StringValue)
		require.NoError(t, conn.Invoke(t.Context(), methodWho, wrapperspb.String("hi"), out))
		assert.Equal(t, acctA, out.GetValue())
	})
	t.Run("nok, dial option on a plain connection", func(t *testing.T) {
		_, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(creds))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "transport level security")
		assertNoSecret(t, err.Error(), fx.secrets())
	})
	t.Run("nok, call option on a plain connection", func(t *testing.T) {
		s := startServer(t, fx.iss, nil)
		err := s.conn.Invoke(t.Context(), methodWho, wrapperspb.String("hi"), new(wrapperspb.StringValue), grpc.PerRPCCredentials(creds))
		st := status.Convert(err)
		assert.Equal(t, codes.Unauthenticated, st.Code())
		assertNoSecret(t, st.Message(), fx.secrets())
		assert.Zero(t, s.echo.calls.Load(), "nothing was sent")
	})
	t.Run("ok, RequireTransportSecurity", func(t *testing.T) {
		assert.True(t, creds.RequireTransportSecurity())
		assert.False(t, grpcauth.NewPerRPCCredentials(acctA, fx.secret, grpcauth.WithoutTransportSecurity()).RequireTransportSecurity())
	})
	t.Run("nok, GetRequestMetadata without a secure connection", func(t *testing.T) {
		md, err := creds.GetRequestMetadata(t.Context())
		require.Error(t, err)
		assert.Nil(t, md)
		assertNoSecret(t, err.Error(), fx.secrets())
	})
	t.Run("ok, GetRequestMetadata", func(t *testing.T) {
		md, err := grpcauth.NewPerRPCCredentials(acctA, fx.secret, grpcauth.WithoutTransportSecurity()).GetRequestMetadata(t.Context())
		require.NoError(t, err)
		assert.Equal(t, map[string]string{"authorization": "Bearer " + fx.secret, "x-account-id": acctA}, md)
	})
}

// TestPerRPCCredentialsNeverPrint checks that no way of printing the
// credentials shows the secret, and that they show the account id.
func TestPerRPCCredentialsNeverPrint(t *testing.T) {
	const secret = "apitoken_0123456789ABCDEFGHIJabcdefghij00000000"
	c := grpcauth.NewPerRPCCredentials(acctA, secret, grpcauth.WithoutTransportSecurity())
	type holder struct {
		Creds *grpcauth.PerRPCCredentials
		creds grpcauth.PerRPCCredentials // a copy, through an unexported field
	}
	h := holder{Creds: c, creds: *c}
	jsonOf := func(v any) string {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		return string(b)
	}
	slogOf := func(json bool) string {
		var buf bytes.Buffer
		var handler slog.Handler = slog.NewTextHandler(&buf, nil)
		if json {
			handler = slog.NewJSONHandler(&buf, nil)
		}
		slog.New(handler).Info("creds", "creds", c, "holder", h)
		return buf.String()
	}
	tests := []struct {
		name        string
		out         string
		showAccount bool
	}{
		{"ok, String", c.String(), true},
		{"ok, %v", fmt.Sprintf("%v", c), true},
		{"ok, %+v", fmt.Sprintf("%+v", c), true},
		{"ok, %#v", fmt.Sprintf("%#v", c), true},
		{"ok, %s", fmt.Sprintf("%s", c), true},
		{"ok, %q", fmt.Sprintf("%q", c), true},
		{"ok, %x", fmt.Sprintf("%x", c), true},
		{"ok, %d", fmt.Sprintf("%d", c), true},
		{"ok, %v of a struct holding it", fmt.Sprintf("%v", h), true},
		{"ok, %+v of a struct holding it", fmt.Sprintf("%+v", h), true},
		{"ok, %#v of a struct holding it", fmt.Sprintf("%#v", h), true},
		{"ok, %v of a copy", fmt.Sprintf("%v", *c), true},
		{"ok, %v of a nil", fmt.Sprintf("%v", (*grpcauth.PerRPCCredentials)(nil)), false},
		{"ok, JSON", jsonOf(c), true},
		{"ok, JSON of a struct holding it", jsonOf(h), true},
		{"ok, slog text", slogOf(false), true},
		{"ok, slog JSON", slogOf(true), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertNoLeakInLogs(t, tt.out, []string{secret})
			if tt.showAccount {
				assert.Contains(t, tt.out, acctA)
			}
		})
	}
}

// newTLS returns the TLS configs of a server with a fresh self-signed
// certificate for 127.0.0.1, and of a client that trusts it.
func newTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS13}
	client = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
	return server, client
}
