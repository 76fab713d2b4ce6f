// Command loadtest serves one route, bare or behind the apitoken middleware,
// for a loopback load test with wrk (see run.sh and run_cache.sh beside it).
// It is a benchmark tool, not an example: it prints a live secret to stdout,
// and with -secrets writes the secrets of all the tokens it issued to a
// file, so that the load generator can use them. It listens on loopback
// only.
//
// The store is a memstore (-store memstore) or sqlstore on PostgreSQL
// (-store postgres, -dsn), optionally behind the Issuer's cache (-cache).
// It holds -tokens tokens: -hot + -cold issued ones, whose secrets go to
// the -secrets file, hot ones first, and the rest created directly with
// random hashes. On PostgreSQL the tables get a fresh prefix per run and are
// dropped when the server stops (SIGINT or SIGTERM).
//
// Both -mode values preload the same store, so that they run with the same
// heap: a large resident store slows even a handler that never reads it
// (GC), and the comparison must show the middleware's cost, not the heap's.
//
// On SIGINT or SIGTERM the server stops and prints, after the first line,
// "lookups=N", how many lookups reached the store (so that the cache's
// misses can be counted), and "cpu_seconds=S", the CPU time it used while
// serving.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
	"github.com/apitoken-go/apitoken/sqlstore"
)

// config is the command line.
type config struct {
	addr, mode, store, dsn, secrets string
	cpuProfile                      string
	tokens, hot, cold, pool         int
	cache                           bool
	cacheSize                       int
	cacheTTL, lastUse               time.Duration
	lastUseSet                      bool
}

func main() {
	var c config
	flag.StringVar(&c.addr, "addr", "127.0.0.1:8089", "listen address (loopback only)")
	flag.StringVar(&c.mode, "mode", "middleware", "bare: the handler alone; middleware: behind iss.Middleware")
	flag.StringVar(&c.store, "store", "memstore", "memstore, or postgres (sqlstore on -dsn)")
	flag.StringVar(&c.dsn, "dsn", os.Getenv("APITOKEN_PG_DSN"), "PostgreSQL DSN for -store postgres (default $APITOKEN_PG_DSN)")
	flag.IntVar(&c.pool, "pool", 16, "connection pool size for -store postgres")
	flag.IntVar(&c.tokens, "tokens", 100_000, "tokens in the store, in both modes: -hot + -cold issued, the rest created with random hashes")
	flag.IntVar(&c.hot, "hot", 1, "tokens issued first, whose secrets head the -secrets file")
	flag.IntVar(&c.cold, "cold", 0, "tokens issued after the hot ones, whose secrets follow them in the -secrets file")
	flag.StringVar(&c.secrets, "secrets", "", `file to write "account secret" lines to, one per issued token, hot ones first (mode 0600)`)
	flag.BoolVar(&c.cache, "cache", false, "put the Issuer's cache (apitoken.WithCache) in front of the store")
	flag.IntVar(&c.cacheSize, "cache-size", 1000, "entries of the cache, with -cache")
	flag.DurationVar(&c.cacheTTL, "cache-ttl", time.Minute, "TTL of the cache's entries, with -cache")
	flag.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the serving (not of the set-up) to this file")
	flag.DurationVar(&c.lastUse, "last-use", 0, "WithLastUseInterval (0: off); the library's default (5m) when not given")
	flag.Parse()
	flag.Visit(func(f *flag.Flag) { c.lastUseSet = c.lastUseSet || f.Name == "last-use" })
	if err := run(c); err != nil {
		log.Fatalf("loadtest: %v", err)
	}
}

