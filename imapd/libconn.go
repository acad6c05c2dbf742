package imapd

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// libConn is the client's connection as the library sees it: the net.Conn
// handed to it through libLn, which it reads commands from and writes
// responses to. It follows the client's command stream just far enough to
// know where each command starts — lines, literals ({n} and {n+}), IDLE's
// DONE, AUTHENTICATE's response — and serves the commands the library
// cannot dispatch (GETQUOTA and GETQUOTAROOT, RFC 9208) itself. It only
// does so when the library is waiting for the next command: the library
// writes and flushes every response before it reads the next command, so
// our responses never interleave with its own.
//
// It hands the library only command lines the library reads as the lines
// they are (see scanLine and lineLimit): otherwise the library's parse of
// a line would stop short of its end, or run on into the next one, and
// the rest would be read as commands — a line cut at the library's 50 KiB
// limit ran its tail as a new command. A line that breaks these rules is
// answered BAD (and dropped to its end) when it starts a command, and ends
// the connection with BYE in the middle of one.
//
// A command whose mailbox argument is a literal is held back until its
// mailbox arguments have come (answering the client's synchronizing
// literal itself, and handing the library a non-synchronizing one), so
// that a bad name gets BAD with a reason instead of the library's
// "internal server error".
//
// Whether the library accepted a synchronizing literal is seen on the
// write side: it either sends a "+" continuation (the literal follows) or
// a tagged reply (the client will not send it).
//
// On the write side it drops the library's greeting when the connection
// was handed over after STARTTLS (the client already had one), and adds
// QUOTA to the capability lists the library sends once logged in. It
// also holds back writes during a FETCH (cork), and ends the session with
// BYE at its next command on Shutdown (interrupt).
type libConn struct {
	net.Conn
	srv  *Server
	sess *session // set by the library's NewSession

	// Read side: only the library's command goroutine reads.
	buf        []byte // buf[r:w]: read from Conn, not handed over yet
	r, w       int
	held       []byte // a held-back command, to hand over before anything else
	pass       int    // bytes at buf[r:] classified and ready to hand over
	lit        int64  // literal bytes to hand over as they are
	syncWait   bool   // waiting to learn whether a synchronizing literal was accepted
	syncLit    int64
	discard    int64 // bytes of a refused command's literal to drop
	discardCmd bool  // drop lines until the refused command ends
	cmdStart   bool  // the next line starts a command
	idle       bool  // the next line ends IDLE
	saslLine   bool  // the next line is an AUTHENTICATE response
	cmdLen     int   // bytes of the command handed over so far, literals aside
	hold       *heldCommand
	skip       bool   // dropping a line up to its end
	skipped    int64  // bytes of it dropped so far
	skipTail   []byte // its last bytes (a literal announcement)
	skipReply  string // the reply when it has ended, if any
	rerr       error

	// Write side: the library's goroutine, its IDLE goroutine, and us.
	wmu          sync.Mutex
	dropGreeting bool
	awaitCont    bool // next write tells whether the literal was accepted
	sawCont      bool
	capTag       string // add QUOTA to capability lists until this tag's reply
	curTag       string // tag of the command being read
	tagDone      bool   // the library has replied to curTag
	ended        bool   // we said BYE: the library's writes go nowhere

	// Write coalescing during FETCH (cork): writes gather in wbuf and go
	// out in TLS-record-sized pieces; the library's write deadlines are
	// kept in wdl and applied when the data goes out.
	corked bool
	wbuf   []byte
	wdl    time.Time

	stopping  atomic.Bool
	waiting   atomic.Bool // blocked reading the first byte of a command
	closeOnce sync.Once
	closed    chan struct{} // closed by Close
}

// heldCommand is a command held back until its mailbox arguments are in.
type heldCommand struct {
	tag, cmd string
	b        []byte // the command as the library is to see it
	args     int    // where its arguments start in b
	lit      int64  // bytes of a literal still to come into b
}

