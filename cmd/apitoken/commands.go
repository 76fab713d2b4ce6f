package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/secretscan"
	"github.com/apitoken-go/apitoken/sqlstore"
)

// details are the longer help texts of the commands that need one.
var details = map[string]string{
	"issue": `The secret goes alone to standard output (TOKEN=$(apitoken issue …)), once: it is
never stored, only its hash. What it names goes to standard error; with --json,
both go to standard output as one JSON object.`,
	"inspect": `Each line of standard input (or of --file) is a secret; blank lines and lines
starting with # are skipped. Exit status 1 when a line names no token.`,
	"revoke": `Each line of standard input (or of --file) is a secret; blank lines and lines
starting with # are skipped. Each token named is deleted at once, whatever its
account, and audited as revoked with --reason. A secret that names no token
(already revoked) is reported and changes nothing. Exit status 1 when a line is
not a secret of the prefix or the database fails.`,
	"scan": `Reads every file under each PATH (not .git, nor files over 32 MiB or binary) and
prints path:line and a redacted form of each secret of the prefix (of any
prefix, with --any-prefix) whose checksum is valid. With --revoke, each one
found is revoked (see revoke). Exit status 1 when it found one, 0 otherwise.`,
	"rules": `Prints the rules that make a secret scanner find the tokens of the prefix:
a gitleaks configuration (save it as .gitleaks.toml), a trufflehog custom
detector (for --config; no verify endpoint, on purpose) and the fields of a
GitHub custom pattern. Set your app's own prefix: scanners and the partner
programs of GitHub, GitLab and deps.dev route leaks by a unique prefix.`,
	"schema": `Prints the statements that migrate runs on an empty database, for teams that
apply schemas with their own tool; the dialect comes from --dialect or --db.`,
}

