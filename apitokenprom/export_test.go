package apitokenprom

import "time"

// SetNow sets the clock the Collector measures Verify's duration with.
func SetNow(c *Collector, now func() time.Time) { c.now = now }
