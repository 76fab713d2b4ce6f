package logcheck_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/apitoken-go/apitoken/internal/logcheck"
)

func TestLeak(t *testing.T) {
	for _, s := range []string{
		`{"msg":"x","token":"apitoken_DoNotUseThisExampleTokenAnywhere2Exu8m"}`,
		`{"msg":"x","authorization":"Bearer abcdefgh1234"}`,
		`{"msg":"x","authorization":"basic YWNtZTpzZWNyZXQ="}`,
	} {
		assert.NotEmpty(t, logcheck.Leak(s), "the suite-wide log check must catch %.20s…", s)
	}
	assert.Empty(t, logcheck.Leak(`{"msg":"apitoken: credentials could not be checked","err":"db down"}`), "a clean record must not be flagged")
}
