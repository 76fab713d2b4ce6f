package redisbus_test

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
	"github.com/apitoken-go/apitoken/redisbus"
)

// sharedStore stands for the store every instance of the app shares:
// sqlstore over the app's database, say. (A memstore is not shared.)
func sharedStore() apitoken.Store { return memstore.New() }

// Each instance of the app runs this: the tokens live in a shared store,
// each instance caches verified tokens for a minute, and a token deleted
// through any instance stops verifying on all of them at once. (Not run: it
// needs a Redis server.)
func Example() {
	// REDIS_ADDR is, say, redis.internal:6379.
	rdb := redis.NewClient(&redis.Options{Addr: os.Getenv("REDIS_ADDR")})
	defer rdb.Close() // after the Bus's Close: defers run last first

	bus, err := redisbus.New(rdb)
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

// Options are checked when the Bus is made, before anything is sent: a
// channel name with a space is refused.
func ExampleWithChannel() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()

	_, err := redisbus.New(rdb, redisbus.WithChannel("billing api:invalidate"))
	fmt.Println(err)
	bus, err := redisbus.New(rdb, redisbus.WithChannel("billing-api:invalidate"))
	fmt.Println(err)
	bus.Close()
	// Output:
	// redisbus: apitoken: invalid input: channel must be 1 to 256 printable ASCII characters without spaces
	// <nil>
}