const (
	// maxCommand is the most a command may have outside its literals: the
	// library's own limit (its decoder's MaxSize), counted as it counts.
	maxCommand = 50 << 10
	// maxRawLine bounds the lines the library reads whole with its 4 KiB
	// bufio.Reader (IDLE's DONE, AUTHENTICATE's response): a longer one
	// it would read in part, and take the rest for commands.
	maxRawLine = 4000
	// maxSkippedLine is how much of an over-long line is dropped, waiting
	// for its end, before the connection is closed.
	maxSkippedLine = 1 << 20
	// maxNameLiteral is the largest literal the library takes as a
	// mailbox name (or any string but APPEND's message).
	maxNameLiteral = 4096
	// literalTail is the longest literal announcement: "{" 19 digits "+}" CRLF.
	literalTail = 24
)

// extraCaps are the capabilities served by libConn.
const extraCaps = " QUOTA QUOTA=RES-STORAGE"

func newLibConn(s *Server, c net.Conn, afterSTARTTLS bool, prefix []byte) *libConn {
	e := &libConn{Conn: c, srv: s, cmdStart: true, dropGreeting: afterSTARTTLS, closed: make(chan struct{})}
	if len(prefix) > 0 {
		e.buf = make([]byte, max(4096, len(prefix)))
		e.w = copy(e.buf, prefix)
	}
	return e
}

func (e *libConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		e.wmu.Lock()
		done := e.tagDone
		e.tagDone = false
		e.wmu.Unlock()
		if done {
			e.commandDone()
		}
		switch {
		case len(e.held) > 0:
			n := copy(p, e.held)
			e.held = e.held[n:]
			return n, nil
		case e.pass > 0:
			n := copy(p, e.buf[e.r:e.r+e.pass])
			e.r += n
			e.pass -= n
			return n, nil
		case e.lit > 0:
			if e.r < e.w {
				n := int(min(int64(e.w-e.r), e.lit, int64(len(p))))
				copy(p, e.buf[e.r:e.r+n])
				e.r += n
				e.lit -= int64(n)
				return n, nil
			}
			n, err := e.Conn.Read(p[:min(int64(len(p)), e.lit)])
			e.lit -= int64(n)
			return n, err
		case e.discard > 0:
			if e.r == e.w {
				if err := e.fill(); err != nil {
					return 0, err
				}
			}
			k := int(min(int64(e.w-e.r), e.discard))
			e.r += k
			e.discard -= int64(k)
			continue
		case e.hold != nil && e.hold.lit > 0:
			if e.r == e.w {
				if err := e.fill(); err != nil {
					return 0, err
				}
			}
			k := int(min(int64(e.w-e.r), e.hold.lit))
			e.hold.b = append(e.hold.b, e.buf[e.r:e.r+k]...)
			e.r += k
			e.hold.lit -= int64(k)
			continue
		case e.skip:
			if err := e.skipLine(); err != nil {
				return 0, err
			}
			continue
		case e.syncWait:
			e.wmu.Lock()
			accepted := e.sawCont && !e.awaitCont
			e.awaitCont = false
			e.wmu.Unlock()
			e.syncWait = false
			if accepted {
				e.lit = e.syncLit // the command goes on after it
			} else {
				e.cmdStart = true // refused: the client sends a new command
			}
			continue
		}
		if e.rerr != nil {
			return 0, e.rerr
		}
		if e.discardCmd {
			e.startSkip("")
			continue
		}
		limit := e.lineLimit()
		i := bytes.IndexByte(e.buf[e.r:e.w], '\n')
		switch {
		case i >= 0 && i < limit:
			e.classify(i + 1)
		case i >= 0 || e.w-e.r > limit:
			e.tooLong()
		default:
			if err := e.fill(); err != nil {
				e.r = e.w // a line without its end is no command
				return 0, err
			}
		}
	}
}

