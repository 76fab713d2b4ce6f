package dbtest_test

// Benchmarks of sqlstore on each dialect, each beside its floor on the same
// pool and in the same run, because the machine is shared and noisy:
// compare ratios, not times. BENCHMARKS.md ("## sqlstore") has the commands
// and the figures.
//
// The floor of a verification is one round trip to the database: SELECT 1
// on the store's own pool, ad hoc (db.QueryRowContext) and prepared, as the
// store's statements are. Between that floor and Verify sits lookup-raw: the
// store's lookup query, prepared, scanned into the driver's own values.
// Verify minus lookup-raw is what sqlstore and the Issuer add in Go (keyed
// hash, conversions of the eight columns); lookup-raw minus SELECT 1 is what
// the database and the driver add for the indexed read and the wider row.
// The raw floors run the store's own statements (peek.Query, from
// export_test.go), so that they follow any change to the SQL files.
//
// Round trips on this shared machine vary by 20 to 90% between runs of a
// few seconds, more than the 1.3x that BenchmarkVerify's target allows. Its
// op=paired therefore runs the prepared SELECT 1, lookup-raw and Verify in
// turn in one loop, timing each, and reports their ratios: all three are
// measured under the same load at the same moments.
//
// Every operation runs with a cancellable context, as a request's is:
// database/sql then watches it with a goroutine per query, a cost that the
// floors pay too.
//
// The stores are filled by the database itself, in one INSERT ... SELECT,
// 100 tokens per account. Sizes above 100,000 tokens take tens of seconds
// to fill per dialect (once: -count repeats only the innermost
// sub-benchmarks, on the same fixture): they run only with
// APITOKEN_BENCH_LARGE=1.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/sqlstore"
	"github.com/apitoken-go/apitoken/sqlstore/internal/peek"
)

// benchLargeVar enables the store sizes above 100,000 tokens.
const benchLargeVar = "APITOKEN_BENCH_LARGE"

// benchPool is the pool size of the benchmarks' stores, as a server would
// set it (and as TestLoad does).
const benchPool = 16

// benchHashKey is the Issuer's application key in the benchmarks, so that
// lookup-raw can compute the digest the store holds.
var benchHashKey = []byte("sqlstore benchmarks: a hash key of 32+ bytes")

// benchStore is a migrated Store on a new database of one dialect, with an
// Issuer over it.
type benchStore struct {
	d     sqlstore.Dialect
	db    *sql.DB
	store *sqlstore.Store
	iss   *apitoken.Issuer
}

func newBenchStore(b *testing.B, d sqlstore.Dialect) *benchStore {
	b.Helper()
	db := openDB(b, d) // SQLite: WAL, synchronous=NORMAL, busy_timeout
	db.SetMaxOpenConns(benchPool)
	db.SetMaxIdleConns(benchPool)
	store, err := sqlstore.New(db, d)
	require.NoError(b, err)
	b.Cleanup(func() { require.NoError(b, store.Close()) })
	require.NoError(b, store.Migrate(b.Context()))
	iss, err := apitoken.NewIssuer(store, apitoken.WithHashKey(benchHashKey))
	require.NoError(b, err)
	return &benchStore{d: d, db: db, store: store, iss: iss}
}

