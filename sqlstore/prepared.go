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
type preparedStmt struct {
	db     *sql.DB
	query  string
	stmt   atomic.Pointer[sql.Stmt]
	mu     sync.Mutex // held while preparing and closing
	closed bool
}

func (p *preparedStmt) get(ctx context.Context) (*sql.Stmt, error) {
	if stmt := p.stmt.Load(); stmt != nil {
		return stmt, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errClosed
	}
	if stmt := p.stmt.Load(); stmt != nil {
		return stmt, nil
	}
	stmt, err := p.db.PrepareContext(ctx, p.query)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
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
