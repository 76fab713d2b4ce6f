package apitokenotel

import "time"

// SetNow sets the clock the Telemetry measures Verify's duration with.
func SetNow(t *Telemetry, now func() time.Time) { t.now = now }
