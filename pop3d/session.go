package pop3d

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"yubin/internal/auth"
	"yubin/internal/netserve"
	"yubin/store"
)

type state int

const (
	stateAuth state = iota
	stateTrans
)

// maxBadCommands ends a session that sends nothing but garbage.
const maxBadCommands = 20

// maxPreAuthCommands bounds what a client may do before it logs in.
const maxPreAuthCommands = 50

type session struct {
	srv     *Server
	raw     *netserve.TimedConn // the connection as served: deadlines are set here, from any goroutine
	conn    net.Conn            // raw, or the TLS connection over it (after STLS)
	r       *bufio.Reader
	w       *bufio.Writer
	tls     bool
	tlsConf *tls.Config
	stopped atomic.Bool

	state       state
	user        string // from USER, waiting for PASS
	account     string // authenticated and locked maildrop
	msgs        []store.MessageInfo
	uidValidity uint32
	deleted     []bool
	bad         int
	preAuth     int // commands in the AUTHORIZATION state
}

func newSession(s *Server, c *netserve.TimedConn, isTLS bool, tlsConf *tls.Config) *session {
	return &session{srv: s, raw: c, conn: c, r: bufio.NewReaderSize(c, 4096), w: bufio.NewWriterSize(c, 32<<10), tls: isTLS, tlsConf: tlsConf}
}

// ctx is the context of the session's store and auth calls. A session ends
// by closing its connection, never by cancelling a write in flight.
func (ss *session) ctx() context.Context { return context.Background() }

// interrupt makes the session's next (or current) read fail.
func (ss *session) interrupt() {
	ss.stopped.Store(true)
	ss.raw.SetReadDeadline(time.Now())
}

func (ss *session) close() {
	if ss.account != "" {
		ss.srv.unlock(ss.account)
		ss.account = ""
	}
	ss.conn.Close()
}

func (ss *session) reply(ok bool, format string, args ...any) {
	if ok {
		ss.w.WriteString("+OK ")
	} else {
		ss.w.WriteString("-ERR ")
	}
	fmt.Fprintf(ss.w, format, args...)
	ss.w.WriteString("\r\n")
}

// flush sends buffered replies unless more pipelined commands are waiting.
func (ss *session) flush() error {
	if ss.r.Buffered() > 0 && ss.w.Buffered() < 16<<10 {
		return nil
	}
	return ss.w.Flush()
}

