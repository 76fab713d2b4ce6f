package apitoken_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
)

// eventLog is a WithEvents hook that keeps what it is given.
type eventLog struct {
	mu     sync.Mutex
	events []apitoken.Event
	ctxs   []context.Context
}

func (l *eventLog) hook(ctx context.Context, e apitoken.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	l.ctxs = append(l.ctxs, ctx)
}

// take returns the events so far and forgets them.
func (l *eventLog) take() []apitoken.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.events
	l.events, l.ctxs = nil, nil
	return e
}

// kinds returns the kinds of the events so far, without forgetting them.
func (l *eventLog) kinds() []apitoken.Kind {
	l.mu.Lock()
	defer l.mu.Unlock()
	var k []apitoken.Kind
	for _, e := range l.events {
		k = append(k, e.Kind)
	}
	return k
}

func TestEvents(t *testing.T) {
	ctx := t.Context()
	var log eventLog
	clk := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	iss := newIssuer(t, memstore.New(), apitoken.WithEvents(log.hook), apitoken.WithClock(clk.Now), apitoken.WithCache(10, time.Hour),
		apitoken.WithLastUseInterval(0)) // TestEventsOfLastUses has those
	now := clk.Now()
	stranger, _, err := newIssuer(t, memstore.New()).Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)

	secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme", MemberID: "m1"})
	require.NoError(t, err)
	require.Len(t, tok.Hint, 4)
	assert.Equal(t, []apitoken.Event{{Kind: apitoken.KindIssued, Op: apitoken.OpIssue, AccountID: "acme", TokenID: tok.ID, MemberID: "m1", Hint: tok.Hint, At: now}}, log.take())

	_, err = iss.Verify(ctx, "acme", secret)
	require.NoError(t, err)
	_, err = iss.Verify(ctx, "acme", secret)
	require.NoError(t, err)
	verified := apitoken.Event{Kind: apitoken.KindVerified, Op: apitoken.OpVerify, AccountID: "acme", TokenID: tok.ID, Hint: tok.Hint, At: now}
	cached := verified
	cached.Cached = true
	assert.Equal(t, []apitoken.Event{verified, cached}, log.take(), "the first asked the store, the second the cache")

	expiring, expTok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme", ExpiresAt: now.Add(time.Minute)})
	require.NoError(t, err)
	log.take()
	refused := func(account string, r apitoken.Reason) apitoken.Event {
		return apitoken.Event{Kind: apitoken.KindRefused, Op: apitoken.OpVerify, Reason: r, AccountID: account, At: now}
	}
	wrongAccount := refused("other", apitoken.ReasonWrongAccount)
	wrongAccount.TokenID, wrongAccount.Hint, wrongAccount.Related = tok.ID, tok.Hint, "acme"
	wrongAgain := wrongAccount
	wrongAgain.Cached = true
	for _, tt := range []struct {
		name            string
		account, secret string
		want            apitoken.Event
	}{
		{"malformed secret", "acme", "not-a-token", refused("acme", apitoken.ReasonMalformed)},
		{"empty account", "", secret, refused("", apitoken.ReasonMalformed)},
		{"unknown token", "acme", stranger, refused("acme", apitoken.ReasonUnknown)},
		{"another account's token, with the token's own account, asks the store", "other", secret, wrongAccount},
		{"the same again: the cache remembers the refusal", "other", secret, wrongAgain},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := iss.Verify(ctx, tt.account, tt.secret)
			require.Equal(t, apitoken.ErrInvalidToken, err)
			assert.Equal(t, []apitoken.Event{tt.want}, log.take())
		})
	}
	clk.Add(time.Minute)
	_, err = iss.Verify(ctx, "acme", expiring)
	require.Equal(t, apitoken.ErrInvalidToken, err)
	expired := refused("acme", apitoken.ReasonExpired)
	expired.TokenID, expired.Hint, expired.At = expTok.ID, expTok.Hint, clk.Now()
	assert.Equal(t, []apitoken.Event{expired}, log.take())

	_, successor, err := iss.Rotate(ctx, "acme", tok.ID, 0)
	require.NoError(t, err)
	assert.Equal(t, []apitoken.Event{{Kind: apitoken.KindRotated, Op: apitoken.OpRotate, AccountID: "acme", TokenID: tok.ID, Hint: tok.Hint,
		Related: successor.ID, RelatedHint: successor.Hint, At: clk.Now()}},
		log.take(), "one event: the successor's issue is the rotation's")

	require.NoError(t, iss.Delete(ctx, "acme", successor.ID))
	assert.Equal(t, []apitoken.Event{{Kind: apitoken.KindDeleted, Op: apitoken.OpDelete, AccountID: "acme", TokenID: successor.ID, At: clk.Now()}}, log.take())

	require.ErrorIs(t, iss.Delete(ctx, "acme", successor.ID), apitoken.ErrNotFound)
	assert.Empty(t, log.take(), "an unknown id is an answer, neither a deletion nor a store failure")

	leaked, leakedTok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)
	log.take()
	_, err = iss.RevokeSecret(apitoken.WithRevokeReason(ctx, "ticket 42"), leaked)
	require.NoError(t, err)
	assert.Equal(t, []apitoken.Event{{Kind: apitoken.KindRevoked, Op: apitoken.OpRevoke, AccountID: "acme", TokenID: leakedTok.ID, Related: "ticket 42", At: clk.Now()}}, log.take())

	n, err := iss.Prune(ctx, clk.Now())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	assert.Equal(t, []apitoken.Event{{Kind: apitoken.KindPruned, Op: apitoken.OpPrune, Before: clk.Now(), Count: 1, At: clk.Now()}}, log.take())

	_, _, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)
	log.take()
	n, err = iss.DeleteAll(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	assert.Equal(t, []apitoken.Event{{Kind: apitoken.KindDeletedAccount, Op: apitoken.OpDeleteAll, AccountID: "acme", Count: 1, At: clk.Now()}}, log.take())

	_, _, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme", Name: strings.Repeat("x", 1000)})
	require.ErrorIs(t, err, apitoken.ErrInvalidInput)
	assert.Empty(t, log.take(), "invalid input is no event")
}