func run(c config) error {
	host, _, err := net.SplitHostPort(c.addr)
	if err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("-addr must be a loopback address, got %q", host)
	}
	if c.hot < 1 || c.cold < 0 || c.tokens < c.hot+c.cold {
		return errors.New("want -hot >= 1, -cold >= 0 and -tokens >= -hot + -cold")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// One random application key per run, shared by the Issuers that issue
	// and that verify.
	key := make([]byte, 32)
	rand.Read(key)
	opts := []apitoken.Option{apitoken.WithHashKey(key)}
	if c.lastUseSet {
		opts = append(opts, apitoken.WithLastUseInterval(c.lastUse))
	}
	if c.cache {
		opts = append(opts, apitoken.WithCache(c.cacheSize, c.cacheTTL))
	}

	var (
		store   apitoken.Store
		lookups *atomic.Int64
		secrets []issued
	)
	switch c.store {
	case "memstore":
		s := &countingMem{Store: memstore.New()}
		store, lookups = s, &s.lookups
		// The seeding Issuer records no last use and keeps no cache.
		seeder, err := apitoken.NewIssuer(s.Store, apitoken.WithHashKey(key), apitoken.WithLastUseInterval(0))
		if err != nil {
			return err
		}
		secrets, err = issue(ctx, seeder, c.hot+c.cold)
		if err := errors.Join(err, seeder.Close()); err != nil {
			return err
		}
		if err := preload(ctx, s.Store, c.tokens-c.hot-c.cold); err != nil {
			return err
		}
	case "postgres":
		s, drop, err := openPostgres(ctx, c)
		if err != nil {
			return err
		}
		defer drop()
		store, lookups = s, &s.lookups
		if secrets, err = seedPostgres(ctx, s, key, c); err != nil {
			return err
		}
	default:
		return fmt.Errorf("-store must be memstore or postgres, got %q", c.store)
	}

	iss, err := apitoken.NewIssuer(store, opts...)
	if err != nil {
		return err
	}
	defer iss.Close()
	if c.secrets != "" {
		if err := writeSecrets(c.secrets, secrets); err != nil {
			return err
		}
	}

	ok := []byte("ok\n")
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write(ok)
	})
	switch c.mode {
	case "bare":
	case "middleware":
		h = iss.Middleware(h)
	default:
		return fmt.Errorf("-mode must be bare or middleware, got %q", c.mode)
	}

	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	// One line, read by run.sh: the server is ready once it is printed.
	fmt.Printf("account=%s secret=%s\n", secrets[0].account, secrets[0].secret)
	_ = os.Stdout.Sync()
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	cpu0 := cpuTime()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown) // the load is over; a slow client does not matter
	fmt.Printf("lookups=%d\ncpu_seconds=%.3f\n", lookups.Load(), (cpuTime() - cpu0).Seconds())
	return nil
}

// cpuTime is the CPU time (user and system) the process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// issued is a token's account and secret, as a client sends them.
type issued struct{ account, secret string }

// issue issues n tokens through iss, over 1,000 accounts.
func issue(ctx context.Context, iss *apitoken.Issuer, n int) ([]issued, error) {
	out := make([]issued, n)
	for i := range out {
		p := apitoken.IssueParams{AccountID: "acct-" + strconv.Itoa(i%1000), Name: "loadtest", Scopes: []string{"tokens:read"}}
		secret, _, err := iss.Issue(ctx, p)
		if err != nil {
			return nil, err
		}
		out[i] = issued{p.AccountID, secret}
	}
	return out, nil
}