// lineLimit is the longest line that may come next.
func (e *libConn) lineLimit() int {
	switch {
	case e.idle || e.saslLine:
		return maxRawLine
	case e.cmdStart:
		return maxCommand
	}
	return maxCommand - e.cmdLen
}

// commandDone is called when the library has written the tagged reply to
// the command being read. If the command is not over as far as the stream
// goes — the library refused it before its end, say a literal it would
// not take — the rest of it is dropped rather than read as new commands.
func (e *libConn) commandDone() {
	if e.idle || e.saslLine {
		// IDLE refused, or AUTHENTICATE over without a response line.
		e.idle, e.saslLine, e.cmdStart = false, false, true
		return
	}
	if e.syncWait {
		return // a literal refusal the syncWait logic handles
	}
	e.r += e.pass
	e.pass = 0
	e.held = nil
	if e.cmdStart {
		return
	}
	e.discard += e.lit
	e.lit = 0
	e.discardCmd = true
}

// fill reads more from the connection into buf.
func (e *libConn) fill() error {
	if e.buf == nil {
		e.buf = make([]byte, 4096)
	}
	if e.r > 0 {
		e.w = copy(e.buf, e.buf[e.r:e.w])
		e.r = 0
	}
	if e.w == len(e.buf) {
		// Lines are at most maxCommand long: tooLong catches them first.
		nb := make([]byte, 2*len(e.buf))
		copy(nb, e.buf[:e.w])
		e.buf = nb
	}
	atStart := (e.cmdStart || e.idle) && e.w == 0 // between commands, or in IDLE
	if atStart {
		e.waiting.Store(true)
		if e.stopping.Load() {
			e.waiting.Store(false)
			e.bye()
			return net.ErrClosed
		}
	}
	n, err := e.Conn.Read(e.buf[e.w:])
	e.waiting.Store(false)
	e.w += n
	if n > 0 {
		return nil
	}
	if err != nil && atStart && e.stopping.Load() {
		e.bye()
		return net.ErrClosed
	}
	return err
}

func (e *libConn) bye() {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	e.flushLocked()
	e.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	e.Conn.Write([]byte("* BYE Server shutting down\r\n"))
}

// classify looks at the next complete line, of n bytes at buf[r:], that
// is not too long.
func (e *libConn) classify(n int) {
	if e.idle || e.saslLine {
		// A line the library reads whole, not a command.
		e.idle, e.saslLine = false, false
		e.cmdStart = true
		e.pass = n
		return
	}
	li := scanLine(e.buf[e.r : e.r+n])
	switch {
	case e.hold != nil:
		e.holdLine(n, li)
	case e.cmdStart:
		e.command(n, li)
	case li.bad != "":
		e.end(li.bad)
	default: // the library is reading this command
		e.cmdLen += n
		e.pass = n
		e.follow(li)
	}
}

// command looks at a line that starts a command.
func (e *libConn) command(n int, li lineInfo) {
	line := e.buf[e.r : e.r+n]
	tag, cmd, args := splitCommand(line)
	e.cmdStart = false
	e.cmdLen = 0
	e.wmu.Lock()
	e.curTag, e.tagDone = tag, false
	e.wmu.Unlock()
	if li.bad != "" {
		e.refuse(n, tag+" BAD "+li.bad, li)
		return
	}
	more, err := checkMailboxArgs(cmd, args)
	switch {
	case err != nil:
		// Refuse it here, with whatever literal the client sends with it.
		e.refuse(n, tag+" BAD Invalid mailbox name: "+err.Error(), li)
	case more:
		end := len(bytes.TrimRight(line, "\r\n"))
		e.hold = &heldCommand{tag: tag, cmd: cmd, args: end - len(args)}
		e.holdLiteral(n, li)
	default:
		e.dispatch(tag, cmd, args, li, n)
	}
}

