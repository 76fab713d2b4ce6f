package sqlstore

import (
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"time"
)

// Deadlocks and serialization failures: the database chose a statement or a
// transaction as the victim of a lock cycle, or of a conflict, and rolled it
// back. Running it again from its start is then safe, and is what the
// database asks for.
const (
	pgDeadlockDetected     = "40P01"
	pgSerializationFailure = "40001"
	mysqlDeadlock          = 1213 // the whole transaction was rolled back
	mysqlLockWaitTimeout   = 1205 // the statement was rolled back, not the transaction
)

// retryable reports whether err says that the database rolled back the
// statement it failed (PostgreSQL: deadlock detected, serialization
// failure; MySQL: deadlock, lock wait timeout), so that a statement run on
// its own, or a transaction of the Store's own run again from its start,
// may run again. It is the one place that classifies such failures. It
// never holds for an error of the caller's transaction (WithTx): the
// caller decides what to run again.
func retryable(err error) bool {
	if err == nil {
		return false
	}
	switch sqlState(err) {
	case pgDeadlockDetected, pgSerializationFailure:
		return true
	}
	switch mysqlErrorNumber(err) {
	case mysqlDeadlock, mysqlLockWaitTimeout:
		return true
	}
	return false
}

// sqlState returns the SQLSTATE of a PostgreSQL error in err's chain, or "":
// pgx's *pgconn.PgError and lib/pq's *pq.Error have a SQLState method, and
// their Code field holds it too. It does not import the drivers.
func sqlState(err error) string {
	var st interface{ SQLState() string }
	if errors.As(err, &st) {
		return st.SQLState()
	}
	var code string
	walkErrors(err, func(e error) bool {
		v := reflect.ValueOf(e)
		if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
			return false
		}
		if f := v.Elem().FieldByName("Code"); f.IsValid() && f.Kind() == reflect.String {
			code = f.String()
			return true
		}
		return false
	})
	return code
}

// Bounds of retry: the attempts, and the first pause between two, which
// doubles (with jitter, so that two victims of one cycle do not meet
// again).
const (
	retryAttempts = 8
	retryPause    = time.Millisecond
)

// retry runs fn, and runs it again while it fails with a retryable error,
// up to retryAttempts times in all and within ctx. fn must be safe to run
// again after such a failure: one statement, or a transaction that fn
// begins and ends.
func retry(ctx context.Context, fn func() error) error {
	pause := retryPause
	for attempt := 1; ; attempt++ {
		err := fn()
		if attempt == retryAttempts || !retryable(err) {
			return err
		}
		t := time.NewTimer(pause/2 + rand.N(pause))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		pause *= 2
	}
}
