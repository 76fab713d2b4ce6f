// Command apitoken is the operator's tool for the tokens of an app built on
// github.com/apitoken-go/apitoken: it works on the app's own database
// (SQLite, PostgreSQL, MySQL/MariaDB through sqlstore) to migrate it, print
// its schema, issue, list, inspect, delete, rotate, prune and revoke tokens,
// scan files for leaked secrets, and print the scanner rules of the app's
// prefix.
//
//	apitoken COMMAND [flags] [arguments]
//	apitoken help COMMAND
//
// The database, the prefix and the hash key come from flags or the
// environment (APITOKEN_DB, APITOKEN_PREFIX, APITOKEN_HASH_KEY_FILE or
// APITOKEN_HASH_KEY; the key is never a flag, where ps and shell history
// would see it). Secrets are read from standard input or a file, never from
// the command line. The only secret it prints is the one that issue or
// rotate just created, once, on standard output.
//
// Exit status: 0 done; 1 failed, or scan found a secret; 2 bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"text/tabwriter"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// An app is one run of the command: its arguments' context, standard
// streams and environment.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	env            func(string) string
}

// A command is one of the command's verbs.
type command struct {
	name, usage, summary string
	run                  func(ctx context.Context, a *app, args []string) error
}

// commands are listed by help in this order.
var commands []command

func init() {
	commands = []command{
		{"migrate", "migrate [--db DSN] [--table-prefix P]", "create or upgrade the tables of the tokens", cmdMigrate},
		{"schema", "schema [--dialect postgres|mysql|sqlite | --db DSN] [--table-prefix P]", "print the DDL that migrate runs, for your own migration tool", cmdSchema},
		{"issue", "issue --account ID [--member ID] [--name NAME] [--scope S]... [--expires-in D | --expires-at T]", "issue a token; its secret goes to standard output, once", cmdIssue},
		{"list", "list --account ID", "list an account's tokens, oldest first", cmdList},
		{"inspect", "inspect [--file F] < secrets", "show the tokens that secrets name (one per line), whatever their account", cmdInspect},
		{"delete", "delete --account ID TOKEN_ID...", "delete tokens of an account by id", cmdDelete},
		{"delete-all", "delete-all --account ID", "delete every token of an account", cmdDeleteAll},
		{"rotate", "rotate --account ID [--grace D] TOKEN_ID", "replace a token by a new one; the new secret goes to standard output, once", cmdRotate},
		{"prune", "prune [--expired-for D]", "delete the tokens that expired (at least D ago)", cmdPrune},
		{"revoke", "revoke [--file F] [--reason R] < secrets", "revoke the tokens that secrets name (one per line): for leaked secrets", cmdRevoke},
		{"scan", "scan [--revoke] [--any-prefix] PATH...", "find secrets in files and folders; exit status 1 when it finds one", cmdScan},
		{"rules", "rules [--format gitleaks|trufflehog|github]", "print the secret-scanner rules of the prefix", cmdRules},
		{"help", "help [COMMAND]", "show how to use the command, or one of its commands", cmdHelp},
	}
}

// errFound is scan's "found a secret": exit status 1, with nothing more to
// say than what it printed.
var errFound = errors.New("found")

// errReported is a failure already reported on standard error, item by
// item: exit status 1.
var errReported = errors.New("reported")

// run runs the command line args and returns the exit status.
func run(ctx context.Context, args []string, env func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, env: env}
	if len(args) == 0 {
		a.overview(stderr)
		return 2
	}
	name := args[0]
	if name == "-h" || name == "--help" || name == "-help" {
		a.overview(stdout)
		return 0
	}
	i := slices.IndexFunc(commands, func(c command) bool { return c.name == name })
	if i < 0 {
		fmt.Fprintf(stderr, "apitoken: unknown command %q: run apitoken help\n", name)
		return 2
	}
	err := commands[i].run(ctx, a, args[1:])
	var usage usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "apitoken %s: %s\nusage: apitoken %s\n", name, usage.msg, commands[i].usage)
		return 2
	case errors.Is(err, errFlags):
		return 2 // the flag package said what was wrong
	case errors.Is(err, errFound), errors.Is(err, errReported):
		return 1
	}
	fmt.Fprintf(stderr, "apitoken %s: %v\n", name, err)
	return 1
}

// errFlags is a command line the flag package refused and reported.
var errFlags = errors.New("bad flags")

// flags returns the FlagSet of a command, whose usage goes to standard
// output when asked for (-h, help) and to standard error otherwise.
func (a *app) flags(name string) (*flag.FlagSet, *options) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	c := commands[slices.IndexFunc(commands, func(c command) bool { return c.name == name })]
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "usage: apitoken %s\n\n%s.\n", c.usage, upperFirst(c.summary))
		if long := details[name]; long != "" {
			fmt.Fprintf(out, "\n%s\n", long)
		}
		fmt.Fprintln(out, "\nflags:")
		fs.PrintDefaults()
	}
	return fs, &options{env: a.env, stderr: a.stderr}
}

// parse parses args, and returns flag.ErrHelp for -h, errFlags for a bad
// flag (reported), or a usage error when the positional arguments are not
// within [min, max] (max < 0: any number).
func (a *app) parse(fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	if slices.Contains(args, "-h") || slices.Contains(args, "--help") || slices.Contains(args, "-help") {
		fs.SetOutput(a.stdout)
		fs.Usage()
		return nil, flag.ErrHelp
	}
	if err := fs.Parse(args); err != nil {
		return nil, errFlags
	}
	rest := fs.Args()
	switch {
	case len(rest) < min:
		return nil, usagef("missing arguments")
	case max >= 0 && len(rest) > max:
		return nil, usagef("unexpected arguments (%d): secrets are read from standard input or --file, never from the command line", len(rest))
	}
	return rest, nil
}

func (a *app) overview(w io.Writer) {
	fmt.Fprintln(w, "apitoken: the operator's command for the tokens of an app built on github.com/apitoken-go/apitoken")
	fmt.Fprintln(w, "\nusage: apitoken COMMAND [flags] [arguments]")
	fmt.Fprintln(w, "\ncommands:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, `
The database, prefix and hash key come from flags or the environment:
  APITOKEN_DB             the database: `+dsnForms+`
  APITOKEN_TABLE_PREFIX   the prefix of the table names (sqlstore.WithTablePrefix)
  APITOKEN_PREFIX         the app's token prefix (apitoken.WithPrefix)
  APITOKEN_HASH_KEY_FILE  a file holding the app's hash key (apitoken.WithHashKey), or
  APITOKEN_HASH_KEY       the key itself (as is, or base64:… or hex:…); never a flag
Secrets are read from standard input or a file, never from the command line.
Exit status: 0 done; 1 failed, or scan found a secret; 2 bad usage.
Run "apitoken help COMMAND" for a command's flags.
`)
}

func cmdHelp(_ context.Context, a *app, args []string) error {
	if len(args) == 0 || len(args) == 1 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		if len(args) == 1 {
			fmt.Fprintln(a.stdout, "usage: apitoken help [COMMAND]")
			fmt.Fprintln(a.stdout)
		}
		a.overview(a.stdout)
		return nil
	}
	if len(args) > 1 {
		return usagef("help takes one command")
	}
	i := slices.IndexFunc(commands, func(c command) bool { return c.name == args[0] })
	if i < 0 {
		return usagef("unknown command %q", args[0])
	}
	return commands[i].run(context.Background(), a, []string{"-h"})
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
