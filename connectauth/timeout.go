package connectauth

import (
	"math"
	"net/http"
	"time"
)

// The headers in which Connect and gRPC (and gRPC-Web) clients send their
// deadline, canonical as net/http stores them.
const (
	connectTimeoutHeader = "Connect-Timeout-Ms"
	grpcTimeoutHeader    = "Grpc-Timeout"
)

// clientTimeout returns the time the client gives the call: the shorter of
// a valid Connect-Timeout-Ms (at most 10 digits of milliseconds) and a
// valid Grpc-Timeout (at most 8 digits and a unit, H, M, S, m, u or n), and
// whether there is one. A malformed value is ignored here: the Connect
// handler refuses it, after authentication.
func clientTimeout(h http.Header) (time.Duration, bool) {
	d, ok := time.Duration(0), false
	if v := h[connectTimeoutHeader]; len(v) == 1 {
		if n, valid := digits(v[0], 10); valid {
			d, ok = time.Duration(n)*time.Millisecond, true
		}
	}
	if v := h[grpcTimeoutHeader]; len(v) == 1 && len(v[0]) >= 2 {
		unit := grpcUnit(v[0][len(v[0])-1])
		n, valid := digits(v[0][:len(v[0])-1], 8)
		if valid && unit > 0 && n <= math.MaxInt64/int64(unit) {
			if g := time.Duration(n) * unit; !ok || g < d {
				d, ok = g, true
			}
		}
	}
	return d, ok
}

// digits parses s, 1 to maxLen ASCII digits.
func digits(s string, maxLen int) (int64, bool) {
	if s == "" || len(s) > maxLen {
		return 0, false
	}
	var n int64
	for i := range len(s) {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// grpcUnit returns the unit of a Grpc-Timeout, or 0 for none.
func grpcUnit(c byte) time.Duration {
	switch c {
	case 'H':
		return time.Hour
	case 'M':
		return time.Minute
	case 'S':
		return time.Second
	case 'm':
		return time.Millisecond
	case 'u':
		return time.Microsecond
	case 'n':
		return time.Nanosecond
	}
	return 0
}
