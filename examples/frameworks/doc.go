// Package frameworks shows, in its tests, that Echo and chi need no adapter
// module: both take the net/http middleware of an apitoken.Issuer as it is.
//
// Echo wraps it with echo.WrapMiddleware, and a handler reads the token from
// the request context:
//
//	e := echo.New()
//	e.Use(echo.WrapMiddleware(iss.Middleware))
//	e.GET("/api/v1/whoami", func(c echo.Context) error {
//		tok, _ := apitoken.FromContext(c.Request().Context())
//		return c.JSON(http.StatusOK, map[string]string{"account_id": tok.AccountID})
//	})
//
// chi uses it directly, and apitoken.RequireScope in a route group:
//
//	r := chi.NewRouter()
//	r.Use(iss.Middleware)
//	r.Get("/api/v1/whoami", whoami)
//	r.Group(func(r chi.Router) {
//		r.Use(apitoken.RequireScope("write"))
//		r.Delete("/api/v1/items/{id}", deleteItem)
//	})
//
// Either way every request is answered exactly as by the net/http
// middleware: 401 with a WWW-Authenticate challenge without valid
// credentials, 400 for malformed ones, 403 for a missing scope, 503 when the
// store cannot be reached, and the handler runs only with a verified token.
// Configure it with Issuer.NewMiddleware. The tests run both frameworks on
// loopback servers; the package has no other code.
package frameworks
