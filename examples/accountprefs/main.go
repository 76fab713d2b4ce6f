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
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/apitokenprom"
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
	fmt.Fprintf(stdout, "Account Preferences on http://%s/ (base URL %s; tokens in %s); press Ctrl+C to stop.\n", ln.Addr(), baseURL, describeDB(db))

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
	driver, dsn, dialect, err := dbConfig(db)
	if err != nil {
		return nil, nil, err
	}
	sqlDB, err := sql.Open(driver, dsn)
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

// dbConfig maps the -db value to a driver, its DSN and the sqlstore dialect:
//
//   - postgres://… or postgresql://…, or a libpq keyword/value string
//     ("host=db user=app dbname=app sslmode=disable"): PostgreSQL;
//   - user:pass@tcp(host:3306)/db (go-sql-driver's form) or
//     mysql://user:pass@host:3306/db: MySQL or MariaDB;
//   - anything else without a URL scheme, '=' or '@': an SQLite file.
//
// Another form is an error that names the forms it knows, and never the
// value, which may hold a password.
func dbConfig(db string) (driver, dsn string, d sqlstore.Dialect, err error) {
	scheme, _, isURL := strings.Cut(db, "://")
	switch {
	case db == "":
		return "", "", 0, errors.New("-db is empty: " + dbForms)
	case isURL && (scheme == "postgres" || scheme == "postgresql"):
		return "pgx", db, sqlstore.Postgres, nil
	case isURL && scheme == "mysql":
		dsn, err := mysqlURL(db)
		if err != nil {
			return "", "", 0, err
		}
		return "mysql", dsn, sqlstore.MySQL, nil
	case isURL:
		if !validScheme(scheme) {
			scheme = "?"
		}
		return "", "", 0, fmt.Errorf("-db: a %s:// URL is not a database this demo opens: %s", scheme, dbForms)
	case libpqKeywordValue(db):
		return "pgx", db, sqlstore.Postgres, nil
	case strings.Contains(db, "@tcp("), strings.Contains(db, "@unix("):
		return "mysql", db, sqlstore.MySQL, nil
	case strings.ContainsAny(db, "=@"):
		return "", "", 0, errors.New("-db: not a form this demo knows: " + dbForms)
	default:
		// WAL lets readers run beside a writer; busy_timeout makes a writer
		// wait for another instead of failing.
		return "sqlite", "file:" + db + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)", sqlstore.SQLite, nil
	}
}

// dbForms lists the -db forms, for errors.
const dbForms = "give an SQLite file path, a PostgreSQL URL (postgres://user:pass@host:5432/db) or libpq string (host=… user=… dbname=…), " +
	"or a MySQL DSN (user:pass@tcp(host:3306)/db or mysql://user:pass@host:3306/db)"

// validScheme reports whether s is a URL scheme, so that an error may name it.
func validScheme(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || i > 0 && ('0' <= r && r <= '9' || r == '+' || r == '-' || r == '.')) {
			return false
		}
	}
	return true
}

// libpqKeywords are the connection parameters a libpq keyword/value string
// most often starts with.
var libpqKeywords = map[string]bool{
	"host": true, "hostaddr": true, "port": true, "dbname": true, "user": true, "password": true,
	"sslmode": true, "service": true, "passfile": true, "connect_timeout": true, "application_name": true,
	"options": true, "target_session_attrs": true, "sslrootcert": true, "sslcert": true, "sslkey": true,
}

// libpqKeywordValue reports whether db is a libpq keyword/value string:
// "keyword=value" pairs separated by spaces, the first keyword one of
// libpq's.
func libpqKeywordValue(db string) bool {
	key, rest, ok := strings.Cut(strings.TrimLeft(db, " \t"), "=")
	if !ok {
		return false
	}
	key = strings.TrimRight(key, " \t")
	return libpqKeywords[key] && !strings.ContainsAny(key, " \t") && rest != ""
}

// mysqlURL turns mysql://user:pass@host:port/db?params into
// go-sql-driver's DSN, user:pass@tcp(host:port)/db?params (port 3306 by
// default). Its errors never hold the URL.
func mysqlURL(db string) (string, error) {
	u, err := url.Parse(db)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "", errors.New("-db: a mysql:// URL must be mysql://user:pass@host:3306/db")
	}
	cfg := mysql.NewConfig()
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	if u.Port() == "" {
		cfg.Addr = net.JoinHostPort(u.Hostname(), "3306")
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	if strings.Contains(cfg.DBName, "/") {
		return "", errors.New("-db: a mysql:// URL must be mysql://user:pass@host:3306/db")
	}
	dsn := cfg.FormatDSN()
	if u.RawQuery != "" {
		dsn += "?" + u.RawQuery
	}
	if _, err := mysql.ParseDSN(dsn); err != nil {
		return "", errors.New("-db: the parameters of the mysql:// URL are not go-sql-driver/mysql's")
	}
	return dsn, nil
}

// describeDB names the database for the start-up line without printing a
// server DSN, which may hold a password.
func describeDB(db string) string {
	if _, _, d, _ := dbConfig(db); d != sqlstore.SQLite {
		return d.String()
	}
	return db
}
