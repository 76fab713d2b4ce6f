package grpcauth_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
)

// TestAllowedIPs checks that a token bound to addresses verifies from the
// call's peer (127.0.0.1 here) when it is in them, on unary calls and
// streams, and is refused as Unauthenticated when it is not.
func TestAllowedIPs(t *testing.T) {
	ctx := t.Context()
	iss, err := apitoken.NewIssuer(memstore.New())
	require.NoError(t, err)
	t.Cleanup(func() { _ = iss.Close() })
	loopback, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: acctA,
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	require.NoError(t, err)
	elsewhere, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: acctA,
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	require.NoError(t, err)
	s := startServer(t, iss, nil)

	got, err := s.who(ctx, methodWho, bearer(acctA, loopback)...)
	require.NoError(t, err, "the peer is in the token's list")
	assert.Equal(t, acctA, got)
	sent, err := s.watch(ctx, bearer(acctA, loopback)...)
	require.NoError(t, err)
	assert.NotEmpty(t, sent)

	_, err = s.who(ctx, methodWho, bearer(acctA, elsewhere)...)
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "the peer is outside the token's list")
	_, err = s.watch(ctx, bearer(acctA, elsewhere)...)
	assert.Equal(t, codes.Unauthenticated, status.Code(err))
}
