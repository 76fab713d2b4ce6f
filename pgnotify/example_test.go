package pgnotify_test

import (
	"context"
	"database/sql"
	"log"
	"net/http"
	"os"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/pgnotify"
	"github.com/apitoken-go/apitoken/sqlstore"
)

// Each instance of the app runs this: the tokens live in PostgreSQL, each
// instance caches verified tokens for a minute, and a token deleted through
// any instance stops verifying on all of them at once.
func Example() {
	ctx := context.Background()
	dsn := os.Getenv("DATABASE_URL") // postgres://app:…@db.internal/app

	db, err := sql.Open("pgx", dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	store, err := sqlstore.New(db, sqlstore.Postgres)
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	bus, err := pgnotify.New(ctx, dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Close() // after the Issuer's Close: defers run last first

	iss, err := apitoken.NewIssuer(store,
		apitoken.WithCache(100_000, time.Minute),
		apitoken.WithCacheBus(bus),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer iss.Close()

	api := http.NewServeMux()
	api.HandleFunc("GET /api/v1/whoami", func(w http.ResponseWriter, r *http.Request) {
		tok, _ := apitoken.FromContext(r.Context())
		w.Write([]byte(tok.AccountID + "\n"))
	})
	srv := &http.Server{Addr: ":8080", Handler: iss.Middleware(api), ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
