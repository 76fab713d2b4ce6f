package sqlstore

import (
	"context"
	"log/slog"
	"time"
)

// detachedTimeout bounds a statement that runs on after its caller gave up,
// and the delete that undoes it.
const detachedTimeout = 10 * time.Second

// detached runs insert, whose nil error means that it inserted the record
// of accountID and id, so that the caller's context cannot cut it off
// halfway (MySQL, outside a caller's transaction). MySQL's driver answers a
// cancelled context by dropping the connection, and the server would still
// commit an INSERT it had begun: a failed Create would leave a row. Here
// insert runs with a context of its own, bounded by detachedTimeout; a
// caller whose context ends first gets its error at once, and insert's
// outcome is awaited in the background, which deletes the row if it was
// inserted. (A transaction of its own, which a dropped connection rolls
// back, gave the same guarantee for two round trips more.)
func (s *Store) detached(ctx context.Context, accountID, id string, insert func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err // ended already: nothing is sent
	}
	done := make(chan error, 1)
	run, cancel := context.WithTimeout(context.WithoutCancel(ctx), detachedTimeout)
	go func() {
		defer cancel()
		done <- insert(run)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		go func() {
			if <-done != nil {
				return // not inserted
			}
			del, cancel := context.WithTimeout(context.Background(), detachedTimeout)
			defer cancel()
			if err := s.Delete(del, accountID, id); err != nil {
				slog.Default().LogAttrs(del, slog.LevelWarn, "sqlstore: a token whose Create was cancelled may remain",
					slog.String("account_id", accountID), slog.String("token_id", id), slog.Any("err", err))
			}
		}()
		return ctx.Err()
	}
}
