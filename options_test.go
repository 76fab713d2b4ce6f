package apitoken_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
)

// TestWithLogger checks that the failures of the background work go to
// WithLogger's logger, not to the audit log.
func TestWithLogger(t *testing.T) {
	var logs, audit bytes.Buffer
	st := newSpy()
	st.onRecordLastUse = func(context.Context, []apitoken.LastUse, func(context.Context, []apitoken.LastUse) error) error {
		return errors.New("disk full")
	}
	iss := newIssuer(t, st,
		apitoken.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
		apitoken.WithAuditLogger(slog.New(slog.NewTextHandler(&audit, nil))),
		apitoken.WithLastUseInterval(time.Second))
	secret, tok, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: "acct_1"})
	require.NoError(t, err)
	_, err = iss.Verify(t.Context(), "acct_1", secret)
	require.NoError(t, err)
	require.Error(t, iss.Close(), "Close reports the last write that failed")

	assert.Contains(t, logs.String(), "last use not recorded")
	assert.Contains(t, logs.String(), "disk full")
	assert.NotContains(t, audit.String(), "last use not recorded", "an operational failure is not an audit record")
	assert.Contains(t, audit.String(), tok.ID, "the audit log still records what happened to tokens")
	assert.NotContains(t, logs.String(), secret)

	_, err = apitoken.NewIssuer(memstore.New(), apitoken.WithLogger(nil))
	require.ErrorIs(t, err, apitoken.ErrInvalidInput)
}
