package dbtest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
	"github.com/apitoken-go/apitoken/sqlstore"
	"github.com/apitoken-go/apitoken/storetest"
)

func TestNewRefusesBadInput(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			t.Run("nok, nil db", func(t *testing.T) {
				s, err := sqlstore.New(nil, d)
				require.ErrorIs(t, err, apitoken.ErrInvalidInput)
				assert.Nil(t, s)
				assert.Contains(t, err.Error(), "db is nil")
			})

			db := openDB(t, d)
			t.Run("nok, nil option", func(t *testing.T) {
				// As apitoken.NewIssuer does: an error, not a panic.
				var err error
				require.NotPanics(t, func() { _, err = sqlstore.New(db, d, nil) })
				require.ErrorIs(t, err, apitoken.ErrInvalidInput)
			})
			for _, bad := range []sqlstore.Dialect{0, sqlstore.SQLite + 1, -1} {
				t.Run("nok, unknown dialect "+bad.String(), func(t *testing.T) {
					s, err := sqlstore.New(db, bad)
					require.ErrorIs(t, err, apitoken.ErrInvalidInput)
					assert.Nil(t, s)
					assert.Contains(t, err.Error(), "unknown dialect")
				})
			}

			tests := []struct{ name, prefix string }{
				{"nok, upper case", "Tokens_"},
				{"nok, starts with a digit", "1tokens_"},
				{"nok, dash", "my-app_"},
				{"nok, space", "my app_"},
				{"nok, single quote", "my'app_"},
				{"nok, double quote", `my"app_`},
				{"nok, backquote", "my`app_"},
				{"nok, semicolon", "x;drop_"},
				{"nok, 33 characters", strings.Repeat("p", 33)},
				{"nok, unicode letter", "tökens_"},
				{"nok, dot", "db.tokens_"},
				{"nok, NUL byte", "tok\x00_"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					s, err := sqlstore.New(db, d, sqlstore.WithTablePrefix(tt.prefix))
					require.ErrorIs(t, err, apitoken.ErrInvalidInput)
					assert.Nil(t, s)
					assert.Contains(t, err.Error(), "table prefix must be", "the error names the problem")
					assert.NotContains(t, err.Error(), tt.prefix, "the error does not echo the input")
				})
			}
		})
	}
}

func TestNewAcceptsPrefixes(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			db := openDB(t, d)
			tests := []struct {
				name   string
				opts   []sqlstore.Option
				prefix string // of the tables the store must create
			}{
				{"ok, default prefix", nil, "apitoken_"},
				{"ok, empty prefix", []sqlstore.Option{sqlstore.WithTablePrefix("")}, ""},
				{"ok, underscore first", []sqlstore.Option{sqlstore.WithTablePrefix("_x")}, "_x"},
				{"ok, digit inside", []sqlstore.Option{sqlstore.WithTablePrefix("t1_")}, "t1_"},
				{"ok, 32 characters", []sqlstore.Option{sqlstore.WithTablePrefix("abcdefghijklmnopqrstuvwxyz_01234")}, "abcdefghijklmnopqrstuvwxyz_01234"},
				{"ok, last option wins", []sqlstore.Option{sqlstore.WithTablePrefix("first_"), sqlstore.WithTablePrefix("second_")}, "second_"},
			}
			// All on one database: each store must keep to its own tables.
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					s, err := sqlstore.New(db, d, tt.opts...)
					require.NoError(t, err)
					t.Cleanup(func() { assert.NoError(t, s.Close()) })
					require.NoError(t, s.Migrate(t.Context()))
					tables := tableNames(t, db, d)
					assert.Contains(t, tables, tt.prefix+"tokens")
					assert.Contains(t, tables, tt.prefix+"schema_version")

					iss := issuerOn(t, s)
					acct := "acct-" + rand.Text()
					secret, tok, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: acct})
					require.NoError(t, err)
					got, err := iss.Verify(t.Context(), acct, secret)
					require.NoError(t, err)
					assert.Equal(t, tok, got)
					assert.Equal(t, 1, countRows(t, db, tt.prefix+"tokens"), "the token is in %stokens", tt.prefix)
				})
			}
			assert.NotContains(t, tableNames(t, db, d), "first_tokens", "an option overridden by a later one creates nothing")
		})
	}
}