// fill adds n tokens in one statement that the database runs on its own,
// then updates the planner's statistics. Hashes are random-looking 32 bytes
// (SHA-256 of the row number, or randomblob in SQLite); ids are the hex of
// the hash's first 16 bytes (32 characters, like a UUID's); accounts
// "fill-000000" onwards hold 100 tokens each; creation times are distinct.
// Rows are inserted in hash order and numbered in that order, so that every
// index grows at its end: inserted in random order, a million rows took
// three minutes to fill in MariaDB with its default 128 MiB buffer pool,
// against about 15 s in order. The indexes' depth is the same either way.
func (s *benchStore) fill(b *testing.B, n int) {
	b.Helper()
	ctx := b.Context()
	start := time.Now()
	switch s.d {
	case sqlstore.Postgres:
		_, err := s.db.ExecContext(ctx, `INSERT INTO apitoken_tokens (hash, id, account_id, member_id, name, scopes, created_at)
SELECT h, encode(substring(h FROM 1 FOR 16), 'hex'), 'fill-' || lpad(((r - 1) / 100)::text, 6, '0'), 'member', 'bench', 'tokens:read',
       timestamptz '2025-01-01 00:00:00+00' + r * interval '1 microsecond'
FROM (SELECT h, row_number() OVER (ORDER BY h) AS r
      FROM (SELECT sha256(i::text::bytea) AS h FROM generate_series(1, $1) AS i) AS hs) AS rs
ORDER BY h`, n)
		require.NoError(b, err)
		_, err = s.db.ExecContext(ctx, "ANALYZE apitoken_tokens")
		require.NoError(b, err)
	case sqlstore.MySQL:
		// A recursive CTE stops at max_recursive_iterations (MariaDB,
		// 1,000 by default) or cte_max_recursion_depth (MySQL): raise the
		// one the server has, on the connection that runs the INSERT.
		conn, err := s.db.Conn(ctx)
		require.NoError(b, err)
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "SET SESSION max_recursive_iterations = "+strconv.Itoa(n+1)); err != nil {
			_, err = conn.ExecContext(ctx, "SET SESSION cte_max_recursion_depth = "+strconv.Itoa(n+1))
			require.NoError(b, err)
		}
		_, err = conn.ExecContext(ctx, `INSERT INTO apitoken_tokens (hash, id, account_id, member_id, name, scopes, created_at)
WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < `+strconv.Itoa(n)+`),
hs AS (SELECT UNHEX(SHA2(i, 256)) AS h FROM seq),
rs AS (SELECT h, ROW_NUMBER() OVER (ORDER BY h) AS r FROM hs)
SELECT h, LOWER(HEX(LEFT(h, 16))), CONCAT('fill-', LPAD((r - 1) DIV 100, 6, '0')), 'member', 'bench', 'tokens:read',
       TIMESTAMP('2025-01-01') + INTERVAL r MICROSECOND
FROM rs ORDER BY h`)
		require.NoError(b, err)
		rows, err := conn.QueryContext(ctx, "ANALYZE TABLE apitoken_tokens") // answers with a result set
		require.NoError(b, err)
		require.NoError(b, rows.Close())
	case sqlstore.SQLite:
		// MATERIALIZED, or SQLite may inline hs and draw a new randomblob
		// for each use of h.
		_, err := s.db.ExecContext(ctx, `INSERT INTO apitoken_tokens (hash, id, account_id, member_id, name, scopes, created_at)
WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?),
hs AS MATERIALIZED (SELECT randomblob(32) AS h FROM seq),
rs AS MATERIALIZED (SELECT h, row_number() OVER (ORDER BY h) AS r FROM hs)
SELECT h, lower(hex(substr(h, 1, 16))), 'fill-' || printf('%06d', (r - 1) / 100), 'member', 'bench', 'tokens:read', ? + r
FROM rs ORDER BY h`, n, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro())
		require.NoError(b, err)
		_, err = s.db.ExecContext(ctx, "ANALYZE")
		require.NoError(b, err)
	}
	// The fill must have made n distinct tokens in 100-token accounts.
	var count, accounts int
	require.NoError(b, s.db.QueryRowContext(ctx, "SELECT COUNT(*), COUNT(DISTINCT account_id) FROM apitoken_tokens").Scan(&count, &accounts))
	require.Equal(b, n, count, "tokens after the fill")
	require.Equal(b, (n+99)/100, accounts, "accounts after the fill")
	b.Logf("%v: filled %d tokens in %v", s.d, n, time.Since(start).Round(time.Millisecond))
}

// prepare prepares query on the store's pool, closed when b ends.
func (s *benchStore) prepare(b *testing.B, query string) *sql.Stmt {
	b.Helper()
	stmt, err := s.db.PrepareContext(b.Context(), query)
	require.NoError(b, err)
	b.Cleanup(func() { stmt.Close() })
	return stmt
}

// benchSelect1 runs SELECT 1 ad hoc, as most code does.
func benchSelect1(b *testing.B, ctx context.Context, db *sql.DB) {
	b.ReportAllocs()
	var n int
	for b.Loop() {
		if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&n); err != nil || n != 1 {
			b.Fatalf("SELECT 1: %d, %v", n, err)
		}
	}
}

// benchSelect1Prepared runs SELECT 1 as a prepared statement, as the store
// runs its own.
func benchSelect1Prepared(b *testing.B, ctx context.Context, stmt *sql.Stmt) {
	b.ReportAllocs()
	var n int
	for b.Loop() {
		if err := stmt.QueryRowContext(ctx).Scan(&n); err != nil || n != 1 {
			b.Fatalf("SELECT 1: %d, %v", n, err)
		}
	}
}

