package main

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
	"github.com/apitoken-go/apitoken/sqlstore"
)

// The environment variables the command reads; a flag overrides each.
const (
	envDB           = "APITOKEN_DB"            // --db
	envTablePrefix  = "APITOKEN_TABLE_PREFIX"  // --table-prefix
	envPrefix       = "APITOKEN_PREFIX"        // --prefix
	envHashKeyFile  = "APITOKEN_HASH_KEY_FILE" // --hash-key-file
	envHashKey      = "APITOKEN_HASH_KEY"      // the key itself: never a flag
	envPreviousKeys = "APITOKEN_PREVIOUS_HASH_KEY_FILES"
	envAuditLog     = "APITOKEN_AUDIT_LOG"
)

// options are the settings every command that opens the tokens shares.
type options struct {
	env          func(string) string
	db           string
	tablePrefix  string
	tablePrefSet bool
	prefix       string
	hashKeyFile  string
	previous     string // files, separated by commas
	auditLog     string // a file, "-" for standard error, "" for none
	json         bool
	stderr       io.Writer
}

// addIssuerFlags registers the flags of the token prefix; addDBFlags those
// of the database.
func (o *options) addIssuerFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.prefix, "prefix", cmpOr(o.env(envPrefix), apitoken.DefaultPrefix), "the app's token prefix (`PREFIX`, env "+envPrefix+")")
}

func (o *options) addDBFlags(fs *flag.FlagSet) {
	// Not the flag's default: help would print it, password included.
	fs.StringVar(&o.db, "db", "", "the database (`DSN`, env "+envDB+"; a DSN with a password belongs in "+envDB+
		" or a passfile, since ps and shell history see flags): "+dsnForms)
	fs.Func("table-prefix", "the prefix of the table names (`PREFIX`, env "+envTablePrefix+"; default apitoken_)", func(s string) error {
		o.tablePrefix, o.tablePrefSet = s, true
		return nil
	})
	if v := o.env(envTablePrefix); v != "" {
		o.tablePrefix, o.tablePrefSet = v, true
	}
}

// addKeyFlags registers the flags of what an Issuer needs beyond the
// database: the hash keys and the audit log (migrate and schema need none).
func (o *options) addKeyFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.hashKeyFile, "hash-key-file", o.env(envHashKeyFile), "a file holding the app's hash key (`FILE`, env "+envHashKeyFile+
		"; or the key itself in "+envHashKey+", never in a flag); none: the library's default key")
	fs.StringVar(&o.auditLog, "audit-log", o.env(envAuditLog), "append the audit records of what the command does (issued, revoked, deleted…) to `FILE` as JSON lines, - for standard error (env "+envAuditLog+")")
	fs.StringVar(&o.previous, "previous-hash-key-files", o.env(envPreviousKeys), "files of previous hash keys, separated by commas (`FILES`, env "+envPreviousKeys+")")
}

// addIssuerCommandFlags registers the flags of every command that opens an
// Issuer: the prefix, the database, the keys and --json.
func (o *options) addIssuerCommandFlags(fs *flag.FlagSet) {
	o.addIssuerFlags(fs)
	o.addDBFlags(fs)
	o.addKeyFlags(fs)
	o.addJSONFlag(fs)
}

func (o *options) addJSONFlag(fs *flag.FlagSet) {
	fs.BoolVar(&o.json, "json", false, "write JSON for scripts instead of text for people")
}

// dsn returns the database of --db, or else of APITOKEN_DB.
func (o *options) dsn() string { return cmpOr(o.db, o.env(envDB)) }