func TestTablePrefixIsolation(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			db := openDB(t, d)
			one, err := sqlstore.New(db, d, sqlstore.WithTablePrefix("one_"))
			require.NoError(t, err)
			t.Cleanup(func() { assert.NoError(t, one.Close()) })
			two, err := sqlstore.New(db, d, sqlstore.WithTablePrefix("two_"))
			require.NoError(t, err)
			t.Cleanup(func() { assert.NoError(t, two.Close()) })
			require.NoError(t, one.Migrate(t.Context()))
			require.NoError(t, two.Migrate(t.Context()))

			tables := tableNames(t, db, d)
			for _, want := range []string{"one_tokens", "one_schema_version", "two_tokens", "two_schema_version"} {
				assert.Contains(t, tables, want)
			}
			for _, notWant := range []string{"apitoken_tokens", "apitoken_schema_version"} {
				assert.NotContains(t, tables, notWant, "a prefixed store must not create the default tables")
			}

			// The same hash key: a secret hashes the same in both.
			issOne, issTwo := issuerOn(t, one), issuerOn(t, two)
			const acct = "shared-account"
			secretOne, tokOne, err := issOne.Issue(t.Context(), apitoken.IssueParams{AccountID: acct, Name: "one"})
			require.NoError(t, err)
			secretTwo, tokTwo, err := issTwo.Issue(t.Context(), apitoken.IssueParams{AccountID: acct, Name: "two"})
			require.NoError(t, err)

			tests := []struct {
				name     string
				iss      *apitoken.Issuer
				own      apitoken.Token
				ownSec   string
				other    apitoken.Token
				otherSec string
			}{
				{"ok, one sees only its token", issOne, tokOne, secretOne, tokTwo, secretTwo},
				{"ok, two sees only its token", issTwo, tokTwo, secretTwo, tokOne, secretOne},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					got, err := tt.iss.Verify(t.Context(), acct, tt.ownSec)
					require.NoError(t, err)
					assert.Equal(t, tt.own, got)
					_, err = tt.iss.Verify(t.Context(), acct, tt.otherSec)
					assert.Equal(t, apitoken.ErrInvalidToken, err, "the other store's token must not verify")
					list, err := tt.iss.List(t.Context(), acct)
					require.NoError(t, err)
					assert.Equal(t, []apitoken.Token{tt.own}, list)
					assert.ErrorIs(t, tt.iss.Delete(t.Context(), acct, tt.other.ID), apitoken.ErrNotFound,
						"the other store's token cannot be deleted here")
				})
			}
			assert.Equal(t, 1, countRows(t, db, "one_tokens"))
			assert.Equal(t, 1, countRows(t, db, "two_tokens"))
		})
	}
}

func TestIssuerEndToEnd(t *testing.T) {
	// A clock off UTC and below the microsecond: what is stored must be
	// its UTC microsecond, read back exactly.
	start := time.Date(2026, time.March, 4, 5, 6, 7, 123456789, time.FixedZone("India", 5*3600+1800))
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			s := newStore(t, d)
			clock := newTestClock(start)
			iss := issuerOn(t, s, apitoken.WithClock(clock.Now))

			t.Run("ok, issue verify list delete", func(t *testing.T) {
				ctx := t.Context()
				const acct = "acct-e2e"
				secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{
					AccountID: acct, MemberID: "member-7", Name: "CI déploiement 🚀", Scopes: []string{"read", "write:all"},
				})
				require.NoError(t, err)
				assert.Equal(t, start.UTC().Truncate(time.Microsecond), tok.CreatedAt)

				got, err := iss.Verify(ctx, acct, secret)
				require.NoError(t, err)
				assert.Equal(t, tok, got)

				list, err := iss.List(ctx, acct)
				require.NoError(t, err)
				require.Len(t, list, 1)
				assert.Equal(t, tok, list[0], "List returns the token as Issue returned it")
				assert.Same(t, time.UTC, list[0].CreatedAt.Location(), "CreatedAt is UTC")
				assert.Zero(t, list[0].CreatedAt.Nanosecond()%1000, "CreatedAt is to the microsecond")
				assert.True(t, list[0].ExpiresAt.IsZero() && list[0].LastUsedAt.IsZero(), "zero times stay zero")

				require.NoError(t, iss.Delete(ctx, acct, tok.ID))
				_, err = iss.Verify(ctx, acct, secret)
				assert.Equal(t, apitoken.ErrInvalidToken, err)
				list, err = iss.List(ctx, acct)
				require.NoError(t, err)
				assert.Empty(t, list)
				assert.ErrorIs(t, iss.Delete(ctx, acct, tok.ID), apitoken.ErrNotFound)
			})

			t.Run("ok, latest expiry every database keeps", func(t *testing.T) {
				// MySQL's DATETIME ends with year 9999.
				clock.Set(start)
				acct := "acct-far"
				asked := time.Date(9999, time.December, 31, 23, 59, 59, 999999999, time.UTC)
				secret, tok, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: acct, ExpiresAt: asked})
				require.NoError(t, err)
				require.Equal(t, asked.Truncate(time.Microsecond), tok.ExpiresAt)
				list, err := iss.List(t.Context(), acct)
				require.NoError(t, err)
				assert.Equal(t, []apitoken.Token{tok}, list)
				got, err := iss.Verify(t.Context(), acct, secret)
				require.NoError(t, err)
				assert.Equal(t, tok, got)
			})

			t.Run("nok, expiry beyond the database's range is refused, not kept wrong", func(t *testing.T) {
				clock.Set(start)
				acct := "acct-beyond"
				// Past MySQL's year 9999, and int64 microseconds' 294246.
				for _, asked := range []time.Time{
					time.Date(10000, time.January, 1, 0, 0, 0, 0, time.UTC),
					time.Date(300000, time.January, 1, 0, 0, 0, 0, time.UTC),
				} {
					_, _, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: acct, ExpiresAt: asked})
					require.ErrorIs(t, err, apitoken.ErrInvalidInput)
					assert.Contains(t, err.Error(), "ExpiresAt")
				}
				list, err := iss.List(t.Context(), acct)
				require.NoError(t, err)
				assert.Empty(t, list, "a refused token is not stored")
			})

			t.Run("nok, the store itself refuses a time beyond its range", func(t *testing.T) {
				for _, when := range []time.Time{
					time.Date(10000, time.January, 1, 0, 0, 0, 0, time.UTC),
					time.Date(999, time.December, 31, 23, 59, 59, 0, time.UTC),
				} {
					rec := apitoken.Record{Token: apitoken.Token{ID: "out-of-range", AccountID: "acct-range", CreatedAt: start, ExpiresAt: when}}
					rand.Read(rec.Hash[:])
					require.ErrorIs(t, s.Create(t.Context(), rec), apitoken.ErrInvalidInput)
				}
				list, err := s.List(t.Context(), "acct-range")
				require.NoError(t, err)
				assert.Empty(t, list, "a refused record is not stored")
			})

			t.Run("ok, expiry", func(t *testing.T) {
				ctx := t.Context()
				const acct = "acct-expiry"
				clock.Set(start)
				_, later, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: acct, Name: "later"})
				require.NoError(t, err)
				clock.Set(start.Add(-time.Minute)) // issued before the other
				asked := start.Add(time.Hour + 789*time.Nanosecond)
				secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: acct, Name: "expiring", ExpiresAt: asked})
				require.NoError(t, err)
				expires := asked.UTC().Truncate(time.Microsecond)
				require.Equal(t, expires, tok.ExpiresAt)

				list, err := iss.List(ctx, acct)
				require.NoError(t, err)
				assert.Equal(t, []apitoken.Token{tok, later}, list, "oldest first, times exact")

				tests := []struct {
					name string
					now  time.Time
					ok   bool
				}{
					{"ok, at issue", start.Add(-time.Minute), true},
					{"ok, a microsecond before expiry", expires.Add(-time.Microsecond), true},
					{"ok, a nanosecond before expiry", expires.Add(-time.Nanosecond), true},
					{"nok, at expiry", expires, false},
					{"nok, a microsecond after expiry", expires.Add(time.Microsecond), false},
					{"nok, a year after", expires.AddDate(1, 0, 0), false},
				}
				for _, tt := range tests {
					t.Run(tt.name, func(t *testing.T) {
						clock.Set(tt.now)
						got, err := iss.Verify(ctx, acct, secret)
						if tt.ok {
							require.NoError(t, err)
							assert.Equal(t, tok, got)
						} else {
							assert.Equal(t, apitoken.ErrInvalidToken, err)
						}
					})
				}
			})
		})
	}
}

