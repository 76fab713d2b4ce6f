// Command accountprefs is a small web app with the "API Token" section of an
// Account Preferences page: a signed-in member generates a token and sees it
// once in a dialog, lists the account's tokens, deletes them, and calls a REST
// API with them.
//
//	go run ./examples/accountprefs [-addr 127.0.0.1:8080] [-base-url https://prefs.example.com] [-db path/to/tokens.db | postgres://… | user:pass@tcp(host:3306)/app]
//
// Tokens live in an SQL database through sqlstore: an SQLite file by default
// (pure Go, no server), or PostgreSQL or MySQL when -db is one of their DSNs.
// Only their hashes are stored. -base-url is where members reach the app
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
	"strings"
	"syscall"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/sqlstore"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	db := flag.String("db", filepath.Join(os.TempDir(), "apitoken-accountprefs.db"),
		"SQLite file, or a PostgreSQL (postgres://…) or MySQL (user:pass@tcp(host:3306)/db) DSN")
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
	iss, err := apitoken.NewIssuer(store)
	if err != nil {
		return err
	}
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
	fmt.Fprintf(stdout, "Account Preferences on http://%s/ (base URL %s; tokens in %s); press Ctrl+C to stop.\n", ln.Addr(), baseURL, describeDB(db))

	srv := &http.Server{
		Handler:           a.routes(),
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

// openStore opens the database named by db, picks the sqlstore dialect from
// its form, and migrates it. The returned function closes the store and the
// database.
func openStore(ctx context.Context, db string) (*sqlstore.Store, func(), error) {
	driver, dsn, dialect := dbConfig(db)
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

// dbConfig maps the -db value to a driver, its DSN and the sqlstore dialect.
func dbConfig(db string) (driver, dsn string, d sqlstore.Dialect) {
	switch {
	case strings.HasPrefix(db, "postgres://"), strings.HasPrefix(db, "postgresql://"):
		return "pgx", db, sqlstore.Postgres
	case strings.Contains(db, "@tcp("), strings.Contains(db, "@unix("):
		return "mysql", db, sqlstore.MySQL
	default:
		// WAL lets readers run beside a writer; busy_timeout makes a writer
		// wait for another instead of failing.
		return "sqlite", "file:" + db + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)", sqlstore.SQLite
	}
}

// describeDB names the database for the start-up line without printing a
// server DSN, which may hold a password.
func describeDB(db string) string {
	if _, _, d := dbConfig(db); d != sqlstore.SQLite {
		return d.String()
	}
	return db
}
