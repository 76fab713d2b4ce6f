package grpcauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/grpc/credentials"
)

// PerRPCCredentials are the credentials.PerRPCCredentials of a client: they
// send an account id and a secret with every call, as the metadata
//
//	authorization: Bearer <secret>
//	x-account-id: <account id>
//
// that the interceptors read. Use them with grpc.WithPerRPCCredentials, or
// grpc.PerRPCCredentials for one call. They require transport security
// (TLS) unless made with WithoutTransportSecurity. The secret never
// prints: fmt (every verb), encoding/json and log/slog show the account id
// and "[REDACTED]". Make them with NewPerRPCCredentials; they are
// immutable and safe for concurrent use.
type PerRPCCredentials struct {
	accountID string
	// authorization is "Bearer <secret>", behind a pointer so that even a
	// copy of the struct printed through an unexported field shows an
	// address, not the secret.
	authorization *string
	insecure      bool
}

// A PerRPCOption configures NewPerRPCCredentials.
type PerRPCOption func(*PerRPCCredentials)

// WithoutTransportSecurity lets the credentials be sent over a connection
// without transport security (grpc/credentials/insecure), for tests and
// servers on loopback: anyone on the path of such a connection reads the
// secret.
func WithoutTransportSecurity() PerRPCOption {
	return func(c *PerRPCCredentials) { c.insecure = true }
}

// NewPerRPCCredentials returns the credentials that send secret with
// accountID, the account it was issued to, on every call.
func NewPerRPCCredentials(accountID, secret string, opts ...PerRPCOption) *PerRPCCredentials {
	auth := "Bearer " + secret
	c := &PerRPCCredentials{accountID: accountID, authorization: &auth}
	if secret == "" {
		c.authorization = nil
	}
	for _, opt := range opts {
		if opt != nil {
			opt(c)
		}
	}
	return c
}

// errNoCredentials is returned for credentials without an account id or a
// secret, which no server accepts.
var errNoCredentials = errors.New("grpcauth: PerRPCCredentials without an account id or a secret")

// GetRequestMetadata returns the metadata to send with a call. It fails
// when the credentials have no account id or no secret, and, unless they
// were made WithoutTransportSecurity, when the connection does not provide
// privacy and integrity.
func (c *PerRPCCredentials) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	if c == nil || c.accountID == "" || c.authorization == nil {
		return nil, errNoCredentials
	}
	if !c.insecure {
		ri, _ := credentials.RequestInfoFromContext(ctx)
		if err := credentials.CheckSecurityLevel(ri.AuthInfo, credentials.PrivacyAndIntegrity); err != nil {
			return nil, fmt.Errorf("grpcauth: PerRPCCredentials need transport security: %w", err)
		}
	}
	return map[string]string{authorizationKey: *c.authorization, accountKey: c.accountID}, nil
}

// RequireTransportSecurity reports whether the credentials need a secure
// connection: true unless they were made WithoutTransportSecurity.
func (c *PerRPCCredentials) RequireTransportSecurity() bool {
	return c == nil || !c.insecure
}

// String returns the account id with the secret redacted.
func (c *PerRPCCredentials) String() string {
	if c == nil {
		return "<nil>"
	}
	return fmt.Sprintf("grpcauth.PerRPCCredentials{AccountID: %q, Secret: %s}", c.accountID, redacted)
}

// Format prints String for every verb and flag (%v, %+v, %#v, %s, %q,
// %x…), so that no verb prints the secret.
func (c *PerRPCCredentials) Format(f fmt.State, _ rune) { _, _ = fmt.Fprint(f, c.String()) }

// LogValue makes log/slog print the account id and a redacted secret.
func (c *PerRPCCredentials) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("<nil>")
	}
	return slog.GroupValue(slog.String("AccountID", c.accountID), slog.String("Secret", redacted))
}

// MarshalJSON encodes the account id and a redacted secret.
func (c *PerRPCCredentials) MarshalJSON() ([]byte, error) {
	if c == nil {
		return []byte("null"), nil
	}
	return json.Marshal(struct{ AccountID, Secret string }{c.accountID, redacted})
}

// redacted stands for the secret wherever the credentials print.
const redacted = "[REDACTED]"

// The type is what gRPC asks for.
var _ credentials.PerRPCCredentials = (*PerRPCCredentials)(nil)