func TestAccountIDsByteExact(t *testing.T) {
	ids := []struct{ name, id string }{
		{"ok, quotes", `it's "quoted"`},
		{"ok, backslashes", `back\slash\\n\`},
		{"ok, LIKE wildcards", `100%_off_%`},
		{"ok, SQL text", `x'); DROP TABLE apitoken_tokens; --`},
		{"ok, unicode", "Ünïcødé-日本-🙂"},
		{"ok, 128 bytes of 2-byte runes", strings.Repeat("é", 64)},
		{"ok, 128 bytes of ASCII", strings.Repeat("a", 127) + "Z"},
	}
	// Near misses of a stored id that a case- or accent-insensitive or
	// padding collation (MySQL's default) would match.
	const stored = "Résumé-Straße"
	nearMisses := []struct{ name, id string }{
		{"nok, other case", "résumé-straße"},
		{"nok, upper case", "RÉSUMÉ-STRASSE"},
		{"nok, no accents", "Resume-Straße"},
		{"nok, ss for ß", "Résumé-Strasse"},
		{"nok, decomposed accents", "Re\u0301sume\u0301-Straße"},
		{"nok, trailing space", stored + " "},
		{"nok, trailing tab", stored + "\t"},
		{"nok, prefix", "Résumé"},
		// Ids no one could have stored, which PostgreSQL refuses to compare
		// with an error: still "not found", not a system error.
		{"nok, invalid UTF-8", "R\xe9sum\xe9-Stra\xdfe"},
		{"nok, a NUL byte", stored + "\x00"},
	}
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			s := newStore(t, d)
			iss := issuerOn(t, s)
			ctx := t.Context()
			for _, tt := range ids {
				t.Run(tt.name, func(t *testing.T) {
					secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: tt.id, MemberID: tt.id, Name: tt.id})
					require.NoError(t, err)
					list, err := iss.List(ctx, tt.id)
					require.NoError(t, err)
					require.Equal(t, []apitoken.Token{tok}, list)
					assert.Equal(t, tt.id, list[0].AccountID, "byte for byte")
					got, err := iss.Verify(ctx, tt.id, secret)
					require.NoError(t, err)
					assert.Equal(t, tok, got)
				})
			}

			secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: stored})
			require.NoError(t, err)
			for _, tt := range nearMisses {
				t.Run(tt.name, func(t *testing.T) {
					_, err := iss.Verify(ctx, tt.id, secret)
					assert.Equal(t, apitoken.ErrInvalidToken, err)
					// The store itself, below the Issuer's checks of the id:
					// its comparisons are the database's.
					list, err := s.List(ctx, tt.id)
					require.NoError(t, err)
					assert.Empty(t, list, "another account's tokens must not be listed")
					assert.ErrorIs(t, s.Delete(ctx, tt.id, tok.ID), apitoken.ErrNotFound,
						"another account's token must not be deleted")
					assert.ErrorIs(t, s.Delete(ctx, stored, tt.id), apitoken.ErrNotFound,
						"no token has that id")
				})
			}
			got, err := iss.Verify(ctx, stored, secret)
			require.NoError(t, err, "the near misses deleted nothing")
			assert.Equal(t, tok, got)
		})
	}
}

