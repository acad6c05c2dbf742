package imapd

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"yubin/internal/imapwire"
	"yubin/internal/netserve"
)

// Connection states (RFC 3501 3).
type connState int

const (
	stateNotAuth connState = iota
	stateAuth
	stateSelected
	stateLogout
)

// Timeouts of the command stream besides Config's.
const (
	// lineTimeout is how long the rest of a command line may take once its
	// first byte has come (a literal's bytes have their own clock).
	lineTimeout = 60 * time.Second
	// literalTimeout bounds a pause in a literal's bytes.
	literalTimeout = 5 * time.Minute
	// writeTimeout bounds one flush of responses to a client that does not
	// read.
	writeTimeout = 5 * time.Minute
	// maxBadCommands ends a session after this many BAD replies in a row.
	maxBadCommands = 20
)

// conn is one client connection: the command loop and the session's
// state.
type conn struct {
	srv  *Server
	tc   *netserve.TimedConn // the connection, above TLS
	raw  net.Conn            // below tc: the accepted connection, or TLS over it
	tls  bool
	conf *tls.Config // for STARTTLS; nil when not offered or done
	br   *bufio.Reader
	bw   *bufio.Writer
	r    *imapwire.Reader
	w    *imapwire.Writer
	log  *slog.Logger
	ctx  context.Context
	// started is when the client connected: it must log in within
	// PreAuthTimeout of it.
	started time.Time

	state   connState
	account string
	counted *userIP // the login counted against MaxUserIPConnections
	sel     *view
	// enabled are the extensions the client ENABLEd (upper case).
	enabled map[string]bool
	// bad counts BAD replies in a row.
	bad int
	// notify is what NOTIFY asked for (notify.go); nil before any NOTIFY.
	notify *notifier

	// stopping is set by Shutdown: the session ends with BYE before its
	// next command. waiting says the loop waits for a command line (so
	// Shutdown can cut that wait short).
	stopping atomic.Bool
	waiting  atomic.Bool
	// handshake is the connection a STARTTLS handshake runs on, while it
	// runs (Shutdown cuts it short).
	handshake atomic.Pointer[net.Conn]
}

// command is the command being run.
type command struct {
	tag  string
	name string // upper case; "UID FETCH" is name FETCH with uid
	uid  bool
}

// status is a command's result other than plain OK: NO or BAD (as an
// error), or OK with a response code.
type status struct {
	kind string // "OK", "NO", "BAD", "BYE"
	code string // response code without brackets, e.g. "TRYCREATE"
	text string
}

func (s *status) Error() string { return s.kind + " " + s.text }

// no is a NO reply with an optional response code (RFC 5530).
func no(code, format string, args ...any) error {
	return &status{kind: "NO", code: code, text: fmt.Sprintf(format, args...)}
}

// bad is a BAD reply.
func bad(format string, args ...any) error {
	return &status{kind: "BAD", text: fmt.Sprintf(format, args...)}
}

// okCode is an OK reply with a response code (APPENDUID, COPYUID, ...).
func okCode(code, text string) error {
	return &status{kind: "OK", code: code, text: text}
}

func newConn(s *Server, c net.Conn, isTLS bool, conf *tls.Config, loginBy time.Time) *conn {
	cn := &conn{srv: s, raw: c, tls: isTLS, conf: conf, ctx: context.Background(), started: loginBy.Add(-s.cfg.PreAuthTimeout),
		log: s.log.With("remote", c.RemoteAddr().String()), enabled: map[string]bool{}}
	cn.setConn(c, loginBy)
	return cn
}

// setConn (re)builds the reading and writing side over c.
func (c *conn) setConn(nc net.Conn, loginBy time.Time) {
	c.raw = nc
	c.tc = netserve.NewTimedConn(nc, lineTimeout, loginBy)
	c.tc.SetFarewell(loginTimeoutBye)
	c.br = bufio.NewReaderSize(c.tc, 16<<10)
	c.bw = bufio.NewWriterSize(&deadlineWriter{c: nc}, 16<<10)
	c.r = imapwire.NewReader(c.br, imapwire.Limits{})
	c.r.Continue = func() error {
		c.w.Raw("+ Ready for literal data\r\n")
		return c.w.Flush()
	}
	c.w = imapwire.NewWriter(c.bw)
	c.w.UTF8 = c.enabled["UTF8=ACCEPT"]
}

// deadlineWriter gives every write to the client writeTimeout.
type deadlineWriter struct{ c net.Conn }

func (d *deadlineWriter) Write(p []byte) (int, error) {
	d.c.SetWriteDeadline(time.Now().Add(writeTimeout))
	return d.c.Write(p)
}