// holdLine takes the next line of a held-back command.
func (e *libConn) holdLine(n int, li lineInfo) {
	h := e.hold
	if li.bad != "" {
		e.refuse(n, h.tag+" BAD "+li.bad, li)
		return
	}
	args := string(h.b[h.args:]) + string(bytes.TrimRight(e.buf[e.r:e.r+n], "\r\n"))
	more, err := checkMailboxArgs(h.cmd, args)
	switch {
	case err != nil:
		e.refuse(n, h.tag+" BAD Invalid mailbox name: "+err.Error(), li)
	case more:
		e.holdLiteral(n, li)
	default:
		h.b = append(h.b, e.buf[e.r:e.r+n]...)
		e.cmdLen += n
		e.r += n
		e.hold = nil
		e.held = h.b
		e.dispatch(h.tag, h.cmd, args, li, 0)
	}
}

// holdLiteral holds the line of n bytes, which announces a literal that is
// a mailbox argument, and asks for the literal: the library is to get it
// as a non-synchronizing one.
func (e *libConn) holdLiteral(n int, li lineInfo) {
	h := e.hold
	line := bytes.TrimRight(e.buf[e.r:e.r+n], "\r\n")
	if !li.sync {
		line = bytes.TrimSuffix(line, []byte("+}")) // made one again below
	} else {
		line = bytes.TrimSuffix(line, []byte("}"))
	}
	switch {
	case li.lit > maxNameLiteral:
		e.refuse(n, fmt.Sprintf("%s NO [TOOBIG] Literals are limited to %d bytes for this command", h.tag, maxNameLiteral), li)
		return
	case e.cmdLen+len(line)+4 > maxCommand:
		e.refuse(n, h.tag+" BAD Command line too long", li)
		return
	}
	h.b = append(append(h.b, line...), "+}\r\n"...)
	e.cmdLen += len(line) + 4
	e.r += n
	h.lit = li.lit
	if li.sync {
		if err := e.reply("+ Ready for literal data"); err != nil {
			e.rerr = err
		}
	}
}

// dispatch hands a command over to the library — its last line of n bytes
// at buf[r:] (n = 0: the command is held) — or answers it here.
func (e *libConn) dispatch(tag, cmd, args string, li lineInfo, n int) {
	loggedIn := e.sess != nil && e.sess.loggedIn()
	if !li.hasLit && loggedIn {
		switch cmd {
		case "GETQUOTA", "GETQUOTAROOT":
			e.r += n
			e.held = nil
			e.cmdStart = true
			if err := e.serveExt(tag, cmd, args); err != nil {
				e.rerr = err
			}
			return
		}
	}
	if cmd == "APPEND" && li.hasLit && loggedIn && li.lit <= e.srv.cfg.AppendLimit && !e.srv.cfg.Spool.Fits(li.lit) {
		// Refused before the client sends it (or, LITERAL+, while it
		// comes): it would not fit into the spool's budget now.
		e.held = nil
		e.refuse(n, tag+" NO [LIMIT] "+errAppendBudget.Text, li)
		return
	}
	switch cmd {
	case "CAPABILITY", "LOGIN", "AUTHENTICATE":
		e.wmu.Lock()
		e.capTag = tag
		e.wmu.Unlock()
	}
	switch {
	case cmd == "IDLE":
		e.idle = !li.hasLit
	case cmd == "AUTHENTICATE" && !strings.Contains(args, " "):
		e.saslLine = !li.hasLit // no initial response: one line follows
	}
	e.cmdLen += n
	e.pass = n
	e.follow(li)
}

// follow sets up what comes after a line handed over.
func (e *libConn) follow(li lineInfo) {
	switch {
	case !li.hasLit:
		if !e.idle && !e.saslLine {
			e.cmdStart = true
		}
	case li.sync:
		e.syncWait = true
		e.syncLit = li.lit
		e.wmu.Lock()
		e.awaitCont = true
		e.sawCont = false
		e.wmu.Unlock()
	default:
		e.lit = li.lit
	}
}

