package apitoken

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// lastUseTimeout bounds one background write of last uses.
const lastUseTimeout = 10 * time.Second

// lastUses coalesces the last uses of tokens and writes them to the store
// off the request path: at most one write per token per interval, by one
// goroutine that runs while there is something to write and then ends.
type lastUses struct {
	store    LastUseRecorder
	interval time.Duration
	log      *slog.Logger // for failed writes; nil: slog.Default
	emit     func(context.Context, Event)

	mu       sync.RWMutex
	recorded map[string]time.Time // token id → last use sent to the store
	err      error                // of the last failed write, for Close
	written  uint64               // last uses written, for Stats
	failed   uint64               // last uses whose write failed, for Stats
	pending  []LastUse
	swept    time.Time // when recorded was last cleared of old entries
	flushing bool
	closed   bool
	done     sync.WaitGroup // the flushing goroutine
}

// use notes that the token id verified at now, from the client address
// that addr returns: called only when the use is due to be written, so
// that the address is found once per token per interval. It takes the
// write lock only then.
func (l *lastUses) use(id string, now time.Time, addr func() netip.Addr) {
	l.mu.RLock()
	due := !l.closed && now.Sub(l.recorded[id]) >= l.interval
	l.mu.RUnlock()
	if !due {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || now.Sub(l.recorded[id]) < l.interval {
		return // another request got here first
	}
	l.recorded[id] = now
	l.pending = append(l.pending, LastUse{ID: id, At: now, IP: addr()})
	if !l.flushing {
		l.flushing = true
		l.done.Add(1)
		go l.flush()
	}
}

// flush writes the pending last uses until there are none.
func (l *lastUses) flush() {
	defer l.done.Done()
	for {
		l.mu.Lock()
		batch := l.pending
		l.pending = nil
		if len(batch) == 0 {
			l.flushing = false
			l.mu.Unlock()
			return
		}
		l.sweep(batch[len(batch)-1].At)
		l.mu.Unlock()
		l.write(batch)
	}
}

// sweep forgets the tokens not used for an interval, so that deleted tokens
// do not stay in recorded. It runs at most once per interval; l.mu is held.
func (l *lastUses) sweep(now time.Time) {
	if now.Sub(l.swept) < l.interval {
		return
	}
	for id, t := range l.recorded {
		if now.Sub(t) >= l.interval {
			delete(l.recorded, id)
		}
	}
	l.swept = now
}

func (l *lastUses) write(batch []LastUse) {
	ctx, cancel := context.WithTimeout(context.Background(), lastUseTimeout)
	defer cancel()
	// A failed write fails no request; the next use writes again.
	err := l.store.RecordLastUse(ctx, batch)
	l.mu.Lock()
	if err == nil {
		l.written += uint64(len(batch))
	} else {
		l.err = err
		l.failed += uint64(len(batch))
		// Not written: the next use of each is written again, however
		// soon, or the store would keep a last use older than the
		// interval (and PruneUnused could remove a token in use).
		for _, u := range batch {
			if l.recorded[u.ID].Equal(u.At) {
				delete(l.recorded, u.ID)
			}
		}
	}
	l.mu.Unlock()
	if err == nil {
		l.emit(ctx, Event{Kind: KindLastUsesFlushed, Count: len(batch)})
		return
	}
	l.emit(ctx, Event{Kind: KindLastUsesFailed, Count: len(batch), Err: err})
	log := l.log
	if log == nil {
		log = slog.Default()
	}
	log.LogAttrs(ctx, slog.LevelWarn, "apitoken: last use not recorded", slog.Int("tokens", len(batch)), slog.Any("err", err))
}

// close stops new writes, waits for the pending ones, and returns the error
// of the last one that failed.
func (l *lastUses) close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.done.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.err
	l.err = nil
	return err
}
