package redisbus

import "time"

// SetIdleCheck shortens the time after which Subscribe pings a connection
// that brought nothing, and how long it waits for the answer. Call it before
// Subscribe.
func SetIdleCheck(b *Bus, idle, pingTimeout time.Duration) {
	b.idle, b.pingTimeout = idle, pingTimeout
}
