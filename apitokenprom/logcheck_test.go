package apitokenprom_test

import (
	"testing"

	"github.com/apitoken-go/apitoken/internal/logcheck"
)

// TestMain fails the run if a record logged through the default slog
// logger holds a secret or a credential.
func TestMain(m *testing.M) { logcheck.Main(m) }
