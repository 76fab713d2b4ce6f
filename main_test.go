package apitoken_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/apitoken-go/apitoken"
)

// TestMain captures every record logged through the default slog logger, at
// Debug level, over the whole suite, and fails the run if one of them holds
// something that looks like a secret or a credential (SECURITY.md item 18).
// Tests that install their own logger check it themselves.
func TestMain(m *testing.M) {
	logs := &syncBuffer{}
	slog.SetDefault(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	code := m.Run()
	if code == 0 {
		if leak := leakedSecret(logs.String()); leak != "" {
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

// leakedSecret names what it found in logs, without printing it.
func leakedSecret(logs string) string {
	switch {
	case secretInLog.MatchString(logs):
		return "a string matching apitoken.Pattern"
	case credentialInLog.MatchString(logs):
		return "an Authorization value"
	}
	return ""
}

func TestLeakedSecretFindsSecrets(t *testing.T) {
	for _, s := range []string{
		`{"msg":"x","token":"apitoken_DoNotUseThisExampleTokenAnywhere2Exu8m"}`,
		`{"msg":"x","authorization":"Bearer abcdefgh1234"}`,
		`{"msg":"x","authorization":"basic YWNtZTpzZWNyZXQ="}`,
	} {
		assert.NotEmpty(t, leakedSecret(s), "the suite-wide log check must catch %.20s…", s)
	}
	assert.Empty(t, leakedSecret(`{"msg":"apitoken: credentials could not be checked","err":"db down"}`), "a clean record must not be flagged")
}

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