func cmdMigrate(ctx context.Context, a *app, args []string) error {
	fs, o := a.flags("migrate")
	o.addDBFlags(fs)
	o.addJSONFlag(fs)
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	store, done, err := o.openStore(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	if o.json {
		return writeJSON(a.stdout, map[string]bool{"migrated": true})
	}
	fmt.Fprintln(a.stdout, "The tables are at the current schema version.")
	return nil
}

func cmdSchema(_ context.Context, a *app, args []string) error {
	fs, o := a.flags("schema")
	dialect := fs.String("dialect", "", "postgres, mysql or sqlite (`DIALECT`); otherwise that of --db")
	o.addDBFlags(fs)
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	var d sqlstore.Dialect
	switch strings.ToLower(*dialect) {
	case "postgres", "postgresql", "pg":
		d = sqlstore.Postgres
	case "mysql", "mariadb":
		d = sqlstore.MySQL
	case "sqlite", "sqlite3":
		d = sqlstore.SQLite
	case "":
		db, err := parseDSN(o.dsn())
		if err != nil {
			return usagef("give --dialect (postgres, mysql or sqlite) or --db: %v", err)
		}
		d = db.dialect
	default:
		return usagef("--dialect is postgres, mysql or sqlite")
	}
	var opts []sqlstore.Option
	if o.tablePrefSet {
		opts = append(opts, sqlstore.WithTablePrefix(o.tablePrefix))
	}
	ddl, err := sqlstore.Schema(d, opts...)
	if err != nil {
		return err
	}
	_, err = io.WriteString(a.stdout, ddl)
	return err
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

func cmdIssue(ctx context.Context, a *app, args []string) error {
	fs, o := a.flags("issue")
	var p apitoken.IssueParams
	var scopes stringList
	fs.StringVar(&p.AccountID, "account", "", "the account the token authenticates (`ID`, required)")
	fs.StringVar(&p.MemberID, "member", "", "the member of the account who owns it (`ID`)")
	fs.StringVar(&p.Name, "name", "", "a label for the token (`NAME`)")
	fs.Var(&scopes, "scope", "a scope the token grants (`SCOPE`; repeat the flag for more)")
	expiresIn := fs.Duration("expires-in", 0, "the token expires after `D` (e.g. 720h); none: never")
	expiresAt := fs.String("expires-at", "", "the token expires at `TIME` (RFC 3339)")
	o.addIssuerCommandFlags(fs)
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if p.AccountID == "" {
		return usagef("--account is required")
	}
	p.Scopes = scopes
	switch {
	case *expiresIn != 0 && *expiresAt != "":
		return usagef("give --expires-in or --expires-at, not both")
	case *expiresIn < 0:
		return usagef("--expires-in is negative")
	case *expiresIn > 0:
		p.ExpiresAt = time.Now().Add(*expiresIn)
	case *expiresAt != "":
		t, err := time.Parse(time.RFC3339, *expiresAt)
		if err != nil {
			return usagef("--expires-at is not an RFC 3339 time (2027-01-31T00:00:00Z)")
		}
		p.ExpiresAt = t
	}
	iss, done, err := o.openIssuer(ctx)
	if err != nil {
		return err
	}
	defer done()
	secret, tok, err := iss.Issue(ctx, p)
	if err != nil {
		return err
	}
	if o.json {
		return writeJSON(a.stdout, struct {
			Secret string    `json:"secret"`
			Token  tokenJSON `json:"token"`
		}{secret, toJSON(tok, time.Now())})
	}
	fmt.Fprintf(a.stderr, "Issued token %s for account %s (name %q, expires %s). Its secret, on standard output, is shown only this once.\n",
		tok.ID, tok.AccountID, tok.Name, expiry(tok, time.Now()))
	_, err = fmt.Fprintln(a.stdout, secret)
	return err
}

func cmdList(ctx context.Context, a *app, args []string) error {
	fs, o := a.flags("list")
	account := fs.String("account", "", "the account (`ID`, required)")
	o.addIssuerCommandFlags(fs)
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *account == "" {
		return usagef("--account is required")
	}
	iss, done, err := o.openIssuer(ctx)
	if err != nil {
		return err
	}
	defer done()
	toks, err := iss.List(ctx, *account)
	if err != nil {
		return err
	}
	now := time.Now()
	if o.json {
		out := make([]tokenJSON, 0, len(toks))
		for _, t := range toks {
			out = append(out, toJSON(t, now))
		}
		return writeJSON(a.stdout, out)
	}
	t := newTable(a.stdout, "ID", "HINT", "NAME", "MEMBER", "SCOPES", "CREATED", "EXPIRES", "LAST USED", "STATE")
	for _, tok := range toks {
		hint, state := "…"+tok.Hint, "active"
		if tok.Hint == "" {
			hint = "" // issued before hints were kept
		}
		if tok.Disabled {
			state = "disabled"
		} else if expired(tok, now) {
			state = "expired"
		}
		t.row(tok.ID, hint, tok.Name, tok.MemberID, strings.Join(tok.Scopes, " "), when(tok.CreatedAt), expiry(tok, now), when(tok.LastUsedAt), state)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(toks) == 0 {
		fmt.Fprintf(a.stderr, "Account %s has no tokens.\n", *account)
	}
	return nil
}

// readSecrets returns the secrets of file (standard input when empty), one
// per line, without blank lines and # comments.
func (a *app) readSecrets(file string) ([]string, error) {
	r := a.stdin
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the secrets: %w", err)
	}
	return out, nil
}

// A result is what inspect, revoke and scan found for one secret.
type result struct {
	Secret  string     `json:"secret"` // redacted
	Path    string     `json:"path,omitempty"`
	Line    int        `json:"line,omitempty"`
	Result  string     `json:"result"` // found, revoked, not found, malformed, error
	Error   string     `json:"error,omitempty"`
	Token   *tokenJSON `json:"token,omitempty"`
	failure bool
}

// lookUp inspects or revokes secret and describes the outcome.
func lookUp(ctx context.Context, iss *apitoken.Issuer, secret string, revoke bool) result {
	r := result{Secret: redact(secret)}
	var (
		tok apitoken.Token
		err error
	)
	if revoke {
		tok, err = iss.RevokeSecret(ctx, secret)
	} else {
		tok, err = iss.Inspect(ctx, secret)
	}
	switch {
	case errors.Is(err, apitoken.ErrInvalidToken):
		r.Result, r.failure = "malformed", true
	case errors.Is(err, apitoken.ErrNotFound):
		r.Result = "not found"
	case err != nil:
		r.Result, r.Error, r.failure = "error", err.Error(), true
	default:
		j := toJSON(tok, time.Now())
		r.Token, r.Result = &j, "found"
		switch {
		case revoke:
			r.Result = "revoked"
		case j.Disabled:
			r.Result = "found (disabled)"
		case j.Expired:
			r.Result = "found (expired)"
		}
	}
	return r
}

func (a *app) writeResults(o *options, results []result, withPlace bool) error {
	if o.json {
		if results == nil {
			results = []result{}
		}
		return writeJSON(a.stdout, results)
	}
	header := []string{"SECRET", "RESULT", "ACCOUNT", "TOKEN ID", "NAME", "EXPIRES"}
	if withPlace {
		header = append([]string{"WHERE"}, header...)
	}
	t := newTable(a.stdout, header...)
	for _, r := range results {
		cells := []string{r.Secret, r.Result, "", "", "", ""}
		if r.Token != nil {
			cells[2], cells[3], cells[4], cells[5] = r.Token.AccountID, r.Token.ID, r.Token.Name, "never"
			if r.Token.ExpiresAt != nil {
				cells[5] = when(*r.Token.ExpiresAt)
				if r.Token.Expired {
					cells[5] += " (expired)"
				}
			}
		}
		if r.Error != "" {
			cells[2] = r.Error
		}
		if withPlace {
			cells = append([]string{fmt.Sprintf("%s:%d", r.Path, r.Line)}, cells...)
		}
		t.row(cells...)
	}
	return t.flush()
}

func cmdInspect(ctx context.Context, a *app, args []string) error {
	return a.bySecret(ctx, "inspect", args, false)
}

func cmdRevoke(ctx context.Context, a *app, args []string) error {
	return a.bySecret(ctx, "revoke", args, true)
}

// bySecret is inspect and revoke: the secrets of standard input or --file,
// looked up or revoked.
func (a *app) bySecret(ctx context.Context, name string, args []string, revoke bool) error {
	fs, o := a.flags(name)
	file := fs.String("file", "", "read the secrets from `FILE`, one per line, instead of standard input")
	var reason *string
	if revoke {
		reason = fs.String("reason", "", "the reason written in the audit record (`TEXT`; default: leaked)")
	}
	o.addIssuerCommandFlags(fs)
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	secrets, err := a.readSecrets(*file)
	if err != nil {
		return err
	}
	if len(secrets) == 0 {
		return usagef("no secret on standard input (or in --file), one per line")
	}
	iss, done, err := o.openIssuer(ctx)
	if err != nil {
		return err
	}
	defer done()
	if reason != nil && *reason != "" {
		ctx = apitoken.WithRevokeReason(ctx, *reason)
	}
	var results []result
	failed := false
	for _, s := range secrets {
		r := lookUp(ctx, iss, s, revoke)
		// inspect fails on a secret that names nothing; revoke does not:
		// the token is gone either way.
		failed = failed || r.failure || !revoke && r.Result == "not found"
		results = append(results, r)
	}
	if err := a.writeResults(o, results, false); err != nil {
		return err
	}
	if failed {
		return errReported
	}
	return nil
}

func cmdDelete(ctx context.Context, a *app, args []string) error {
	fs, o := a.flags("delete")
	account := fs.String("account", "", "the account (`ID`, required)")
	o.addIssuerCommandFlags(fs)
	ids, err := a.parse(fs, args, 1, -1)
	if err != nil {
		return err
	}
	if *account == "" {
		return usagef("--account is required")
	}
	iss, done, err := o.openIssuer(ctx)
	if err != nil {
		return err
	}
	defer done()
	type deleted struct {
		ID     string `json:"id"`
		Result string `json:"result"`
	}
	var out []deleted
	failed := false
	for _, id := range ids {
		d := deleted{ID: id, Result: "deleted"}
		if err := iss.Delete(ctx, *account, id); errors.Is(err, apitoken.ErrNotFound) {
			d.Result, failed = "not found", true
		} else if err != nil {
			return err
		}
		out = append(out, d)
	}
	if o.json {
		if err := writeJSON(a.stdout, out); err != nil {
			return err
		}
	} else {
		t := newTable(a.stdout, "TOKEN ID", "RESULT")
		for _, d := range out {
			t.row(d.ID, d.Result)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if failed {
		return errReported
	}
	return nil
}

func cmdDeleteAll(ctx context.Context, a *app, args []string) error {
	fs, o := a.flags("delete-all")
	account := fs.String("account", "", "the account (`ID`, required)")
	o.addIssuerCommandFlags(fs)
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *account == "" {
		return usagef("--account is required")
	}
	iss, done, err := o.openIssuer(ctx)
	if err != nil {
		return err
	}
	defer done()
	n, err := iss.DeleteAll(ctx, *account)
	if err != nil {
		return err
	}
	if o.json {
		return writeJSON(a.stdout, map[string]int{"deleted": n})
	}
	fmt.Fprintf(a.stdout, "Deleted %d tokens of account %s.\n", n, *account)
	return nil
}

func cmdRotate(ctx context.Context, a *app, args []string) error {
	fs, o := a.flags("rotate")
	account := fs.String("account", "", "the account (`ID`, required)")
	grace := fs.Duration("grace", 0, "how long the old token keeps working (`D`); 0: it stops at once")
	o.addIssuerCommandFlags(fs)
	ids, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *account == "" {
		return usagef("--account is required")
	}
	iss, done, err := o.openIssuer(ctx)
	if err != nil {
		return err
	}
	defer done()
	secret, tok, err := iss.Rotate(ctx, *account, ids[0], *grace)
	if err != nil {
		return err
	}
	if o.json {
		return writeJSON(a.stdout, struct {
			Secret   string    `json:"secret"`
			Token    tokenJSON `json:"token"`
			Replaces string    `json:"replaces"`
		}{secret, toJSON(tok, time.Now()), ids[0]})
	}
	old := "which stopped working"
	if *grace > 0 {
		old = fmt.Sprintf("which works for %v more", *grace)
	}
	fmt.Fprintf(a.stderr, "Token %s replaces %s (%s). Its secret, on standard output, is shown only this once.\n", tok.ID, ids[0], old)
	_, err = fmt.Fprintln(a.stdout, secret)
	return err
}

func cmdPrune(ctx context.Context, a *app, args []string) error {
	fs, o := a.flags("prune")
	age := fs.Duration("expired-for", 0, "delete only the tokens that expired at least `D` ago (e.g. 720h), to keep recent ones listed")
	o.addIssuerCommandFlags(fs)
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *age < 0 {
		return usagef("--expired-for is negative")
	}
	iss, done, err := o.openIssuer(ctx)
	if err != nil {
		return err
	}
	defer done()
	n, err := iss.Prune(ctx, time.Now().Add(-*age))
	if err != nil {
		return err
	}
	if o.json {
		return writeJSON(a.stdout, map[string]int{"deleted": n})
	}
	fmt.Fprintf(a.stdout, "Deleted %d expired tokens.\n", n)
	return nil
}

func cmdRules(_ context.Context, a *app, args []string) error {
	fs, o := a.flags("rules")
	format := fs.String("format", "", "gitleaks, trufflehog or github (`FORMAT`); all three when empty")
	o.addIssuerFlags(fs)
	o.addJSONFlag(fs)
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	iss, err := o.formatIssuer()
	if err != nil {
		return usagef("%v", err)
	}
	rules, err := secretscan.RulesFor(iss)
	if err != nil {
		return err
	}
	if o.prefix == apitoken.DefaultPrefix {
		fmt.Fprintf(a.stderr, "warning: these rules are for the default prefix %q, which every app without WithPrefix shares: set your app's own (--prefix, %s) so that scanners and the partner programs route its leaks to you\n", o.prefix, envPrefix)
	}
	gh := rules.GitHub
	if o.json {
		return writeJSON(a.stdout, map[string]any{"gitleaks": rules.Gitleaks, "trufflehog": rules.Trufflehog, "github": map[string]string{
			"name": gh.Name, "secret_format": gh.SecretFormat, "before_secret": gh.BeforeSecret, "after_secret": gh.AfterSecret}})
	}
	github := fmt.Sprintf("Pattern name:   %s\nSecret format:  %s\nBefore secret:  %s\nAfter secret:   %s\n", gh.Name, gh.SecretFormat, gh.BeforeSecret, gh.AfterSecret)
	switch *format {
	case "gitleaks":
		_, err = io.WriteString(a.stdout, rules.Gitleaks)
	case "trufflehog":
		_, err = io.WriteString(a.stdout, rules.Trufflehog)
	case "github":
		_, err = io.WriteString(a.stdout, github)
	case "":
		_, err = fmt.Fprintf(a.stdout, "==> gitleaks: .gitleaks.toml <==\n%s\n==> trufflehog: --config FILE <==\n%s\n==> GitHub custom pattern <==\n%s", rules.Gitleaks, rules.Trufflehog, github)
	default:
		return usagef("--format is gitleaks, trufflehog or github")
	}
	return err
}