func TestEventsOfStoreFailures(t *testing.T) {
	ctx := t.Context()
	var log eventLog
	clk := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	store := newSpy()
	iss := newIssuer(t, store, apitoken.WithEvents(log.hook), apitoken.WithClock(clk.Now))
	secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)
	log.take()
	down := errors.New("connection refused")
	store.failWith = down

	for _, tt := range []struct {
		op      apitoken.Op
		call    func() error
		tokenID string
	}{
		{apitoken.OpVerify, func() error { _, err := iss.Verify(ctx, "acme", secret); return err }, ""},
		{apitoken.OpIssue, func() error { _, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"}); return err }, ""},
		{apitoken.OpList, func() error { _, err := iss.List(ctx, "acme"); return err }, ""},
		{apitoken.OpDelete, func() error { return iss.Delete(ctx, "acme", tok.ID) }, tok.ID},
		{apitoken.OpRotate, func() error { _, _, err := iss.Rotate(ctx, "acme", tok.ID, 0); return err }, tok.ID},
	} {
		t.Run(tt.op.String(), func(t *testing.T) {
			err := tt.call()
			require.ErrorIs(t, err, down)
			events := log.take()
			require.Len(t, events, 1)
			e := events[0]
			assert.Equal(t, apitoken.KindStoreFailed, e.Kind)
			assert.Equal(t, tt.op, e.Op)
			assert.Equal(t, "acme", e.AccountID)
			assert.Equal(t, tt.tokenID, e.TokenID)
			assert.Equal(t, clk.Now(), e.At)
			assert.ErrorIs(t, e.Err, down)
		})
	}
}

func TestEventsOfMalformedRequests(t *testing.T) {
	var log eventLog
	iss := newIssuer(t, memstore.New(), apitoken.WithEvents(log.hook))
	secret, _, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)
	log.take()
	h := iss.Middleware(http.NotFoundHandler())
	req := httptest.NewRequest("GET", "/?access_token="+secret, nil)
	req.Header.Set("X-Account-Id", "acme")
	h.ServeHTTP(httptest.NewRecorder(), req)
	events := log.take()
	require.Len(t, events, 1)
	assert.Equal(t, apitoken.KindRefused, events[0].Kind)
	assert.Equal(t, apitoken.OpAuthenticate, events[0].Op)
	assert.Equal(t, apitoken.ReasonMalformed, events[0].Reason)
	assert.Equal(t, "access token in the URL query", events[0].Related)
	assert.NotContains(t, fmt.Sprintf("%+v", events[0]), secret)
}

