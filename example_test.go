package apitoken_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
	"github.com/apitoken-go/apitoken/storetest"
)

// The secret is shown to the user once, with the account id; only its
// metadata is kept.
func ExampleIssuer_Issue() {
	ctx := context.Background()
	iss, err := apitoken.NewIssuer(memstore.New())
	if err != nil {
		log.Fatal(err)
	}

	secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{
		AccountID: "acct_42",
		MemberID:  "alice",
		Name:      "deploy script",
		Scopes:    []string{"read"},
	})
	if err != nil {
		log.Fatal(err)
	}

	// A real app shows secret to the user here, once. It is random, so this
	// example prints only its shape.
	fmt.Println("account:", tok.AccountID)
	fmt.Println("name:", tok.Name)
	fmt.Println("scopes:", tok.Scopes)
	fmt.Println("prefix:", strings.HasPrefix(secret, apitoken.DefaultPrefix+"_"))
	fmt.Println("length:", len(secret))
	fmt.Println("matches Pattern:", regexp.MustCompile(apitoken.Pattern).MatchString(secret))
	// Output:
	// account: acct_42
	// name: deploy script
	// scopes: [read]
	// prefix: true
	// length: 47
	// matches Pattern: true
}

// Verify accepts a secret only together with the account it was issued for.
// Every refusal is ErrInvalidToken, with the same text.
func ExampleIssuer_Verify() {
	ctx := context.Background()
	iss, err := apitoken.NewIssuer(memstore.New())
	if err != nil {
		log.Fatal(err)
	}
	secret, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acct_42"})
	if err != nil {
		log.Fatal(err)
	}

	tok, err := iss.Verify(ctx, "acct_42", secret)
	fmt.Println("right account:", tok.AccountID, err)

	_, err = iss.Verify(ctx, "acct_7", secret)
	fmt.Println("wrong account:", errors.Is(err, apitoken.ErrInvalidToken), err)

	typo := "x"
	if strings.HasSuffix(secret, typo) {
		typo = "y"
	}
	_, err = iss.Verify(ctx, "acct_42", secret[:len(secret)-1]+typo)
	fmt.Println("mistyped:", errors.Is(err, apitoken.ErrInvalidToken), err)
	// Output:
	// right account: acct_42 <nil>
	// wrong account: true apitoken: invalid token
	// mistyped: true apitoken: invalid token
}

// An account is closed or its tokens leaked: DeleteAll revokes every one of
// them at once, and no other account's.
func ExampleIssuer_DeleteAll() {
	ctx := context.Background()
	iss, err := apitoken.NewIssuer(memstore.New())
	if err != nil {
		log.Fatal(err)
	}
	var secrets []string
	for _, acct := range []string{"acct_42", "acct_42", "acct_7"} {
		secret, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: acct})
		if err != nil {
			log.Fatal(err)
		}
		secrets = append(secrets, secret)
	}

	n, err := iss.DeleteAll(ctx, "acct_42")
	fmt.Println("deleted:", n, err)
	_, err = iss.Verify(ctx, "acct_42", secrets[0])
	fmt.Println("acct_42:", err)
	_, err = iss.Verify(ctx, "acct_7", secrets[2])
	fmt.Println("acct_7:", err)
	// Output:
	// deleted: 2 <nil>
	// acct_42: apitoken: invalid token
	// acct_7: <nil>
}

