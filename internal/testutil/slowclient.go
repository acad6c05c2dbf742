package testutil

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// DialFrom is Dial from the local address ip (any 127.0.0.0/8 address
// works on Linux loopback): another client address, for per-address
// limits.
func DialFrom(t testing.TB, ip, addr string, conf *tls.Config) *Conn {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	var c net.Conn
	var err error
	if conf != nil {
		c, err = tls.DialWithDialer(d, "tcp", addr, conf)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	Must(t, err)
	t.Cleanup(func() { c.Close() })
	return &Conn{T: t, Conn: c, R: bufio.NewReader(c)}
}

// UntilClosed reads until the server closes the connection and returns
// what it sent meanwhile and the time since start. It fails the test if
// the connection is still open at start+max.
func (c *Conn) UntilClosed(start time.Time, max time.Duration) (string, time.Duration) {
	c.T.Helper()
	c.SetReadDeadline(start.Add(max))
	b, err := io.ReadAll(c.R)
	took := time.Since(start)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.T.Fatalf("connection still open after %v (got %q)", took.Round(time.Millisecond), b)
	}
	return string(b), took
}

// Trickle sends s one byte every gap, from a goroutine of its own, until
// all is sent or a write fails (the server closed the connection): a slow
// client. It returns at once.
func (c *Conn) Trickle(s string, gap time.Duration) {
	go func() {
		for i := range len(s) {
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c.Conn, s[i:i+1]); err != nil {
				return
			}
			time.Sleep(gap)
		}
	}()
}

// ClosedBetween is UntilClosed that also fails the test if the server
// closed the connection earlier than start+min: the deadline under test
// closed it, not another.
func (c *Conn) ClosedBetween(start time.Time, min, max time.Duration) string {
	c.T.Helper()
	got, took := c.UntilClosed(start, max)
	if took < min {
		c.T.Errorf("closed after %v, before %v (got %q)", took.Round(time.Millisecond), min, got)
	}
	return got
}

// Listener is a server's listener as a client reaches it: its address,
// and the TLS config for an implicit-TLS one (nil: plain).
type Listener struct {
	Addr string
	TLS  *tls.Config
}

// CheckPerIPCap checks a cap of max connections per client address over
// listeners together: max connections from 127.0.0.1, spread over the
// listeners, get a greeting starting with greeting; one more on each
// listener gets refusal, and is closed; one from 127.0.0.2 is greeted.
// It returns the max greeted connections, which stay open until the test
// ends.
func CheckPerIPCap(t testing.TB, max int, listeners []Listener, greeting, refusal string) []*Conn {
	t.Helper()
	var greeted []*Conn
	for i := range max {
		l := listeners[i%len(listeners)]
		c := Dial(t, l.Addr, l.TLS)
		if got := c.Line(); !strings.HasPrefix(got, greeting) {
			t.Fatalf("connection %d of %d from one address, to %s: %q", i+1, max, l.Addr, got)
		}
		greeted = append(greeted, c)
	}
	for _, l := range listeners {
		c := Dial(t, l.Addr, l.TLS)
		if got := c.Line(); got != refusal {
			t.Errorf("connection %d from one address, to %s: %q, want %q", max+1, l.Addr, got, refusal)
		}
		c.UntilClosed(time.Now(), 5*time.Second)
	}
	if got := DialFrom(t, "127.0.0.2", listeners[0].Addr, listeners[0].TLS).Line(); !strings.HasPrefix(got, greeting) {
		t.Errorf("another address: %q", got)
	}
	return greeted
}

// CheckHandshakeTimeout checks that a client that never sends its
// ClientHello is closed, without a word, hs after it connected to the
// implicit-TLS listener at implicit, and hs after each startTLS returns
// (it has a client on a plain listener ask for STARTTLS, or STLS, and read
// the go-ahead); also one being turned away. For that, the server must
// allow one connection per address, which hold takes (with a connection
// that stays open until the test ends).
func CheckHandshakeTimeout(t testing.TB, hs time.Duration, implicit string, hold func(), startTLS ...func() *Conn) {
	t.Helper()
	start := time.Now()
	if got := Dial(t, implicit, nil).ClosedBetween(start, hs, 3*time.Second); got != "" {
		t.Errorf("no ClientHello on %s: got %q", implicit, got)
	}
	for i, f := range startTLS {
		start = time.Now()
		if got := f().ClosedBetween(start, hs, 3*time.Second); got != "" {
			t.Errorf("no ClientHello after STARTTLS (%d): got %q", i, got)
		}
	}
	hold()
	start = time.Now()
	if got := Dial(t, implicit, nil).ClosedBetween(start, hs, 3*time.Second); got != "" {
		t.Errorf("no ClientHello on %s, turned away: got %q", implicit, got)
	}
}

// ShutdownWithin runs shutdown (a server's Shutdown, given 10 seconds)
// and fails the test if it fails or takes longer than max. It returns
// when shutdown began.
func ShutdownWithin(t testing.TB, shutdown func(context.Context) error, max time.Duration) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if took := time.Since(start); took > max {
		t.Errorf("Shutdown took %v", took.Round(time.Millisecond))
	}
	return start
}
