package netserve

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"yubin/internal/testutil"
)

// timedPair is a TimedConn on the server side of a loopback TCP
// connection, and the client side.
func timedPair(t *testing.T, line time.Duration, until time.Time) (*TimedConn, *testutil.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testutil.Must(t, err)
	defer ln.Close()
	cli := testutil.Dial(t, ln.Addr().String(), nil)
	sc, err := ln.Accept()
	testutil.Must(t, err)
	t.Cleanup(func() { sc.Close() })
	return NewTimedConn(sc, line, until), cli
}

// readLine sets the protocol's deadline (a minute: never the one that
// fires here) and reads a line, as go-smtp and pop3d do.
func readLine(tc *TimedConn, r *bufio.Reader) (string, error) {
	tc.SetReadDeadline(time.Now().Add(time.Minute))
	return r.ReadString('\n')
}

func TestTimedConnLineDeadline(t *testing.T) {
	const line = 300 * time.Millisecond
	tc, cli := timedPair(t, line, time.Time{})
	r := bufio.NewReader(tc)

	// Lines that each come within the line timeout go on for longer than
	// it: every line has a clock of its own.
	start := time.Now()
	for i := range 4 {
		cli.Trickle("ab\n", 40*time.Millisecond)
		if l, err := readLine(tc, r); err != nil || l != "ab\n" {
			t.Fatalf("line %d: %q, %v", i, l, err)
		}
	}
	if d := time.Since(start); d < line {
		t.Fatalf("lines took %v, not longer than one line timeout: the test proves nothing", d)
	}

	// A line trickled a byte at a time is cut a line timeout after its
	// first byte, however steadily the bytes come.
	first := time.Now()
	cli.Trickle(strings.Repeat("x", 200), 20*time.Millisecond)
	_, err := readLine(tc, r)
	took := time.Since(first)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("trickled line: %v", err)
	}
	if took < line || took > 5*time.Second {
		t.Errorf("trickled line cut after %v, want about %v", took, line)
	}
}

func TestTimedConnHold(t *testing.T) {
	tc, cli := timedPair(t, 200*time.Millisecond, time.Now().Add(200*time.Millisecond))
	r := bufio.NewReader(tc)
	tc.SetReadDeadline(time.Now().Add(time.Minute))
	tc.Hold(true) // a message transfer: neither deadline counts
	start := time.Now()
	cli.Trickle(strings.Repeat("y", 15)+"\n", 40*time.Millisecond)
	if l, err := r.ReadString('\n'); err != nil || len(l) != 16 {
		t.Fatalf("held: %q, %v", l, err)
	}
	if time.Since(start) < 400*time.Millisecond {
		t.Fatal("the held line came faster than both deadlines: the test proves nothing")
	}
	tc.Hold(false) // the session deadline is long past
	if _, err := readLine(tc, r); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("after the hold, past the session deadline: %v", err)
	}
}

func TestTimedConnSessionDeadline(t *testing.T) {
	const limit = 300 * time.Millisecond
	start := time.Now()
	tc, cli := timedPair(t, 0, start.Add(limit))
	r := bufio.NewReader(tc)
	// Busy the whole time, and still cut at the session deadline.
	var err error
	for err == nil {
		cli.Send("NOOP\r\n")
		_, err = readLine(tc, r)
		if time.Since(start) > 5*time.Second {
			t.Fatal("never cut")
		}
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) < limit {
		t.Fatalf("cut after %v: %v", time.Since(start), err)
	}

	// A farewell goes out once, and a login lifts the deadline.
	tc2, cli2 := timedPair(t, 0, time.Now().Add(limit))
	tc2.SetFarewell("* BYE late")
	r2 := bufio.NewReader(tc2)
	if _, err := readLine(tc2, r2); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("no login: %v", err)
	}
	readLine(tc2, r2)
	tc2.Close()
	if got, _ := cli2.UntilClosed(time.Now(), 5*time.Second); got != "* BYE late\r\n" {
		t.Errorf("farewell: %q", got)
	}

	tc3, cli3 := timedPair(t, 0, time.Now().Add(limit))
	tc3.LoggedIn()
	r3 := bufio.NewReader(tc3)
	for end := time.Now().Add(2 * limit); time.Now().Before(end); {
		cli3.Send("NOOP\r\n")
		if _, err := readLine(tc3, r3); err != nil {
			t.Fatalf("logged in, cut anyway: %v", err)
		}
	}
}