// Rotate rolls a token: the successor has a new secret, and the old one
// keeps working through the grace period so that its users can switch.
func ExampleIssuer_Rotate() {
	ctx := context.Background()
	now := time.Date(2026, time.November, 27, 12, 0, 0, 0, time.UTC)
	iss, err := apitoken.NewIssuer(memstore.New(), apitoken.WithClock(func() time.Time { return now }))
	if err != nil {
		log.Fatal(err)
	}
	oldSecret, old, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acct_42", Name: "deploy"})
	if err != nil {
		log.Fatal(err)
	}

	newSecret, tok, err := iss.Rotate(ctx, "acct_42", old.ID, time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("successor:", tok.Name, tok.ID != old.ID)
	_, err = iss.Verify(ctx, "acct_42", oldSecret)
	fmt.Println("old, within the hour:", err)

	now = now.Add(time.Hour)
	_, err = iss.Verify(ctx, "acct_42", oldSecret)
	fmt.Println("old, after it:", err)
	_, err = iss.Verify(ctx, "acct_42", newSecret)
	fmt.Println("new:", err)
	// Output:
	// successor: deploy true
	// old, within the hour: <nil>
	// old, after it: apitoken: invalid token
	// new: <nil>
}

// A scheduled job prunes the tokens that expired some time ago.
func ExampleIssuer_Prune() {
	ctx := context.Background()
	now := time.Date(2026, time.November, 27, 12, 0, 0, 0, time.UTC)
	iss, err := apitoken.NewIssuer(memstore.New(), apitoken.WithClock(func() time.Time { return now }))
	if err != nil {
		log.Fatal(err)
	}
	for _, days := range []int{1, 30} {
		_, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acct_42", ExpiresAt: now.AddDate(0, 0, days)})
		if err != nil {
			log.Fatal(err)
		}
	}

	// Ten days later, the job drops what expired more than a week ago.
	now = now.AddDate(0, 0, 10)
	n, err := iss.Prune(ctx, now.AddDate(0, 0, -7))
	fmt.Println("pruned:", n, err)
	toks, _ := iss.List(ctx, "acct_42")
	fmt.Println("left:", len(toks), "expiring", toks[0].ExpiresAt.Format(time.DateOnly))
	// Output:
	// pruned: 1 <nil>
	// left: 1 expiring 2026-12-27
}

// The middleware answers requests without valid credentials itself, and
// hands the verified token to the handler through the request context.
func ExampleIssuer_Middleware() {
	ctx := context.Background()
	iss, err := apitoken.NewIssuer(memstore.New())
	if err != nil {
		log.Fatal(err)
	}
	secret, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acct_42"})
	if err != nil {
		log.Fatal(err)
	}

	whoami := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := apitoken.FromContext(r.Context())
		if !ok {
			http.Error(w, "no token", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "hello", tok.AccountID)
	})
	h := iss.Middleware(whoami)

	// No credentials: 401, a bare Bearer challenge and a Basic one.
	req := httptest.NewRequest("GET", "/api/v1/whoami", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Header().Values("WWW-Authenticate"))

	// A Bearer token with its account id: the handler runs.
	req = httptest.NewRequest("GET", "/api/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("X-Account-ID", "acct_42")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Print(rec.Code, " ", rec.Body.String())

	// HTTP Basic with account id and secret works as well.
	req = httptest.NewRequest("GET", "/api/v1/whoami", nil)
	req.SetBasicAuth("acct_42", secret)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Print(rec.Code, " ", rec.Body.String())

	// The same secret with another account id is an invalid token.
	req = httptest.NewRequest("GET", "/api/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("X-Account-ID", "acct_7")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"))
	// Output:
	// 401 [Bearer realm="api" Basic realm="api", charset="UTF-8"]
	// 200 hello acct_42
	// 200 hello acct_42
	// 401 Bearer realm="api", error="invalid_token"
}

// FromScheme accepts GitHub's "Authorization: token <secret>" as a synonym
// of Bearer: one line of configuration. A scheme the middleware does not
// read is answered with 401 and a body naming the accepted forms.
func ExampleFromScheme() {
	iss, err := apitoken.NewIssuer(memstore.New())
	if err != nil {
		log.Fatal(err)
	}
	secret, _, err := iss.Issue(context.Background(), apitoken.IssueParams{AccountID: "acct_42"})
	if err != nil {
		log.Fatal(err)
	}
	mw, err := iss.NewMiddleware(apitoken.MiddlewareConfig{
		Extractor: apitoken.Chain(apitoken.FromBearer(""), apitoken.FromScheme("token", ""), apitoken.FromBasic()),
	})
	if err != nil {
		log.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := apitoken.FromContext(r.Context())
		fmt.Fprintln(w, "hello", tok.AccountID)
	}))

	for _, scheme := range []string{"token", "Bearer", "ApiKey"} {
		req := httptest.NewRequest("GET", "/api/v1/whoami", nil)
		req.Header.Set("Authorization", scheme+" "+secret)
		req.Header.Set("X-Account-ID", "acct_42")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Print(scheme, ": ", rec.Code, " ", rec.Body.String())
		if rec.Code != http.StatusOK {
			fmt.Println()
		}
	}
	// Output:
	// token: 200 hello acct_42
	// Bearer: 200 hello acct_42
	// ApiKey: 401 {"type":"about:blank","title":"Unauthorized","status":401,"detail":"The Authorization scheme is not one this API accepts; use Bearer (with X-Account-ID) or token (with X-Account-ID) or Basic."}
}

