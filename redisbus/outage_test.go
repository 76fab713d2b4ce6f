package redisbus_test

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/internal/logcheck"
	"github.com/apitoken-go/apitoken/memstore"
	"github.com/apitoken-go/apitoken/redisbus"
)

// server is a Redis server of the test's own, on a free port, that the test
// kills and starts again; the test's cleanup kills it.
type server struct {
	t        *testing.T
	addr     string
	password string
	dir      string
	cmd      *exec.Cmd
	out      bytes.Buffer
}

// startServer starts redis-server on a free loopback port, with a password
// and no persistence, or skips the test if redis-server is not installed.
func startServer(t *testing.T, password string) *server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed: this test starts servers of its own")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	s := &server{t: t, addr: addr, password: password, dir: t.TempDir()}
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("redis-server output:\n%s", s.out.String())
		}
	})
	s.start()
	return s
}

// start runs the server and waits until it answers.
func (s *server) start() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.addr)
	s.cmd = exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--requirepass", s.password)
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	require.NoError(s.t, s.cmd.Start())
	c := redis.NewClient(&redis.Options{Addr: s.addr, Password: s.password, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(wait)
	for c.Ping(context.Background()).Err() != nil {
		require.True(s.t, time.Now().Before(deadline), "redis-server on %s does not answer after %v", s.addr, wait)
		time.Sleep(10 * time.Millisecond)
	}
}

// kill kills the server with SIGKILL: no goodbye to its clients, whose
// connections the kernel closes.
func (s *server) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Redis killed and started again on the same port: while it is down, the
// caches keep serving and nothing is delivered, Publish fails but Delete
// does not; once it is back, each Bus delivers nil (what was published
// meanwhile is lost), which empties the caches, and deletes propagate again.
// No log holds the password.
func TestServerKilledAndRestarted(t *testing.T) {
	const password = "s3cretPW-redisbus-outage"
	srv := startServer(t, password)
	logger, logs := capture()
	client := func() *redis.Client {
		return newClient(t, srv.addr, func(o *redis.Options) { o.Password = password })
	}
	ch := redisbus.WithChannel(newChannel(t))
	observed := busOn(t, client(), ch, redisbus.WithLogger(logger))
	s := subscribe(t, observed)
	s.expectNil(t, "listening")

	store := memstore.New()
	a := newInstance(t, store, busOn(t, client(), ch, redisbus.WithLogger(logger)), apitoken.WithLogger(logger))
	b := newInstance(t, store, busOn(t, client(), ch, redisbus.WithLogger(logger)))
	const account = "acct_outage"
	secret1, tok1 := issue(t, a, account, a, b)
	secret2, tok2 := issue(t, a, account, a, b)

	require.Equal(t, apitoken.BusConnected, b.Stats().Bus.State)
	srv.kill()
	require.Eventually(t, func() bool { return b.Stats().Bus.State == apitoken.BusDisconnected }, 10*time.Second, 10*time.Millisecond,
		"the lost connection shows in the Issuer's Stats (the Bus is an apitoken.ReportingBus)")
	down := time.Now()
	s.expectNone(t, 300*time.Millisecond, "Redis down: the cache must keep serving, so no deliver(nil) yet")

	err := observed.Publish(t.Context(), []byte("while down"))
	require.Error(t, err, "Publish must fail while Redis is down")
	assert.Contains(t, err.Error(), "redisbus: publish")
	assert.NotContains(t, err.Error(), password)
	t.Logf("Publish while down: %v", err)

	start := time.Now()
	require.NoError(t, a.Delete(t.Context(), account, tok1.ID), "Delete must not fail because the invalidation cannot be sent")
	t.Logf("Delete while down took %v (the client's retries)", time.Since(start))
	assert.Contains(t, logs.String(), "apitoken: cache invalidation not sent")
	_, err = a.Verify(t.Context(), account, secret1)
	require.ErrorIs(t, err, apitoken.ErrInvalidToken, "the deleting instance refuses at once")
	_, err = b.Verify(t.Context(), account, secret2)
	require.NoError(t, err, "a cached token keeps verifying while Redis is down")
	_, err = b.Verify(t.Context(), account, secret1)
	require.NoError(t, err, "the message was lost: B's cache still holds the deleted token, until the bus is back")

	srv.start()
	t.Logf("Redis down for %v", time.Since(down))
	restarted := time.Now()
	msg := s.next(t, 10*time.Second, "deliver(nil) once subscribed again")
	require.Nil(t, msg, "the first delivery after the restart must be nil: messages may have been missed")
	t.Logf("deliver(nil) %v after the restart", time.Since(restarted))

	// B's Bus subscribed again too, and its deliver(nil) emptied its cache:
	// the token deleted while Redis was down is refused now.
	refusedWithin(t, b, account, secret1, 10*time.Second)
	t.Logf("B refused the token deleted during the outage %v after the restart", time.Since(restarted))

	require.NoError(t, observed.Publish(t.Context(), []byte("after")))
	s.expect(t, []byte("after"))

	require.Eventually(t, func() bool { return b.Stats().Bus.State == apitoken.BusConnected }, 10*time.Second, 10*time.Millisecond,
		"connected again in the Issuer's Stats")

	// And a delete after the restart propagates again.
	_, err = b.Verify(t.Context(), account, secret2)
	require.NoError(t, err, "fill B's cache again")
	require.NoError(t, a.Delete(t.Context(), account, tok2.ID))
	delay := refusedWithin(t, b, account, secret2, invalidationBound)
	t.Logf("after the restart, B refused a deleted token %v after Delete returned", delay)

	assert.Contains(t, logs.String(), "redisbus: connection lost; reconnecting")
	assert.NotContains(t, logs.String(), password, "no log may hold the password")
	assert.Empty(t, logcheck.Leak(logs.String()), "no log may hold a token's secret")
}