// BenchmarkSelect1 is the floor of every store operation: one round trip,
// on a pool set up as the store's are. BenchmarkVerify measures it again
// beside Verify, on the very pool of each fixture.
func BenchmarkSelect1(b *testing.B) {
	for _, d := range dialects {
		b.Run(d.String(), func(b *testing.B) {
			s := newBenchStore(b, d)
			ctx := b.Context()
			stmt := s.prepare(b, "SELECT 1")
			b.Run("stmt=adhoc", func(b *testing.B) { benchSelect1(b, ctx, s.db) })
			b.Run("stmt=prepared", func(b *testing.B) { benchSelect1Prepared(b, ctx, stmt) })
		})
	}
}

// verifyFixture is a filled store and one token issued into it, whose
// secret the benchmarks verify.
type verifyFixture struct {
	*benchStore
	secret string
	tok    apitoken.Token
	hash   []byte // the digest the store holds for secret
}

func newVerifyFixture(b *testing.B, d sqlstore.Dialect, size int) *verifyFixture {
	b.Helper()
	s := newBenchStore(b, d)
	s.fill(b, size-1)
	secret, tok, err := s.iss.Issue(b.Context(), apitoken.IssueParams{
		AccountID: "bench-verify", MemberID: "member", Name: "bench", Scopes: []string{"tokens:read"},
	})
	require.NoError(b, err)
	m := hmac.New(sha256.New, benchHashKey)
	m.Write([]byte(secret))
	return &verifyFixture{benchStore: s, secret: secret, tok: tok, hash: m.Sum(nil)}
}

func (f *verifyFixture) verify(b *testing.B, ctx context.Context) {
	tok, err := f.iss.Verify(ctx, f.tok.AccountID, f.secret)
	if err != nil || tok.ID != f.tok.ID {
		b.Fatalf("Verify of the issued token: %v", err)
	}
}

// benchSizes are the store sizes of BenchmarkVerify.
func benchSizes() []int {
	sizes := []int{1000, 10_000, 100_000}
	if os.Getenv(benchLargeVar) == "1" {
		sizes = append(sizes, 1_000_000)
	}
	return sizes
}

// BenchmarkVerify measures Verify of one valid token in stores of 1,000 to
// 100,000 tokens (1,000,000 with APITOKEN_BENCH_LARGE=1), beside SELECT 1
// (ad hoc and prepared) and the raw lookup on the same pool. The same token
// is verified again and again, so its row stays in the database's cache:
// what may grow with the size is the depth of the index, not I/O.
func BenchmarkVerify(b *testing.B) {
	for _, d := range dialects {
		b.Run(d.String(), func(b *testing.B) {
			for _, size := range benchSizes() {
				b.Run("tokens="+strconv.Itoa(size), func(b *testing.B) {
					f := newVerifyFixture(b, d, size)
					ctx := b.Context()
					select1 := f.prepare(b, "SELECT 1")
					lookup := f.prepare(b, peek.Query(f.store, "lookup"))
					b.Run("op=select1", func(b *testing.B) { benchSelect1(b, ctx, f.db) })
					b.Run("op=select1-prepared", func(b *testing.B) { benchSelect1Prepared(b, ctx, select1) })
					b.Run("op=lookup-raw", func(b *testing.B) {
						// The store's lookup, scanned into whatever the
						// driver returns: the floor of an indexed read of
						// this row.
						b.ReportAllocs()
						var id, acct, member, name, scopes, created, expires, used any
						for b.Loop() {
							err := lookup.QueryRowContext(ctx, f.hash).Scan(&id, &acct, &member, &name, &scopes, &created, &expires, &used)
							if err != nil {
								b.Fatalf("lookup: %v", err)
							}
						}
					})
					b.Run("op=verify", func(b *testing.B) {
						b.ReportAllocs()
						for b.Loop() {
							f.verify(b, ctx)
						}
					})
					b.Run("op=paired", func(b *testing.B) {
						var n, one int
						var cols [8]any
						dest := make([]any, len(cols))
						for i := range cols {
							dest[i] = &cols[i]
						}
						ops := [3]func(){
							func() {
								if err := select1.QueryRowContext(ctx).Scan(&one); err != nil {
									b.Fatalf("SELECT 1: %v", err)
								}
							},
							func() {
								if err := lookup.QueryRowContext(ctx, f.hash).Scan(dest...); err != nil {
									b.Fatalf("lookup: %v", err)
								}
							},
							func() { f.verify(b, ctx) },
						}
						var spent [3]time.Duration
						for b.Loop() {
							// A different op first in each iteration, so
							// that none always follows another.
							for k := range 3 {
								op := (n + k) % 3
								start := time.Now()
								ops[op]()
								spent[op] += time.Since(start)
							}
							n++
						}
						b.ReportMetric(float64(spent[0].Nanoseconds())/float64(n), "select1-ns/op")
						b.ReportMetric(float64(spent[1].Nanoseconds())/float64(n), "raw-ns/op")
						b.ReportMetric(float64(spent[2].Nanoseconds())/float64(n), "verify-ns/op")
						b.ReportMetric(float64(spent[1])/float64(spent[0]), "raw/select1")
						b.ReportMetric(float64(spent[2])/float64(spent[0]), "verify/select1")
						b.ReportMetric(float64(spent[2])/float64(spent[1]), "verify/raw")
					})
				})
			}
		})
	}
}