// TestLimitAnyUTF8AccountID issues tokens under WithMaxTokensPerAccount
// for account ids that hold 4-byte UTF-8 characters, which IssueParams
// allows: MySQL's account lock must take them (it failed with error 1270,
// an illegal mix of collations), and the limit must still hold per account.
func TestLimitAnyUTF8AccountID(t *testing.T) {
	ids := []struct{ name, id string }{
		{"ok, an emoji", "acct-🙂"},
		{"ok, CJK Extension B", "𠀀𠮷𡈽"},
		{"ok, only 4-byte characters, 128 bytes", strings.Repeat("𝄞", 32)},
		{"ok, 4-byte characters beside 3- and 2-byte ones", "é-日本-🙂-𠮷"},
		{"ok, a near twin of the CJK one", "𠀀𠮷𡈽x"},
	}
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			iss := issuerOn(t, newStore(t, d), apitoken.WithMaxTokensPerAccount(2))
			ctx := t.Context()
			for _, tt := range ids {
				t.Run(tt.name, func(t *testing.T) {
					for range 2 {
						secret, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: tt.id})
						require.NoError(t, err, "an account id of valid UTF-8 must get a token")
						_, err = iss.Verify(ctx, tt.id, secret)
						require.NoError(t, err)
					}
					_, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: tt.id})
					require.ErrorIs(t, err, apitoken.ErrLimitReached, "the limit holds for this account")
					list, err := iss.List(ctx, tt.id)
					require.NoError(t, err)
					assert.Len(t, list, 2)
				})
			}
		})
	}
}

// TestFailuresAreSystemErrors checks that a store that cannot answer says
// so: never "not found", "duplicate" or "invalid token", which would turn an
// outage into a refusal, and never with the secret or the account id in the
// error.
func TestFailuresAreSystemErrors(t *testing.T) {
	tests := []struct {
		name string
		// setup returns a failing store, the account and a well-formed
		// secret to try it with, and the context to call it with.
		setup func(t *testing.T, d sqlstore.Dialect) (s *sqlstore.Store, acct, secret string, ctx context.Context)
	}{
		{"nok, database closed", func(t *testing.T, d sqlstore.Dialect) (*sqlstore.Store, string, string, context.Context) {
			db := openDB(t, d)
			s, err := sqlstore.New(db, d)
			require.NoError(t, err)
			require.NoError(t, s.Migrate(t.Context()))
			acct, secret := issueOne(t, s)
			require.NoError(t, db.Close())
			return s, acct, secret, t.Context()
		}},
		{"nok, not migrated", func(t *testing.T, d sqlstore.Dialect) (*sqlstore.Store, string, string, context.Context) {
			s, err := sqlstore.New(openDB(t, d), d)
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })
			// A well-formed secret the store cannot hold.
			acct, secret := issueOne(t, memstore.New())
			return s, acct, secret, t.Context()
		}},
		{"nok, context cancelled", func(t *testing.T, d sqlstore.Dialect) (*sqlstore.Store, string, string, context.Context) {
			s := newStore(t, d)
			acct, secret := issueOne(t, s)
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			return s, acct, secret, ctx
		}},
		{"nok, deadline exceeded", func(t *testing.T, d sqlstore.Dialect) (*sqlstore.Store, string, string, context.Context) {
			s := newStore(t, d)
			acct, secret := issueOne(t, s)
			ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
			t.Cleanup(cancel)
			return s, acct, secret, ctx
		}},
		{"nok, store closed", func(t *testing.T, d sqlstore.Dialect) (*sqlstore.Store, string, string, context.Context) {
			s := newStore(t, d)
			acct, secret := issueOne(t, s)
			require.NoError(t, s.Close())
			return s, acct, secret, t.Context()
		}},
	}
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					s, acct, secret, ctx := tt.setup(t, d)
					iss := issuerOn(t, s)
					// noLeak checks err is a system error that shows neither
					// the secret nor the account id.
					noLeak := func(t *testing.T, op string, err error) {
						t.Helper()
						requireOutage(t, op, err)
						assert.NotContains(t, err.Error(), secret, "%s: the error must not show the secret", op)
						assert.NotContains(t, err.Error(), acct, "%s: the error must not show the account id", op)
					}

					t.Run("store", func(t *testing.T) {
						var h apitoken.Hash
						rand.Read(h[:])
						_, err := s.Lookup(ctx, h)
						noLeak(t, "Lookup", err)
						_, err = s.List(ctx, acct)
						noLeak(t, "List", err)
						noLeak(t, "Create", s.Create(ctx, apitoken.Record{Hash: h, Token: apitoken.Token{
							ID: "new-id", AccountID: acct, CreatedAt: time.Now().UTC().Truncate(time.Microsecond),
						}}))
						noLeak(t, "Delete of an unknown id", s.Delete(ctx, acct, "no-such-id"))
					})

					t.Run("issuer", func(t *testing.T) {
						_, err := iss.Verify(ctx, acct, secret)
						noLeak(t, "Verify", err)
						_, _, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: acct})
						noLeak(t, "Issue", err)
						_, err = iss.List(ctx, acct)
						noLeak(t, "List", err)
						noLeak(t, "Delete", iss.Delete(ctx, acct, "no-such-id"))
					})

					request := func() *http.Request {
						r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
						r.Header.Set("Authorization", "Bearer "+secret)
						r.Header.Set("X-Account-ID", acct)
						return r
					}
					t.Run("middleware", func(t *testing.T) {
						called := false
						next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true })
						w := httptest.NewRecorder()
						iss.Middleware(next).ServeHTTP(w, request())
						assert.Equal(t, http.StatusServiceUnavailable, w.Code)
						assert.False(t, called, "the handler must not run")
						assert.NotContains(t, w.Body.String(), secret)
						assert.NotContains(t, w.Body.String(), acct)
					})

					t.Run("middleware log", func(t *testing.T) {
						var logged bytes.Buffer
						mw, err := iss.NewMiddleware(apitoken.MiddlewareConfig{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
						require.NoError(t, err)
						called := false
						w := httptest.NewRecorder()
						mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true })).ServeHTTP(w, request())
						assert.Equal(t, http.StatusServiceUnavailable, w.Code)
						assert.False(t, called, "the handler must not run")
						assert.Contains(t, logged.String(), "sqlstore: lookup", "the failure is logged")
						assert.NotContains(t, logged.String(), secret)
						assert.NotContains(t, logged.String(), acct)
					})
				})
			}
		})
	}
}

