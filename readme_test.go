package apitoken_test

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readmeSection returns the text of the README section under heading (a
// "## " or "### " line), up to the next heading of its level or above.
func readmeSection(t *testing.T, readme, heading string) string {
	t.Helper()
	i := strings.Index(readme, "\n"+heading+"\n")
	require.GreaterOrEqual(t, i, 0, "the README has no %q", heading)
	rest := readme[i+len(heading)+2:]
	level := heading[:strings.IndexByte(heading, ' ')+1]
	for _, h := range []string{"\n## ", "\n" + level} {
		if j := strings.Index(rest, h); j >= 0 {
			rest = rest[:j]
		}
	}
	return rest
}

// TestREADME checks statements of the README against the code and the CI
// script they describe.
func TestREADME(t *testing.T) {
	b, err := os.ReadFile("README.md")
	require.NoError(t, err)
	readme := string(b)

	t.Run("a go get line before the set-up commands", func(t *testing.T) {
		i := strings.Index(readme, "`go get github.com/apitoken-go/apitoken`")
		require.GreaterOrEqual(t, i, 0, "no `go get github.com/apitoken-go/apitoken`")
		assert.Less(t, i, strings.Index(readme, "## Getting started"), "the go get line comes after Getting started")
	})

	t.Run("the security notes and Running several instances agree on caches", func(t *testing.T) {
		notes := readmeSection(t, readme, "## Security notes")
		several := readmeSection(t, readme, "## Running several instances")
		assert.Contains(t, several, "for at most the TTL", "Running several instances no longer states the bound")
		assert.NotRegexp(t, `(?i)no cache (that )?could keep`, notes, "the security notes deny what Running several instances says")
		assert.Contains(t, notes, "WithCache")
		assert.Contains(t, notes, "(#running-several-instances)")
	})

	t.Run("the Stores table describes memstore as memstore does", func(t *testing.T) {
		row := regexp.MustCompile(`(?m)^\| \[memstore\]\(memstore\) \| ([^|]*) \|`).FindStringSubmatch(readme)
		require.NotNil(t, row, "no memstore row in the Stores table")
		assert.NotContains(t, row[1], "Go maps", "memstore keeps no record in a Go map")
		src, err := os.ReadFile("memstore/memstore.go")
		require.NoError(t, err)
		assert.Contains(t, string(src), "Records are kept without a pointer each")
		assert.Contains(t, row[1], "without a pointer each")
	})

	t.Run("the test variables have the forms CI gives them", func(t *testing.T) {
		ci, err := os.ReadFile(".ci/run")
		require.NoError(t, err)
		vars := regexp.MustCompile(`(?m)^export (APITOKEN_[A-Z_]+)='?([^'\n]+)'?$`).FindAllStringSubmatch(string(ci), -1)
		require.NotEmpty(t, vars)
		for _, v := range vars {
			assert.Regexp(t, "(?m)^\\| `"+v[1]+"` \\| .*`"+regexp.QuoteMeta(v[2])+"`", readme, "the README's table does not give %s as CI sets it", v[1])
		}
		assert.Regexp(t, "(?m)^\\| `APITOKEN_PG_DSN` \\|.*pgnotify", readme, "the README does not say pgnotify needs APITOKEN_PG_DSN")
	})
}

// TestDocsNameNoUnexported checks that no doc comment of an exported
// constant, variable or type names an unexported identifier of the package
// (such as bodyLen), which a reader of the documentation cannot look up.
func TestDocsNameNoUnexported(t *testing.T) {
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	require.NoError(t, err)
	var files []*ast.File
	// Unexported names in camelCase: a lower-case word is also English.
	unexported := map[string]bool{}
	note := func(id *ast.Ident) {
		if !id.IsExported() && strings.ContainsFunc(id.Name, unicode.IsUpper) {
			unexported[id.Name] = true
		}
	}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		require.NoError(t, err)
		files = append(files, f)
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					note(d.Name)
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.ValueSpec:
						for _, id := range s.Names {
							note(id)
						}
					case *ast.TypeSpec:
						note(s.Name)
					}
				}
			}
		}
	}
	d, err := doc.NewFromFiles(fset, files, "github.com/apitoken-go/apitoken")
	require.NoError(t, err)
	check := func(what, text string) {
		for _, w := range strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' }) {
			if unexported[w] {
				t.Errorf("the doc of %s names the unexported %s", what, w)
			}
		}
	}
	for _, v := range append(d.Consts, d.Vars...) {
		check(strings.Join(v.Names, ", "), v.Doc)
	}
	for _, typ := range d.Types {
		check(typ.Name, typ.Doc)
		for _, v := range append(typ.Consts, typ.Vars...) {
			check(strings.Join(v.Names, ", "), v.Doc)
		}
	}
}