// loginTimeoutBye is what a client that has not logged in by the end of
// PreAuthTimeout gets.
const loginTimeoutBye = "* BYE Autologout; not logged in in time"

// interrupt ends the session before its next command (Shutdown).
func (c *conn) interrupt() {
	c.stopping.Store(true)
	if c.waiting.Load() {
		c.tc.SetReadDeadline(time.Now())
	}
	if hc := c.handshake.Load(); hc != nil {
		(*hc).SetReadDeadline(time.Now())
	}
}

// serve runs the session: greeting, commands until LOGOUT, an error, a
// timeout or Shutdown.
func (c *conn) serve() {
	defer c.close()
	greeting := "* OK [CAPABILITY " + c.capabilities() + "] " + c.srv.cfg.Hostname + " Yubin IMAP ready\r\n"
	c.w.Raw(greeting)
	if c.w.Flush() != nil {
		return
	}
	for c.state != stateLogout {
		if !c.next() {
			return
		}
	}
}

// close ends the session's hold on the server: its login count and its
// selected mailbox; then the connection.
func (c *conn) close() {
	c.stopNotify()
	if c.counted != nil {
		c.srv.logoutFrom(*c.counted)
		c.counted = nil
	}
	if c.sel != nil {
		c.sel.close()
		c.sel = nil
	}
	c.w.Flush()
	if cw, ok := c.raw.(interface{ CloseWrite() error }); ok && c.state == stateLogout {
		// Let the client read our last words before the close resets a
		// connection with unread input.
		cw.CloseWrite()
		c.raw.SetReadDeadline(time.Now().Add(time.Second))
		io.CopyN(io.Discard, c.raw, 64<<10)
	}
	c.raw.Close()
}

// bye writes an untagged BYE and flushes.
func (c *conn) bye(text string) {
	c.w.Raw("* BYE " + text + "\r\n")
	c.w.Flush()
	c.state = stateLogout
}

// next reads and runs one command; false ends the session.
func (c *conn) next() bool {
	if c.stopping.Load() {
		c.bye("Server shutting down")
		return false
	}
	idle := c.srv.cfg.IdleTimeout
	if c.state == stateNotAuth {
		idle = c.srv.cfg.PreAuthTimeout
	}
	c.tc.SetReadDeadline(time.Now().Add(idle))
	c.waiting.Store(true)
	if c.stopping.Load() { // Shutdown came between the check and waiting
		c.waiting.Store(false)
		c.bye("Server shutting down")
		return false
	}
	if err := c.awaitCommand(); err != nil { // NOTIFY's notifications meanwhile
		c.waiting.Store(false)
		return false
	}
	err := c.r.Begin()
	c.waiting.Store(false)
	switch {
	case err == imapwire.ErrTooLong:
		return c.reply(droppedTag(c.r.Dropped()), "", &status{kind: "BAD", text: "Command line too long"})
	case errors.Is(err, imapwire.ErrEndless):
		c.bye("Command line too long")
		return false
	case err != nil:
		var ne net.Error
		switch {
		case c.stopping.Load():
			c.bye("Server shutting down")
		case errors.As(err, &ne) && ne.Timeout():
			if c.state != stateNotAuth {
				c.bye("Autologout; idle for too long")
			}
			// Before login, TimedConn said goodbye at the login deadline.
		}
		return false
	}
	tag, err := c.r.Tag()
	if err != nil {
		c.r.Discard()
		return c.reply("*", "", &status{kind: "BAD", text: "Invalid tag"})
	}
	cmd := &command{tag: tag}
	if err := c.r.SP(); err != nil {
		c.r.Discard()
		return c.reply(tag, "", &status{kind: "BAD", text: "Missing command"})
	}
	name, err := c.r.Atom()
	if err != nil {
		c.r.Discard()
		return c.reply(tag, "", &status{kind: "BAD", text: "Missing command"})
	}
	cmd.name = strings.ToUpper(name)
	if cmd.name == "UID" {
		cmd.uid = true
		if c.r.SP() != nil {
			c.r.Discard()
			return c.reply(tag, "", bad("UID needs a command"))
		}
		name, err := c.r.Atom()
		if err != nil {
			c.r.Discard()
			return c.reply(tag, "", bad("UID needs a command"))
		}
		cmd.name = strings.ToUpper(name)
	}
	return c.run(cmd)
}

