package dbtest_test

import (
	"bytes"
	"database/sql"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken/sqlstore"
)

// A faultProxy is a TCP proxy in front of a database server, for the tests
// of what a failing network does: it forwards both ways until told to stall
// (hold every byte, in both directions, on every connection, new ones
// included) or to lose a reply (forward a client's request that matches,
// then swallow the server's answer and cut the connection, as a failover
// or a proxy restart does after the server committed).
type faultProxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	stalled chan struct{} // closed when the proxy is not stalled; nil: not stalled
	rule    [][]byte      // the patterns a connection's requests must hold, in order, to lose its next reply
	lost    int           // replies lost so far
	conns   map[*proxyConn]struct{}
	closed  bool
}

type proxyConn struct {
	client, server net.Conn
	matched        int  // how many patterns of the rule its requests held so far
	dropReply      bool // set once it sent the request whose reply is lost
}

// newFaultProxy starts a proxy to target (host:port), closed when the test
// ends.
func newFaultProxy(tb testing.TB, target string) *faultProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	p := &faultProxy{ln: ln, target: target, conns: map[*proxyConn]struct{}{}}
	go p.accept()
	tb.Cleanup(p.close)
	return p
}

// addr is where clients connect.
func (p *faultProxy) addr() string { return p.ln.Addr().String() }

func (p *faultProxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.serve(client)
	}
}

func (p *faultProxy) serve(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	c := &proxyConn{client: client, server: server}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		client.Close()
		server.Close()
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		client.Close()
		server.Close()
	}()
	done := make(chan struct{}, 2)
	go func() { p.pump(c, client, server, true); done <- struct{}{} }()
	go func() { p.pump(c, server, client, false); done <- struct{}{} }()
	<-done // either side ended: end both
}

// pump copies from src to dst, chunk by chunk, applying the faults.
func (p *faultProxy) pump(c *proxyConn, src, dst net.Conn, fromClient bool) {
	defer func() { c.client.Close(); c.server.Close() }()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.waitUnstalled()
			p.mu.Lock()
			if fromClient {
				p.match(c, buf[:n])
			} else if c.dropReply {
				// The server answered the request: the client never hears.
				p.lost++
				p.mu.Unlock()
				return
			}
			p.mu.Unlock()
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// match advances c through the rule with a request chunk; p.mu is held.
func (p *faultProxy) match(c *proxyConn, chunk []byte) {
	if len(p.rule) == 0 || c.dropReply {
		return
	}
	if bytes.Contains(bytes.ToLower(chunk), bytes.ToLower(p.rule[c.matched])) {
		c.matched++
		if c.matched == len(p.rule) {
			c.dropReply = true
			p.rule = nil // once
		}
	}
}

// loseReplyAfter makes the proxy lose the reply to the request, on one
// connection, that holds the last of patterns after earlier requests on
// that connection held the others, in order (case-insensitive): say, an
// INSERT's parameter, then "commit". It applies once.
func (p *faultProxy) loseReplyAfter(patterns ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rule = nil
	for _, s := range patterns {
		p.rule = append(p.rule, []byte(s))
	}
	for c := range p.conns {
		c.matched = 0
	}
}

// lostReplies returns how many replies the proxy has swallowed.
func (p *faultProxy) lostReplies() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lost
}

// stall holds every byte from now on until unstall.
func (p *faultProxy) stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stalled == nil {
		p.stalled = make(chan struct{})
	}
}

// unstall lets the held bytes through.
func (p *faultProxy) unstall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stalled != nil {
		close(p.stalled)
		p.stalled = nil
	}
}

func (p *faultProxy) waitUnstalled() {
	p.mu.Lock()
	ch := p.stalled
	p.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

func (p *faultProxy) close() {
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = map[*proxyConn]struct{}{}
	if p.stalled != nil {
		close(p.stalled)
		p.stalled = nil
	}
	p.mu.Unlock()
	p.ln.Close()
	for c := range conns {
		c.client.Close()
		c.server.Close()
	}
}

// proxiedDB creates a new, empty database of dialect d (Postgres or MySQL)
// on the shared server, dropped when the test ends, and returns a handle on
// it that connects directly, one that connects through a new faultProxy,
// and the proxy.
func proxiedDB(tb testing.TB, d sqlstore.Dialect) (direct, proxied *sql.DB, p *faultProxy) {
	tb.Helper()
	switch d {
	case sqlstore.Postgres:
		dsn, schema := newPostgresSchema(tb)
		direct = openPostgres(tb, dsn, schema)
		cfg, err := pgx.ParseConfig(dsn)
		require.NoError(tb, err)
		p = newFaultProxy(tb, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
		host, port, err := net.SplitHostPort(p.addr())
		require.NoError(tb, err)
		n, err := strconv.Atoi(port)
		require.NoError(tb, err)
		cfg.Host, cfg.Port = host, uint16(n)
		cfg.RuntimeParams["search_path"] = schema
		cfg.Fallbacks = nil
		proxied = stdlib.OpenDB(*cfg)
		tb.Cleanup(func() { proxied.Close() })
	case sqlstore.MySQL:
		var cfg *mysql.Config
		direct = sharedDB(tb, d, func(c *mysql.Config) { cfg = c.Clone() })()
		p = newFaultProxy(tb, cfg.Addr)
		cfg.Addr = p.addr()
		connector, err := mysql.NewConnector(cfg)
		require.NoError(tb, err)
		proxied = sql.OpenDB(connector)
		tb.Cleanup(func() { proxied.Close() })
	default:
		tb.Fatalf("no proxy for dialect %v", d)
	}
	return direct, proxied, p
}

// serverDialects are the dialects with a server a proxy can stand before.
var serverDialects = []sqlstore.Dialect{sqlstore.Postgres, sqlstore.MySQL}
