package ginauth

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/apitoken-go/apitoken"
)

// Middleware returns a gin.HandlerFunc that authenticates each request as
// iss.Middleware does, with the default configuration: Bearer with
// X-Account-ID, or Basic. A verified request goes on to the next handlers
// with its token in the request context, where FromContext finds it; any
// other is answered with 401, 400 or 503 and the Gin context is aborted. A
// nil Issuer fails closed: every request is answered with 503.
func Middleware(iss *apitoken.Issuer) gin.HandlerFunc {
	return adapt(iss.Middleware)
}

// New returns a gin.HandlerFunc that authenticates each request as the
// net/http middleware of iss.NewMiddleware(cfg) does: its Extractor, Realm,
// ErrorHandler, Logger, Optional and Skip apply, and a refused request is
// answered as that middleware answers it and aborts the Gin context. A nil
// Issuer or a bad Realm is an error wrapping apitoken.ErrInvalidInput.
func New(iss *apitoken.Issuer, cfg apitoken.MiddlewareConfig) (gin.HandlerFunc, error) {
	mw, err := iss.NewMiddleware(cfg)
	if err != nil {
		return nil, err
	}
	return adapt(mw), nil
}

// adapt runs the net/http middleware mw on each Gin request. mw either
// answers the request itself (a refusal: the Gin context is aborted) or
// calls pass, which hands its request, maybe with a token in its context,
// back to the Gin context. The core middleware, and not a copy of it, decides
// and answers, so that the Gin and net/http answers cannot drift apart and a
// token's context keeps the configuration that RequireScope answers with.
func adapt(mw func(http.Handler) http.Handler) gin.HandlerFunc {
	h := mw(pass)
	return func(c *gin.Context) {
		b := &bridge{ResponseWriter: c.Writer, c: c}
		h.ServeHTTP(b, c.Request)
		if !b.passed {
			c.Abort()
			return
		}
		c.Next()
	}
}

// A bridge is the response writer the core middleware sees for one Gin
// request: Gin's own writer, which it writes a refusal to, and the way back
// to the Gin context for pass. The core middlewares call the next handler
// with the writer they were given.
type bridge struct {
	gin.ResponseWriter
	c      *gin.Context
	passed bool
}

// Unwrap returns Gin's writer, for http.ResponseController.
func (b *bridge) Unwrap() http.ResponseWriter { return b.ResponseWriter }

// pass is the next handler of every adapted middleware: it marks the request
// as let through and makes r, whose context may now hold a token, the Gin
// context's request. A writer that is not a bridge leaves the request
// refused: it cannot happen, and would fail closed.
var pass http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if b, ok := w.(*bridge); ok {
		b.passed = true
		b.c.Request = r
	}
})
