package apitoken_test

import (
	"bytes"
	"sync"
	"testing"

	"github.com/apitoken-go/apitoken/internal/logcheck"
)

// TestMain fails the run if a record logged through the default slog
// logger, at any level, holds a secret or a credential (SECURITY.md item
// 18).
func TestMain(m *testing.M) { logcheck.Main(m) }

// syncBuffer is a bytes.Buffer safe for the concurrent writes of parallel
// tests.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
