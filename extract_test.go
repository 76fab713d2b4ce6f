package apitoken_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/apitoken-go/apitoken"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestChain(t *testing.T) {
	fx := newMWFixture(t)
	s := fx.secret
	next := &whoami{}
	mw, err := fx.iss.NewMiddleware(apitoken.MiddlewareConfig{
		Extractor: apitoken.Chain(apitoken.FromBearer(""), apitoken.FromHeader("X-API-Key", ""), nil),
	})
	require.NoError(t, err)
	h := mw(next)

	t.Run("nok, Bearer and X-API-Key both present", func(t *testing.T) {
		req := bearer(s, acctA)
		req.header = http.Header{"X-Api-Key": {s}}
		rec, ran := serve(h, next, req.build(context.Background()))
		assert.False(t, ran)
		assertProblem(t, rec, http.StatusBadRequest, chInvalidRequest, s)
	})
	t.Run("ok, either one alone", func(t *testing.T) {
		rec, ran := serve(h, next, bearer(s, acctA).build(context.Background()))
		assert.Equal(t, http.StatusOK, rec.Code)
		assert.True(t, ran)
		rec, ran = serve(h, next, mwRequest{account: []string{acctA}, header: http.Header{"X-Api-Key": {s}}}.build(context.Background()))
		assert.Equal(t, http.StatusOK, rec.Code)
		assert.True(t, ran)
	})
	t.Run("nok, an error from any extractor wins over a find", func(t *testing.T) {
		req := bearer(s, acctA)
		req.header = http.Header{"X-Api-Key": {s, s}}
		rec, ran := serve(h, next, req.build(context.Background()))
		assert.False(t, ran)
		assertProblem(t, rec, http.StatusBadRequest, chInvalidRequest, s)
	})

	r := bearer(s, acctA).build(context.Background())
	for _, tt := range []struct {
		name  string
		ex    apitoken.Extractor
		found bool
		err   error
	}{
		{"ok, empty chain finds nothing", apitoken.Chain(), false, nil},
		{"ok, nil extractors are skipped", apitoken.Chain(nil, apitoken.FromBearer(""), nil), true, nil},
		{"nok, the same extractor twice is two credentials", apitoken.Chain(apitoken.FromBearer(""), apitoken.FromBearer("")), false, apitoken.ErrInvalidRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, found, err := tt.ex(r)
			assert.Equal(t, tt.found, found)
			assert.ErrorIs(t, err, tt.err)
			if tt.found {
				assert.Equal(t, apitoken.Credentials{AccountID: acctA, Secret: s}, c)
			}
		})
	}
}