// BenchmarkVerifyParallel runs Verify of one valid token from 16 goroutines
// (8 per core on this 2-core machine, one per pooled connection), beside
// the prepared SELECT 1 under the same load. Round trips wait on the
// database, so more goroutines than cores keep both busy. ns/op is wall
// time per operation: the inverse of throughput.
func BenchmarkVerifyParallel(b *testing.B) {
	for _, d := range dialects {
		b.Run(d.String(), func(b *testing.B) {
			f := newVerifyFixture(b, d, 1000)
			ctx := b.Context()
			select1 := f.prepare(b, "SELECT 1")
			b.Run("op=select1-prepared", func(b *testing.B) {
				b.ReportAllocs()
				b.SetParallelism(benchPool / 2)
				b.RunParallel(func(pb *testing.PB) {
					var n int
					for pb.Next() {
						if err := select1.QueryRowContext(ctx).Scan(&n); err != nil {
							b.Errorf("SELECT 1: %v", err)
							return
						}
					}
				})
			})
			b.Run("op=verify", func(b *testing.B) {
				b.ReportAllocs()
				b.SetParallelism(benchPool / 2)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if tok, err := f.iss.Verify(ctx, f.tok.AccountID, f.secret); err != nil || tok.ID != f.tok.ID {
							b.Errorf("Verify of the issued token: %v", err)
							return
						}
					}
				})
			})
		})
	}
}