// run dispatches a command and writes its tagged reply.
func (c *conn) run(cmd *command) bool {
	spec, ok := commands[cmd.name]
	if ok && cmd.uid && !spec.uid {
		ok = false
	}
	if !ok {
		c.r.Discard()
		return c.reply(cmd.tag, cmd.name, bad("Unknown command %s", cmd.name))
	}
	if !spec.states.has(c.state) {
		c.r.Discard()
		if c.state == stateNotAuth && spec.states.has(stateAuth) {
			return c.reply(cmd.tag, cmd.name, bad("Log in first"))
		}
		if c.state == stateAuth && spec.states.has(stateSelected) {
			return c.reply(cmd.tag, cmd.name, bad("No mailbox selected"))
		}
		return c.reply(cmd.tag, cmd.name, bad("%s is not valid in this state", cmd.name))
	}
	err := spec.run(c, cmd)
	switch {
	case errors.Is(c.r.Err(), imapwire.ErrEndless):
		c.bye("Command line too long")
		return false
	case c.r.Err() != nil:
		return false // the client is gone
	case err == errReplied:
		return true
	case err == errHungUp:
		return false
	}
	var st *status
	if err != nil && !errors.As(err, &st) {
		var se *imapwire.SyntaxError
		var tb *imapwire.TooBigError
		switch {
		case errors.As(err, &se):
			st = &status{kind: "BAD", text: se.Msg}
		case errors.Is(err, imapwire.ErrTooLong):
			st = &status{kind: "BAD", text: "Command line too long"}
		case errors.As(err, &tb):
			st = &status{kind: "NO", code: "TOOBIG", text: tb.Error()}
			if cmd.name != "APPEND" {
				st.kind, st.code = "BAD", ""
			}
		case c.w.Err() != nil:
			return false
		default:
			c.log.Error("command failed", "command", cmd.name, "err", err)
			st = &status{kind: "NO", code: "SERVERBUG", text: "Internal error"}
		}
	}
	if st != nil && st.kind != "OK" {
		c.r.Discard()
	}
	if st == nil || st.kind != "BAD" {
		// The command's arguments were read to their end; updates about
		// the selected mailbox go before the tagged reply (RFC 3501 7).
		if c.sel != nil && c.state == stateSelected && spec.updates {
			err := c.syncSelected(!spec.noExpunge || cmd.uid)
			if err == nil {
				err = c.searchUpdates()
			}
			if err != nil && c.w.Err() != nil {
				return false
			}
		}
	}
	if st != nil {
		err = st
	}
	return c.reply(cmd.tag, cmd.name, err)
}

// reply writes the tagged reply of a command (err nil: OK), and flushes.
func (c *conn) reply(tag, name string, err error) bool {
	st := &status{kind: "OK"}
	if err != nil {
		if !errors.As(err, &st) {
			st = &status{kind: "NO", code: "SERVERBUG", text: "Internal error"}
		}
	}
	if st.kind == "BAD" {
		c.bad++
	} else {
		c.bad = 0
	}
	text := st.text
	if text == "" {
		text = name + " completed"
		if name == "" {
			text = "completed"
		}
	}
	if st.kind == "BYE" {
		tag = "*"
		c.state = stateLogout
	}
	c.w.Raw(tag).SP().Raw(st.kind).SP()
	if st.code != "" {
		c.w.Raw("[").Raw(st.code).Raw("] ")
	}
	c.w.Raw(sanitize(text)).CRLF()
	if c.bad >= maxBadCommands {
		c.bye("Too many invalid commands")
		return false
	}
	return c.w.Flush() == nil
}

// droppedTag is the tag a dropped line starts with, or "*".
func droppedTag(b []byte) string {
	i := 0
	for i < len(b) && i < 64 && isTagChar(b[i]) {
		i++
	}
	if i == 0 || i >= len(b) || b[i] != ' ' {
		return "*"
	}
	return string(b[:i])
}

func isTagChar(c byte) bool {
	switch c {
	case '(', ')', '{', ' ', '%', '*', '"', '\\', '+':
		return false
	}
	return c > 0x20 && c < 0x7f
}

// sanitize keeps a reply's text on one line.
func sanitize(s string) string {
	if strings.ContainsAny(s, "\r\n") {
		s = strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	}
	return s
}

// untagged writes "* " and the line (which must not end in CRLF).
func (c *conn) untagged(line string) {
	c.w.Raw("* ").Raw(line).CRLF()
}

// stateSet is a set of states a command is valid in.
type stateSet uint8

func states(ss ...connState) stateSet {
	var s stateSet
	for _, st := range ss {
		s |= 1 << st
	}
	return s
}

func (s stateSet) has(st connState) bool { return s&(1<<st) != 0 }

