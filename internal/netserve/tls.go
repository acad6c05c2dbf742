package netserve

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Mode is how a listener's connections start.
type Mode int

const (
	// Plain connections start in clear text (ports 25, 587, 110, 143);
	// with a TLS config the protocol offers STARTTLS (STLS in POP3).
	Plain Mode = iota
	// Implicit connections are TLS from the first byte (465, 995, 993).
	Implicit
)

func (m Mode) String() string {
	switch m {
	case Plain:
		return "plain"
	case Implicit:
		return "implicit"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ErrNoTLSConfig is the error of an Implicit listener without a TLS config.
var ErrNoTLSConfig = errors.New("implicit TLS needs a TLS config")

// CheckTLS reports whether a listener of mode m can run with tlsConf: an
// Implicit one needs it; a Plain one without it offers no STARTTLS.
func (m Mode) CheckTLS(tlsConf *tls.Config) error {
	switch {
	case m != Plain && m != Implicit:
		return fmt.Errorf("unknown listener mode %d", int(m))
	case m == Implicit && tlsConf == nil:
		return ErrNoTLSConfig
	}
	return nil
}

// DefaultHandshakeTimeout bounds a server-side TLS handshake, implicit or
// after STARTTLS, when no other timeout is given.
const DefaultHandshakeTimeout = 30 * time.Second

// Handshake runs the server side of a TLS handshake on c (after STARTTLS
// or STLS), allowing it timeout (DefaultHandshakeTimeout if 0), and
// returns the TLS connection with no deadline set.
func Handshake(c net.Conn, conf *tls.Config, timeout time.Duration) (*tls.Conn, error) {
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	c.SetDeadline(time.Now().Add(timeout))
	return handshake(c, conf)
}

// handshake is Handshake with c's deadline already set.
func handshake(c net.Conn, conf *tls.Config) (*tls.Conn, error) {
	tc := tls.Server(c, conf)
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return tc, nil
}

// RefuseTimeout is the most time turning a connection away may take, TLS
// handshake included.
const RefuseTimeout = 5 * time.Second

// Refuse turns c away: it writes line and CRLF, over TLS when tlsConf is
// not nil (an Implicit listener), within timeout (at most RefuseTimeout;
// pass the listener's handshake timeout), and closes c. A client that
// never starts its handshake is closed when the time is up. Refuse blocks,
// so it belongs on a goroutine of its own, not the accepting one.
func Refuse(c net.Conn, tlsConf *tls.Config, line string, timeout time.Duration) error {
	if timeout <= 0 || timeout > RefuseTimeout {
		timeout = RefuseTimeout
	}
	c.SetDeadline(time.Now().Add(timeout))
	if tlsConf != nil {
		c = tls.Server(c, tlsConf)
	}
	defer c.Close()
	_, err := io.WriteString(c, line+"\r\n")
	return err
}
