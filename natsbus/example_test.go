package natsbus_test

import (
	"log"
	"net/http"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
	"github.com/apitoken-go/apitoken/natsbus"
)

// sharedStore stands for the store every instance of the app shares:
// sqlstore over the app's database, say. (A memstore is not shared.)
func sharedStore() apitoken.Store { return memstore.New() }

// Each instance of the app runs this: the tokens live in a shared store,
// each instance caches verified tokens for a minute, and a token deleted
// through any instance stops verifying on all of them at once. The app's
// own connection handlers stay as it set them. (Not run: it needs a NATS
// server.)
func Example() {
	nc, err := nats.Connect(os.Getenv("NATS_URL"), // nats://nats.internal:4222
		nats.MaxReconnects(-1), // never give up: a closed connection stops the Bus for good
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Printf("nats: reconnected to %s", nc.ConnectedUrlRedacted()) }),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close() // after the Bus's Close: defers run last first

	bus, err := natsbus.New(nc, natsbus.WithSubject("billing.apitoken.invalidate"))
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Close() // after the Issuer's Close

	iss, err := apitoken.NewIssuer(sharedStore(),
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