var (
	anyState     = states(stateNotAuth, stateAuth, stateSelected)
	notAuthState = states(stateNotAuth)
	authState    = states(stateAuth, stateSelected)
	selState     = states(stateSelected)
)

// commandSpec says how a command runs.
type commandSpec struct {
	run    func(c *conn, cmd *command) error
	states stateSet
	uid    bool // has a UID form
	// updates: send the selected mailbox's changes before the tagged
	// reply; noExpunge: but no EXPUNGE (FETCH, STORE, SEARCH without UID:
	// RFC 3501 7.4.1).
	updates   bool
	noExpunge bool
}

// commands is every command the server knows, by name. Each file of
// commands registers its own in an init function.
var commands = map[string]commandSpec{}

func register(name string, spec commandSpec) {
	if _, dup := commands[name]; dup {
		panic("imapd: command " + name + " registered twice")
	}
	commands[name] = spec
}

// arg reads the space before an argument and the argument with read.
func arg[T any](c *conn, read func() (T, error)) (T, error) {
	if err := c.r.SP(); err != nil {
		var zero T
		return zero, err
	}
	return read()
}

// mailboxArg reads a mailbox name argument (after its space): an astring
// in modified UTF-7 (or UTF-8 once UTF8=ACCEPT is enabled), decoded.
func (c *conn) mailboxArg() (string, error) {
	s, err := arg(c, c.r.AString)
	if err != nil {
		return "", err
	}
	if c.enabled["UTF8=ACCEPT"] {
		return canonical(s), nil
	}
	name, err := decodeMailboxName(s)
	if err != nil {
		return "", no("CANNOT", "Invalid mailbox name: %v", err)
	}
	return canonical(name), nil
}

// mailboxName writes a mailbox name as the client reads it.
func (c *conn) mailboxName(name string) {
	if name == "INBOX" {
		c.w.Raw("INBOX")
		return
	}
	if c.enabled["UTF8=ACCEPT"] {
		c.w.String(name)
		return
	}
	c.w.String(encodeMailboxName(name))
}

// The connection writes the selected mailbox's updates (view.sync).

func (c *conn) WriteExpunge(seq, uid uint32) error {
	c.searchExpunged(seq, uid)
	if c.enabled["QRESYNC"] {
		c.w.Raw("* VANISHED ").Num(uid).CRLF()
	} else {
		c.w.Raw("* ").Num(seq).Raw(" EXPUNGE").CRLF()
	}
	return c.w.Err()
}

// WriteNumMessages writes EXISTS and, when new messages came, RECENT: a
// read-write session claims the new messages as its \Recent ones.
func (c *conn) WriteNumMessages(n uint32) error {
	c.w.Raw("* ").Num(n).Raw(" EXISTS").CRLF()
	if v := c.sel; v != nil {
		if !v.readOnly {
			first, mbox, err := c.srv.st.ClaimRecent(c.ctx, c.account, v.name)
			if err == nil && mbox.UIDValidity == v.uidValidity {
				v.addRecent(first, mbox.UIDNext)
			}
		}
		c.w.Raw("* ").Num(v.recentCount()).Raw(" RECENT").CRLF()
	}
	return c.w.Err()
}

func (c *conn) WriteMessageFlags(seq, uid uint32, flags []string, modseq uint64) error {
	c.newKeywords(flags)
	c.sel.tell(uid, modseq)
	c.searchTouched(uid)
	c.w.Raw("* ").Num(seq).Raw(" FETCH (UID ").Num(uid).Raw(" FLAGS ")
	c.flagList(c.withRecent(uid, flags))
	if c.enabled["CONDSTORE"] && modseq > 0 {
		c.w.Raw(" MODSEQ (").Num64(modseq).Raw(")")
	}
	c.w.Raw(")").CRLF()
	return c.w.Err()
}

// withRecent adds \Recent to a message's flags when it is recent in the
// session.
func (c *conn) withRecent(uid uint32, flags []string) []string {
	if c.sel != nil && c.sel.isRecent(uid) {
		return append(flags[:len(flags):len(flags)], `\Recent`)
	}
	return flags
}

// isRecent reports whether a message of the selected mailbox is \Recent
// in this session.
func (c *conn) isRecent(uid uint32) bool { return c.sel != nil && c.sel.isRecent(uid) }

// flagList writes a parenthesized list of flags.
func (c *conn) flagList(flags []string) {
	c.w.Open()
	for i, f := range flags {
		if i > 0 {
			c.w.SP()
		}
		c.w.Raw(f)
	}
	c.w.Close()
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// sortedKeys returns a set's members in order.
func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