// refuse answers the command whose line of n bytes at buf[r:] was the last
// one read (n = 0: already taken) with resp, and drops the rest of it.
func (e *libConn) refuse(n int, resp string, li lineInfo) {
	e.r += n
	e.hold = nil
	e.dropRest(li)
	if err := e.reply(resp); err != nil {
		e.rerr = err
	}
}

// dropRest drops what the client sends after a refused command's line:
// its non-synchronizing literal, and the rest of the command after it.
// (It sends no synchronizing literal: it gets no "+".)
func (e *libConn) dropRest(li lineInfo) {
	if li.hasLit && !li.sync {
		e.discard, e.discardCmd, e.cmdStart = li.lit, true, false
		return
	}
	e.discardCmd, e.cmdStart = false, true
}

// tooLong handles a line longer than lineLimit: BAD for a command the
// library has seen nothing of (the line is dropped up to its end), BYE in
// the middle of one.
func (e *libConn) tooLong() {
	var tag string
	switch {
	case e.idle || e.saslLine || (!e.cmdStart && e.hold == nil):
		e.end("Command line too long")
		return
	case e.hold != nil:
		tag = e.hold.tag
	default:
		t, _, _ := bytes.Cut(e.buf[e.r:e.w], []byte(" "))
		if tag = string(t); !validTag(tag) {
			tag = "*"
		}
	}
	e.hold = nil
	e.cmdStart = false
	e.startSkip(tag + " BAD Command line too long")
}

func (e *libConn) startSkip(reply string) {
	e.skip, e.skipped, e.skipTail, e.skipReply = true, 0, e.skipTail[:0], reply
}

// skipLine drops the line being skipped up to its end; then it answers
// skipReply, if any, and drops the rest of the command.
func (e *libConn) skipLine() error {
	if e.r == e.w {
		return e.fill()
	}
	chunk := e.buf[e.r:e.w]
	i := bytes.IndexByte(chunk, '\n')
	if i >= 0 {
		chunk = chunk[:i+1]
	}
	e.r += len(chunk)
	e.skipped += int64(len(chunk))
	if len(chunk) >= literalTail {
		e.skipTail = append(e.skipTail[:0], chunk[len(chunk)-literalTail:]...)
	} else {
		e.skipTail = append(e.skipTail, chunk...)
		if k := len(e.skipTail) - literalTail; k > 0 {
			e.skipTail = append(e.skipTail[:0], e.skipTail[k:]...)
		}
	}
	if i < 0 {
		if e.skipped > maxSkippedLine {
			e.end("Command line too long")
			return e.rerr
		}
		return nil
	}
	e.skip = false
	var li lineInfo
	li.lit, li.sync, li.hasLit = literalAtEnd(e.skipTail)
	if e.skipReply != "" {
		if err := e.reply(e.skipReply); err != nil {
			e.rerr = err
		}
	}
	e.dropRest(li)
	return nil
}

// end says BYE and ends the connection: from here on the library reads
// an error and its writes go nowhere.
func (e *libConn) end(why string) {
	e.reply("* BYE " + why)
	e.wmu.Lock()
	e.ended = true
	e.wmu.Unlock()
	if e.srv.log != nil {
		e.srv.log.Info("closing connection", "remote", e.RemoteAddr().String(), "why", why)
	}
	e.rerr = fmt.Errorf("%w: %s", net.ErrClosed, why)
	e.held, e.pass, e.lit, e.discard, e.syncWait, e.hold, e.skip = nil, 0, 0, 0, false, nil, false
}

// lineInfo is what libConn needs to know of a command line.
type lineInfo struct {
	lit    int64 // the size of the literal announced at its end
	hasLit bool
	sync   bool   // a synchronizing literal
	bad    string // why the library must not see it; "" if it may
}

// scanLine looks at a command line (with its LF): the literal it
// announces, and whether the library reads it as the line it is. It does
// not if a CR is in its middle (the library can stop at that CR and read
// the rest as a new command) or a quoted string is left open (the library
// reads on into the next line).
func scanLine(line []byte) lineInfo {
	var li lineInfo
	li.lit, li.sync, li.hasLit = literalAtEnd(line)
	body := bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
	quoted := false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case c == '\r':
			li.bad = "Syntax error: CR in the middle of a line"
			return li
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		}
	}
	if quoted {
		li.bad = "Syntax error: quoted string without its end"
	}
	return li
}

