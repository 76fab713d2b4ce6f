package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/apitoken-go/apitoken"
)

// RecordLastUse implements apitoken.LastUseRecorder: one UPDATE per token,
// each a statement on its own, in the order of the tokens' ids (the Issuer
// calls it in the background, at most once per token per interval). No
// statement holds a row lock while it waits for another, so the last-use
// writes of several instances and a Delete, Rotate or DeleteAll that locks
// the same rows in another order cannot close a lock cycle; where the
// database still reports a deadlock (InnoDB locks a secondary index entry
// and its row apart), the victim runs again, on either side. In a Store made
// by WithTx the UPDATEs run in the caller's transaction, in the same order.
func (s *Store) RecordLastUse(ctx context.Context, uses []apitoken.LastUse) error {
	uses = slices.SortedFunc(slices.Values(uses), func(a, b apitoken.LastUse) int { return cmp.Compare(a.ID, b.ID) })
	for _, u := range uses {
		if !storable(u.ID) || u.At.IsZero() {
			continue
		}
		at := s.timeArg(u.At)
		args := []any{at, addrArg(u.IP), u.ID, at}
		if s.dialect == Postgres {
			args = []any{at, u.ID, addrArg(u.IP)} // $1 is used twice
		}
		if _, err := s.exec(ctx, &s.stmts.setLastUsed, args...); err != nil {
			return fmt.Errorf("sqlstore: record last use: %w", err)
		}
	}
	return nil
}
