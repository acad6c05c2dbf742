package testutil

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// Conn is a line-level client connection, so that protocol tests send and
// see exact bytes.
type Conn struct {
	T        testing.TB
	net.Conn               // TLS after StartTLS
	R        *bufio.Reader // reads from Conn
}

// Dial connects to addr over TCP, with TLS when conf is not nil. The
// connection is closed at cleanup.
func Dial(t testing.TB, addr string, conf *tls.Config) *Conn {
	t.Helper()
	var c net.Conn
	var err error
	if conf != nil {
		c, err = tls.Dial("tcp", addr, conf)
	} else {
		c, err = net.Dial("tcp", addr)
	}
	Must(t, err)
	t.Cleanup(func() { c.Close() })
	return &Conn{T: t, Conn: c, R: bufio.NewReader(c)}
}

// Line reads one line within 10 seconds and returns it without its end,
// which must be CRLF. An error fails the test.
func (c *Conn) Line() string {
	c.T.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := c.R.ReadString('\n')
	if err != nil {
		c.T.Fatalf("read: %v (got %q)", err, l)
	}
	if !strings.HasSuffix(l, "\r\n") {
		c.T.Fatalf("line without CRLF: %q", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// Send writes s as it is within 10 seconds. An error fails the test.
func (c *Conn) Send(s string) {
	c.T.Helper()
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.Conn, s); err != nil {
		c.T.Fatalf("write %q: %v", s, err)
	}
}

// StartTLS does the TLS handshake with conf on the connection, after the
// protocol's STARTTLS (or STLS) was answered; from then on the connection
// is the TLS one.
func (c *Conn) StartTLS(conf *tls.Config) {
	c.T.Helper()
	tc := tls.Client(c.Conn, conf)
	Must(c.T, tc.Handshake())
	c.Conn = tc
	c.R = bufio.NewReader(tc)
}
