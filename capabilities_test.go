package apitoken_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
)

// tracingStore wraps a Store as a tracing or metrics wrapper would: it
// implements only the four methods, and exposes the wrapped Store.
type tracingStore struct {
	apitoken.Store
	unwrap bool
}

func (s tracingStore) Unwrap() apitoken.Store {
	if !s.unwrap {
		return nil
	}
	return s.Store
}

// loopStore unwraps to itself.
type loopStore struct{ apitoken.Store }

func (s *loopStore) Unwrap() apitoken.Store { return s }

func TestCapability(t *testing.T) {
	mem := memstore.New()
	tests := []struct {
		name  string
		store apitoken.Store
		want  bool
	}{
		{"ok, the store itself", mem, true},
		{"ok, through Unwrap", tracingStore{Store: mem, unwrap: true}, true},
		{"ok, through two wrappers", tracingStore{Store: tracingStore{Store: mem, unwrap: true}, unwrap: true}, true},
		{"nok, a wrapper without Unwrap hides it", plainStore{mem}, false},
		{"nok, Unwrap returning nil ends the chain", tracingStore{Store: mem}, false},
		{"nok, a store that unwraps to itself does not loop", &loopStore{plainStore{mem}}, false},
		{"nok, nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ok := apitoken.Capability[apitoken.AccountDeleter](tt.store)
			assert.Equal(t, tt.want, ok)
			assert.Equal(t, tt.want, d != nil)
		})
	}
}

func TestNewIssuerFindsCapabilitiesThroughUnwrap(t *testing.T) {
	ctx := t.Context()
	mem := memstore.New()

	iss, err := apitoken.NewIssuer(tracingStore{Store: mem, unwrap: true}, apitoken.WithMaxTokensPerAccount(1))
	require.NoError(t, err, "the wrapped store's LimitedCreator is found")
	_, _, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: "acct_1"})
	require.NoError(t, err)
	_, _, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: "acct_1"})
	require.ErrorIs(t, err, apitoken.ErrLimitReached)

	_, err = apitoken.NewIssuer(tracingStore{Store: mem}, apitoken.WithMaxTokensPerAccount(1))
	require.ErrorIs(t, err, errors.ErrUnsupported, "a wrapper that hides the capability cannot serve the option")
	assert.Contains(t, err.Error(), "LimitedCreator", "the error names the capability")
}

func TestDeleteAllFallsBackWhenTheCapabilityIsUnsupportedAtCallTime(t *testing.T) {
	ctx := t.Context()
	// DeleteAccount, which the store's configuration cannot serve, says so
	// at call time.
	st, calls := newSpy(), 0
	st.onDeleteAccount = func(context.Context, string, func(context.Context, string) (int, error)) (int, error) {
		calls++
		return 0, errors.ErrUnsupported
	}
	iss := newIssuer(t, st)
	for range 3 {
		_, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acct_1"})
		require.NoError(t, err)
	}
	n, err := iss.DeleteAll(ctx, "acct_1")
	require.NoError(t, err)
	assert.Equal(t, 3, n, "List and Delete serve instead")
	assert.Equal(t, 1, calls, "the capability was tried first")
	toks, err := iss.List(ctx, "acct_1")
	require.NoError(t, err)
	assert.Empty(t, toks)
}
