package ginauth

import (
	"github.com/gin-gonic/gin"

	"github.com/apitoken-go/apitoken"
)

// FromContext returns the token that New or Middleware verified for the
// request of c, and whether there is one: false when no middleware ran, when
// it let the request through without a token (Optional, Skip), or when c or
// its request is nil. It reads c.Request.Context(), where
// apitoken.FromContext finds the same token. Its Scopes are a copy.
func FromContext(c *gin.Context) (apitoken.Token, bool) {
	if c == nil || c.Request == nil {
		return apitoken.Token{}, false
	}
	return apitoken.FromContext(c.Request.Context())
}
