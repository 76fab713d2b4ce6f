package main_test

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// trufflehogConfig is the part of trufflehog's --config file that custom
// detectors use (pkg/custom_detectors: name, keywords, regex, verify).
type trufflehogConfig struct {
	Detectors []struct {
		Name     string            `yaml:"name"`
		Keywords []string          `yaml:"keywords"`
		Regex    map[string]string `yaml:"regex"`
		Verify   []any             `yaml:"verify"`
	} `yaml:"detectors"`
}

// TestTrufflehogDetector: trufflehog itself is not served by the module
// proxy here, so this applies its custom-detector rule as it documents it
// (a case-insensitive keyword in the text, then each named Go regexp) to
// the detector `apitoken rules` prints, over the six file forms.
func TestTrufflehogDetector(t *testing.T) {
	c := &cli{env: []string{"APITOKEN_DB=" + filepath.Join(t.TempDir(), "tokens.db"), "APITOKEN_PREFIX=acme"}}
	c.must(t, 0, "", "migrate")
	secret := strings.TrimSpace(c.must(t, 0, "", "issue", "--account", "acct_1").stdout)
	other := strings.TrimSpace((&cli{env: []string{"APITOKEN_DB=" + filepath.Join(t.TempDir(), "t.db"), "APITOKEN_PREFIX=xacme"}}).run(t, "", "issue", "--account", "a").stdout)

	var cfg trufflehogConfig
	require.NoError(t, yaml.Unmarshal([]byte(c.must(t, 0, "", "rules", "--format", "trufflehog").stdout), &cfg))
	require.Len(t, cfg.Detectors, 1)
	d := cfg.Detectors[0]
	assert.Equal(t, "acme API token", d.Name)
	assert.Equal(t, []string{"acme_"}, d.Keywords)
	assert.Empty(t, d.Verify, "no verify endpoint: it would tell anyone holding a secret whether it works")
	require.Contains(t, d.Regex, "token")
	re := regexp.MustCompile(d.Regex["token"])

	find := func(text string) []string {
		hit := false
		for _, k := range d.Keywords {
			hit = hit || strings.Contains(strings.ToLower(text), strings.ToLower(k))
		}
		if !hit {
			return nil
		}
		return re.FindAllString(text, -1)
	}
	for name, form := range fileForms {
		assert.Equal(t, []string{secret}, find(fmt.Sprintf(form, secret)), name)
		assert.Empty(t, find(fmt.Sprintf(form, other)), "%s: another prefix that ends in ours", name)
	}
}
