package natsbus_test

import (
	"bytes"
	"net"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/internal/logcheck"
	"github.com/apitoken-go/apitoken/memstore"
	"github.com/apitoken-go/apitoken/natsbus"
)

// natsServer is where nats-server is installed when it is not on the PATH.
const natsServer = "/usr/sbin/nats-server"

// server is a NATS server of the test's own, on a free port, that the test
// kills and starts again; the test's cleanup kills it.
type server struct {
	t    *testing.T
	bin  string
	url  string // with the credentials, if any
	addr string
	args []string
	cmd  *exec.Cmd
	out  bytes.Buffer
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	require.NoError(t, ln.Close())
	return port
}

// startServer starts nats-server on a free loopback port, with a user of
// that password unless it is "", and extra arguments, or skips the test if
// nats-server is not installed.
func startServer(t *testing.T, password string, extra ...string) *server {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if bin, err = exec.LookPath(natsServer); err != nil {
			t.Skipf("nats-server is not installed (neither on the PATH nor at %s): this test starts servers of its own", natsServer)
		}
	}
	port := freePort(t)
	s := &server{t: t, bin: bin, addr: net.JoinHostPort("127.0.0.1", port)}
	s.args = append([]string{"-a", "127.0.0.1", "-p", port}, extra...)
	s.url = "nats://" + s.addr
	if password != "" {
		s.args = append(s.args, "--user", "natsbus", "--pass", password)
		s.url = "nats://natsbus:" + password + "@" + s.addr
	}
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("nats-server output:\n%s", s.out.String())
		}
	})
	s.start()
	return s
}

// start runs the server and waits until it accepts connections.
func (s *server) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, s.args...)
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	require.NoError(s.t, s.cmd.Start())
	deadline := time.Now().Add(wait)
	for {
		nc, err := nats.Connect(s.url, nats.Timeout(time.Second))
		if err == nil {
			nc.Close()
			return
		}
		require.True(s.t, time.Now().Before(deadline), "nats-server on %s does not answer after %v", s.addr, wait)
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

// NATS killed and started again on the same port: while it is down, the
// caches keep serving and nothing is delivered, Publish fails but Delete
// does not; once it is back, each Bus delivers nil (what was published
// meanwhile may be lost), which empties the caches, and deletes propagate
// again. No log holds the password.
func TestServerKilledAndRestarted(t *testing.T) {
	const password = "s3cretPW-natsbus-outage"
	srv := startServer(t, password)
	logger, logs := capture()
	ncObserved := connect(t, srv.url)
	subj := natsbus.WithSubject(newSubject(t))
	observed := busOn(t, ncObserved, subj, natsbus.WithLogger(logger))
	s := subscribe(t, observed)
	s.expectNil(t, "listening")

	store := memstore.New()
	a := newInstance(t, store, busOn(t, connect(t, srv.url), subj, natsbus.WithLogger(logger)), apitoken.WithLogger(logger))
	b := newInstance(t, store, busOn(t, connect(t, srv.url), subj, natsbus.WithLogger(logger)))
	const account = "acct_outage"
	secret1, tok1 := issue(t, a, account, a, b)
	secret2, tok2 := issue(t, a, account, a, b)

	require.Equal(t, apitoken.BusConnected, b.Stats().Bus.State)
	srv.kill()
	require.Eventually(t, func() bool { return b.Stats().Bus.State == apitoken.BusDisconnected }, 10*time.Second, 10*time.Millisecond,
		"the lost connection shows in the Issuer's Stats (the Bus is an apitoken.ReportingBus)")
	down := time.Now()
	require.Eventually(t, func() bool { return !ncObserved.IsConnected() }, wait, time.Millisecond, "the connection must notice")
	s.expectNone(t, 300*time.Millisecond, "NATS down: the cache must keep serving, so no deliver(nil) yet")

	err := observed.Publish(t.Context(), []byte("while down"))
	require.ErrorIs(t, err, nats.ErrConnectionReconnecting, "Publish must fail while NATS is down")
	assert.Contains(t, err.Error(), "natsbus: publish")
	assert.NotContains(t, err.Error(), password)
	t.Logf("Publish while down: %v", err)

	start := time.Now()
	require.NoError(t, a.Delete(t.Context(), account, tok1.ID), "Delete must not fail because the invalidation cannot be sent")
	t.Logf("Delete while down took %v", time.Since(start))
	assert.Contains(t, logs.String(), "apitoken: cache invalidation not sent")
	_, err = a.Verify(t.Context(), account, secret1)
	require.ErrorIs(t, err, apitoken.ErrInvalidToken, "the deleting instance refuses at once")
	_, err = b.Verify(t.Context(), account, secret2)
	require.NoError(t, err, "a cached token keeps verifying while NATS is down")
	_, err = b.Verify(t.Context(), account, secret1)
	require.NoError(t, err, "the message did not go out: B's cache still holds the deleted token, until the bus is back")

	srv.start()
	t.Logf("NATS down for %v", time.Since(down))
	restarted := time.Now()
	// The nil comes once subscribed again; the message Publish left in
	// the reconnect buffer may come before or after it.
	var nilAfter time.Duration
	for seen := false; !seen || nilAfter == 0; {
		msg := s.next(t, 10*time.Second, "deliver(nil) and the buffered message after the restart")
		switch {
		case msg == nil:
			nilAfter = time.Since(restarted)
		case bytes.Equal(msg, []byte("while down")):
			seen = true
		}
	}
	t.Logf("deliver(nil) %v after the restart, and the message buffered while down delivered too", nilAfter)

	// B's Bus subscribed again too, and its deliver(nil) emptied its cache:
	// the token deleted while NATS was down is refused now.
	refusedWithin(t, b, account, secret1, 10*time.Second)
	t.Logf("B refused the token deleted during the outage %v after the restart", time.Since(restarted))

	require.Eventually(t, func() bool { return b.Stats().Bus.State == apitoken.BusConnected }, 10*time.Second, 10*time.Millisecond,
		"connected again in the Issuer's Stats")

	// And a delete after the restart propagates again.
	_, err = b.Verify(t.Context(), account, secret2)
	require.NoError(t, err, "fill B's cache again")
	require.NoError(t, a.Delete(t.Context(), account, tok2.ID))
	delay := refusedWithin(t, b, account, secret2, invalidationBound)
	t.Logf("after the restart, B refused a deleted token %v after Delete returned", delay)

	assert.Contains(t, logs.String(), "natsbus: connection lost; the connection reconnects")
	assert.NotContains(t, logs.String(), password, "no log may hold the password")
	assert.Empty(t, logcheck.Leak(logs.String()), "no log may hold a token's secret")
}