// readLine reads one CRLF (or LF) terminated line of at most max bytes.
// An over-long line is consumed and reported as errTooLong.
func (ss *session) readLine(max int) (string, error) {
	ss.raw.SetReadDeadline(time.Now().Add(ss.srv.cfg.IdleTimeout))
	if ss.stopped.Load() {
		return "", net.ErrClosed
	}
	var line []byte
	tooLong := false
	for {
		chunk, err := ss.r.ReadSlice('\n')
		if len(line)+len(chunk) > max+2 {
			tooLong = true
			line = line[:0]
		} else {
			line = append(line, chunk...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return "", err
		}
		break
	}
	if tooLong {
		return "", errTooLong
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

func (ss *session) serve() {
	log := ss.srv.log.With("remote", ss.conn.RemoteAddr().String())
	ss.reply(true, "Yubin POP3 server ready on %s", ss.srv.cfg.Hostname)
	if ss.w.Flush() != nil {
		return
	}
	for {
		line, err := ss.readLine(maxCommandLine)
		if errors.Is(err, errTooLong) {
			ss.reply(false, "Line too long (at most %d octets)", maxCommandLine)
			if ss.badCommand() {
				return
			}
			continue
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !ss.stopped.Load() {
				log.Debug("connection ended", "err", err)
			}
			switch {
			case ss.stopped.Load():
				ss.w.WriteString("-ERR [SYS/TEMP] Server shutting down\r\n")
			case ss.state == stateAuth && errors.Is(err, os.ErrDeadlineExceeded):
				// Not logged in within pop3.auth_timeout, or a line too
				// slow. (Logged in, an idle session is closed without a
				// word, as RFC 1939 says.)
				ss.w.WriteString("-ERR Timed out, closing connection\r\n")
			}
			ss.w.Flush()
			return // a dropped connection deletes nothing
		}
		cmd, err := parseCommand(line)
		if err != nil {
			ss.reply(false, "Bad command: %v", err)
			if ss.badCommand() {
				return
			}
			continue
		}
		if quit := ss.dispatch(cmd); quit {
			ss.w.Flush()
			return
		}
		if ss.flush() != nil {
			return
		}
	}
}

func (ss *session) badCommand() bool {
	ss.bad++
	if ss.bad >= maxBadCommands {
		ss.reply(false, "Too many bad commands, closing connection")
		ss.w.Flush()
		return true
	}
	return ss.flush() != nil
}

// authAllowed reports whether credentials may be sent on this connection.
func (ss *session) authAllowed() bool { return ss.tls || ss.srv.cfg.AllowInsecureAuth }

func (ss *session) dispatch(cmd command) (quit bool) {
	if ss.state == stateAuth {
		ss.preAuth++
		if ss.preAuth > maxPreAuthCommands {
			ss.reply(false, "[SYS/TEMP] Too many commands without logging in, closing connection")
			return true
		}
	}
	nargs := func(min, max int) bool {
		if len(cmd.args) < min || len(cmd.args) > max {
			if min == max {
				ss.reply(false, "%s takes %d argument(s)", cmd.name, min)
			} else {
				ss.reply(false, "%s takes %d to %d arguments", cmd.name, min, max)
			}
			ss.bad++
			return false
		}
		return true
	}
	switch cmd.name {
	case "QUIT":
		if nargs(0, 0) {
			return ss.quit()
		}
		return false
	case "CAPA":
		if nargs(0, 0) {
			ss.capa()
		}
		return false
	case "NOOP":
		if ss.state != stateTrans {
			ss.reply(false, "NOOP is only valid after login")
		} else if nargs(0, 0) {
			ss.reply(true, "")
		}
		return false
	}
	if ss.state == stateAuth {
		switch cmd.name {
		case "STLS":
			if nargs(0, 0) {
				ss.stls()
			}
		case "USER":
			if nargs(1, 1) {
				ss.userCmd(cmd.args[0])
			}
		case "PASS":
			if nargs(1, 1) {
				ss.passCmd(cmd.args[0])
			}
		case "AUTH":
			if nargs(0, 2) {
				ss.authCmd(cmd.args)
			}
		case "STAT", "LIST", "RETR", "DELE", "RSET", "TOP", "UIDL":
			ss.reply(false, "%s is only valid after login", cmd.name)
		default:
			ss.reply(false, "Unknown command %s", cmd.name)
			ss.bad++
		}
		return false
	}
	switch cmd.name {
	case "STAT":
		if nargs(0, 0) {
			n, size := 0, int64(0)
			for i, m := range ss.msgs {
				if !ss.deleted[i] {
					n++
					size += m.Size
				}
			}
			ss.reply(true, "%d %d", n, size)
		}
	case "LIST", "UIDL":
		if !nargs(0, 1) {
			return false
		}
		show := func(i int) string {
			if cmd.name == "LIST" {
				return strconv.FormatInt(ss.msgs[i].Size, 10)
			}
			return ss.uidl(i)
		}
		if len(cmd.args) == 1 {
			if i, ok := ss.msgArg(cmd.args[0]); ok {
				ss.reply(true, "%d %s", i+1, show(i))
			}
			return false
		}
		ss.reply(true, "%s follows", strings.ToLower(cmd.name))
		for i := range ss.msgs {
			if !ss.deleted[i] {
				ss.w.WriteString(strconv.Itoa(i + 1))
				ss.w.WriteByte(' ')
				ss.w.WriteString(show(i))
				ss.w.WriteString("\r\n")
			}
		}
		ss.w.WriteString(".\r\n")
	case "RETR":
		if nargs(1, 1) {
			if i, ok := ss.msgArg(cmd.args[0]); ok {
				return ss.send(i, -1)
			}
		}
	case "TOP":
		if !nargs(2, 2) {
			return false
		}
		i, ok := ss.msgArg(cmd.args[0])
		if !ok {
			return false
		}
		n, err := strconv.Atoi(cmd.args[1])
		if err != nil || n < 0 || cmd.args[1][0] == '+' {
			ss.reply(false, "TOP needs a non-negative number of lines, not %q", cmd.args[1])
			return false
		}
		return ss.send(i, n)
	case "DELE":
		if nargs(1, 1) {
			if i, ok := ss.msgArg(cmd.args[0]); ok {
				ss.deleted[i] = true
				ss.reply(true, "Message %d deleted", i+1)
			}
		}
	case "RSET":
		if nargs(0, 0) {
			for i := range ss.deleted {
				ss.deleted[i] = false
			}
			ss.reply(true, "Maildrop has %d messages", len(ss.msgs))
		}
	case "STLS", "USER", "PASS", "AUTH":
		ss.reply(false, "Already logged in")
	default:
		ss.reply(false, "Unknown command %s", cmd.name)
		ss.bad++
	}
	return false
}

// msgArg resolves a message-number argument, replying -ERR if it is bad.
func (ss *session) msgArg(s string) (int, bool) {
	n, ok := parseMsgNum(s)
	if !ok {
		ss.reply(false, "Invalid message number %q", s)
		return 0, false
	}
	if n > len(ss.msgs) {
		ss.reply(false, "No such message: %d (maildrop has %d)", n, len(ss.msgs))
		return 0, false
	}
	if ss.deleted[n-1] {
		ss.reply(false, "Message %d already deleted", n)
		return 0, false
	}
	return n - 1, true
}

// uidl is stable across sessions and restarts and never reused: the
// mailbox's UIDVALIDITY and the message's UID, which the store never reuses.
func (ss *session) uidl(i int) string {
	return fmt.Sprintf("%08x%08x", ss.uidValidity, ss.msgs[i].UID)
}

func (ss *session) capa() {
	ss.reply(true, "Capability list follows")
	lines := []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER", "IMPLEMENTATION Yubin"}
	if ss.state == stateAuth {
		if ss.authAllowed() {
			lines = append(lines, "USER", "SASL PLAIN")
		}
		if !ss.tls && ss.tlsConf != nil {
			lines = append(lines, "STLS")
		}
	}
	for _, l := range lines {
		ss.w.WriteString(l + "\r\n")
	}
	ss.w.WriteString(".\r\n")
}

func (ss *session) stls() {
	if ss.tls {
		ss.reply(false, "Already using TLS")
		return
	}
	if ss.tlsConf == nil {
		ss.reply(false, "STLS not available")
		return
	}
	if ss.r.Buffered() > 0 {
		// Commands pipelined after STLS would cross the TLS boundary
		// (a plaintext injection attempt); refuse them.
		ss.reply(false, "Commands pipelined after STLS")
		ss.r.Discard(ss.r.Buffered())
		return
	}
	ss.reply(true, "Begin TLS negotiation")
	if ss.w.Flush() != nil {
		return
	}
	tc, err := netserve.Handshake(ss.conn, ss.tlsConf, ss.srv.cfg.HandshakeTimeout)
	if err != nil {
		ss.srv.log.Debug("STLS handshake failed", "remote", ss.conn.RemoteAddr().String(), "err", err)
		ss.conn.Close()
		return
	}
	ss.conn = tc
	ss.r.Reset(tc)
	ss.w.Reset(tc)
	ss.tls = true
	ss.user = ""
}

func (ss *session) userCmd(name string) {
	if !ss.authAllowed() {
		ss.reply(false, "[AUTH] Plain-text login is only allowed after STLS")
		return
	}
	ss.user = name
	ss.reply(true, "Send PASS")
}

func (ss *session) passCmd(pw string) {
	if !ss.authAllowed() {
		ss.reply(false, "[AUTH] Plain-text login is only allowed after STLS")
		return
	}
	if ss.user == "" {
		ss.reply(false, "Send USER first")
		return
	}
	user := ss.user
	ss.user = ""
	ss.login(user, pw)
}

func (ss *session) authCmd(args []string) {
	if len(args) == 0 {
		// Pre-RFC 5034 clients list mechanisms this way.
		ss.reply(true, "Mechanisms follow")
		if ss.authAllowed() {
			ss.w.WriteString("PLAIN\r\n")
		}
		ss.w.WriteString(".\r\n")
		return
	}
	if !strings.EqualFold(args[0], "PLAIN") {
		ss.reply(false, "Unsupported SASL mechanism %s (PLAIN is)", args[0])
		return
	}
	if !ss.authAllowed() {
		ss.reply(false, "[AUTH] Plain-text login is only allowed after STLS")
		return
	}
	var resp string
	if len(args) == 2 {
		resp = args[1]
	} else {
		ss.w.WriteString("+ \r\n")
		if ss.w.Flush() != nil {
			return
		}
		line, err := ss.readLine(maxSASLLine)
		if err != nil {
			if errors.Is(err, errTooLong) {
				ss.reply(false, "SASL response too long")
			}
			return
		}
		resp = line
	}
	if resp == "*" {
		ss.reply(false, "AUTH cancelled")
		return
	}
	if resp == "=" {
		resp = ""
	}
	raw, err := base64.StdEncoding.DecodeString(resp)
	if err != nil {
		ss.reply(false, "Invalid base64 in SASL response")
		return
	}
	// authzid NUL authcid NUL password
	parts := strings.Split(string(raw), "\x00")
	if len(parts) != 3 || parts[1] == "" {
		ss.reply(false, "Malformed SASL PLAIN response")
		return
	}
	if parts[0] != "" && !strings.EqualFold(parts[0], parts[1]) {
		ss.reply(false, "[AUTH] Logging in as another user is not allowed")
		return
	}
	ss.login(parts[1], parts[2])
}

func (ss *session) login(user, pw string) {
	acct, err := ss.srv.au.Authenticate(ss.ctx(), ss.conn.RemoteAddr(), user, pw)
	switch {
	case errors.Is(err, auth.ErrTooManyFailures):
		ss.srv.cfg.Metrics.AuthFailure("pop3", true)
		ss.reply(false, "[SYS/TEMP] Too many failed logins from your address; try again later")
		return
	case errors.Is(err, auth.ErrBadCredentials):
		ss.srv.cfg.Metrics.AuthFailure("pop3", false)
		ss.srv.log.Info("login failed", "remote", ss.conn.RemoteAddr().String(), "user", user)
		ss.reply(false, "[AUTH] Invalid user name or password")
		return
	case errors.Is(err, auth.ErrUnavailable):
		ss.srv.log.Error("login not checked", "remote", ss.conn.RemoteAddr().String(), "user", user, "err", err)
		ss.reply(false, "[SYS/TEMP] Cannot check the login now, try again later")
		return
	case err != nil:
		ss.srv.log.Info("login failed", "remote", ss.conn.RemoteAddr().String(), "user", user, "err", err)
		ss.reply(false, "[AUTH] Invalid user name or password")
		return
	}
	switch ok, err := ss.srv.lock(ss.ctx(), acct.Address); {
	case err != nil:
		ss.srv.log.Error("locking maildrop", "account", acct.Address, "err", err)
		ss.reply(false, "[SYS/TEMP] Cannot lock the maildrop, try again later")
		return
	case !ok:
		ss.reply(false, "[IN-USE] Maildrop is locked by another POP3 session")
		return
	}
	msgs, box, err := ss.srv.st.Messages(ss.ctx(), acct.Address, "INBOX")
	if err != nil {
		ss.srv.unlock(acct.Address)
		ss.srv.log.Error("reading maildrop", "account", acct.Address, "err", err)
		ss.reply(false, "[SYS/TEMP] Cannot open the maildrop, try again later")
		return
	}
	ss.raw.LoggedIn()
	ss.account = acct.Address
	ss.msgs = msgs
	ss.uidValidity = box.UIDValidity
	ss.deleted = make([]bool, len(msgs))
	ss.state = stateTrans
	var size int64
	for _, m := range msgs {
		size += m.Size
	}
	ss.srv.log.Info("login", "remote", ss.conn.RemoteAddr().String(), "account", acct.Address, "messages", len(msgs))
	ss.reply(true, "%s has %d messages (%d octets)", acct.Address, len(msgs), size)
}

// quit enters the UPDATE state: deleted messages are expunged.
func (ss *session) quit() bool {
	if ss.state != stateTrans {
		ss.reply(true, "Yubin POP3 server signing off")
		return true
	}
	var uids []uint32
	for i, d := range ss.deleted {
		if d {
			uids = append(uids, ss.msgs[i].UID)
		}
	}
	if len(uids) > 0 {
		if _, err := ss.srv.st.Expunge(ss.ctx(), ss.account, "INBOX", uids); err != nil {
			ss.srv.log.Error("expunge at QUIT", "account", ss.account, "err", err)
			ss.reply(false, "[SYS/TEMP] Some deleted messages not removed: %v", err)
			return true
		}
	}
	left := len(ss.msgs) - len(uids)
	// The maildrop is free before the client hears +OK: a client that
	// reconnects at once (fetchmail polling, a test) must not find it
	// locked by the session it just ended.
	ss.srv.unlock(ss.account)
	ss.account = ""
	ss.reply(true, "Yubin POP3 server signing off (%d messages left)", left)
	return true
}

// send writes message i (RETR), or its header and n body lines (TOP),
// byte-stuffed with CRLF line endings, streaming from the store.
func (ss *session) send(i, n int) bool {
	m := ss.msgs[i]
	rc, _, err := ss.srv.st.OpenMessage(ss.ctx(), ss.account, "INBOX", m.UID)
	if err != nil {
		ss.reply(false, "[SYS/TEMP] Cannot read message %d: %v", i+1, err)
		return false
	}
	defer rc.Close()
	if n < 0 {
		ss.reply(true, "%d octets", m.Size)
	} else {
		ss.reply(true, "Top of message %d follows", i+1)
	}
	sw := newMessageWriter(ss.w, m.HeaderSize, n)
	if _, err := io.Copy(sw, rc); err != nil && !errors.Is(err, errTopDone) {
		// The reply has started; the only honest thing left is to close.
		ss.srv.log.Error("reading message", "account", ss.account, "uid", m.UID, "err", err)
		return true
	}
	sw.finish()
	return false
}
