package dbtest_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver: pure Go, no cgo

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/sqlstore"
)

// A Store in an SQLite file: open the database, create the Store, migrate,
// then issue, verify, list and delete tokens through an Issuer.
func Example_sqlite() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sqlstore-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// busy_timeout makes concurrent writers wait for the lock instead of
	// failing with SQLITE_BUSY; WAL lets readers run beside a writer.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "tokens.db")+
		"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	store, err := sqlstore.New(db, sqlstore.SQLite)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("migrate again:", store.Migrate(ctx)) // idempotent

	iss, err := apitoken.NewIssuer(store)
	if err != nil {
		log.Fatal(err)
	}
	secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{
		AccountID: "acct_42",
		Name:      "deploy script",
		Scopes:    []string{"read"},
	})
	if err != nil {
		log.Fatal(err)
	}
	// A real app shows secret to the user here, once.

	got, err := iss.Verify(ctx, "acct_42", secret)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("verified:", got.ID == tok.ID, got.Name, got.Scopes)

	toks, err := iss.List(ctx, "acct_42")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("tokens:", len(toks))

	if err := iss.Delete(ctx, "acct_42", tok.ID); err != nil {
		log.Fatal(err)
	}
	_, err = iss.Verify(ctx, "acct_42", secret)
	fmt.Println("deleted token is invalid:", errors.Is(err, apitoken.ErrInvalidToken))
	err = iss.Delete(ctx, "acct_42", tok.ID)
	fmt.Println("deleting it again is not found:", errors.Is(err, apitoken.ErrNotFound))
	// Output:
	// migrate again: <nil>
	// verified: true deploy script [read]
	// tokens: 1
	// deleted token is invalid: true
	// deleting it again is not found: true
}

// The tables take the prefix's name, here acme_tokens and
// acme_schema_version. A prefix that is not a plain identifier is refused.
func Example_tablePrefix() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sqlstore-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "tokens.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	store, err := sqlstore.New(db, sqlstore.SQLite, sqlstore.WithTablePrefix("acme_"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	rows, err := db.QueryContext(ctx, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' ORDER BY name")
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			log.Fatal(err)
		}
		fmt.Println("table:", name)
	}
	if err := rows.Err(); err != nil {
		log.Fatal(err)
	}

	_, err = sqlstore.New(db, sqlstore.SQLite, sqlstore.WithTablePrefix("acme-tokens; DROP TABLE"))
	fmt.Println("odd prefix refused:", errors.Is(err, apitoken.ErrInvalidInput))
	// Output:
	// table: acme_revocations
	// table: acme_schema_version
	// table: acme_tokens
	// odd prefix refused: true
}

// A token issued through store.WithTx(tx) is part of the caller's
// transaction: committed with the app's own writes, or rolled back with
// them.
func Example_withTx() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sqlstore-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "tokens.db")+
		"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	store, err := sqlstore.New(db, sqlstore.SQLite)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	// The app's own table, written in the same transaction as the token.
	if _, err := db.ExecContext(ctx, "CREATE TABLE audit_log (account_id TEXT NOT NULL, event TEXT NOT NULL)"); err != nil {
		log.Fatal(err)
	}

	// The app's main Issuer.
	iss, err := apitoken.NewIssuer(store)
	if err != nil {
		log.Fatal(err)
	}
	defer iss.Close()

	// issueInTx issues a token and logs it in one transaction, then commits
	// or rolls back. The Issuer from InTx lives as long as tx and keeps the
	// main Issuer's prefix, hash key and limit.
	issueInTx := func(commit bool) {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			log.Fatal(err)
		}
		defer tx.Rollback() // does nothing after Commit
		txIss, err := iss.InTx(store.WithTx(tx))
		if err != nil {
			log.Fatal(err)
		}
		if _, _, err := txIss.Issue(ctx, apitoken.IssueParams{AccountID: "acct_42", Name: "CI"}); err != nil {
			log.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO audit_log VALUES (?, ?)", "acct_42", "token issued"); err != nil {
			log.Fatal(err)
		}
		if commit {
			if err := tx.Commit(); err != nil {
				log.Fatal(err)
			}
			txIss.Committed(ctx) // every cache forgets what tx deleted (nothing here)
		}
	}

	count := func() (tokens, events int) {
		toks, err := iss.List(ctx, "acct_42")
		if err != nil {
			log.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM audit_log").Scan(&events); err != nil {
			log.Fatal(err)
		}
		return len(toks), events
	}

	issueInTx(true)
	tokens, events := count()
	fmt.Println("after commit:", tokens, "token,", events, "log entry")
	issueInTx(false)
	tokens, events = count()
	fmt.Println("after rollback:", tokens, "token,", events, "log entry")
	// Output:
	// after commit: 1 token, 1 log entry
	// after rollback: 1 token, 1 log entry
}

