// Package apitoken lets a Go web app issue, list, delete and verify API
// tokens for its accounts, and protect its REST API with net/http middleware.
//
// It serves the "API Token" section of an account preferences page: a member
// generates a token and sees its secret once, the account's tokens are listed
// by creation time, a token is deleted for good, and every API request is
// authenticated by the secret together with the account id.
//
// # Flow
//
// An [Issuer] does the work over a [Store]:
//
//   - [Issuer.Issue] creates a token and returns its secret with its
//     metadata ([Token]). The secret is returned only here and never kept:
//     show it to the user once, with the account id, and tell them to store
//     it securely.
//   - [Issuer.List] returns an account's tokens, oldest first, without
//     anything secret.
//   - [Issuer.Delete] removes a token of the account; its secret stops
//     verifying at once.
//   - [Issuer.Verify] checks an account id and a secret and returns the
//     token. Every refusal is [ErrInvalidToken], with the same text, so no
//     caller can learn whether a token exists; a store failure is a
//     different error.
//   - [Issuer.RevokeSecret] deletes the token a leaked secret names,
//     whatever its account, and [Issuer.Inspect] shows it: no account id is
//     needed. Package secretscan serves the signed leak reports of GitHub,
//     GitLab and deps.dev with it.
//   - [Issuer.Middleware] authenticates HTTP requests and puts the verified
//     token in the request context, where [FromContext] finds it.
//     [RequireScope] then checks the token's scopes.
//
// # Token format
//
// A secret is
//
//	<prefix>_<32 base62 characters><6 base62 characters of CRC32>
//
// for example apitoken_ followed by 38 letters and digits. The prefix is
// [DefaultPrefix] unless set with [WithPrefix], so that a leaked secret names
// its issuer. The 32 random characters carry about 190 bits from
// crypto/rand. The last six are the CRC32 (IEEE) of everything before them:
// a mistyped, truncated or foreign secret is refused before any store call.
// [Pattern] is the regular expression that matches every secret this package
// issues, [Issuer.Pattern] the one of an Issuer's own prefix: give it to
// secret scanners. [WellFormed] checks a secret's shape and checksum.
//
// # Storage
//
// A Store keeps only a keyed hash of each secret (HMAC-SHA-256, see [Hash]),
// never the secret. Lookup is by that hash, so verifying a token is one
// indexed read. [WithHashKey] adds an application key (a pepper) kept outside
// the database, so that a copy of the database alone cannot confirm a guessed
// secret.
//
// A password hash such as bcrypt or argon2 is the wrong tool here: it slows
// down guessing of low-entropy passwords, but a 190-bit random secret cannot
// be guessed anyway, so it would only add tens of milliseconds to every
// request, and its per-row salt would forbid the indexed lookup. One pass of
// a keyed hash is the approved protection for such secrets (NIST SP
// 800-63B-4).
//
// # HTTP
//
// [Issuer.Middleware] accepts either of
//
//	Authorization: Bearer <secret>   with   X-Account-ID: <account id>
//	Authorization: Basic base64(<account id>:<secret>)
//
// and never a token in the query string. [Issuer.NewMiddleware] takes other
// conventions through an [Extractor] ([FromBearer], [FromScheme] for
// "Authorization: token <secret>", [FromBasic], [FromHeader], [Chain]), a
// realm, an error handler and a logger. Failures follow RFC 6750; every 401
// of a middleware that reads Basic credentials also carries a second
// challenge, WWW-Authenticate: Basic realm="api", charset="UTF-8", for
// clients that send Basic credentials only when asked (curl --anyauth,
// wget, Python's HTTPBasicAuthHandler):
//
//   - no credentials: 401 with WWW-Authenticate: Bearer realm="api" and no
//     error code; an Authorization header of a scheme the middleware does
//     not read ("token", "ApiKey") is answered so too, with a body naming
//     the accepted forms;
//   - an invalid, expired or deleted token, or another account's token: 401
//     with error="invalid_token";
//   - malformed or ambiguous credentials (a secret without an account, two
//     credentials, a token in the query string): 400 with
//     error="invalid_request";
//   - a token without a scope that [RequireScope] requires: 403 with
//     error="insufficient_scope";
//   - the store failing: 503, and the handler is not called.
//
// Failure bodies are short application/problem+json documents that never
// echo the request, sent with Cache-Control: no-store.
// [MiddlewareConfig].Optional serves requests without credentials too, with
// no token; [MiddlewareConfig].Skip lets chosen requests (a CORS preflight)
// through untouched.
//
// Framework adapters build on a [Guard] ([Issuer.NewGuard]): its
// Authenticate verifies a request with the configured extractor without
// writing a response, and its WriteError answers a refusal as the middleware
// does. [NewContext] puts a verified token where [FromContext] and
// [RequireScope] find it, and [Token.HasScope] applies RequireScope's rule
// outside net/http.
//
// # Last use
//
// With a Store that implements [LastUseRecorder] (memstore and sqlstore do),
// the Issuer records when each token last verified, writing to the store in
// the background at most once per token every 5 minutes
// ([WithLastUseInterval] changes the interval or turns it off); call
// [Issuer.Close] to write the pending uses before the program ends.
//
// # Governing tokens
//
// [Issuer.Disable] pauses a token (it refuses like an invalid one, stays
// listed, and [Issuer.Enable] resumes it); [WithDefaultLifetime] and
// [WithMaxLifetime] bound how long tokens live; [Issuer.DeleteMember]
// removes the tokens of a member who leaves; [Issuer.PruneUnused] and
// [Issuer.Expiring] serve scheduled jobs that remove unused tokens and tell
// owners of coming expiries; [Issuer.Status] says why a listed token does
// not verify. [Token.Hint] is the end of the secret, to tell tokens apart;
// [IssueParams.AllowedIPs] binds a token to client addresses, which the
// middleware reads from the connection (see [MiddlewareConfig].ClientAddr
// behind a proxy, and [WithClientAddr] for Verify outside net/http).
//
// # Cache and several instances
//
// [WithCache] keeps verified tokens in memory for a TTL, so that Verify on a
// SQL store costs about what it costs on memstore. Delete, DeleteAll and
// Rotate through the Issuer take effect at once; [WithCacheBus] carries them
// to the Issuers of the other instances (package pgnotify does it with
// PostgreSQL's LISTEN/NOTIFY). Without a bus, a token deleted through
// another instance keeps verifying for at most the TTL. The cache is off by
// default.
//
// # Audit log
//
// [WithAuditLogger] writes a log/slog record for every token issued,
// rotated, deleted, disabled or enabled (with the token's hint), every refused verification with its reason (which
// Verify keeps from its caller) and every successful one, with account and
// token ids, never a secret.
//
// # Observing
//
// [WithEvents] hands the app one [Event] per thing that happens (a token
// issued, verified, refused with its [Reason], deleted; a store failure;
// the cache bus lost), synchronously and never with a secret; the audit
// log is written from them. [Issuer.Stats] is a snapshot of counters for
// metrics, and [WithTracer] puts a span around each method. Packages
// apitokenprom and apitokenotel, modules of their own, turn them into
// Prometheus and OpenTelemetry metrics and traces.
//
// # Stores
//
// [Store] is small: Create, Lookup, List and Delete, each taking a context.
// Its doc comment states the contract: safe for concurrent use, no shared
// slices, times in UTC to the microsecond, byte-exact comparisons, "not
// there" wrapping [ErrNotFound], "already there" wrapping [ErrDuplicate], and
// every other error a system error. Package memstore keeps tokens in memory;
// package sqlstore keeps them in PostgreSQL, MySQL/MariaDB or SQLite through
// database/sql, with its schema embedded and a Migrate method. Optional
// capabilities a Store may add, [AccountDeleter], [ExpiredDeleter],
// [ExpiryUpdater], [LimitedCreator], [LastUseRecorder] and [Rehasher],
// serve [Issuer.DeleteAll], [Issuer.Prune], [Issuer.Rotate],
// [WithMaxTokensPerAccount], [WithLastUseInterval] and
// [WithPreviousHashKeys]. A custom store must pass the conformance suite
// storetest.Run:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) apitoken.Store { return mystore.New() })
//	}
//
// # Quick start
//
//	iss, err := apitoken.NewIssuer(memstore.New())
//	if err != nil {
//		log.Fatal(err)
//	}
//	secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acct_1", Name: "CI"})
//	if err != nil {
//		log.Fatal(err)
//	}
//	fmt.Println("account:", tok.AccountID, "token (shown once):", secret)
//
//	api := http.NewServeMux()
//	api.HandleFunc("GET /api/v1/whoami", func(w http.ResponseWriter, r *http.Request) {
//		tok, _ := apitoken.FromContext(r.Context())
//		fmt.Fprintln(w, tok.AccountID)
//	})
//	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: iss.Middleware(api), ReadHeaderTimeout: 5 * time.Second}
//	log.Fatal(srv.ListenAndServe())
//
// A client then calls
//
//	curl -H "Authorization: Bearer $TOKEN" -H "X-Account-ID: acct_1" http://127.0.0.1:8080/api/v1/whoami
package apitoken
