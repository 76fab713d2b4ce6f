package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
)

// preparedStmt is a statement prepared on first use. A failed preparation
// (the table does not exist yet, the database is down) is not kept: the next
// call tries again.
//
// One caller at a time prepares, with its own context; the others do not
// wait for it, whose deadline may be far later than theirs (or none): until
// the statement is ready, they run the query unprepared, each with its own
// context. So every call ends within its own deadline, warm or cold, also
// while the database stalls.
type preparedStmt struct {
	db    *sql.DB
	query string
	stmt  atomic.Pointer[sql.Stmt]

	mu        sync.Mutex // guards preparing and closed; never held across a database call
	preparing bool
	closed    bool
}

// get returns the prepared statement, or a nil statement and a nil error
// when another caller is preparing it: the caller then runs p.query
// unprepared.
func (p *preparedStmt) get(ctx context.Context) (*sql.Stmt, error) {
	if stmt := p.stmt.Load(); stmt != nil {
		return stmt, nil
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errClosed
	}
	if stmt := p.stmt.Load(); stmt != nil {
		p.mu.Unlock()
		return stmt, nil
	}
	if p.preparing {
		p.mu.Unlock()
		return nil, nil
	}
	p.preparing = true
	p.mu.Unlock()

	stmt, err := p.db.PrepareContext(ctx, p.query)

	p.mu.Lock()
	defer p.mu.Unlock()
	p.preparing = false
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	if p.closed {
		_ = stmt.Close() // closed while preparing
		return nil, errClosed
	}
	p.stmt.Store(stmt)
	return stmt, nil
}

func (p *preparedStmt) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if stmt := p.stmt.Swap(nil); stmt != nil {
		return stmt.Close()
	}
	return nil
}
