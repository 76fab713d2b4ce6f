package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/apitoken-go/apitoken"
)

// RecordLastUse implements apitoken.LastUseRecorder: one UPDATE per token,
// in one transaction (the Issuer calls it in the background, at most once
// per token per interval).
func (s *Store) RecordLastUse(ctx context.Context, uses []apitoken.LastUse) error {
	q := s.script.queries["set-last-used"]
	write := func(db execQuerier) error {
		for _, u := range uses {
			if !storable(u.ID) || u.At.IsZero() {
				continue
			}
			at := s.timeArg(u.At)
			args := []any{at, addrArg(u.IP), u.ID, at}
			if s.dialect == Postgres {
				args = []any{at, u.ID, addrArg(u.IP)} // $1 is used twice
			}
			if _, err := db.ExecContext(ctx, q, args...); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	if s.tx != nil {
		err = write(s.tx)
	} else {
		var tx *sql.Tx
		if tx, err = s.db.BeginTx(ctx, nil); err == nil {
			if err = write(tx); err == nil {
				err = tx.Commit()
			} else {
				_ = tx.Rollback()
			}
		}
	}
	if err != nil {
		return fmt.Errorf("sqlstore: record last use: %w", err)
	}
	return nil
}
