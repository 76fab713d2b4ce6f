package ginauth

import (
	"github.com/gin-gonic/gin"

	"github.com/apitoken-go/apitoken"
)

// RequireScope returns a gin.HandlerFunc that lets a request go on only when
// its verified token has every one of scopes, as apitoken.RequireScope does;
// with none listed, any verified token will do. It goes after New or
// Middleware. A token lacking a scope is answered by that middleware's
// ErrorHandler, by default with 403 and error="insufficient_scope" and the
// required scopes in the challenge; a request without a verified token
// (no middleware ran before, or an Optional one let it through without
// credentials) fails closed with 401. Either way the Gin context is aborted.
func RequireScope(scopes ...string) gin.HandlerFunc {
	return adapt(apitoken.RequireScope(scopes...))
}