// splitCommand returns a command line's tag, upper-case command name (the
// name after UID for UID commands) and arguments without CRLF.
func splitCommand(line []byte) (tag, cmd, args string) {
	s := strings.TrimRight(string(line), "\r\n")
	tag, rest, _ := strings.Cut(s, " ")
	cmd, args, _ = strings.Cut(rest, " ")
	cmd = strings.ToUpper(cmd)
	if cmd == "UID" {
		cmd, args, _ = strings.Cut(args, " ")
		cmd = strings.ToUpper(cmd)
	}
	return tag, cmd, args
}

// literalAtEnd finds a literal announcement ("{n}", "{n+}", "~{n}") at the
// end of a line.
func literalAtEnd(line []byte) (size int64, sync, ok bool) {
	l := bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
	if len(l) < 3 || l[len(l)-1] != '}' {
		return 0, false, false
	}
	open := bytes.LastIndexByte(l, '{')
	if open < 0 {
		return 0, false, false
	}
	num := l[open+1 : len(l)-1]
	sync = true
	if len(num) > 0 && num[len(num)-1] == '+' {
		num = num[:len(num)-1]
		sync = false
	}
	if len(num) == 0 || len(num) > 19 {
		return 0, false, false
	}
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, false, false
		}
	}
	size, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil {
		return 0, false, false
	}
	return size, sync, true
}

func (e *libConn) Write(p []byte) (int, error) {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	n := len(p)
	if e.ended {
		return n, nil
	}
	if e.dropGreeting {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			return n, nil
		}
		e.dropGreeting = false
		p = p[i+1:]
		if len(p) == 0 {
			return n, nil
		}
	}
	if e.awaitCont {
		e.awaitCont = false
		e.sawCont = p[0] == '+'
	}
	if e.curTag != "" && len(p) > len(e.curTag) && p[len(e.curTag)] == ' ' && string(p[:len(e.curTag)]) == e.curTag {
		e.tagDone = true
		e.curTag = ""
	}
	if e.capTag != "" {
		p = e.addCaps(p)
	}
	if e.corked {
		if len(e.wbuf)+len(p) > corkSize {
			if err := e.flushLocked(); err != nil {
				return 0, err
			}
		}
		if len(p) < corkSize {
			if e.wbuf == nil {
				e.wbuf = corkPool.Get().(*[corkSize]byte)[:0]
			}
			e.wbuf = append(e.wbuf, p...)
			return n, nil
		}
		// Big (a literal): straight out, under the deadline asked for.
		e.Conn.SetWriteDeadline(e.corkDeadline())
	}
	if _, err := e.Conn.Write(p); err != nil {
		return 0, err
	}
	return n, nil
}

// corkSize is the most a corked connection holds back: one full TLS
// record.
const corkSize = 16 << 10

var corkPool = sync.Pool{New: func() any { return new([corkSize]byte) }}

// cork holds back writes until the buffer is full or uncork: the library
// flushes after every response, which over TLS costs a record and a
// write(2) each, for every message of a big FETCH.
func (e *libConn) cork() {
	e.wmu.Lock()
	e.corked = true
	e.wmu.Unlock()
}

// uncork writes what was held back and restores the last write deadline
// the library asked for.
func (e *libConn) uncork() error {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	if !e.corked {
		return nil
	}
	err := e.flushLocked()
	e.corked = false
	e.Conn.SetWriteDeadline(e.wdl)
	e.wdl = time.Time{}
	return err
}

