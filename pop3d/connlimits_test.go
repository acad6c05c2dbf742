package pop3d

import (
	"strings"
	"testing"
	"time"

	"yubin/internal/testutil"
)

// Before login the client has PreAuthTimeout, however busy it keeps
// itself; logged in, it has the idle timeout (RFC 1939: 10 minutes).
func TestPreAuthTimeout(t *testing.T) {
	const limit = 500 * time.Millisecond
	e := newEnv(t, Config{PreAuthTimeout: limit})
	start := time.Now()
	c := dialPlain(t, e.plain)
	c.Trickle(strings.Repeat("CAPA\r\n", 100), 5*time.Millisecond)
	got := c.ClosedBetween(start, limit, 5*time.Second)
	if !strings.HasSuffix(got, "\r\n.\r\n-ERR Timed out, closing connection\r\n") {
		t.Errorf("before login: %q", got)
	}

	// A longer limit here, so that bcrypt under -race fits in it.
	e2 := newEnv(t, Config{PreAuthTimeout: 2 * time.Second})
	start = time.Now()
	c = dialTLS(t, e2.implicit)
	c.login("info@example.com")
	for time.Since(start) < 2*time.Second+300*time.Millisecond {
		c.ok("NOOP")
		time.Sleep(20 * time.Millisecond)
	}
}

// A command line must be whole LineTimeout after its first byte, however
// steadily its bytes come (the idle timeout is 10 minutes).
func TestLineTimeout(t *testing.T) {
	const line = 300 * time.Millisecond
	e := newEnv(t, Config{LineTimeout: line})
	c := dialTLS(t, e.implicit)
	c.login("info@example.com")
	start := time.Now()
	c.Trickle("LIST"+strings.Repeat(" 1", 100)+"\r\n", 20*time.Millisecond)
	if got := c.ClosedBetween(start, line, 5*time.Second); got != "" {
		t.Errorf("logged in, closed with %q (RFC 1939: without a word)", got)
	}
}

// Every TLS handshake has HandshakeTimeout: 995 from connect, 110 after
// STLS, and a 995 connection being turned away.
func TestHandshakeTimeout(t *testing.T) {
	e := newEnv(t, Config{HandshakeTimeout: 300 * time.Millisecond, MaxConnsPerIP: 1})
	testutil.CheckHandshakeTimeout(t, 300*time.Millisecond, e.implicit, func() { dialPlain(t, e.plain) },
		func() *testutil.Conn {
			c := dialPlain(t, e.plain)
			c.ok("STLS")
			return c.Conn
		})
}

// A shutdown ends idle sessions at once: before STLS, in the middle of a
// handshake, logged in.
func TestShutdownIdleAtOnce(t *testing.T) {
	e := newEnv(t, Config{})
	idle := dialPlain(t, e.plain)
	stalled := dialPlain(t, e.plain)
	stalled.ok("STLS")
	in := dialTLS(t, e.implicit)
	in.login("info@example.com")
	start := testutil.ShutdownWithin(t, e.srv.Shutdown, 2*time.Second)
	for _, c := range []*client{idle, in} {
		if l := c.Line(); l != "-ERR [SYS/TEMP] Server shutting down" {
			t.Errorf("at shutdown: %q", l)
		}
	}
	stalled.UntilClosed(start, 5*time.Second)
}
