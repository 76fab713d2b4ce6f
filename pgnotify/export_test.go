package pgnotify

import "time"

// OnListen makes b call f with the backend's process id each time Subscribe
// has run LISTEN, before its deliver(nil): the tests terminate that backend.
// Call it before Subscribe.
func OnListen(b *Bus, f func(pid uint32)) { b.onListen = f }

// SetIdleCheck shortens the time after which Subscribe pings an idle
// connection, and how long it waits for the answer. Call it before
// Subscribe.
func SetIdleCheck(b *Bus, idle, pingTimeout time.Duration) {
	b.idle, b.pingTimeout = idle, pingTimeout
}
