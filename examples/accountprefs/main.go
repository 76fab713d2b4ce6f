// Command accountprefs is a small web app with the "API Token" section of an
// Account Preferences page: a signed-in member generates a token and sees it
// once in a dialog, lists the account's tokens, deletes them, and calls a REST
// API with them.
//
//	go run ./examples/accountprefs [-addr 127.0.0.1:8080] [-base-url https://prefs.example.com] [-db path/to/tokens.db | postgres://… | "host=… user=…" | user:pass@tcp(host:3306)/app | mysql://…]
//
// Tokens live in an SQL database through sqlstore: an SQLite file by default
// (pure Go, no server), or PostgreSQL or MySQL when -db is one of their DSNs.
// Only their hashes are stored. GET /metrics serves the Issuer's metrics
// for Prometheus (package apitokenprom). -base-url is where members reach the app
// (behind a proxy, say): the curl commands on the page use it.
//
// The sign-in is a demo (any member name, in a signed cookie): a real app
// uses its own sign-in and takes the account and member from it.
package main

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/apitokenprom"
	"github.com/apitoken-go/apitoken/internal/dsn"
	"github.com/apitoken-go/apitoken/sqlstore"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	db := flag.String("db", filepath.Join(os.TempDir(), "apitoken-accountprefs.db"),
		"SQLite file, or a PostgreSQL (postgres://… or host=… user=… dbname=…) or MySQL (user:pass@tcp(host:3306)/db or mysql://user:pass@host:3306/db) DSN")
	baseURL := flag.String("base-url", "", "URL members reach the app at, for the curl commands (default: http:// and the listen address)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *db, *baseURL, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "accountprefs:", err)
		os.Exit(1)
	}
}

// run opens and migrates the database named by db, serves the app on addr
// until ctx ends, then shuts down gracefully. baseURL is where members reach
// the app; "" means http:// and the address listened on. run writes the
// address, then a log line per request, to stdout.
func run(ctx context.Context, addr, db, baseURL string, stdout io.Writer) (err error) {
	if baseURL != "" {
		if _, err := checkBaseURL(baseURL); err != nil {
			return err // before opening anything
		}
	}
	store, closeStore, err := openStore(ctx, db)
	if err != nil {
		return err
	}
	defer closeStore()
	// The Prometheus collector counts the Issuer's events and reads its
	// Stats at each scrape of /metrics.
	metrics := apitokenprom.New()
	iss, err := apitoken.NewIssuer(store, apitoken.WithEvents(metrics.Event))
	if err != nil {
		return err
	}
	metrics.Watch(iss)
	defer func() {
		// Writes the last uses still pending, after the server stopped.
		err = cmp.Or(err, iss.Close())
	}()

	// Listen first, so that the default base URL and the printed address
	// are the real ones (also with port 0).
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	if baseURL == "" {
		baseURL = "http://" + ln.Addr().String()
	}
	logger := slog.New(slog.NewTextHandler(stdout, nil))
	a, err := newApp(iss, logger, baseURL)
	if err != nil {
		return err
	}
	a.ready = store.Ready
	fmt.Fprintf(stdout, "Account Preferences on http://%s/ (base URL %s; tokens in %s); press Ctrl+C to stop.\n", ln.Addr(), baseURL, dsn.Describe(db))

	srv := &http.Server{
		Handler:           withMetrics(a.routes(), metrics),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// withMetrics serves the Prometheus metrics of c on GET /metrics, and
// everything else with app. A real app serves them on an address of its
// own, reached by Prometheus only: they tell how many tokens are refused,
// and why.
func withMetrics(app http.Handler, c prometheus.Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", app)
	return mux
}

// openStore opens the database named by db, picks the sqlstore dialect from
// its form, and migrates it. The returned function closes the store and the
// database.
func openStore(ctx context.Context, db string) (*sqlstore.Store, func(), error) {
	driver, source, dialect, err := dbConfig(db)
	if err != nil {
		return nil, nil, err
	}
	sqlDB, err := sql.Open(driver, source)
	if err != nil {
		return nil, nil, err
	}
	store, err := sqlstore.New(sqlDB, dialect)
	if err == nil {
		err = store.Migrate(ctx)
	}
	if err != nil {
		sqlDB.Close()
		// The error may come from the driver; it names the database by its
		// kind, never by a DSN that may hold a password.
		return nil, nil, fmt.Errorf("database (%s): %w", dialect, err)
	}
	return store, func() { store.Close(); sqlDB.Close() }, nil
}

// dialects maps the dialects of package dsn to sqlstore's.
var dialects = map[dsn.Dialect]sqlstore.Dialect{
	dsn.SQLite:   sqlstore.SQLite,
	dsn.Postgres: sqlstore.Postgres,
	dsn.MySQL:    sqlstore.MySQL,
}

// dbConfig maps the -db value to a driver, its DSN and the sqlstore dialect
// (see dsn.Parse for the forms), a MySQL DSN checked by go-sql-driver/mysql.
// Another form is an error that names the forms it knows, and never the
// value, which may hold a password.
func dbConfig(db string) (driver, source string, d sqlstore.Dialect, err error) {
	parsed, err := dsn.Parse(db, checkMySQL)
	switch {
	case errors.Is(err, dsn.ErrEmpty):
		return "", "", 0, errors.New("-db is empty: give " + dsn.Forms)
	case err != nil:
		return "", "", 0, fmt.Errorf("-db: %w", err)
	}
	return parsed.Driver, parsed.DSN, dialects[parsed.Dialect], nil
}

// checkMySQL checks a MySQL DSN as the driver will parse it.
func checkMySQL(s string) error {
	_, err := mysql.ParseDSN(s)
	return err
}