// TestExtractors checks what each extractor returns, and that its errors
// never contain input.
func TestExtractors(t *testing.T) {
	const secret = "apitoken_0123456789abcdefghijABCDEFGHIJ012345"
	tests := []struct {
		name    string
		ex      apitoken.Extractor
		req     mwRequest
		want    apitoken.Credentials
		found   bool
		wantErr error
	}{
		{"ok, FromBearer default account header", apitoken.FromBearer(""), bearer(secret, acctA), apitoken.Credentials{AccountID: acctA, Secret: secret}, true, nil},
		{"ok, FromBearer custom account header", apitoken.FromBearer("X-Tenant"), mwRequest{authz: []string{"Bearer " + secret}, header: http.Header{"X-Tenant": {acctB}}}, apitoken.Credentials{AccountID: acctB, Secret: secret}, true, nil},
		{"ok, FromBearer keeps padding", apitoken.FromBearer(""), bearer("abc==", acctA), apitoken.Credentials{AccountID: acctA, Secret: "abc=="}, true, nil},
		{"ok, FromBearer ignores Basic", apitoken.FromBearer(""), basic(acctA + ":" + secret), apitoken.Credentials{}, false, nil},
		{"ok, FromBearer finds nothing", apitoken.FromBearer(""), mwRequest{account: []string{acctA}}, apitoken.Credentials{}, false, nil},
		{"nok, FromBearer with a custom account header, default one sent", apitoken.FromBearer("X-Tenant"), bearer(secret, acctA), apitoken.Credentials{}, false, apitoken.ErrInvalidRequest},
		{"ok, FromBasic splits at the first colon", apitoken.FromBasic(), basic(acctA + ":" + secret + ":x"), apitoken.Credentials{AccountID: acctA, Secret: secret + ":x"}, true, nil},
		{"ok, FromBasic ignores Bearer", apitoken.FromBasic(), bearer(secret, acctA), apitoken.Credentials{}, false, nil},
		{"nok, FromBasic with two Authorization headers", apitoken.FromBasic(), mwRequest{authz: []string{basicValue(acctA + ":" + secret), "Token x"}}, apitoken.Credentials{}, false, apitoken.ErrInvalidRequest},
		{"ok, FromHeader defaults", apitoken.FromHeader("", ""), mwRequest{account: []string{acctA}, header: http.Header{"X-Api-Key": {secret}}}, apitoken.Credentials{AccountID: acctA, Secret: secret}, true, nil},
		{"ok, FromHeader ignores Authorization", apitoken.FromHeader("", ""), bearer(secret, acctA), apitoken.Credentials{}, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, found, err := tt.ex(tt.req.build(context.Background()))
			assert.Equal(t, tt.found, found)
			assert.Equal(t, tt.want, c)
			if tt.wantErr == nil {
				assert.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			assert.True(t, strings.HasPrefix(err.Error(), "apitoken: "), "%q", err)
			for _, s := range append(tt.req.echoes(), secret, acctA) {
				assert.NotContains(t, err.Error(), s, "an extractor's error never contains input")
			}
		})
	}

	t.Run("ok, Bearer and account parsing allocate nothing", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			ex   apitoken.Extractor
			req  mwRequest
		}{
			{"FromBearer", apitoken.FromBearer(""), bearer(secret, acctA)},
			{"FromHeader", apitoken.FromHeader("", ""), mwRequest{account: []string{acctA}, header: http.Header{"X-Api-Key": {secret}}}},
			{"Chain(FromBearer, FromBasic)", apitoken.Chain(apitoken.FromBearer(""), apitoken.FromBasic()), bearer(secret, acctA)},
		} {
			ex, r := tc.ex, tc.req.build(context.Background())
			allocs := testing.AllocsPerRun(100, func() {
				if _, ok, err := ex(r); !ok || err != nil {
					panic("extractor failed")
				}
			})
			assert.Zero(t, allocs, tc.name)
		}
	})

	t.Run("ok, refusing malformed credentials allocates nothing", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			req  mwRequest
		}{
			{"account header with a control character", bearer(secret, "acme\x01")},
			{"account header too long", bearer(secret, strings.Repeat("a", 200))},
			{"Basic without a colon", basic("acmesecret")},
			{"Basic with an empty secret", basic("acme:")},
			{"Bearer with two tokens", mwRequest{authz: []string{"Bearer a b"}, account: []string{acctA}}},
		} {
			ex, r := apitoken.Chain(apitoken.FromBearer(""), apitoken.FromBasic()), tc.req.build(context.Background())
			allocs := testing.AllocsPerRun(100, func() {
				if _, _, err := ex(r); !errors.Is(err, apitoken.ErrInvalidRequest) {
					panic("extractor accepted malformed credentials")
				}
			})
			assert.Zero(t, allocs, tc.name)
		}
	})
}

func TestCredentialsRedaction(t *testing.T) {
	const secret = "apitoken_SECRETSECRETSECRETSECRETSECRETxx"
	c := apitoken.Credentials{AccountID: acctA, Secret: secret}
	forbidden := []string{secret, "SECRETSECRET", hex.EncodeToString([]byte(secret))[:24], strings.ToUpper(hex.EncodeToString([]byte(secret)))[:24]}

	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3v", "%-v"} {
		outs = append(outs, fmt.Sprintf(verb, c), fmt.Sprintf(verb, &c), fmt.Sprintf(verb, []apitoken.Credentials{c}))
	}
	outs = append(outs, fmt.Sprint(c), fmt.Sprintln(c), fmt.Sprintf("%v", struct{ C apitoken.Credentials }{c}))
	for _, v := range []any{c, &c, map[string]apitoken.Credentials{"c": c}} {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		outs = append(outs, string(b))
	}
	var logs bytes.Buffer
	for _, h := range []slog.Handler{
		slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}),
		slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}),
	} {
		l := slog.New(h)
		l.Debug("creds", "c", c, "p", &c)
		l.Info("creds", slog.Any("c", c))
		l.Error("creds", "c", c)
	}
	outs = append(outs, logs.String())
	for _, out := range outs {
		for _, f := range forbidden {
			assert.NotContains(t, out, f)
		}
	}
	assert.Equal(t, "{acct_A [REDACTED]}", fmt.Sprintf("%v", c))
	assert.Equal(t, "{AccountID:acct_A Secret:[REDACTED]}", fmt.Sprintf("%+v", c))
	assert.Equal(t, `apitoken.Credentials{AccountID:"acct_A", Secret:"[REDACTED]"}`, fmt.Sprintf("%#v", c))
	b, err := json.Marshal(c)
	require.NoError(t, err)
	assert.JSONEq(t, `{"AccountID":"acct_A","Secret":"[REDACTED]"}`, string(b))
	assert.Contains(t, logs.String(), "c.Secret=[REDACTED]")
	assert.Contains(t, logs.String(), `"Secret":"[REDACTED]"`)
}