// slowInsertTrigger makes each insert into apitoken_tokens take 300 ms on
// the server.
var slowInsertTrigger = map[sqlstore.Dialect][]string{
	sqlstore.Postgres: {
		"CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN PERFORM pg_sleep(0.3); RETURN NEW; END'",
		"CREATE TRIGGER slow_insert AFTER INSERT ON apitoken_tokens FOR EACH ROW EXECUTE FUNCTION slow_insert()",
	},
	sqlstore.MySQL: {
		"CREATE TRIGGER slow_insert AFTER INSERT ON apitoken_tokens FOR EACH ROW SET @slept = SLEEP(0.3)",
	},
}

func TestFailedIssueLeavesNoRow(t *testing.T) {
	type failCase struct {
		name string
		// fail returns the store and context that make Issue fail.
		fail func(t *testing.T, db *sql.DB, s *sqlstore.Store) (apitoken.Store, context.Context)
		// settle is how long the server may still be at work after Issue
		// returned: a row it committed meanwhile would show.
		settle time.Duration
	}
	tests := []failCase{
		{"nok, context cancelled", func(t *testing.T, db *sql.DB, s *sqlstore.Store) (apitoken.Store, context.Context) {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			return s, ctx
		}, 0},
		{"nok, statements closed", func(t *testing.T, db *sql.DB, s *sqlstore.Store) (apitoken.Store, context.Context) {
			require.NoError(t, s.Close())
			return s, t.Context()
		}, 0},
		{"nok, transaction rolled back", func(t *testing.T, db *sql.DB, s *sqlstore.Store) (apitoken.Store, context.Context) {
			tx := beginTx(t, db)
			require.NoError(t, tx.Rollback())
			return s.WithTx(tx), t.Context()
		}, 0},
	}
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			db := openDB(t, d)
			tests := tests
			if slow := slowInsertTrigger[d]; slow != nil {
				// The deadline passes while the server runs the insert:
				// the driver gives up, and the server must not commit.
				tests = append(tests, failCase{"nok, deadline passes during the insert", func(t *testing.T, db *sql.DB, s *sqlstore.Store) (apitoken.Store, context.Context) {
					for _, stmt := range slow {
						_, err := db.ExecContext(t.Context(), stmt)
						require.NoError(t, err)
					}
					ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
					t.Cleanup(cancel)
					return s, ctx
				}, 400 * time.Millisecond})
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					s, err := sqlstore.New(db, d)
					require.NoError(t, err)
					t.Cleanup(func() { s.Close() })
					require.NoError(t, s.Migrate(t.Context()))
					acct := "acct-" + rand.Text()

					failing, ctx := tt.fail(t, db, s)
					secret, tok, err := issuerOn(t, failing).Issue(ctx, apitoken.IssueParams{AccountID: acct})
					requireOutage(t, "Issue", err)
					assert.Empty(t, secret, "no secret for a token that was not stored")
					assert.Zero(t, tok)
					time.Sleep(tt.settle)

					// Through another store on the same database, with a live
					// context.
					other, err := sqlstore.New(db, d)
					require.NoError(t, err)
					t.Cleanup(func() { other.Close() })
					list, err := other.List(t.Context(), acct)
					require.NoError(t, err)
					assert.Empty(t, list)
				})
			}
			assert.Zero(t, countRows(t, db, "apitoken_tokens"))
		})
	}
}