func TestEventsOfLastUses(t *testing.T) {
	ctx := t.Context()
	var log eventLog
	store := newSpy()
	fail := make(chan error, 1)
	store.onRecordLastUse = func(ctx context.Context, uses []apitoken.LastUse, next func(context.Context, []apitoken.LastUse) error) error {
		select {
		case err := <-fail:
			return err
		default:
			return next(ctx, uses)
		}
	}
	clk := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	iss := newIssuer(t, store, apitoken.WithEvents(log.hook), apitoken.WithClock(clk.Now), apitoken.WithLastUseInterval(time.Minute),
		apitoken.WithLogger(discardLogger()))
	secret, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)

	_, err = iss.Verify(ctx, "acme", secret)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(log.kinds()) == 3 }, time.Second, time.Millisecond)
	events := log.take()
	assert.Equal(t, apitoken.Event{Kind: apitoken.KindLastUsesFlushed, Op: apitoken.OpBackground, Count: 1, At: clk.Now()}, events[2])

	down := errors.New("disk full")
	fail <- down
	clk.Add(time.Minute)
	_, err = iss.Verify(ctx, "acme", secret)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(log.kinds()) == 2 }, time.Second, time.Millisecond)
	events = log.take()
	assert.Equal(t, apitoken.Event{Kind: apitoken.KindLastUsesFailed, Op: apitoken.OpBackground, Count: 1, Err: down, At: clk.Now()}, events[1])
	assert.Equal(t, apitoken.LastUseStats{Written: 1, Failed: 1}, iss.Stats().LastUses)
}

// reportingBus is a fakeBus that is a ReportingBus: a message
// lostMarker injected on it is a lost connection, reported to lost.
type reportingBus struct{ *fakeBus }

const lostMarker = "\xffLOST"

var errConnReset = errors.New("connection reset by peer")

func (b reportingBus) SubscribeReporting(ctx context.Context, deliver func([]byte), lost func(error)) error {
	return b.fakeBus.Subscribe(ctx, func(msg []byte) {
		if string(msg) == lostMarker {
			lost(errConnReset)
			return
		}
		deliver(msg)
	})
}

func TestEventsOfTheBus(t *testing.T) {
	for _, reporting := range []bool{false, true} {
		t.Run(fmt.Sprintf("reporting=%v", reporting), func(t *testing.T) {
			ctx := t.Context()
			var log eventLog
			hub := newFakeHub()
			fb := hub.join()
			var bus apitoken.Bus = fb
			if reporting {
				bus = reportingBus{fb}
			}
			clk := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
			iss := newIssuer(t, memstore.New(), apitoken.WithEvents(log.hook), apitoken.WithClock(clk.Now), apitoken.WithCache(10, time.Hour),
				apitoken.WithCacheBus(bus), apitoken.WithLogger(discardLogger()))
			t.Cleanup(func() { closeWithin(t, iss, 2*time.Second) })
			require.Eventually(t, func() bool { return len(log.kinds()) == 2 }, time.Second, time.Millisecond)
			assert.Equal(t, []apitoken.Event{
				{Kind: apitoken.KindBusConnected, Op: apitoken.OpBackground, At: clk.Now()},
				{Kind: apitoken.KindBusMayHaveMissed, Op: apitoken.OpBackground, At: clk.Now()},
			}, log.take())
			s := iss.Stats().Bus
			assert.Equal(t, apitoken.BusConnected, s.State)
			assert.Equal(t, uint64(1), s.Resets)

			clk.Add(time.Second)
			_, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
			require.NoError(t, err)
			require.NoError(t, iss.Delete(ctx, "acme", tok.ID)) // its own message comes back
			fb.waitDelivered(t, 1)
			log.take()
			clk.Add(time.Second)
			s = iss.Stats().Bus
			assert.Equal(t, uint64(1), s.Messages)
			assert.Equal(t, time.Second, s.LastMessageAge)
			assert.Equal(t, 2*time.Second, s.StateAge)

			_, tok, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
			require.NoError(t, err)
			log.take()
			fb.publishErr.Store(&errConnReset)
			require.NoError(t, iss.Delete(ctx, "acme", tok.ID), "a token deleted is deleted, whether the bus says so or not")
			assert.Equal(t, []apitoken.Event{
				{Kind: apitoken.KindBusPublishFailed, Op: apitoken.OpBackground, AccountID: "acme", TokenID: tok.ID, Err: errConnReset, At: clk.Now()},
				{Kind: apitoken.KindDeleted, Op: apitoken.OpDelete, AccountID: "acme", TokenID: tok.ID, At: clk.Now()},
			}, log.take(), "the failed publish is reported inside Delete, before its own event")

			if reporting {
				fb.inject(t, []byte(lostMarker))
				assert.Equal(t, []apitoken.Event{{Kind: apitoken.KindBusDisconnected, Op: apitoken.OpBackground, Err: errConnReset, At: clk.Now()}}, log.take())
				assert.Equal(t, apitoken.BusDisconnected, iss.Stats().Bus.State)
				fb.inject(t, nil) // listening again
				assert.Equal(t, []apitoken.Kind{apitoken.KindBusConnected, apitoken.KindBusMayHaveMissed}, log.kinds())
				log.take()
			}
			// A subscription that ends is a disconnection, whatever the bus.
			fb.drop <- errConnReset
			require.Eventually(t, func() bool { return len(log.kinds()) >= 1 }, time.Second, time.Millisecond)
			assert.Equal(t, apitoken.Event{Kind: apitoken.KindBusDisconnected, Op: apitoken.OpBackground, Err: errConnReset, At: clk.Now()}, log.take()[0])
			assert.Equal(t, apitoken.BusDisconnected, iss.Stats().Bus.State)
			// The Issuer subscribes again after a pause.
			require.Eventually(t, func() bool { return iss.Stats().Bus.State == apitoken.BusConnected }, 3*time.Second, 5*time.Millisecond)
		})
	}
}