// BenchmarkIssue measures Issue into a store that starts with 10,000 tokens
// and grows by every iteration, over 1,000 accounts, beside its floor: the
// store's INSERT, prepared, with values made beforehand. SQLite does not
// sync each commit in WAL with synchronous=NORMAL; PostgreSQL and MariaDB
// (as configured here: synchronous_commit=on, innodb_flush_log_at_trx_commit=1)
// do, so their figures include a flush of the log to disk.
func BenchmarkIssue(b *testing.B) {
	for _, d := range dialects {
		b.Run(d.String(), func(b *testing.B) {
			s := newBenchStore(b, d)
			s.fill(b, 10_000)
			ctx := b.Context()
			insert := s.prepare(b, peek.Query(s.store, "create"))
			b.Run("op=insert-raw", func(b *testing.B) {
				b.ReportAllocs()
				// A creation time in the form the store writes it.
				var created any = time.Now().UTC()
				switch d {
				case sqlstore.SQLite:
					created = time.Now().UnixMicro()
				case sqlstore.MySQL:
					created = time.Now().UTC().Format("2006-01-02 15:04:05.999999")
				}
				i := 0
				for b.Loop() {
					var h [32]byte
					rand.Read(h[:])
					_, err := insert.ExecContext(ctx, h[:], uuid.Must(uuid.NewV7()).String(), benchAccountName(i),
						"member", "bench", "tokens:read", created, nil, nil, false, "Ab12", "", nil)
					if err != nil {
						b.Fatalf("insert: %v", err)
					}
					i++
				}
			})
			b.Run("op=issue", func(b *testing.B) {
				b.ReportAllocs()
				p := apitoken.IssueParams{MemberID: "member", Name: "bench", Scopes: []string{"tokens:read"}}
				i := 0
				for b.Loop() {
					p.AccountID = benchAccountName(i)
					if _, _, err := s.iss.Issue(ctx, p); err != nil {
						b.Fatalf("Issue: %v", err)
					}
					i++
				}
			})
			// The same with WithMaxTokensPerAccount: a lock on the account, a
			// count and the insert in one transaction. The accounts hold 100
			// tokens each, under the limit.
			limited, err := apitoken.NewIssuer(s.store, apitoken.WithMaxTokensPerAccount(1_000_000))
			if err != nil {
				b.Fatal(err)
			}
			b.Run("op=issue-limited", func(b *testing.B) {
				b.ReportAllocs()
				p := apitoken.IssueParams{MemberID: "member", Name: "bench", Scopes: []string{"tokens:read"}}
				i := 0
				for b.Loop() {
					p.AccountID = benchAccountName(i)
					if _, _, err := limited.Issue(ctx, p); err != nil {
						b.Fatalf("Issue: %v", err)
					}
					i++
				}
			})
			// 16 goroutines issuing into one account without a limit: the
			// floor of the contended limited Issue below.
			b.Run("op=issue-contended", func(b *testing.B) {
				b.ReportAllocs()
				b.SetParallelism(8) // 16 goroutines on 2 cores
				acct := "contended-plain-" + d.String()
				b.RunParallel(func(pb *testing.PB) {
					p := apitoken.IssueParams{AccountID: acct, MemberID: "member"}
					for pb.Next() {
						if _, _, err := s.iss.Issue(ctx, p); err != nil {
							b.Errorf("Issue: %v", err)
							return
						}
					}
				})
			})
			// 16 goroutines issuing into one account, the contention the
			// limit's lock serializes.
			b.Run("op=issue-limited-contended", func(b *testing.B) {
				b.ReportAllocs()
				b.SetParallelism(8) // 16 goroutines on 2 cores
				acct := "contended-" + d.String()
				b.RunParallel(func(pb *testing.PB) {
					p := apitoken.IssueParams{AccountID: acct, MemberID: "member"}
					for pb.Next() {
						if _, _, err := limited.Issue(ctx, p); err != nil {
							b.Errorf("Issue: %v", err)
							return
						}
					}
				})
			})
		})
	}
}

// BenchmarkList measures List of an account of 100 tokens in a store of
// 10,100, beside the prepared SELECT 1 and the store's list query scanned
// into the driver's own values (list-raw).
func BenchmarkList(b *testing.B) {
	const n = 100
	for _, d := range dialects {
		b.Run(d.String(), func(b *testing.B) {
			s := newBenchStore(b, d)
			s.fill(b, 10_000)
			ctx := b.Context()
			const acct = "bench-list"
			for range n {
				_, _, err := s.iss.Issue(ctx, apitoken.IssueParams{
					AccountID: acct, MemberID: "member", Name: "bench", Scopes: []string{"tokens:read", "tokens:write"},
				})
				require.NoError(b, err)
			}
			select1 := s.prepare(b, "SELECT 1")
			list := s.prepare(b, peek.Query(s.store, "list"))
			b.Run("op=select1-prepared", func(b *testing.B) { benchSelect1Prepared(b, ctx, select1) })
			b.Run("op=list-raw", func(b *testing.B) {
				b.ReportAllocs()
				var id, acctID, member, name, scopes, created, expires, used any
				for b.Loop() {
					rows, err := list.QueryContext(ctx, acct)
					if err != nil {
						b.Fatalf("list: %v", err)
					}
					got := 0
					for rows.Next() {
						if err := rows.Scan(&id, &acctID, &member, &name, &scopes, &created, &expires, &used); err != nil {
							b.Fatalf("list: %v", err)
						}
						got++
					}
					if err := rows.Close(); err != nil || got != n {
						b.Fatalf("list: %d rows, %v", got, err)
					}
				}
			})
			b.Run("op=list", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					toks, err := s.iss.List(ctx, acct)
					if err != nil || len(toks) != n {
						b.Fatalf("List: %d tokens, %v", len(toks), err)
					}
				}
			})
		})
	}
}

// benchAccountNames are the accounts BenchmarkIssue rotates through, made
// once so that the benchmark does not measure strconv.
var benchAccountNames = func() []string {
	a := make([]string, 1000)
	for i := range a {
		a[i] = "acct-" + strconv.Itoa(i)
	}
	return a
}()

func benchAccountName(i int) string { return benchAccountNames[i%len(benchAccountNames)] }