func TestWithTx(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			db := openDB(t, d)
			s, err := sqlstore.New(db, d)
			require.NoError(t, err)
			t.Cleanup(func() { assert.NoError(t, s.Close()) })
			require.NoError(t, s.Migrate(t.Context()))
			plain := issuerOn(t, s)

			t.Run("nok, issued then rolled back", func(t *testing.T) {
				ctx := t.Context()
				acct := "acct-" + rand.Text()
				tx := beginTx(t, db)
				inTx := issuerOn(t, s.WithTx(tx))
				secret, tok, err := inTx.Issue(ctx, apitoken.IssueParams{AccountID: acct})
				require.NoError(t, err)
				got, err := inTx.Verify(ctx, acct, secret)
				require.NoError(t, err, "the transaction sees its own token")
				assert.Equal(t, tok, got)
				_, err = plain.Verify(ctx, acct, secret)
				assert.Equal(t, apitoken.ErrInvalidToken, err, "an uncommitted token must not verify outside its transaction")

				require.NoError(t, tx.Rollback())
				_, err = plain.Verify(ctx, acct, secret)
				assert.Equal(t, apitoken.ErrInvalidToken, err)
				list, err := plain.List(ctx, acct)
				require.NoError(t, err)
				assert.Empty(t, list)
			})

			t.Run("ok, issued then committed", func(t *testing.T) {
				ctx := t.Context()
				acct := "acct-" + rand.Text()
				tx := beginTx(t, db)
				txStore := s.WithTx(tx)
				secret, tok, err := issuerOn(t, txStore).Issue(ctx, apitoken.IssueParams{AccountID: acct, Scopes: []string{"a", "b"}})
				require.NoError(t, err)
				require.NoError(t, txStore.Close(), "a transaction's store has nothing to close")
				require.NoError(t, tx.Commit())

				got, err := plain.Verify(ctx, acct, secret)
				require.NoError(t, err)
				assert.Equal(t, tok, got)
				list, err := plain.List(ctx, acct)
				require.NoError(t, err)
				assert.Equal(t, []apitoken.Token{tok}, list)
			})

			t.Run("ok, delete rolled back keeps the token", func(t *testing.T) {
				ctx := t.Context()
				acct := "acct-" + rand.Text()
				secret, tok, err := plain.Issue(ctx, apitoken.IssueParams{AccountID: acct})
				require.NoError(t, err)
				tx := beginTx(t, db)
				require.NoError(t, issuerOn(t, s.WithTx(tx)).Delete(ctx, acct, tok.ID))
				require.NoError(t, tx.Rollback())
				got, err := plain.Verify(ctx, acct, secret)
				require.NoError(t, err)
				assert.Equal(t, tok, got)
			})

			t.Run("ok, on a *sql.Conn", func(t *testing.T) {
				ctx := t.Context()
				acct := "acct-" + rand.Text()
				conn, err := db.Conn(ctx)
				require.NoError(t, err)
				secret, tok, err := issuerOn(t, s.WithTx(conn)).Issue(ctx, apitoken.IssueParams{AccountID: acct})
				require.NoError(t, err)
				require.NoError(t, conn.Close())
				got, err := plain.Verify(ctx, acct, secret)
				require.NoError(t, err)
				assert.Equal(t, tok, got)
			})
		})
	}
}

func TestWithTxConformance(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) apitoken.Store {
				db := openDB(t, d)
				s, err := sqlstore.New(db, d)
				require.NoError(t, err)
				t.Cleanup(func() { assert.NoError(t, s.Close()) })
				require.NoError(t, s.Migrate(t.Context()))
				// The *sql.DB as the DBTX: statements run unprepared.
				return s.WithTx(db)
			})
		})
	}
}

// TestMySQLTimeSettings checks that times round-trip exactly whatever the
// DSN's parseTime and loc, which the store keeps out of its way by writing
// and reading times as UTC text; a zone with daylight saving would shift a
// wall clock in its spring-forward gap.
func TestMySQLTimeSettings(t *testing.T) {
	india := time.FixedZone("India", 5*3600+1800)
	newYork, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	start := time.Date(2026, time.December, 31, 23, 59, 59, 999999999, time.UTC)
	times := []struct {
		name string
		now  time.Time
	}{
		{"ok, last microsecond of a year", start},
		{"ok, whole second", start.Truncate(time.Second)},
		{"ok, one microsecond", start.Truncate(time.Second).Add(time.Microsecond)},
		{"ok, off UTC", time.Date(2026, time.June, 1, 2, 3, 4, 500000000, time.FixedZone("", -7*3600))},
		{"ok, a wall clock in New York's spring-forward gap", time.Date(2026, time.March, 8, 2, 30, 0, 654321000, time.UTC)},
	}
	settings := []struct {
		name string
		edit func(*mysql.Config)
	}{
		{"parseTime=false", func(cfg *mysql.Config) { cfg.ParseTime = false }},
		{"parseTime=false loc=India", func(cfg *mysql.Config) { cfg.ParseTime, cfg.Loc = false, india }},
		{"parseTime=true loc=India", func(cfg *mysql.Config) { cfg.ParseTime, cfg.Loc = true, india }},
		{"parseTime=true loc=America/New_York", func(cfg *mysql.Config) { cfg.ParseTime, cfg.Loc = true, newYork }},
	}
	for _, set := range settings {
		t.Run(set.name, func(t *testing.T) {
			db := sharedDB(t, sqlstore.MySQL, set.edit)()
			s, err := sqlstore.New(db, sqlstore.MySQL)
			require.NoError(t, err)
			t.Cleanup(func() { assert.NoError(t, s.Close()) })
			require.NoError(t, s.Migrate(t.Context()))
			clock := newTestClock(start)
			iss := issuerOn(t, s, apitoken.WithClock(clock.Now))
			for _, tt := range times {
				t.Run(tt.name, func(t *testing.T) {
					clock.Set(tt.now)
					acct := "acct-" + rand.Text()
					secret, tok, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: acct, ExpiresAt: tt.now.Add(time.Hour)})
					require.NoError(t, err)
					list, err := iss.List(t.Context(), acct)
					require.NoError(t, err)
					assert.Equal(t, []apitoken.Token{tok}, list)
					got, err := iss.Verify(t.Context(), acct, secret)
					require.NoError(t, err)
					assert.Equal(t, tok, got)
					clock.Set(tok.ExpiresAt)
					_, err = iss.Verify(t.Context(), acct, secret)
					assert.Equal(t, apitoken.ErrInvalidToken, err, "the token must expire at its ExpiresAt")
				})
			}
		})
	}
	t.Run("parseTime=false conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) apitoken.Store {
			db := sharedDB(t, sqlstore.MySQL, settings[0].edit)()
			s, err := sqlstore.New(db, sqlstore.MySQL)
			require.NoError(t, err)
			t.Cleanup(func() { assert.NoError(t, s.Close()) })
			require.NoError(t, s.Migrate(t.Context()))
			return s
		})
	})
}

