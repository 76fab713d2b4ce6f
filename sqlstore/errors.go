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

// mysqlErrorNumber returns the Number of a *mysql.MySQLError in err's chain,
// or 0. It reads the field by reflection so that the library does not import
// the driver (github.com/go-sql-driver/mysql).
func mysqlErrorNumber(err error) uint64 {
	for ; err != nil; err = errors.Unwrap(err) {
		v := reflect.ValueOf(err)
		if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
			continue
		}
		if f := v.Elem().FieldByName("Number"); f.IsValid() && f.CanUint() {
			return f.Uint()
		}
	}
	return 0
}

// Static errors, so that a miss (the path of a guessing client) allocates no
// error.
var (
	errNotFound     = fmt.Errorf("sqlstore: %w", apitoken.ErrNotFound)
	errDuplicate    = fmt.Errorf("sqlstore: %w: id or hash exists", apitoken.ErrDuplicate)
	errLimitReached = fmt.Errorf("sqlstore: %w", apitoken.ErrLimitReached)
	errClosed       = errors.New("the store is closed")
)
