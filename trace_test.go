package apitoken_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
)

// spanKey marks the context a recordingTracer's Start returns.
type spanKey struct{}

// recordingTracer records the operations it is told of, as "start Op" and
// "end Op: error".
type recordingTracer struct {
	mu  sync.Mutex
	log []string
}

func (r *recordingTracer) Start(ctx context.Context, op apitoken.Op) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, "start "+op.String())
	return context.WithValue(ctx, spanKey{}, op)
}

func (r *recordingTracer) End(ctx context.Context, op apitoken.Op, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ctx.Value(spanKey{}) != op {
		r.log = append(r.log, "end "+op.String()+" without its Start's context")
		return
	}
	msg := "end " + op.String()
	if err != nil {
		msg += ": " + err.Error()
	}
	r.log = append(r.log, msg)
}

func (r *recordingTracer) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.log
	r.log = nil
	return l
}

func TestTracer(t *testing.T) {
	ctx := t.Context()
	tr := &recordingTracer{}
	store := newSpy()
	var inSpan []apitoken.Op // the operation whose context each store Lookup and Delete got
	store.onLookup = func(ctx context.Context, h apitoken.Hash, next func(context.Context, apitoken.Hash) (apitoken.Record, error)) (apitoken.Record, error) {
		op, _ := ctx.Value(spanKey{}).(apitoken.Op)
		inSpan = append(inSpan, op)
		return next(ctx, h)
	}
	store.onDelete = func(ctx context.Context, accountID, id string, next func(context.Context, string, string) error) error {
		op, _ := ctx.Value(spanKey{}).(apitoken.Op)
		inSpan = append(inSpan, op)
		return next(ctx, accountID, id)
	}
	var eventOps []apitoken.Op // the operation whose context each event got
	iss := newIssuer(t, store, apitoken.WithTracer(tr), apitoken.WithLastUseInterval(0), apitoken.WithEvents(func(ctx context.Context, e apitoken.Event) {
		op, _ := ctx.Value(spanKey{}).(apitoken.Op)
		eventOps = append(eventOps, op)
	}))

	secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)
	_, err = iss.Verify(ctx, "acme", secret)
	require.NoError(t, err)
	_, err = iss.Verify(ctx, "other", secret)
	require.Equal(t, apitoken.ErrInvalidToken, err)
	_, err = iss.List(ctx, "acme")
	require.NoError(t, err)
	_, rotated, err := iss.Rotate(ctx, "acme", tok.ID, 0)
	require.NoError(t, err)
	require.ErrorIs(t, iss.Delete(ctx, "acme", tok.ID), apitoken.ErrNotFound)
	require.NoError(t, iss.Delete(ctx, "acme", rotated.ID))
	_, err = iss.DeleteAll(ctx, "acme")
	require.NoError(t, err)
	_, err = iss.Prune(ctx, tok.CreatedAt)
	require.NoError(t, err)

	assert.Equal(t, []string{
		"start Issue", "end Issue",
		"start Verify", "end Verify",
		"start Verify", "end Verify: apitoken: invalid token",
		"start List", "end List",
		"start Rotate", "end Rotate",
		"start Delete", "end Delete: apitoken: not found: no token with that id",
		"start Delete", "end Delete",
		"start DeleteAll", "end DeleteAll",
		"start Prune", "end Prune",
	}, tr.take())
	assert.Equal(t, []apitoken.Op{apitoken.OpVerify, apitoken.OpVerify, apitoken.OpRotate, apitoken.OpDelete, apitoken.OpDelete}, inSpan,
		"each store call runs in its operation's context")
	assert.Equal(t, []apitoken.Op{apitoken.OpIssue, apitoken.OpVerify, apitoken.OpVerify, apitoken.OpRotate, apitoken.OpDelete, apitoken.OpPrune}, eventOps,
		"each event comes with its operation's context")

	t.Run("a malformed secret has its span too", func(t *testing.T) {
		_, err := iss.Verify(ctx, "acme", "nope")
		require.Equal(t, apitoken.ErrInvalidToken, err)
		assert.Equal(t, []string{"start Verify", "end Verify: apitoken: invalid token"}, tr.take())
		assert.Equal(t, apitoken.OpVerify, eventOps[len(eventOps)-1], "its event comes with the span's context")
	})

	t.Run("a store failure ends the span with it", func(t *testing.T) {
		store.failWith = errors.New("down")
		_, err := iss.Verify(ctx, "acme", secret)
		require.Error(t, err)
		assert.Equal(t, []string{"start Verify", "end Verify: apitoken: store: down"}, tr.take())
	})

	t.Run("nok, nil tracer", func(t *testing.T) {
		_, err := apitoken.NewIssuer(newSpy(), apitoken.WithTracer(nil))
		require.ErrorIs(t, err, apitoken.ErrInvalidInput)
	})
}
