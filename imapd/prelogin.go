package imapd

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"yubin/internal/netserve"
)

// maxPreloginLine bounds a command line before TLS.
const maxPreloginLine = 8 << 10

var errLineTooLong = errors.New("line too long")

// prelogin serves a cleartext connection (port 143) until STARTTLS. It
// answers CAPABILITY, NOOP and LOGOUT, refuses LOGIN and AUTHENTICATE (the
// greeting says LOGINDISABLED), and after a successful TLS handshake hands
// the connection to the library as if it had just connected, without a
// second greeting (RFC 3501 6.2.1). With AllowInsecureAuth, any command it
// does not answer itself is handed over in clear text instead. The client
// must have logged in by loginBy, and a shutdown ends it with BYE at once.
func (s *Server) prelogin(nc *netserve.Conn, tlsConf *tls.Config, loginBy time.Time) (*libConn, bool) {
	c := nc.Conn
	nc.OnShutdown(func() { c.SetReadDeadline(time.Now()) })
	br := bufio.NewReaderSize(c, 1024)
	write := func(lines ...string) bool {
		c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		_, err := io.WriteString(c, strings.Join(lines, "\r\n")+"\r\n")
		return err == nil
	}
	caps := "IMAP4rev1"
	if tlsConf != nil {
		caps += " STARTTLS"
	}
	if s.cfg.AllowInsecureAuth {
		caps += " SASL-IR AUTH=PLAIN"
	} else {
		caps += " LOGINDISABLED"
	}
	if !write("* OK [CAPABILITY " + caps + "] " + s.cfg.Hostname + " Yubin IMAP ready") {
		return nil, false
	}
	bad := 0
	for {
		// The deadline before the check: a shutdown's interrupt (a
		// deadline now) is never overwritten unseen.
		c.SetReadDeadline(loginBy)
		if s.ns.Closing() {
			write("* BYE Server shutting down")
			return nil, false
		}
		line, err := readLine(br, maxPreloginLine)
		if errors.Is(err, errLineTooLong) {
			write("* BYE Command line too long")
			return nil, false
		}
		if err != nil {
			var ne net.Error
			switch {
			case s.ns.Closing():
				write("* BYE Server shutting down")
			case errors.As(err, &ne) && ne.Timeout():
				write(loginTimeoutBye)
			}
			return nil, false
		}
		tag, rest, _ := strings.Cut(line, " ")
		cmd, args, _ := strings.Cut(rest, " ")
		cmd = strings.ToUpper(cmd)
		if !validTag(tag) || cmd == "" {
			bad++
			if bad >= 3 || !write("* BAD Invalid command line") {
				write("* BYE Too many invalid commands")
				return nil, false
			}
			continue
		}
		switch cmd {
		case "CAPABILITY":
			if !write("* CAPABILITY "+caps, tag+" OK CAPABILITY completed") {
				return nil, false
			}
		case "NOOP":
			if !write(tag + " OK NOOP completed") {
				return nil, false
			}
		case "LOGOUT":
			write("* BYE Logging out", tag+" OK LOGOUT completed")
			return nil, false
		case "STARTTLS":
			if tlsConf == nil {
				write(tag + " NO STARTTLS is not available")
				continue
			}
			if args != "" {
				write(tag + " BAD STARTTLS takes no arguments")
				continue
			}
			if !write(tag + " OK Begin TLS negotiation now") {
				return nil, false
			}
			// Anything sent after STARTTLS before the handshake would be
			// injected into the TLS session (CVE-2011-0411): refuse it.
			if br.Buffered() > 0 {
				return nil, false
			}
			hs := min(s.cfg.HandshakeTimeout, time.Until(loginBy))
			if hs <= 0 {
				return nil, false
			}
			tc, err := netserve.Handshake(c, tlsConf, hs)
			if err != nil {
				s.log.Debug("STARTTLS handshake failed", "remote", c.RemoteAddr().String(), "err", err)
				return nil, false
			}
			return newLibConn(s, loginClock(tc, loginBy), true, nil), true
		default:
			if s.cfg.AllowInsecureAuth {
				// Hand the command (and whatever followed it) to the library.
				prefix := []byte(line + "\r\n")
				if n := br.Buffered(); n > 0 {
					b, _ := br.Peek(n)
					prefix = append(prefix, b...)
				}
				return newLibConn(s, loginClock(c, loginBy), true, prefix), true
			}
			if cmd == "LOGIN" || cmd == "AUTHENTICATE" {
				if !write(tag + " NO [PRIVACYREQUIRED] TLS is required to log in; use STARTTLS") {
					return nil, false
				}
				continue
			}
			bad++
			if bad >= 3 {
				write("* BYE Too many invalid commands")
				return nil, false
			}
			if !write(tag + " BAD Command not valid before STARTTLS") {
				return nil, false
			}
		}
	}
}

// loginTimeoutBye is what a client that has not logged in by the end of
// PreAuthTimeout gets.
const loginTimeoutBye = "* BYE Autologout; not logged in in time"

// loginClock is the connection the library gets: reads end at loginBy
// until the session logs in (session.Login), and then the client gets
// loginTimeoutBye. go-imap's own deadlines (30 s per command line, 5
// minutes per literal) apply within it.
func loginClock(c net.Conn, loginBy time.Time) *netserve.TimedConn {
	tc := netserve.NewTimedConn(c, 0, loginBy)
	tc.SetFarewell(loginTimeoutBye)
	return tc
}

// readLine reads one CRLF (or LF) terminated line of at most max bytes.
func readLine(br *bufio.Reader, max int) (string, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > max+2 {
			return "", errLineTooLong
		}
		line = append(line, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return "", err
		}
		return strings.TrimRight(string(line), "\r\n"), nil
	}
}

// validTag: 1*<any ASTRING-CHAR except "+"> (RFC 3501 9).
func validTag(tag string) bool {
	if tag == "" || len(tag) > 64 {
		return false
	}
	for i := 0; i < len(tag); i++ {
		if !isAtomChar(tag[i]) && tag[i] != ']' || tag[i] == '+' {
			return false
		}
	}
	return true
}

// isAtomChar: ATOM-CHAR of RFC 3501.
func isAtomChar(ch byte) bool {
	switch ch {
	case '(', ')', '{', ' ', '%', '*', '"', '\\', ']':
		return false
	}
	return ch > 0x20 && ch < 0x7f
}