// CloseWrite passes through (imapd lingers with it when it ends a
// session with input unread).
func TestTimedConnCloseWrite(t *testing.T) {
	tc, cli := timedPair(t, 0, time.Time{})
	testutil.Must(t, tc.CloseWrite())
	if got, _ := cli.UntilClosed(time.Now(), 5*time.Second); got != "" {
		t.Errorf("read %q", got)
	}
	cli.Send("still open for reading\r\n")
	if l, err := bufio.NewReader(tc).ReadString('\n'); err != nil || l != "still open for reading\r\n" {
		t.Errorf("after CloseWrite: %q, %v", l, err)
	}
}

// A plain connection as the handler has it can CloseWrite too.
func TestServedCloseWrite(t *testing.T) {
	ts := startServer(t, &Server{}, func(c *Conn) {
		io.WriteString(c, "hello\r\n")
		if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			io.WriteString(c, "no CloseWrite\r\n")
		}
		io.Copy(io.Discard, c)
	})
	c := ts.dial(t, Plain)
	if got, _ := c.UntilClosed(time.Now(), 5*time.Second); got != "hello\r\n" {
		t.Errorf("read %q", got)
	}
}

func TestPerIPKey(t *testing.T) {
	for _, c := range []struct{ a, b string }{
		{"192.0.2.1:25", "192.0.2.1:26"},
		{"[::ffff:192.0.2.1]:25", "192.0.2.1:25"},
		{"[2001:db8:1:2::1]:25", "[2001:db8:1:2:ffff::7]:110"},
	} {
		a, _ := net.ResolveTCPAddr("tcp", c.a)
		b, _ := net.ResolveTCPAddr("tcp", c.b)
		if ipKey(a) != ipKey(b) {
			t.Errorf("%s and %s count apart: %s, %s", c.a, c.b, ipKey(a), ipKey(b))
		}
	}
	a, _ := net.ResolveTCPAddr("tcp", "[2001:db8:1:2::1]:25")
	b, _ := net.ResolveTCPAddr("tcp", "[2001:db8:1:3::1]:25")
	if ipKey(a) == ipKey(b) {
		t.Errorf("two /64s count together: %s", ipKey(a))
	}
	p := PerIP{Max: 1}
	if !p.Add(a) || p.Add(a) || !p.Add(b) {
		t.Error("Add over or under the cap")
	}
	p.Done(a)
	if !p.Add(a) {
		t.Error("Done did not free the slot")
	}
}

func TestMaxConnsPerIP(t *testing.T) {
	ts := startServer(t, &Server{MaxConnsPerIP: 2, IPRefusal: "BUSY-IP", Refusal: "BUSY"}, func(c *Conn) {
		io.WriteString(c, "hello\r\n")
		io.Copy(io.Discard, c)
	})
	// Over all listeners together.
	greeted := testutil.CheckPerIPCap(t, 2, []testutil.Listener{{Addr: ts.plain}, {Addr: ts.implicit, TLS: ts.cert.Client}}, "hello", "BUSY-IP")
	// A slot is free by the time its connection is closed.
	greeted[0].Conn.(*net.TCPConn).CloseWrite()
	greeted[0].UntilClosed(time.Now(), 5*time.Second)
	if l := ts.dial(t, Implicit).Line(); l != "hello" {
		t.Errorf("after a connection ended: %q", l)
	}
}

// A client that never sends its ClientHello is closed when the handshake
// time is up: served, and turned away.
func TestHandshakeTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	ts := startServer(t, &Server{HandshakeTimeout: 200 * time.Millisecond, MaxConns: 1, Refusal: "BUSY"}, func(c *Conn) {
		io.WriteString(c, "hello\r\n")
		<-release
	})
	testutil.CheckHandshakeTimeout(t, 200*time.Millisecond, ts.implicit, func() { ts.dial(t, Plain).Line() })
}
