package ginauth_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/gin-gonic/gin"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/ginauth"
	"github.com/apitoken-go/apitoken/memstore"
)

// A Gin API whose routes need a verified token, and one of them the scope
// "write".
func Example() {
	iss, err := apitoken.NewIssuer(memstore.New())
	if err != nil {
		log.Fatal(err)
	}
	secret, _, err := iss.Issue(context.Background(), apitoken.IssueParams{
		AccountID: "acct_42",
		Scopes:    []string{"read"},
	})
	if err != nil {
		log.Fatal(err)
	}

	r := gin.New()
	r.Use(ginauth.Middleware(iss))
	r.GET("/api/v1/whoami", func(c *gin.Context) {
		tok, _ := ginauth.FromContext(c)
		c.JSON(http.StatusOK, gin.H{"account_id": tok.AccountID, "scopes": tok.Scopes})
	})
	r.DELETE("/api/v1/items/:id", ginauth.RequireScope("write"), func(c *gin.Context) {
		c.Status(http.StatusNoContent)
	})

	call := func(method, path string, authorize bool) {
		req := httptest.NewRequest(method, path, nil)
		if authorize {
			req.Header.Set("Authorization", "Bearer "+secret)
			req.Header.Set("X-Account-ID", "acct_42")
		}
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		fmt.Println(method, path, rec.Code)
		if ch := rec.Header().Get("WWW-Authenticate"); ch != "" {
			fmt.Println("  WWW-Authenticate:", ch)
		}
		fmt.Println(" ", rec.Body.String())
	}
	call(http.MethodGet, "/api/v1/whoami", true)
	call(http.MethodGet, "/api/v1/whoami", false)
	call(http.MethodDelete, "/api/v1/items/7", true)
	// Output:
	// GET /api/v1/whoami 200
	//   {"account_id":"acct_42","scopes":["read"]}
	// GET /api/v1/whoami 401
	//   WWW-Authenticate: Bearer realm="api"
	//   {"type":"about:blank","title":"Unauthorized","status":401,"detail":"The request carries no credentials."}
	// DELETE /api/v1/items/7 403
	//   WWW-Authenticate: Bearer realm="api", error="insufficient_scope", scope="write"
	//   {"type":"about:blank","title":"Forbidden","status":403,"detail":"The access token lacks a required scope."}
}

// New takes the options of the net/http middleware: here, a realm, and
// Optional, for a route that serves everyone and more to a caller with a
// token.
func ExampleNew() {
	iss, err := apitoken.NewIssuer(memstore.New())
	if err != nil {
		log.Fatal(err)
	}
	secret, _, err := iss.Issue(context.Background(), apitoken.IssueParams{AccountID: "acct_42"})
	if err != nil {
		log.Fatal(err)
	}
	auth, err := ginauth.New(iss, apitoken.MiddlewareConfig{Realm: "catalog", Optional: true})
	if err != nil {
		log.Fatal(err)
	}

	r := gin.New()
	r.GET("/api/v1/catalog", auth, func(c *gin.Context) {
		if tok, ok := ginauth.FromContext(c); ok {
			c.String(http.StatusOK, "prices for %s", tok.AccountID)
			return
		}
		c.String(http.StatusOK, "public prices")
	})

	for _, authz := range []string{"", "Bearer " + secret, "Bearer not-a-token"} {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/catalog", nil)
		if authz != "" {
			req.Header.Set("Authorization", authz)
			req.Header.Set("X-Account-ID", "acct_42")
		}
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		if rec.Code == http.StatusOK {
			fmt.Println(rec.Code, rec.Body.String())
		} else {
			fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"))
		}
	}
	// Output:
	// 200 public prices
	// 200 prices for acct_42
	// 401 Bearer realm="catalog", error="invalid_token"
}