// issuerOn returns an Issuer over s with opts, and last use off: the tests
// that use it compare tokens right after a Verify, whose background write
// would change LastUsedAt meanwhile. TestLoad and TestLastUse run with it on.
func issuerOn(t *testing.T, s apitoken.Store, opts ...apitoken.Option) *apitoken.Issuer {
	t.Helper()
	iss, err := apitoken.NewIssuer(s, append([]apitoken.Option{apitoken.WithLastUseInterval(0)}, opts...)...)
	require.NoError(t, err)
	return iss
}

// issueOne issues a token in s for a new account, verifies and lists it (so
// that a Store has prepared those statements), and returns the account and
// the secret.
func issueOne(t *testing.T, s apitoken.Store) (acct, secret string) {
	t.Helper()
	acct = "acct-" + rand.Text()
	iss := issuerOn(t, s)
	secret, _, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: acct})
	require.NoError(t, err)
	_, err = iss.Verify(t.Context(), acct, secret)
	require.NoError(t, err)
	_, err = iss.List(t.Context(), acct)
	require.NoError(t, err)
	return acct, secret
}

// requireOutage checks that err is an error, and not one that means an
// answer about a token: a failure must not read as a refusal.
func requireOutage(t *testing.T, op string, err error) {
	t.Helper()
	require.Error(t, err, "%s must fail", op)
	for _, answer := range []error{apitoken.ErrNotFound, apitoken.ErrDuplicate, apitoken.ErrInvalidToken, apitoken.ErrInvalidInput} {
		assert.NotErrorIs(t, err, answer, "%s: a failure must be a system error", op)
	}
}

// beginTx begins a transaction on db, rolled back at the end of the test if
// still open.
func beginTx(t *testing.T, db *sql.DB) *sql.Tx {
	t.Helper()
	tx, err := db.BeginTx(t.Context(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback() })
	return tx
}

// testClock is a settable clock for apitoken.WithClock.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock(t time.Time) *testClock { return &testClock{now: t} }

// Now returns the time last set.
func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set sets the time Now returns.
func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// tableNames returns the names of the tables in db's current schema or
// database.
func tableNames(t *testing.T, db *sql.DB, d sqlstore.Dialect) []string {
	t.Helper()
	query := map[sqlstore.Dialect]string{
		sqlstore.SQLite:   "SELECT name FROM sqlite_master WHERE type = 'table'",
		sqlstore.Postgres: "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()",
		sqlstore.MySQL:    "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()",
	}[d]
	rows, err := db.QueryContext(t.Context(), query)
	require.NoError(t, err)
	defer rows.Close()
	var names []string
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		names = append(names, name)
	}
	require.NoError(t, rows.Err())
	return names
}

// countRows returns the number of rows in table.
func countRows(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM "+table).Scan(&n))
	return n
}

// TestLifecycle runs Rotate, DeleteAll and Prune through the Issuer on each
// database: the capabilities sqlstore adds beyond the Store interface.
func TestLifecycle(t *testing.T) {
	start := time.Date(2026, time.November, 27, 12, 0, 0, 0, time.UTC)
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			ctx := t.Context()
			clock := newTestClock(start)
			iss := issuerOn(t, newStore(t, d), apitoken.WithClock(clock.Now))
			oldSecret, old, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme", Name: "deploy", ExpiresAt: start.Add(24 * time.Hour)})
			require.NoError(t, err)
			_, otherTok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "other"})
			require.NoError(t, err)

			secret, tok, err := iss.Rotate(ctx, "acme", old.ID, time.Hour)
			require.NoError(t, err)
			list, err := iss.List(ctx, "acme")
			require.NoError(t, err)
			old.ExpiresAt = start.Add(time.Hour)
			assert.Equal(t, []apitoken.Token{old, tok}, list, "the old token lives for the grace")
			clock.Set(start.Add(time.Hour))
			_, err = iss.Verify(ctx, "acme", oldSecret)
			assert.Equal(t, apitoken.ErrInvalidToken, err)
			_, err = iss.Verify(ctx, "acme", secret)
			require.NoError(t, err)

			n, err := iss.Prune(ctx, clock.Now())
			require.NoError(t, err)
			assert.Equal(t, 1, n, "the old token, expired")
			n, err = iss.DeleteAll(ctx, "acme")
			require.NoError(t, err)
			assert.Equal(t, 1, n, "the successor")
			list, err = iss.List(ctx, "acme")
			require.NoError(t, err)
			assert.Empty(t, list)
			list, err = iss.List(ctx, "other")
			require.NoError(t, err)
			assert.Equal(t, []apitoken.Token{otherTok}, list, "other accounts untouched")

			// Concurrent Rotates with graces keep the shortest: the store's
			// compare-and-set of the expiry.
			_, raced, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "race"})
			require.NoError(t, err)
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Go(func() {
					_, _, err := iss.Rotate(ctx, "race", raced.ID, time.Duration(8-i)*time.Hour)
					assert.NoError(t, err)
				})
			}
			wg.Wait()
			list, err = iss.List(ctx, "race")
			require.NoError(t, err)
			require.Len(t, list, 9, "the old token and 8 successors")
			assert.Equal(t, clock.Now().Add(time.Hour), list[0].ExpiresAt, "a longer grace never overwrites a shorter one")
		})
	}
}

