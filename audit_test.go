package apitoken_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
)

// auditRecords returns the records written to buf by a JSON handler.
func auditRecords(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for line := range strings.Lines(buf.String()) {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec))
		delete(rec, "time")
		recs = append(recs, rec)
	}
	buf.Reset()
	return recs
}

func TestAuditLogger(t *testing.T) {
	ctx := t.Context()
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clk := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	iss := newIssuer(t, memstore.New(), apitoken.WithAuditLogger(logger), apitoken.WithClock(clk.Now))
	var secrets []string
	issue := func(p apitoken.IssueParams) (string, apitoken.Token) {
		secret, tok, err := iss.Issue(ctx, p)
		require.NoError(t, err)
		secrets = append(secrets, secret)
		return secret, tok
	}
	// A well-formed secret that this Issuer never issued.
	stranger, _, err := newIssuer(t, memstore.New()).Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)
	secrets = append(secrets, stranger)

	secret, tok := issue(apitoken.IssueParams{AccountID: "acme", MemberID: "m1"})
	assert.Equal(t, []map[string]any{{"level": "INFO", "msg": "apitoken: token issued", "account_id": "acme", "token_id": tok.ID, "member_id": "m1", "hint": tok.Hint}},
		auditRecords(t, &buf))

	_, err = iss.Verify(ctx, "acme", secret)
	require.NoError(t, err)
	assert.Equal(t, []map[string]any{{"level": "DEBUG", "msg": "apitoken: token verified", "account_id": "acme", "token_id": tok.ID, "hint": tok.Hint}},
		auditRecords(t, &buf))

	expiring, expTok := issue(apitoken.IssueParams{AccountID: "acme", ExpiresAt: clk.Now().Add(time.Minute)})
	auditRecords(t, &buf)
	evil := "acme\nlevel=ERROR msg=\"forged\"\x00"
	refused := func(account, tokenID, hint, reason string) map[string]any {
		return map[string]any{"level": "WARN", "msg": "apitoken: token refused", "account_id": account, "token_id": tokenID, "hint": hint, "reason": reason}
	}
	wrongAccount := func(account string) map[string]any {
		rec := refused(account, tok.ID, tok.Hint, "wrong account")
		rec["token_account_id"] = "acme"
		return rec
	}
	for _, tt := range []struct {
		name            string
		account, secret string
		want            map[string]any
	}{
		{"malformed secret", "acme", "not-a-token", refused("acme", "", "", "malformed")},
		{"empty account", "", secret, refused(`""`, "", "", "malformed")},
		{"unknown token", "acme", stranger, refused("acme", "", "", "unknown")},
		{"another account's token, with the token's own account", "other", secret, wrongAccount("other")},
		{"an account id with a line break and a NUL is quoted", evil, secret, wrongAccount(strconv.QuoteToASCII(evil))},
		{"an oversized account id is cut", strings.Repeat("é", 100), secret, refused(strconv.QuoteToASCII(strings.Repeat("é", 64)), "", "", "malformed")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := iss.Verify(ctx, tt.account, tt.secret)
			require.Equal(t, apitoken.ErrInvalidToken, err, "the caller sees the same refusal whatever the reason")
			assert.Equal(t, []map[string]any{tt.want}, auditRecords(t, &buf))
		})
	}
	clk.Add(time.Minute)
	_, err = iss.Verify(ctx, "acme", expiring)
	require.Equal(t, apitoken.ErrInvalidToken, err)
	assert.Equal(t, []map[string]any{refused("acme", expTok.ID, expTok.Hint, "expired")}, auditRecords(t, &buf))

	require.NoError(t, iss.Disable(ctx, "acme", tok.ID))
	assert.Equal(t, []map[string]any{{"level": "INFO", "msg": "apitoken: token disabled", "account_id": "acme", "token_id": tok.ID}},
		auditRecords(t, &buf))
	_, err = iss.Verify(ctx, "acme", secret)
	require.Equal(t, apitoken.ErrInvalidToken, err)
	assert.Equal(t, []map[string]any{refused("acme", tok.ID, tok.Hint, "disabled")}, auditRecords(t, &buf))
	require.NoError(t, iss.Enable(ctx, "acme", tok.ID))
	assert.Equal(t, []map[string]any{{"level": "INFO", "msg": "apitoken: token enabled", "account_id": "acme", "token_id": tok.ID}},
		auditRecords(t, &buf))

	bound, boundTok := issue(apitoken.IssueParams{AccountID: "acme", AllowedIPs: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	auditRecords(t, &buf)
	_, err = iss.Verify(apitoken.WithClientAddr(ctx, netip.MustParseAddr("198.51.100.1")), "acme", bound)
	require.Equal(t, apitoken.ErrInvalidToken, err)
	assert.Equal(t, []map[string]any{refused("acme", boundTok.ID, boundTok.Hint, "address not allowed")}, auditRecords(t, &buf))

	_, rotated, err := iss.Rotate(ctx, "acme", tok.ID, 0)
	require.NoError(t, err)
	assert.Equal(t, []map[string]any{{"level": "INFO", "msg": "apitoken: token rotated", "account_id": "acme",
		"token_id": tok.ID, "hint": tok.Hint, "successor_id": rotated.ID, "successor_hint": rotated.Hint, "grace": float64(0)}}, auditRecords(t, &buf))

	require.NoError(t, iss.Delete(ctx, "acme", rotated.ID))
	assert.Equal(t, []map[string]any{{"level": "INFO", "msg": "apitoken: token deleted", "account_id": "acme", "token_id": rotated.ID}},
		auditRecords(t, &buf))

	n, err := iss.Prune(ctx, clk.Now())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	assert.Equal(t, []map[string]any{{"level": "INFO", "msg": "apitoken: expired tokens pruned", "before": clk.Now().Format(time.RFC3339), "count": float64(1)}},
		auditRecords(t, &buf))

	issue(apitoken.IssueParams{AccountID: "acme", MemberID: "leaver"})
	auditRecords(t, &buf)
	n, err = iss.DeleteMember(ctx, "acme", "leaver")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	assert.Equal(t, []map[string]any{{"level": "INFO", "msg": "apitoken: member tokens deleted", "account_id": "acme", "member_id": "leaver", "count": float64(1)}},
		auditRecords(t, &buf))

	issue(apitoken.IssueParams{AccountID: "acme"})
	auditRecords(t, &buf)
	n, err = iss.DeleteAll(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, 2, n, "this one and the address-bound one")
	assert.Equal(t, []map[string]any{{"level": "INFO", "msg": "apitoken: account tokens deleted", "account_id": "acme", "count": float64(2)}},
		auditRecords(t, &buf))

	t.Run("no record holds a secret", func(t *testing.T) {
		// The records above were compared whole; these are of a secret, its
		// use from another account and a near miss.
		iss := newIssuer(t, memstore.New(), apitoken.WithAuditLogger(logger))
		secret, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
		require.NoError(t, err)
		_, _ = iss.Verify(ctx, "acme", secret)
		_, _ = iss.Verify(ctx, "other", secret)
		_, _ = iss.Verify(ctx, "acme", secret[:len(secret)-1])
		for _, s := range append(secrets, secret) {
			assert.NotContains(t, buf.String(), s)
			assert.NotContains(t, buf.String(), s[len(s)-20:], "not even part of one")
		}
	})

	t.Run("nok, nil logger", func(t *testing.T) {
		_, err := apitoken.NewIssuer(memstore.New(), apitoken.WithAuditLogger(nil))
		require.ErrorIs(t, err, apitoken.ErrInvalidInput)
	})
}

func TestAuditMalformedRequests(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	iss := newIssuer(t, memstore.New(), apitoken.WithAuditLogger(logger))
	secret, _, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)
	buf.Reset()
	h := iss.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("a malformed request reached the handler") }))

	for _, tt := range []struct {
		name    string
		target  string
		header  http.Header
		problem string
	}{
		{"token in the query", "/?access_token=" + secret, http.Header{"X-Account-Id": {"acme"}}, "access token in the URL query"},
		{"two Authorization headers", "/", http.Header{"Authorization": {"Bearer " + secret, "Bearer " + secret}, "X-Account-Id": {"acme"}}, "more than one Authorization header"},
		{"Bearer without account", "/", http.Header{"Authorization": {"Bearer " + secret}}, "token without account"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", tt.target, nil)
			req.Header = tt.header
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, http.StatusBadRequest, rec.Code)
			logged := buf.String()
			assert.NotContains(t, logged, secret, "an audit record holds the secret")
			assert.Equal(t, []map[string]any{{"level": "WARN", "msg": "apitoken: request refused", "reason": "malformed", "problem": tt.problem}},
				auditRecords(t, &buf))
		})
	}

	t.Run("ok, a custom Extractor's error text is not written", func(t *testing.T) {
		mw, err := iss.NewMiddleware(apitoken.MiddlewareConfig{Extractor: func(*http.Request) (apitoken.Credentials, bool, error) {
			return apitoken.Credentials{}, false, fmt.Errorf("%w: bad header %s", apitoken.ErrInvalidRequest, secret)
		}})
		require.NoError(t, err)
		rec := httptest.NewRecorder()
		mw(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		require.Equal(t, http.StatusBadRequest, rec.Code)
		assert.NotContains(t, buf.String(), secret)
		assert.Equal(t, []map[string]any{{"level": "WARN", "msg": "apitoken: request refused", "reason": "malformed", "problem": "malformed request"}},
			auditRecords(t, &buf))
	})

	t.Run("ok, a request without credentials is not a refusal to record", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		require.Equal(t, http.StatusUnauthorized, rec.Code)
		assert.Empty(t, buf.String())
	})
}
