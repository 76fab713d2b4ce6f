package natsbus

import "time"

// SetSettle shortens the delay after which Subscribe, on a server of a
// cluster, delivers nil a second time. Call it before Subscribe.
func SetSettle(b *Bus, d time.Duration) { b.settle = d }
