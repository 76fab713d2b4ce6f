// Package logcheck fails a test binary whose log records hold a secret or a
// credential. Each package's TestMain calls Main: every record written
// through the default log/slog logger during the run, at Debug level, is
// kept and searched when the tests have passed. Tests that install their own
// logger check it themselves.
package logcheck

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sync"
	"testing"

	"github.com/apitoken-go/apitoken"
)

// Main runs the tests of m with the default logger capturing every record,
// and exits with their status, or with 1 if a record holds a secret.
func Main(m *testing.M) {
	logs := &Buffer{}
	slog.SetDefault(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	code := m.Run()
	if code == 0 {
		if leak := Leak(logs.String()); leak != "" {
			fmt.Fprintf(os.Stderr, "FAIL: a log record holds a secret or credential (%s)\n", leak)
			code = 1
		}
	}
	os.Exit(code)
}

var (
	secretInLog     = regexp.MustCompile(apitoken.Pattern)
	credentialInLog = regexp.MustCompile(`(?i)\b(bearer|basic) +[A-Za-z0-9._~+/-]{8,}`)
)

// Leak names what it found in logs that looks like a secret or credential,
// without quoting it, or returns "".
func Leak(logs string) string {
	switch {
	case secretInLog.MatchString(logs):
		return "a string matching apitoken.Pattern"
	case credentialInLog.MatchString(logs):
		return "an Authorization value"
	}
	return ""
}

// Buffer is a bytes.Buffer safe for the concurrent writes of parallel
// tests, for the logs they capture. The zero value is ready to use.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