func TestEventsHookOrder(t *testing.T) {
	var order []string
	var buf strings.Builder
	logger := slogTo(&buf)
	iss := newIssuer(t, memstore.New(), apitoken.WithAuditLogger(logger),
		apitoken.WithEvents(func(context.Context, apitoken.Event) {
			require.Contains(t, buf.String(), "token issued", "the audit record is written first")
			order = append(order, "first")
		}),
		apitoken.WithEvents(func(context.Context, apitoken.Event) { order = append(order, "second") }))
	_, _, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)
	assert.Equal(t, []string{"first", "second"}, order)

	_, err = apitoken.NewIssuer(memstore.New(), apitoken.WithEvents(nil))
	require.ErrorIs(t, err, apitoken.ErrInvalidInput)
}

func TestEventsHoldNoSecret(t *testing.T) {
	ctx := t.Context()
	var log eventLog
	iss := newIssuer(t, memstore.New(), apitoken.WithEvents(log.hook), apitoken.WithCache(10, time.Hour))
	secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)
	rotated, _, err := iss.Rotate(ctx, "acme", tok.ID, 0)
	require.NoError(t, err)
	for _, s := range []string{secret, rotated} {
		_, _ = iss.Verify(ctx, "acme", s)
		_, _ = iss.Verify(ctx, "other", s)
		_, _ = iss.Verify(ctx, "acme", s[:len(s)-1])
	}
	events := log.take()
	require.NotEmpty(t, events)
	for _, e := range events {
		for _, form := range []string{fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e)} {
			for _, s := range []string{secret, rotated} {
				assert.NotContains(t, form, s[len(s)-20:], "an event holds a secret, or part of one")
			}
		}
	}
}