// Two instances of an app on one database, each with a cache that keeps
// tokens for an hour and a sqlstore Bus over the store's revocation log: a
// token deleted through one instance is refused by the other after one
// poll, on any dialect, with no server beyond the database.
func Example_bus() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sqlstore-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	dsn := "file:" + filepath.Join(dir, "tokens.db") + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"

	// instance is what each process of the app runs at start-up.
	instance := func() *apitoken.Issuer {
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			log.Fatal(err)
		}
		store, err := sqlstore.New(db, sqlstore.SQLite)
		if err != nil {
			log.Fatal(err)
		}
		if err := store.Migrate(ctx); err != nil {
			log.Fatal(err)
		}
		bus, err := sqlstore.NewBus(store, sqlstore.WithPollInterval(50*time.Millisecond))
		if err != nil {
			log.Fatal(err)
		}
		iss, err := apitoken.NewIssuer(store, apitoken.WithCache(10_000, time.Hour), apitoken.WithCacheBus(bus))
		if err != nil {
			log.Fatal(err)
		}
		// At shutdown, in this order: iss.Close(), bus.Close(),
		// store.Close(), db.Close().
		return iss
	}
	a, b := instance(), instance()
	defer a.Close()
	defer b.Close()

	secret, tok, err := a.Issue(ctx, apitoken.IssueParams{AccountID: "acct_42"})
	if err != nil {
		log.Fatal(err)
	}
	_, err = b.Verify(ctx, "acct_42", secret) // B caches it
	fmt.Println("B verifies:", err == nil)
	if err := a.Delete(ctx, "acct_42", tok.ID); err != nil {
		log.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // a poll interval, and then some
	_, err = b.Verify(ctx, "acct_42", secret)
	fmt.Println("B refuses after the delete on A:", errors.Is(err, apitoken.ErrInvalidToken))
	// Output:
	// B verifies: true
	// B refuses after the delete on A: true
}

// A Store that reads a replica: Verify and List read it, writes go to the
// primary, and what this Store wrote within the replica's lag is read on the
// primary. Here the "replica" is a second handle on the same SQLite file;
// in production it is a read replica's *sql.DB.
func Example_readReplica() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sqlstore-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	dsn := "file:" + filepath.Join(dir, "tokens.db") + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
	primary, err := sql.Open("sqlite", dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer primary.Close()
	replica, err := sql.Open("sqlite", dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer replica.Close()

	store, err := sqlstore.New(primary, sqlstore.SQLite,
		sqlstore.WithReplica(replica, 5*time.Second), // the longest the replica may lag
		sqlstore.WithReplicaFallbacks(100),           // primary reads a second after a miss on the replica
	)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	iss, err := apitoken.NewIssuer(store)
	if err != nil {
		log.Fatal(err)
	}
	defer iss.Close()

	secret, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acct_42"})
	if err != nil {
		log.Fatal(err)
	}
	_, err = iss.Verify(ctx, "acct_42", secret) // issued a moment ago: read on the primary
	fmt.Println("verified:", err == nil)
	if _, err := iss.List(ctx, "acct_7"); err != nil { // an account not written lately: the replica
		log.Fatal(err)
	}
	st := store.ReplicaStats()
	fmt.Println("replica reads:", st.ReplicaReads, "recent, on the primary:", st.Recent)
	// Output:
	// verified: true
	// replica reads: 1 recent, on the primary: 1
}
