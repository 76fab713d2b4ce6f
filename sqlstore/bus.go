package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/internal/busmsg"
)

// A Bus is an apitoken.Bus over the Store's revocation log, on every
// dialect, with no server beyond the database: the Store writes a row to
// the log in the transaction of each change that revokes a token (Delete,
// DeleteAccount, DeleteMember, SetDisabled, SetExpiry, Rehash: the Issuer's
// Delete, DeleteAll, DeleteMember, Disable, Rotate and RevokeSecret, also in
// the app's own transaction through WithTx; DeleteUnused, PruneUnused's,
// makes every cache forget everything), and each Subscribe polls the log, so an instance's cache forgets a
// token that any instance revoked within one poll interval plus one round
// trip of the change's commit. A change that rolls back is never
// announced; one made in the app's transaction is announced once it commits,
// whether or not Committed is called.
//
// Publish sends nothing: the log already holds what the Issuer publishes.
//
// Rows are read by id. Ids are taken when a row is written but seen when its
// transaction commits, so they may appear out of order: an id skipped over
// is looked for again on each poll for the look-back period (WithLookBack),
// and a transaction that commits later than that after its change is seen
// late only through the cache's TTL. Subscribe calls deliver(nil), and the
// Issuer empties its cache, when it starts and whenever ids may have been
// missed; a failed poll ends it with the error, and the Issuer subscribes
// again after a pause. Subscribers delete the rows older than the retention
// (WithRetention) as they poll.
//
// The app's database user needs SELECT, INSERT and DELETE on the log
// (<prefix>revocations).
type Bus struct {
	store                         *Store
	interval, lookBack, retained  time.Duration
	after, in, since, last, prune preparedStmt
}

var _ apitoken.Bus = (*Bus)(nil)

// Defaults and bounds of a Bus.
const (
	DefaultPollInterval = 100 * time.Millisecond
	DefaultLookBack     = time.Minute
	DefaultRetention    = time.Hour

	pollTimeout  = 10 * time.Second // per poll
	pollBatch    = 1000             // rows per read of the log, as in revocations-after
	gapBatch     = 100              // ids per look back, as in revocations-in
	maxGaps      = 10_000           // ids looked for at once; beyond, deliver(nil)
	maxPruneWait = time.Minute      // between two prunes of one subscriber
)

// A BusOption configures a Bus. NewBus returns the first error an option
// reports.
type BusOption func(*Bus) error

// WithPollInterval sets how often Subscribe reads the log, 100 ms unless
// set: the bound of a revocation's propagation, plus one round trip. It is
// between 1 ms and 1 minute.
func WithPollInterval(d time.Duration) BusOption {
	return func(b *Bus) error {
		if d < time.Millisecond || d > time.Minute {
			return fmt.Errorf("sqlstore: %w: poll interval must be between 1ms and 1m", apitoken.ErrInvalidInput)
		}
		b.interval = d
		return nil
	}
}

// WithLookBack sets how long an id skipped over (a transaction not yet
// committed, or rolled back) is looked for again, 1 minute unless set:
// longer than the longest time between a change and its commit in the
// app's transactions. It is at least the poll interval.
func WithLookBack(d time.Duration) BusOption {
	return func(b *Bus) error {
		if d <= 0 {
			return fmt.Errorf("sqlstore: %w: look-back must be positive", apitoken.ErrInvalidInput)
		}
		b.lookBack = d
		return nil
	}
}

// WithRetention sets how long the log keeps a row, 1 hour unless set. It
// is at least the look-back.
func WithRetention(d time.Duration) BusOption {
	return func(b *Bus) error {
		if d <= 0 {
			return fmt.Errorf("sqlstore: %w: retention must be positive", apitoken.ErrInvalidInput)
		}
		b.retained = d
		return nil
	}
}

// NewBus returns a Bus over the revocation log of store, which must be
// migrated and not made by WithTx (the Bus polls the *sql.DB given to New).
// Close it after the Issuers that use it.
func NewBus(store *Store, opts ...BusOption) (*Bus, error) {
	if store == nil || store.tx != nil {
		return nil, fmt.Errorf("sqlstore: %w: NewBus needs a Store made by New, not nil nor made by WithTx", apitoken.ErrInvalidInput)
	}
	b := &Bus{store: store, interval: DefaultPollInterval, lookBack: DefaultLookBack, retained: DefaultRetention}
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("sqlstore: %w: option is nil", apitoken.ErrInvalidInput)
		}
		if err := opt(b); err != nil {
			return nil, err
		}
	}
	if b.lookBack < b.interval || b.retained < b.lookBack {
		return nil, fmt.Errorf("sqlstore: %w: want poll interval <= look-back <= retention", apitoken.ErrInvalidInput)
	}
	q := store.script.queries
	for name, p := range map[string]*preparedStmt{
		"revocations-after": &b.after, "revocations-in": &b.in, "revocations-since": &b.since,
		"revocations-last": &b.last, "revocations-prune": &b.prune,
	} {
		p.db, p.query = store.db, q[name]
	}
	return b, nil
}

// Close closes the Bus's prepared statements: Subscribe then fails. It
// does not close the database.
func (b *Bus) Close() error {
	return errors.Join(b.after.close(), b.in.close(), b.since.close(), b.last.close(), b.prune.close())
}

// Publish implements apitoken.Bus. It sends nothing: the Store wrote the
// revocation to the log with the change.
func (b *Bus) Publish(context.Context, []byte) error { return nil }

