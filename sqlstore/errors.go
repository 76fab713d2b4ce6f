package sqlstore

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/apitoken-go/apitoken"
)

// createError is err as Create and CreateLimited return it: the Store
// contract's errors as they are, any other as a system error.
func createError(err error) error {
	if err == nil || errors.Is(err, apitoken.ErrDuplicate) || errors.Is(err, apitoken.ErrLimitReached) {
		return err
	}
	return fmt.Errorf("sqlstore: create: %w", schemaHint(err))
}

// mysqlDuplicateEntry is MySQL's error number for a duplicate key.
const mysqlDuplicateEntry = 1062

// mysqlErrorNumber returns the Number of a *mysql.MySQLError in err's tree
// (errors.Join's included), or 0. It reads the field by reflection so that
// the library does not import the driver (github.com/go-sql-driver/mysql).
func mysqlErrorNumber(err error) uint64 {
	var n uint64
	walkErrors(err, func(e error) bool {
		v := reflect.ValueOf(e)
		if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
			return false
		}
		if f := v.Elem().FieldByName("Number"); f.IsValid() && f.CanUint() {
			n = f.Uint()
			return true
		}
		return false
	})
	return n
}

// walkErrors calls found for err and each error it wraps, depth first, as
// errors.Is visits them (both Unwrap() error and Unwrap() []error), until
// found returns true.
func walkErrors(err error, found func(error) bool) bool {
	if err == nil {
		return false
	}
	if found(err) {
		return true
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return walkErrors(u.Unwrap(), found)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if walkErrors(e, found) {
				return true
			}
		}
	}
	return false
}

// Static errors, so that a miss (the path of a guessing client) allocates no
// error.
var (
	errNotFound     = fmt.Errorf("sqlstore: %w", apitoken.ErrNotFound)
	errDuplicate    = fmt.Errorf("sqlstore: %w: id or hash exists", apitoken.ErrDuplicate)
	errLimitReached = fmt.Errorf("sqlstore: %w", apitoken.ErrLimitReached)
	errClosed       = errors.New("the store is closed")
)