// TestMaxTokensPerAccount races 20 Issues for a limit of 5 on each
// database, each from its own pool as from its own process: exactly 5 get
// a token.
func TestMaxTokensPerAccount(t *testing.T) {
	const limit, racers = 5, 20
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			open := sharedDB(t, d, nil)
			issuers := make([]*apitoken.Issuer, racers)
			for i := range issuers {
				s, err := sqlstore.New(open(), d)
				require.NoError(t, err)
				t.Cleanup(func() { s.Close() })
				if i == 0 {
					require.NoError(t, s.Migrate(t.Context()))
				}
				issuers[i] = issuerOn(t, s, apitoken.WithMaxTokensPerAccount(limit))
			}
			errs := make([]error, racers)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i, iss := range issuers {
				wg.Go(func() {
					<-start
					_, _, errs[i] = iss.Issue(t.Context(), apitoken.IssueParams{AccountID: "acme"})
				})
			}
			close(start)
			wg.Wait()
			won := 0
			for i, err := range errs {
				if err == nil {
					won++
				} else {
					assert.ErrorIs(t, err, apitoken.ErrLimitReached, "Issue %d", i)
				}
			}
			assert.Equal(t, limit, won)
			list, err := issuers[0].List(t.Context(), "acme")
			require.NoError(t, err)
			assert.Len(t, list, limit)
		})
	}
}

// TestMaxTokensInRepeatableRead checks that a limit inside the caller's
// PostgreSQL transaction is refused under repeatable read, where the count
// would miss what the lock's last holder committed, and works under read
// committed.
func TestMaxTokensInRepeatableRead(t *testing.T) {
	db := openDB(t, sqlstore.Postgres)
	s, err := sqlstore.New(db, sqlstore.Postgres)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	require.NoError(t, s.Migrate(t.Context()))
	for _, tt := range []struct {
		level   sql.IsolationLevel
		wantErr error
	}{
		{sql.LevelRepeatableRead, errors.ErrUnsupported},
		{sql.LevelReadCommitted, nil},
		{sql.LevelSerializable, nil},
	} {
		t.Run(tt.level.String(), func(t *testing.T) {
			tx, err := db.BeginTx(t.Context(), &sql.TxOptions{Isolation: tt.level})
			require.NoError(t, err)
			defer tx.Rollback()
			iss := issuerOn(t, s.WithTx(tx), apitoken.WithMaxTokensPerAccount(5))
			_, _, err = iss.Issue(t.Context(), apitoken.IssueParams{AccountID: "acme"})
			if tt.wantErr == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tt.wantErr)
			}
		})
	}
}

// TestPreviousHashKeys moves a token to a new application key on its first
// use, on each database.
func TestPreviousHashKeys(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			ctx := t.Context()
			s := newStore(t, d)
			secret, tok, err := issuerOn(t, s, apitoken.WithHashKey(oldKey)).Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
			require.NoError(t, err)
			onlyNew := issuerOn(t, s, apitoken.WithHashKey(newKey))
			_, err = onlyNew.Verify(ctx, "acme", secret)
			require.Equal(t, apitoken.ErrInvalidToken, err, "not moved yet")

			got, err := issuerOn(t, s, apitoken.WithHashKey(newKey), apitoken.WithPreviousHashKeys(oldKey)).Verify(ctx, "acme", secret)
			require.NoError(t, err)
			assert.Equal(t, tok, got)
			got, err = onlyNew.Verify(ctx, "acme", secret)
			require.NoError(t, err, "moved to the new key by its first use")
			assert.Equal(t, tok, got)
		})
	}
}

// TestLastUse records last uses by default on each database: at most one
// write per token per interval, written by Close at the latest.
func TestLastUse(t *testing.T) {
	start := time.Date(2026, time.November, 27, 12, 0, 0, 123456000, time.UTC)
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			ctx := t.Context()
			s := newStore(t, d)
			clock := newTestClock(start)
			iss, err := apitoken.NewIssuer(s, apitoken.WithClock(clock.Now)) // last use on by default
			require.NoError(t, err)
			secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
			require.NoError(t, err)
			_, unused, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
			require.NoError(t, err)

			clock.Set(start.Add(time.Minute))
			_, err = iss.Verify(ctx, "acme", secret)
			require.NoError(t, err)
			clock.Set(start.Add(2 * time.Minute)) // within the interval: not written
			_, err = iss.Verify(ctx, "acme", secret)
			require.NoError(t, err)
			_, err = iss.Verify(ctx, "other", secret)
			require.Equal(t, apitoken.ErrInvalidToken, err)
			require.NoError(t, iss.Close())

			list, err := s.List(ctx, "acme")
			require.NoError(t, err)
			require.Len(t, list, 2)
			assert.Equal(t, tok.ID, list[0].ID)
			assert.Equal(t, start.Add(time.Minute), list[0].LastUsedAt, "the first use of the interval, to the microsecond")
			assert.Equal(t, unused.ID, list[1].ID)
			assert.Zero(t, list[1].LastUsedAt, "a token never used has no last use")
		})
	}
}