// RequireScope goes inside the middleware and refuses a token that lacks a
// scope with 403.
func ExampleRequireScope() {
	ctx := context.Background()
	iss, err := apitoken.NewIssuer(memstore.New())
	if err != nil {
		log.Fatal(err)
	}
	secret, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acct_42", Scopes: []string{"prefs:read"}})
	if err != nil {
		log.Fatal(err)
	}

	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "done")
	})
	mux := http.NewServeMux()
	mux.Handle("GET /prefs", apitoken.RequireScope("prefs:read")(ok))
	mux.Handle("PUT /prefs", apitoken.RequireScope("prefs:write")(ok))
	h := iss.Middleware(mux)

	for _, method := range []string{"GET", "PUT"} {
		req := httptest.NewRequest(method, "/prefs", nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set("X-Account-ID", "acct_42")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Print(method, " ", rec.Code)
		if c := rec.Header().Get("WWW-Authenticate"); c != "" {
			fmt.Print(" ", c)
		}
		fmt.Println()
	}
	// Output:
	// GET 200
	// PUT 403 Bearer realm="api", error="insufficient_scope", scope="prefs:write"
}

// An app names its tokens with its own prefix, so that secret scanners can
// tell them apart, and keys their hash with a secret of its own, kept
// outside the database. Bad options are errors, not panics.
func ExampleNewIssuer() {
	// A real app loads the key from its secret manager: the same key must
	// verify the tokens issued before a restart.
	key := make([]byte, 32)
	rand.Read(key)

	iss, err := apitoken.NewIssuer(memstore.New(),
		apitoken.WithPrefix("acme"),
		apitoken.WithHashKey(key),
	)
	if err != nil {
		log.Fatal(err)
	}
	secret, _, err := iss.Issue(context.Background(), apitoken.IssueParams{AccountID: "acct_42"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.HasPrefix(secret, "acme_"), len(secret))

	_, err = apitoken.NewIssuer(memstore.New(), apitoken.WithPrefix("Acme"))
	fmt.Println(err)
	_, err = apitoken.NewIssuer(memstore.New(), apitoken.WithHashKey([]byte("short")))
	fmt.Println(errors.Is(err, apitoken.ErrInvalidInput), err)
	// Output:
	// true 43
	// apitoken: invalid input: prefix must start with a letter a-z
	// true apitoken: invalid input: hash key is 5 bytes, want at least 32
}

// mapStore is a minimal apitoken.Store: a mutex and two maps. A real custom
// store (Redis, DynamoDB…) follows the same contract, and must pass
// storetest.Run (see TestMapStore in this file):
//
//	storetest.Run(t, func(t *testing.T) apitoken.Store { return newMapStore() })
type mapStore struct {
	mu     sync.RWMutex
	byHash map[apitoken.Hash]apitoken.Record
	byID   map[string]apitoken.Hash
}

var _ apitoken.Store = (*mapStore)(nil)

func newMapStore() *mapStore {
	return &mapStore{
		byHash: make(map[apitoken.Hash]apitoken.Record),
		byID:   make(map[string]apitoken.Hash),
	}
}

// Create refuses a duplicate id or hash: the Issuer then retries with a new
// secret, so nothing is ever overwritten.
func (s *mapStore) Create(_ context.Context, rec apitoken.Record) error {
	rec.Scopes = cloneScopes(rec.Scopes) // the caller keeps its slice
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[rec.ID]; ok {
		return fmt.Errorf("mapstore: id: %w", apitoken.ErrDuplicate)
	}
	if _, ok := s.byHash[rec.Hash]; ok {
		return fmt.Errorf("mapstore: hash: %w", apitoken.ErrDuplicate)
	}
	s.byHash[rec.Hash] = rec
	s.byID[rec.ID] = rec.Hash
	return nil
}

// Lookup finds a record by hash; "not there" wraps ErrNotFound.
func (s *mapStore) Lookup(_ context.Context, h apitoken.Hash) (apitoken.Record, error) {
	s.mu.RLock()
	rec, ok := s.byHash[h]
	s.mu.RUnlock()
	if !ok {
		return apitoken.Record{}, fmt.Errorf("mapstore: %w", apitoken.ErrNotFound)
	}
	rec.Scopes = cloneScopes(rec.Scopes) // the caller may modify what it gets
	return rec, nil
}

// List returns the account's tokens, oldest first, ties by ID. A real store
// reads an index by account instead of scanning everything.
func (s *mapStore) List(_ context.Context, accountID string) ([]apitoken.Token, error) {
	toks := []apitoken.Token{}
	s.mu.RLock()
	for _, rec := range s.byHash {
		if rec.AccountID == accountID {
			tok := rec.Token
			tok.Scopes = cloneScopes(tok.Scopes)
			toks = append(toks, tok)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(toks, func(a, b apitoken.Token) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return toks, nil
}

// Delete removes a token only if it belongs to the account; otherwise it
// changes nothing and wraps ErrNotFound.
func (s *mapStore) Delete(_ context.Context, accountID, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.byID[id]
	if !ok || s.byHash[h].AccountID != accountID {
		return fmt.Errorf("mapstore: %w", apitoken.ErrNotFound)
	}
	delete(s.byHash, h)
	delete(s.byID, id)
	return nil
}

// TestMapStore proves that the example's store keeps the Store contract, as
// every custom store must.
func TestMapStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) apitoken.Store { return newMapStore() })
}

// cloneScopes copies scopes, keeping nil for none.
func cloneScopes(scopes []string) []string {
	if len(scopes) == 0 {
		return nil
	}
	return slices.Clone(scopes)
}

// Any type that implements Store can hold the tokens: here mapStore, a map
// under a mutex defined in example_test.go; in practice the app's own
// database. The Issuer never gives a Store the secret, only its keyed hash.
// Like every Store, mapStore passes the conformance suite storetest.Run.
func Example_customStore() {
	ctx := context.Background()
	iss, err := apitoken.NewIssuer(newMapStore())
	if err != nil {
		log.Fatal(err)
	}

	secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acct_42", Name: "laptop"})
	if err != nil {
		log.Fatal(err)
	}
	_, err = iss.Verify(ctx, "acct_42", secret)
	fmt.Println("verify:", err)

	toks, err := iss.List(ctx, "acct_42")
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range toks {
		fmt.Println("list:", t.Name, t.ID == tok.ID)
	}

	fmt.Println("delete by another account:", errors.Is(iss.Delete(ctx, "acct_7", tok.ID), apitoken.ErrNotFound))
	fmt.Println("delete:", iss.Delete(ctx, "acct_42", tok.ID))
	_, err = iss.Verify(ctx, "acct_42", secret)
	fmt.Println("verify after delete:", err)
	// Output:
	// verify: <nil>
	// list: laptop true
	// delete by another account: true
	// delete: <nil>
	// verify after delete: apitoken: invalid token
}

// lookupCounter is a Store that counts its lookups, to show the cache.
type lookupCounter struct {
	*memstore.Store
	lookups int
}

func (s *lookupCounter) Lookup(ctx context.Context, h apitoken.Hash) (apitoken.Record, error) {
	s.lookups++
	return s.Store.Lookup(ctx, h)
}

// With a cache, a token verified again costs no store call, and a token
// deleted through the Issuer is refused at once.
func ExampleWithCache() {
	ctx := context.Background()
	store := &lookupCounter{Store: memstore.New()} // in an app, a sqlstore.Store
	iss, err := apitoken.NewIssuer(store, apitoken.WithCache(10_000, time.Minute))
	if err != nil {
		log.Fatal(err)
	}
	defer iss.Close()
	secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acct_demo"})
	if err != nil {
		log.Fatal(err)
	}
	for range 3 {
		if _, err := iss.Verify(ctx, "acct_demo", secret); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("3 verifications,", store.lookups, "store lookup")

	if err := iss.Delete(ctx, "acct_demo", tok.ID); err != nil {
		log.Fatal(err)
	}
	_, err = iss.Verify(ctx, "acct_demo", secret)
	fmt.Println(err)
	// Output:
	// 3 verifications, 1 store lookup
	// apitoken: invalid token
}

// A secret reported as leaked (pasted in a ticket, found by a scanner) is
// revoked by its value alone: no account id is needed. A second report of
// the same secret is ErrNotFound, a recognisable no-op.
func ExampleIssuer_RevokeSecret() {
	ctx := context.Background()
	iss, err := apitoken.NewIssuer(memstore.New(), apitoken.WithPrefix("acme"))
	if err != nil {
		log.Fatal(err)
	}
	leaked, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acct_42", Name: "laptop"})
	if err != nil {
		log.Fatal(err)
	}

	tok, err := iss.Inspect(ctx, leaked)
	fmt.Println("inspect:", tok.AccountID, tok.Name, err)
	tok, err = iss.RevokeSecret(apitoken.WithRevokeReason(ctx, "ticket 1234"), leaked)
	fmt.Println("revoked:", tok.AccountID, tok.Name, err)
	_, err = iss.RevokeSecret(ctx, leaked)
	fmt.Println("again:", errors.Is(err, apitoken.ErrNotFound))
	_, err = iss.Verify(ctx, "acct_42", leaked)
	fmt.Println("verify:", err)
	_, err = iss.RevokeSecret(ctx, "acme_not-a-secret")
	fmt.Println("malformed:", errors.Is(err, apitoken.ErrInvalidToken))
	// Output:
	// inspect: acct_42 laptop <nil>
	// revoked: acct_42 laptop <nil>
	// again: true
	// verify: apitoken: invalid token
	// malformed: true
}

// WellFormed tells a secret of any prefix from a look-alike without a store
// call; an Issuer's Pattern matches its own prefix only, for a scanner rule.
func ExampleWellFormed() {
	iss, err := apitoken.NewIssuer(memstore.New(), apitoken.WithPrefix("acme"))
	if err != nil {
		log.Fatal(err)
	}
	secret, _, err := iss.Issue(context.Background(), apitoken.IssueParams{AccountID: "acct_42"})
	if err != nil {
		log.Fatal(err)
	}
	truncated := secret[:len(secret)-1]
	fmt.Println(apitoken.WellFormed(secret), apitoken.WellFormed(truncated), apitoken.WellFormed("acme_"+strings.Repeat("0", 38)))
	fmt.Println(iss.Pattern())
	// Output:
	// true false false
	// \bacme_[0-9A-Za-z]{38}\b
}

// An Issuer holds hash keys and, with a cache, the hashes of secrets: it
// prints as its prefix alone, whatever the verb or the logger.
func ExampleIssuer_Format() {
	iss, err := apitoken.NewIssuer(memstore.New(), apitoken.WithPrefix("acme"),
		apitoken.WithHashKey([]byte("an application key of 32 bytes or more")), apitoken.WithCache(100, time.Minute))
	if err != nil {
		log.Fatal(err)
	}
	defer iss.Close()
	fmt.Printf("%v\n%+v\n%s\n", iss, iss, iss)
	noTime := func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: noTime})).Info("started", "issuer", iss)
	slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: noTime})).Info("started", "issuer", iss)
	// Output:
	// apitoken.Issuer{prefix: "acme"}
	// apitoken.Issuer{prefix: "acme"}
	// apitoken.Issuer{prefix: "acme"}
	// level=INFO msg=started issuer.prefix=acme
	// {"level":"INFO","msg":"started","issuer":{"prefix":"acme"}}
}