func cmpOr(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

// usageError is a bad command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// openTimeout bounds the first contact with the database.
const openTimeout = 10 * time.Second

// openStore opens the database of --db with its driver and returns the
// Store on it, and a function that closes both. Errors name the database by
// its kind, never by its DSN.
func (o *options) openStore(ctx context.Context) (*sqlstore.Store, func(), error) {
	d, err := parseDSN(o.dsn())
	if err != nil {
		return nil, nil, err
	}
	db, err := sql.Open(d.driver, d.dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("database (%v): %w", d.dialect, err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("database (%v) not reached: %w", d.dialect, err)
	}
	var opts []sqlstore.Option
	if o.tablePrefSet {
		opts = append(opts, sqlstore.WithTablePrefix(o.tablePrefix))
	}
	store, err := sqlstore.New(db, d.dialect, opts...)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return store, func() { store.Close(); db.Close() }, nil
}

// openIssuer returns an Issuer on the database, with the app's prefix and
// hash keys, and a function that closes it all.
func (o *options) openIssuer(ctx context.Context) (*apitoken.Issuer, func(), error) {
	opts, err := o.issuerOptions()
	if err != nil {
		return nil, nil, err
	}
	store, closeStore, err := o.openStore(ctx)
	if err != nil {
		return nil, nil, err
	}
	closeLog := func() {}
	if o.auditLog != "" {
		w := o.stderr
		if o.auditLog != "-" {
			f, err := os.OpenFile(o.auditLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			if err != nil {
				closeStore()
				return nil, nil, fmt.Errorf("audit log: %w", err)
			}
			w, closeLog = f, func() { f.Close() }
		}
		opts = append(opts, apitoken.WithAuditLogger(slog.New(slog.NewJSONHandler(w, nil))))
	}
	iss, err := apitoken.NewIssuer(store, opts...)
	if err != nil {
		closeLog()
		closeStore()
		return nil, nil, err
	}
	return iss, func() { iss.Close(); closeStore(); closeLog() }, nil
}

// formatIssuer returns an Issuer that only knows the prefix: for what needs
// no database (Pattern, the rules).
func (o *options) formatIssuer() (*apitoken.Issuer, error) {
	return apitoken.NewIssuer(memstore.New(), apitoken.WithPrefix(o.prefix))
}

func (o *options) issuerOptions() ([]apitoken.Option, error) {
	// An operator's command records no last use: it verifies nothing.
	opts := []apitoken.Option{apitoken.WithPrefix(o.prefix), apitoken.WithLastUseInterval(0)}
	key, err := o.hashKey()
	if err != nil {
		return nil, err
	}
	if key != nil {
		opts = append(opts, apitoken.WithHashKey(key))
	}
	var previous [][]byte
	for f := range strings.SplitSeq(o.previous, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		k, err := readKeyFile(f)
		if err != nil {
			return nil, err
		}
		previous = append(previous, k)
	}
	if len(previous) > 0 {
		opts = append(opts, apitoken.WithPreviousHashKeys(previous...))
	}
	return opts, nil
}

// hashKey returns the app's hash key from --hash-key-file or
// APITOKEN_HASH_KEY, or nil when neither is set.
func (o *options) hashKey() ([]byte, error) {
	switch v := o.env(envHashKey); {
	case o.hashKeyFile != "" && v != "":
		return nil, usagef("give the hash key either in a file (--hash-key-file, %s) or in %s, not both", envHashKeyFile, envHashKey)
	case o.hashKeyFile != "":
		return readKeyFile(o.hashKeyFile)
	case v != "":
		k, err := decodeKey(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", envHashKey, err)
		}
		return k, nil
	}
	return nil, nil
}

// readKeyFile reads a hash key from a file: its bytes, without a final
// line break, or decoded when they start with "base64:" or "hex:".
func readKeyFile(name string) ([]byte, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("hash key: %w", err)
	}
	k, err := decodeKey(strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"))
	if err != nil {
		return nil, fmt.Errorf("hash key file %s: %w", name, err)
	}
	return k, nil
}

// decodeKey returns the bytes of a key written as is, or as "base64:…" or
// "hex:…". Its errors never hold the key.
func decodeKey(s string) ([]byte, error) {
	var (
		k   []byte
		err error
	)
	switch {
	case strings.HasPrefix(s, "base64:"):
		k, err = base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "base64:"))
	case strings.HasPrefix(s, "hex:"):
		k, err = hex.DecodeString(strings.TrimPrefix(s, "hex:"))
	default:
		k = []byte(s)
	}
	if err != nil {
		return nil, errors.New("the key after base64: or hex: does not decode")
	}
	return k, nil
}
