package imapd

import (
	"strings"
	"testing"
	"time"

	"yubin/internal/testutil"
)

// From connect to login the client has PreAuthTimeout, however busy it
// keeps itself: before STARTTLS (our pre-TLS stage), after it and on 993
// (the library).
func TestPreAuthTimeout(t *testing.T) {
	// (Long enough for a STARTTLS handshake on a busy machine.)
	const limit = time.Second
	e := newEnv(t, Config{PreAuthTimeout: limit})
	for _, stage := range []string{"143", "143 after STARTTLS", "993"} {
		start := time.Now()
		c := dialRaw(t, e.plain, false)
		if stage == "993" {
			c = dialRaw(t, e.implicit, true)
		} else if stage != "143" {
			c.starttls()
		}
		c.Trickle(strings.Repeat("a NOOP\r\n", 100), 5*time.Millisecond)
		got := c.ClosedBetween(start, limit, 5*time.Second)
		if !strings.HasSuffix(got, "a OK NOOP completed\r\n"+loginTimeoutBye+"\r\n") {
			t.Errorf("%s: %q", stage, got)
		}
	}

	// Logged in (with go-imap's client), the clock stops. (A longer
	// limit, so that bcrypt under -race fits in it.)
	const long = 2 * time.Second
	e2 := newEnv(t, Config{PreAuthTimeout: long})
	deadline := time.Now().Add(long)
	ic := e2.login(t, "info@example.com", nil)
	for n := 0; time.Now().Before(deadline.Add(300 * time.Millisecond)); n++ {
		if err := ic.Noop().Wait(); err != nil {
			t.Fatalf("logged in, NOOP %d: %v", n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Every TLS handshake has HandshakeTimeout: 993 from connect, 143 after
// STARTTLS, and a 993 connection being turned away.
func TestHandshakeTimeout(t *testing.T) {
	e := newEnv(t, Config{HandshakeTimeout: 300 * time.Millisecond, MaxConnsPerIP: 1})
	testutil.CheckHandshakeTimeout(t, 300*time.Millisecond, e.implicit, func() { dialRaw(t, e.plain, false) },
		func() *testutil.Conn {
			c := dialRaw(t, e.plain, false)
			c.ok("STARTTLS")
			return c.Conn
		})
}

// A shutdown ends idle sessions at once: before STARTTLS (this took the
// whole shutdown timeout: the pre-TLS stage had no interrupt), in the
// middle of a handshake, before login on 993, logged in.
func TestShutdownIdleAtOnce(t *testing.T) {
	e := newEnv(t, Config{})
	plain := dialRaw(t, e.plain, false)
	plain.ok("CAPABILITY")
	stalled := dialRaw(t, e.plain, false)
	stalled.ok("STARTTLS")
	implicit := dialRaw(t, e.implicit, true)
	in := dialRaw(t, e.implicit, true)
	in.login("info@example.com")
	start := testutil.ShutdownWithin(t, e.srv.Shutdown, 2*time.Second)
	for _, c := range []*raw{plain, implicit, in} {
		if l := c.Line(); l != "* BYE Server shutting down" {
			t.Errorf("at shutdown: %q", l)
		}
	}
	stalled.UntilClosed(start, 5*time.Second)
}