// Subscribe implements apitoken.Bus: it polls the log every poll interval
// and calls deliver with an invalidation for each revocation, until ctx
// ends (it then returns nil) or a poll fails (it returns the error).
func (b *Bus) Subscribe(ctx context.Context, deliver func(msg []byte)) error {
	sub := &subscription{bus: b, gaps: make(map[int64]time.Time), pruned: time.Now()}
	if err := sub.start(ctx); err != nil {
		return b.ended(ctx, err)
	}
	// From here on, nothing committed is missed: what came before is
	// forgotten.
	deliver(nil)
	t := time.NewTicker(b.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := sub.poll(ctx, deliver); err != nil {
			return b.ended(ctx, err)
		}
	}
}

// ended is what Subscribe returns after err: nil once ctx has ended.
func (b *Bus) ended(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("sqlstore: bus: %w", err)
}

// A subscription is one Subscribe's place in the log.
type subscription struct {
	bus      *Bus
	cursor   int64               // the highest id read
	gaps     map[int64]time.Time // ids below cursor not read yet, and until when to look for them
	overflow bool                // more gaps than maxGaps came: ids may be missed
	pruned   time.Time           // the last prune
}

// start sets the cursor at the log's end, and looks back for the ids of
// the look-back period that are not committed yet.
func (s *subscription) start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	b := s.bus
	var last int64
	if err := s.queryRow(ctx, &b.last).Scan(&last); err != nil {
		return err
	}
	from := time.Now().Add(-b.lookBack).UTC().Truncate(time.Microsecond)
	rows, err := s.query(ctx, &b.since, b.store.timeArg(from))
	if err != nil {
		return err
	}
	defer rows.Close()
	// The cursor starts at the first id of the look-back period (or at the
	// end), so that the ids after it not committed yet become gaps.
	now := time.Now()
	s.cursor = last
	for first := true; rows.Next(); first = false {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return err
		}
		if first {
			s.cursor = min(id, last)
		}
		s.advance(id, now)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	s.advance(last, now)
	s.overflow = false // deliver(nil) follows
	return nil
}

// advance records that id was read at now, and reports whether it is new:
// past the cursor (the ids skipped over become gaps), or a gap.
func (s *subscription) advance(id int64, now time.Time) bool {
	if id <= s.cursor {
		_, gap := s.gaps[id]
		delete(s.gaps, id)
		return gap
	}
	until := now.Add(s.bus.lookBack)
	for g := s.cursor + 1; g < id; g++ {
		if len(s.gaps) >= maxGaps {
			s.overflow = true
			break
		}
		s.gaps[g] = until
	}
	s.cursor = id
	return true
}

// poll reads the log past the cursor and the gaps, delivering what is new,
// and prunes the log when due. When ids may have been missed (too many
// gaps), it delivers nil and forgets its gaps.
func (s *subscription) poll(ctx context.Context, deliver func([]byte)) error {
	ctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	b := s.bus
	now := time.Now()
	for {
		n, err := s.read(ctx, deliver, now, &b.after, s.cursor)
		if err != nil {
			return err
		}
		if n < pollBatch {
			break
		}
	}
	if len(s.gaps) > 0 {
		ids := make([]int64, 0, len(s.gaps))
		for id, until := range s.gaps {
			if now.After(until) {
				delete(s.gaps, id) // rolled back, most likely
				continue
			}
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for chunk := range slices.Chunk(ids, gapBatch) {
			args := make([]any, gapBatch)
			for i := range args {
				args[i] = chunk[min(i, len(chunk)-1)]
			}
			if _, err := s.read(ctx, deliver, now, &b.in, args...); err != nil {
				return err
			}
		}
	}
	if s.overflow {
		deliver(nil)
		clear(s.gaps)
		s.overflow = false
	}
	if now.Sub(s.pruned) >= min(b.retained, maxPruneWait) {
		before := now.Add(-b.retained).UTC().Truncate(time.Microsecond)
		stmt, err := b.prune.get(ctx)
		if err != nil {
			return err
		}
		if _, err := stmt.ExecContext(ctx, b.store.timeArg(before)); err != nil {
			return err
		}
		s.pruned = now
	}
	return nil
}

// read runs p, a query of revocations, and delivers those that are new. It
// returns how many rows it read.
func (s *subscription) read(ctx context.Context, deliver func([]byte), now time.Time, p *preparedStmt, args ...any) (int, error) {
	rows, err := s.query(ctx, p, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			id                 int64
			accountID, tokenID string
		)
		if err := rows.Scan(&id, &accountID, &tokenID); err != nil {
			return n, err
		}
		n++
		if !s.advance(id, now) {
			continue
		}
		s.bus.store.replica.revoked(accountID, tokenID) // before the cache forgets: its next fill reads the primary
		if accountID == "" || len(accountID) > 255 {
			deliver(nil) // no message can say it: forget everything
			continue
		}
		deliver(busmsg.Encode(accountID, tokenID))
	}
	return n, rows.Err()
}

func (s *subscription) query(ctx context.Context, p *preparedStmt, args ...any) (*sql.Rows, error) {
	stmt, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	return stmt.QueryContext(ctx, args...)
}

func (s *subscription) queryRow(ctx context.Context, p *preparedStmt, args ...any) interface{ Scan(...any) error } {
	stmt, err := p.get(ctx)
	if err != nil {
		return errRow{err}
	}
	return stmt.QueryRowContext(ctx, args...)
}

// errRow is a row whose Scan returns err.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
