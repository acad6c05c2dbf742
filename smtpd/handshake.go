package smtpd

import (
	"bytes"
	"crypto/tls"
	"time"
)

// go-smtp runs the TLS handshakes itself — on 465 before the greeting, on
// 25 and 587 after its "220" reply to STARTTLS — under the deadlines of a
// command (ReadTimeout, WriteTimeout: minutes). trackedConn, the
// connection under its TLS, holds every deadline set during a handshake
// to HandshakeTimeout from the handshake's start. Nothing else tells us
// when a handshake starts or ends, so:
//
//   - 465: it starts at accept and ends when the TLS connection says so
//     (checked as go-smtp sets its next deadline, the greeting's);
//   - STARTTLS: it starts when go-smtp writes "220 " in clear text after
//     the greeting (its only other 220 reply), and ends at the next
//     deadline go-smtp sets, which it does not during a handshake.
//
// After STARTTLS all that goes out is TLS records. If go-smtp writes clear
// text again, its handshake failed (the client stalled past the deadline,
// left, or sent no TLS) and it is answering "550 5.0.0 Handshake error",
// to go on in clear text: instead the session ends there, without that
// reply or the "421" after it.

// implicitTLS returns the TLS connection go-smtp serves a 465 client on,
// started at accept.
func (c *trackedConn) implicitTLS(conf *tls.Config, accepted time.Time) *tls.Conn {
	tc := tls.Server(c, conf)
	c.implicit = tc
	c.handshakeFrom(accepted)
	return tc
}

// handshakeFrom starts the handshake clock.
func (c *trackedConn) handshakeFrom(start time.Time) {
	c.hsUntil = start.Add(c.srv.cfg.HandshakeTimeout)
	c.Conn.SetWriteDeadline(c.hsUntil)
	c.Conn.SetReadDeadline(c.hsUntil)
}

// handshakeDeadline is t, or the handshake's deadline if one is running
// and t is later.
func (c *trackedConn) handshakeDeadline(t time.Time) time.Time {
	if c.hsUntil.IsZero() {
		return t
	}
	switch {
	case c.startTLS:
		c.startTLS, c.hsUntil = false, time.Time{}
		return t
	case c.implicit != nil && c.implicit.ConnectionState().HandshakeComplete:
		c.implicit, c.hsUntil = nil, time.Time{}
		return t
	}
	if t.IsZero() || t.After(c.hsUntil) {
		return c.hsUntil
	}
	return t
}

func (c *trackedConn) SetReadDeadline(t time.Time) error {
	return c.Conn.SetReadDeadline(c.handshakeDeadline(t))
}

func (c *trackedConn) SetWriteDeadline(t time.Time) error {
	return c.Conn.SetWriteDeadline(c.handshakeDeadline(t))
}

func (c *trackedConn) SetDeadline(t time.Time) error {
	if err := c.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

func (c *trackedConn) Write(p []byte) (int, error) {
	if c.upgraded && len(p) > 0 && !isTLSRecord(p[0]) || c.hsFailed {
		// The handshake failed: every read fails from now on, and
		// go-smtp closes the connection.
		c.hsFailed = true
		c.timed.Until(time.Now())
		return len(p), nil
	}
	starting := c.greeted && !c.upgraded && c.implicit == nil && bytes.HasPrefix(p, []byte("220 "))
	c.greeted = true
	n, err := c.Conn.Write(p)
	if starting && err == nil {
		c.upgraded, c.startTLS = true, true
		c.handshakeFrom(time.Now())
	}
	return n, err
}

// isTLSRecord reports whether b can start a TLS record: its content type
// (change_cipher_spec, alert, handshake, application_data, heartbeat).
func isTLSRecord(b byte) bool { return b >= 20 && b <= 24 }
