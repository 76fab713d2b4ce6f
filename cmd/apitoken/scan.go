package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/apitoken-go/apitoken"
)

// maxScanFile bounds the files scan reads; longer ones are skipped, and
// said so.
const maxScanFile = 32 << 20

// A finding is a well-formed secret found in a file.
type finding struct {
	path   string
	line   int
	secret string
}

func cmdScan(ctx context.Context, a *app, args []string) error {
	flags, o := a.flags("scan")
	revoke := flags.Bool("revoke", false, "revoke each token found (needs the database and hash key)")
	anyPrefix := flags.Bool("any-prefix", false, "find the secrets of every prefix, not only --prefix")
	o.addIssuerFlags(flags)
	o.addDBFlags(flags)
	o.addJSONFlag(flags)
	paths, err := a.parse(flags, args, 1, -1)
	if err != nil {
		return err
	}
	fmtIss, err := o.formatIssuer()
	if err != nil {
		return usagef("%v", err)
	}
	re := regexp.MustCompile(fmtIss.Pattern())
	if *anyPrefix {
		re = regexp.MustCompile(apitoken.Pattern)
	}
	var found []finding
	for _, root := range paths {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if d.Name() == ".git" && path != root {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() {
				return nil
			}
			f, err := scanFile(path, re)
			if err != nil {
				fmt.Fprintf(a.stderr, "apitoken scan: %s: %v (skipped)\n", path, err)
				return nil
			}
			found = append(found, f...)
			return nil
		})
		if err != nil {
			return err
		}
	}
	var results []result
	if *revoke && len(found) > 0 {
		iss, done, err := o.openIssuer(ctx)
		if err != nil {
			return err
		}
		defer done()
		revoked := make(map[string]result)
		for _, f := range found {
			r, ok := revoked[f.secret]
			if !ok {
				r = lookUp(apitoken.WithRevokeReason(ctx, "leaked: found by apitoken scan"), iss, f.secret, true)
				revoked[f.secret] = r
				if r.Result == "not found" {
					r.Result = "not found (already revoked?)"
				}
			} else if r.Result == "revoked" {
				r.Result = "revoked (above)"
			}
			r.Path, r.Line = f.path, f.line
			results = append(results, r)
		}
	} else {
		for _, f := range found {
			results = append(results, result{Secret: redact(f.secret), Path: f.path, Line: f.line, Result: "found"})
		}
	}
	switch {
	case o.json:
		if results == nil {
			results = []result{}
		}
		if err := writeJSON(a.stdout, results); err != nil {
			return err
		}
	case *revoke:
		if err := a.writeResults(o, results, true); err != nil {
			return err
		}
	default:
		for _, r := range results {
			fmt.Fprintf(a.stdout, "%s:%d: %s\n", r.Path, r.Line, r.Secret)
		}
	}
	if len(found) > 0 {
		if !o.json {
			fmt.Fprintf(a.stderr, "apitoken scan: %d secrets found\n", len(found))
		}
		return errFound
	}
	return nil
}

// scanFile returns the well-formed secrets re finds in the file at path,
// with their line numbers. A binary file (a NUL in its first 8 KiB) gives
// none; a file over maxScanFile is an error.
func scanFile(path string, re *regexp.Regexp) ([]finding, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > maxScanFile {
		return nil, fmt.Errorf("larger than %d MiB", maxScanFile>>20)
	}
	br := bufio.NewReader(f)
	head, _ := br.Peek(8 << 10)
	if bytes.IndexByte(head, 0) >= 0 {
		return nil, nil
	}
	var out []finding
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		for _, m := range re.FindAll(line, -1) {
			if s := string(m); apitoken.WellFormed(s) {
				out = append(out, finding{path: path, line: n, secret: s})
			}
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