// writeSecrets writes one "account secret" line per token.
func writeSecrets(path string, toks []issued) error {
	var b strings.Builder
	for _, t := range toks {
		b.WriteString(t.account + " " + t.secret + "\n")
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// countingMem and countingSQL count the lookups that reach the store. They
// embed the store, which keeps its optional capabilities.
type countingMem struct {
	*memstore.Store
	lookups atomic.Int64
}

func (s *countingMem) Lookup(ctx context.Context, h apitoken.Hash) (apitoken.Record, error) {
	s.lookups.Add(1)
	return s.Store.Lookup(ctx, h)
}

type countingSQL struct {
	*sqlstore.Store
	db      *sql.DB
	table   string
	lookups atomic.Int64
}

func (s *countingSQL) Lookup(ctx context.Context, h apitoken.Hash) (apitoken.Record, error) {
	s.lookups.Add(1)
	return s.Store.Lookup(ctx, h)
}

// openPostgres migrates a Store with a fresh table prefix on c.dsn, and
// returns it with a function that drops its tables and closes it.
func openPostgres(ctx context.Context, c config) (*countingSQL, func(), error) {
	if c.dsn == "" {
		return nil, nil, errors.New("-store postgres needs -dsn or APITOKEN_PG_DSN")
	}
	db, err := sql.Open("pgx", c.dsn)
	if err != nil {
		return nil, nil, err
	}
	db.SetMaxOpenConns(c.pool)
	db.SetMaxIdleConns(c.pool)
	prefix := "loadtest_" + strings.ToLower(rand.Text()[:10]) + "_"
	store, err := sqlstore.New(db, sqlstore.Postgres, sqlstore.WithTablePrefix(prefix))
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	drop := func() {
		_ = store.Close()
		// A fresh context: the run's is cancelled by then.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+prefix+"tokens, "+prefix+"schema_version"); err != nil {
			log.Printf("loadtest: tables %s* not dropped: %v", prefix, err)
		}
		db.Close()
	}
	if err := store.Migrate(ctx); err != nil {
		drop()
		return nil, nil, err
	}
	return &countingSQL{Store: store, db: db, table: prefix + "tokens"}, drop, nil
}

// seedPostgres fills the store: the tokens with no known secret in one
// INSERT ... SELECT that the database runs on its own (hashes are SHA-256
// of a row number, in hash order, as sqlstore's benchmarks fill), then the
// hot and the cold ones issued in one transaction (one commit, not one per
// token).
func seedPostgres(ctx context.Context, s *countingSQL, key []byte, c config) ([]issued, error) {
	start := time.Now()
	if n := c.tokens - c.hot - c.cold; n > 0 {
		_, err := s.db.ExecContext(ctx, `INSERT INTO `+s.table+` (hash, id, account_id, member_id, name, scopes, created_at)
SELECT h, encode(substring(h FROM 1 FOR 16), 'hex'), 'fill-' || lpad(((r - 1) / 100)::text, 6, '0'), 'member', 'preloaded', 'tokens:read',
       now() + r * interval '1 microsecond'
FROM (SELECT h, row_number() OVER (ORDER BY h) AS r
      FROM (SELECT sha256(i::text::bytea) AS h FROM generate_series(1, $1) AS i) AS hs) AS rs
ORDER BY h`, n)
		if err != nil {
			return nil, fmt.Errorf("preload: %w", err)
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }() // after Commit, a no-op
	seeder, err := apitoken.NewIssuer(s.WithTx(tx), apitoken.WithHashKey(key), apitoken.WithLastUseInterval(0))
	if err != nil {
		return nil, err
	}
	secrets, err := issue(ctx, seeder, c.hot+c.cold)
	if err := errors.Join(err, seeder.Close()); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	if _, err := s.db.ExecContext(ctx, "ANALYZE "+s.table); err != nil {
		return nil, err
	}
	log.Printf("loadtest: %d tokens in PostgreSQL table %s in %v", c.tokens, s.table, time.Since(start).Round(time.Millisecond))
	return secrets, nil
}

// preload creates n records with random hashes, shaped like issued tokens
// and spread over 1,000 accounts, directly in the store: issuing them would
// only make the start slower.
func preload(ctx context.Context, store *memstore.Store, n int) error {
	now := time.Now().UTC().Truncate(time.Microsecond)
	scopes := []string{"tokens:read"}
	accounts := make([]string, 1000)
	for i := range accounts {
		accounts[i] = "acct-" + strconv.Itoa(i)
	}
	for i := range n {
		rec := apitoken.Record{Token: apitoken.Token{
			ID:        fmt.Sprintf("00000000-0000-7000-8000-%012d", i),
			AccountID: accounts[i%len(accounts)],
			Name:      "preloaded",
			Scopes:    scopes,
			CreatedAt: now,
		}}
		rand.Read(rec.Hash[:])
		if err := store.Create(ctx, rec); err != nil {
			return err
		}
	}
	return nil
}