func TestEventNames(t *testing.T) {
	assert.Equal(t, "wrong account", apitoken.ReasonWrongAccount.String())
	assert.Equal(t, "address not allowed", apitoken.ReasonAddressNotAllowed.String())
	assert.Equal(t, "Reason(200)", apitoken.Reason(200).String())
	assert.Equal(t, "bus disconnected", apitoken.KindBusDisconnected.String())
	assert.Equal(t, "Kind(0)", apitoken.Kind(0).String())
	assert.Equal(t, "RevokeSecret", apitoken.OpRevoke.String())
	assert.Equal(t, []apitoken.Reason{apitoken.ReasonMalformed, apitoken.ReasonUnknown, apitoken.ReasonWrongAccount,
		apitoken.ReasonExpired, apitoken.ReasonTooOld, apitoken.ReasonDisabled, apitoken.ReasonAddressNotAllowed}, apitoken.Reasons())
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func TestEventsOfGovernance(t *testing.T) {
	ctx := t.Context()
	var log eventLog
	clk := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	iss := newIssuer(t, memstore.New(), apitoken.WithEvents(log.hook), apitoken.WithClock(clk.Now), apitoken.WithLastUseInterval(time.Minute))
	secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme", MemberID: "m1"})
	require.NoError(t, err)
	_, _, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme", MemberID: "m2"})
	require.NoError(t, err)
	log.take()

	require.NoError(t, iss.Disable(ctx, "acme", tok.ID))
	_, err = iss.Verify(ctx, "acme", secret)
	require.Equal(t, apitoken.ErrInvalidToken, err)
	require.NoError(t, iss.Enable(ctx, "acme", tok.ID))
	now := clk.Now()
	assert.Equal(t, []apitoken.Event{
		{Kind: apitoken.KindDisabled, Op: apitoken.OpDisable, AccountID: "acme", TokenID: tok.ID, At: now},
		{Kind: apitoken.KindRefused, Op: apitoken.OpVerify, Reason: apitoken.ReasonDisabled, AccountID: "acme", TokenID: tok.ID, Hint: tok.Hint, At: now},
		{Kind: apitoken.KindEnabled, Op: apitoken.OpEnable, AccountID: "acme", TokenID: tok.ID, At: now},
	}, log.take())

	n, err := iss.DeleteMember(ctx, "acme", "m1")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	assert.Equal(t, []apitoken.Event{{Kind: apitoken.KindDeletedMember, Op: apitoken.OpDeleteMember, AccountID: "acme", MemberID: "m1", Count: 1, At: now}}, log.take())

	clk.Add(time.Hour)
	n, err = iss.PruneUnused(ctx, clk.Now().Add(-time.Minute*2))
	require.NoError(t, err)
	require.Equal(t, 1, n, "m2's token, never used")
	assert.Equal(t, []apitoken.Event{{Kind: apitoken.KindPrunedUnused, Op: apitoken.OpPruneUnused, Before: clk.Now().Add(-2 * time.Minute), Count: 1, At: clk.Now()}}, log.take())

	t.Run("an address not allowed", func(t *testing.T) {
		var log eventLog
		iss := newIssuer(t, memstore.New(), apitoken.WithEvents(log.hook), apitoken.WithClock(clk.Now), apitoken.WithLastUseInterval(0))
		secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme", AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
		require.NoError(t, err)
		log.take()
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = "192.0.2.1:1234"
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set("X-Account-Id", "acme")
		rec := httptest.NewRecorder()
		iss.Middleware(http.NotFoundHandler()).ServeHTTP(rec, req)
		require.Equal(t, http.StatusUnauthorized, rec.Code)
		assert.Equal(t, []apitoken.Event{{Kind: apitoken.KindRefused, Op: apitoken.OpVerify, Reason: apitoken.ReasonAddressNotAllowed,
			AccountID: "acme", TokenID: tok.ID, Hint: tok.Hint, At: clk.Now()}}, log.take())
	})

	t.Run("a token older than the max lifetime", func(t *testing.T) {
		var log eventLog
		mem := memstore.New()
		secret, tok, err := newIssuer(t, mem, apitoken.WithClock(clk.Now)).Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
		require.NoError(t, err)
		clk.Add(2 * time.Hour)
		strict := newIssuer(t, mem, apitoken.WithEvents(log.hook), apitoken.WithClock(clk.Now), apitoken.WithMaxLifetime(time.Hour))
		_, err = strict.Verify(ctx, "acme", secret)
		require.Equal(t, apitoken.ErrInvalidToken, err)
		assert.Equal(t, []apitoken.Event{{Kind: apitoken.KindRefused, Op: apitoken.OpVerify, Reason: apitoken.ReasonTooOld,
			AccountID: "acme", TokenID: tok.ID, Hint: tok.Hint, At: clk.Now()}}, log.take())
		assert.Equal(t, uint64(1), strict.Stats().Verifications.RefusedFor(apitoken.ReasonTooOld))
	})
}
