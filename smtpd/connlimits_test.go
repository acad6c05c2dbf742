package smtpd

import (
	"bufio"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"yubin/internal/testutil"
)

func TestMaxConnectionsPerIP(t *testing.T) {
	e := newEnv(t, envOptions{cfg: Config{MaxConnsPerIP: 2}})
	// Per listener: each has a cap of its own.
	for _, l := range []testutil.Listener{{Addr: e.mx}, {Addr: e.sub}, {Addr: e.subs, TLS: e.client}} {
		testutil.CheckPerIPCap(t, 2, []testutil.Listener{l},
			"220 ", "421 4.7.0 "+testHost+" Too many connections from your address, try again later")
	}
}

// A command line trickled a byte at a time is cut a line timeout after its
// first byte, on 25 and over TLS after STARTTLS on 587, although the idle
// timeout (ReadTimeout) is minutes; a message transfer is not.
func TestLineTimeout(t *testing.T) {
	const line = 300 * time.Millisecond
	e := newEnv(t, envOptions{cfg: Config{LineTimeout: line}})
	for _, addr := range []string{e.mx, e.sub} {
		c := dialRaw(t, addr)
		c.cmd("EHLO slow.test", 250, "")
		if addr == e.sub {
			c.startTLS(e.client)
			c.cmd("EHLO slow.test", 250, "")
		}
		start := time.Now()
		c.Trickle("NOOP"+strings.Repeat(" x", 200)+"\r\n", 20*time.Millisecond)
		// go-smtp answers the part of the line it got (as a command of
		// its own), and then sees the deadline.
		if code, lines, err := c.reply(); err != nil || code != 421 {
			t.Logf("the cut line answered: %d %q %v", code, lines, err)
			c.expect(421, "4.4.2")
		}
		if took := time.Since(start); took < line {
			t.Errorf("cut after %v, before the line timeout", took)
		}
		if !c.closed() {
			t.Error("connection left open")
		}
	}

	c := dialRaw(t, e.mx)
	c.cmd("EHLO slow.test", 250, "")
	c.cmd("MAIL FROM:<a@remote.test>", 250, "2.0.0")
	c.cmd("RCPT TO:<bob@example.com>", 250, "2.0.0")
	c.cmd("DATA", 354, "")
	start := time.Now()
	c.Trickle(testMessage("slow", "one", "two", "three")+".\r\n", 5*time.Millisecond)
	c.expect(250, "2.0.0")
	if took := time.Since(start); took < 2*line {
		t.Fatalf("the message took %v, not longer than the line timeout: the test proves nothing", took)
	}
	c.cmd("QUIT", 221, "")
}

// Port 25 has no AUTH: the session ends after MXSessionTimeout however
// busy the client keeps it, though a message in transfer is finished.
func TestMXSessionTimeout(t *testing.T) {
	const limit = 500 * time.Millisecond
	e := newEnv(t, envOptions{cfg: Config{MXSessionTimeout: limit}})
	start := time.Now()
	c := dialRaw(t, e.mx)
	c.Trickle("EHLO busy.test\r\n"+strings.Repeat("NOOP\r\n", 1000), 2*time.Millisecond)
	got := strings.Split(strings.TrimSuffix(c.ClosedBetween(start, limit, 5*time.Second), "\r\n"), "\r\n")
	if last := got[len(got)-1]; len(got) < 10 || !strings.HasPrefix(last, "421 4.4.2 ") {
		t.Errorf("%d replies, the last %q", len(got), last)
	}

	start = time.Now()
	c = dialRaw(t, e.mx)
	c.cmd("EHLO busy.test", 250, "")
	c.cmd("MAIL FROM:<a@remote.test>", 250, "2.0.0")
	c.cmd("RCPT TO:<bob@example.com>", 250, "2.0.0")
	c.cmd("DATA", 354, "")
	c.Trickle(testMessage("across the end")+".\r\n", 10*time.Millisecond)
	c.expect(250, "2.0.0")
	if time.Since(start) < limit {
		t.Fatal("the transfer ended before the session's time: the test proves nothing")
	}
	c.Send("NOOP\r\n")
	c.expect(421, "4.4.2")
}

// Every TLS handshake has HandshakeTimeout: 465 from connect, 25 and 587
// after STARTTLS, and a 465 connection being turned away.
func TestHandshakeTimeout(t *testing.T) {
	e := newEnv(t, envOptions{cfg: Config{HandshakeTimeout: 300 * time.Millisecond, MaxConnsPerIP: 1}})
	startTLS := func(addr string) func() *testutil.Conn {
		return func() *testutil.Conn {
			c := dialRaw(t, addr)
			c.cmd("EHLO stall.test", 250, "")
			c.cmd("STARTTLS", 220, "2.0.0")
			return c.Conn
		}
	}
	// The one connection allowed on 465 must do its handshake in the
	// short time too: on a busy machine it may take more than one try.
	hold := func() {
		for deadline := time.Now().Add(10 * time.Second); ; {
			c, err := tls.Dial("tcp", e.subs, e.client)
			var greeting string
			if err == nil {
				t.Cleanup(func() { c.Close() })
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				greeting, err = bufio.NewReader(c).ReadString('\n')
			}
			if strings.HasPrefix(greeting, "220 ") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no session on 465 within 10 s: %q, %v", greeting, err)
			}
		}
	}
	testutil.CheckHandshakeTimeout(t, 300*time.Millisecond, e.subs, hold, startTLS(e.mx), startTLS(e.sub))
}
