package sqlstore

import (
	"context"
	"database/sql"
	"log/slog"
	"time"
)

// detachedTimeout bounds a statement that runs on after its caller gave up,
// and the delete that undoes it.
const detachedTimeout = 10 * time.Second

// insertDetached runs the create statement on its own (MySQL, outside a
// caller's transaction) in one round trip, so that the caller's context
// cannot cut it off halfway. MySQL's driver answers a cancelled context by
// dropping the connection, and the server would still commit an INSERT it
// had begun: a failed Create would leave a row. Here the statement runs with
// a context of its own, bounded by detachedTimeout; a caller whose context
// ends first gets its error at once, and the statement's outcome is awaited
// in the background, which deletes the row if it was inserted. (A
// transaction of its own, which a dropped connection rolls back, gave the
// same guarantee for three round trips.)
func (s *Store) insertDetached(ctx context.Context, args []any, accountID, id string) (sql.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err // ended already: nothing is sent
	}
	type outcome struct {
		res sql.Result
		err error
	}
	done := make(chan outcome, 1)
	run, cancel := context.WithTimeout(context.WithoutCancel(ctx), detachedTimeout)
	go func() {
		defer cancel()
		res, err := s.exec(run, &s.stmts.create, args...)
		done <- outcome{res, err}
	}()
	select {
	case o := <-done:
		return o.res, o.err
	case <-ctx.Done():
		go func() {
			o := <-done
			if s.created(o.res, o.err) != nil {
				return // not inserted
			}
			del, cancel := context.WithTimeout(context.Background(), detachedTimeout)
			defer cancel()
			if err := s.Delete(del, accountID, id); err != nil {
				slog.Default().LogAttrs(del, slog.LevelWarn, "sqlstore: a token whose Create was cancelled may remain",
					slog.String("account_id", accountID), slog.String("token_id", id), slog.Any("err", err))
			}
		}()
		return nil, ctx.Err()
	}
}