// flushLocked writes out the held-back data; it returns the buffer to
// the pool.
func (e *libConn) flushLocked() error {
	if e.wbuf == nil {
		return nil
	}
	var err error
	if len(e.wbuf) > 0 {
		e.Conn.SetWriteDeadline(e.corkDeadline())
		_, err = e.Conn.Write(e.wbuf)
	}
	corkPool.Put((*[corkSize]byte)(e.wbuf[:corkSize]))
	e.wbuf = nil
	return err
}

// corkDeadline is the deadline for writing held-back data: the one the
// library set for the response in progress, or the library's usual 30 s
// between responses.
func (e *libConn) corkDeadline() time.Time {
	if e.wdl.IsZero() {
		return time.Now().Add(30 * time.Second)
	}
	return e.wdl
}

// SetWriteDeadline is the library's per-response deadline; while corked
// it applies when the data goes out.
func (e *libConn) SetWriteDeadline(t time.Time) error {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	if e.corked {
		e.wdl = t
		return nil
	}
	return e.Conn.SetWriteDeadline(t)
}

// addCaps adds extraCaps to a capability list the library writes for a
// logged-in session: "* CAPABILITY ..." or "tag OK [CAPABILITY ...] ...".
func (e *libConn) addCaps(p []byte) []byte {
	tagged := []byte(e.capTag + " OK [CAPABILITY ")
	isTagged := bytes.HasPrefix(p, tagged)
	if bytes.HasPrefix(p, []byte(e.capTag+" ")) {
		e.capTag = "" // the command is done
	}
	if e.sess == nil || !e.sess.loggedIn() {
		return p
	}
	var at int
	switch {
	case isTagged:
		at = bytes.IndexByte(p, ']')
	case bytes.HasPrefix(p, []byte("* CAPABILITY ")):
		at = bytes.Index(p, []byte("\r\n"))
	default:
		return p
	}
	if at < 0 || bytes.Contains(p[:at], []byte(" QUOTA")) {
		return p
	}
	q := make([]byte, 0, len(p)+len(extraCaps))
	q = append(q, p[:at]...)
	q = append(q, extraCaps...)
	return append(q, p[at:]...)
}

// serveExt answers a command the library does not know.
func (e *libConn) serveExt(tag, cmd, args string) error {
	return e.reply(e.sess.quotaCommand(tag, cmd, args)...)
}

// reply writes response lines of our own, between the library's.
func (e *libConn) reply(lines ...string) error {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	if err := e.flushLocked(); err != nil {
		return err
	}
	e.Conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err := e.Conn.Write([]byte(strings.Join(lines, "\r\n") + "\r\n"))
	e.Conn.SetWriteDeadline(time.Time{})
	return err
}

// SetReadDeadline caps the library's read deadlines (35 minutes when
// logged in) at the configured autologout time.
func (e *libConn) SetReadDeadline(t time.Time) error {
	if !t.IsZero() {
		if limit := time.Now().Add(e.srv.cfg.IdleTimeout); t.After(limit) {
			t = limit
		}
	}
	return e.Conn.SetReadDeadline(t)
}

func (e *libConn) SetDeadline(t time.Time) error {
	e.SetWriteDeadline(t)
	return e.SetReadDeadline(t)
}

// interrupt ends the session at its next command, with BYE.
func (e *libConn) interrupt() {
	e.stopping.Store(true)
	if e.waiting.Load() {
		e.Conn.SetReadDeadline(time.Now())
	}
}

func (e *libConn) Close() error {
	e.wmu.Lock()
	ended := e.ended
	e.wmu.Unlock()
	if cw, ok := e.Conn.(interface{ CloseWrite() error }); ok && ended {
		// What the client sent after the line we ended on is unread:
		// closing now would reset the connection, and the client might
		// lose our BYE. End our side, then read what comes (a little
		// while, a little of it).
		cw.CloseWrite()
		e.Conn.SetReadDeadline(time.Now().Add(time.Second))
		io.CopyN(io.Discard, e.Conn, maxSkippedLine)
	}
	err := e.Conn.Close()
	e.closeOnce.Do(func() { close(e.closed) })
	return err
}
