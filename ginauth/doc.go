// Package ginauth protects Gin routes with API tokens of
// github.com/apitoken-go/apitoken.
//
// New (or Middleware, for the defaults) turns the net/http middleware of an
// apitoken.Issuer into a gin.HandlerFunc, and RequireScope does the same for
// apitoken.RequireScope. They run the core's own middleware on the request,
// so a Gin app answers every request exactly as a net/http app does: the
// same statuses (401, 400, 403, 503), WWW-Authenticate challenges and
// application/problem+json bodies, the same Optional and Skip rules, and a
// refused request never reaches the handlers after it (the Gin context is
// aborted).
//
// A verified token is in the request context, once: FromContext reads it
// from a *gin.Context, and apitoken.FromContext(c.Request.Context()) and
// apitoken.RequireScope in a net/http handler wrapped with gin.WrapH find
// it too.
//
//	r := gin.New()
//	r.Use(ginauth.Middleware(iss))
//	r.GET("/api/v1/whoami", func(c *gin.Context) {
//		tok, _ := ginauth.FromContext(c)
//		c.JSON(http.StatusOK, gin.H{"account_id": tok.AccountID})
//	})
//	r.DELETE("/api/v1/items/:id", ginauth.RequireScope("write"), deleteItem)
package ginauth
