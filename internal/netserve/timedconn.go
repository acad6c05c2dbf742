package netserve

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// TimedConn bounds a connection's reads by two deadlines that a protocol's
// own read deadline (its idle timeout, set as it starts waiting for each
// line) cannot express:
//
//   - the line deadline: the first read after SetReadDeadline that returns
//     data starts the line's clock, and no later read extends it, so the
//     rest of the line must come within the line timeout of its first
//     byte however slowly it trickles in; the next SetReadDeadline (the
//     next line) stops the clock;
//   - the session deadline (Until): an absolute time no read may outlast,
//     until it is lifted — the login deadline, lifted at login (LoggedIn),
//     or the end of a port-25 session, never lifted.
//
// A read gets the earliest of the three. Once a read has failed on a
// deadline, every later read fails at once: the session is over. (go-smtp
// reads lines with bufio.Reader.ReadLine, which hands a line cut short by
// an error to the caller as if it were whole and drops the error; without
// this, its next read would go on as if nothing had happened.)
//
// Hold suspends the line and session deadlines while a message is
// transferred: SMTP DATA and BDAT run under the protocol's deadline alone.
// The clock counts reads, not lines, so TimedConn works below TLS as well
// as above it: the first record of a line starts the clock.
//
// SetReadDeadline, Until, LoggedIn and Hold may be called from any
// goroutine: a shutdown ends a session by setting a deadline in the past.
type TimedConn struct {
	net.Conn
	line time.Duration // 0: no line deadline

	mu       sync.Mutex
	set      time.Time // the protocol's read deadline
	lineEnd  time.Time // the running line's deadline; zero when none runs
	waiting  bool      // set since the last SetReadDeadline, no data read yet
	until    time.Time // zero: none
	held     bool
	farewell string // written once when a read fails because until passed
	said     bool
	dead     error // the deadline error every read returns from now on
}

// NewTimedConn wraps c with a line timeout (0 for none) and a session
// deadline (zero for none).
func NewTimedConn(c net.Conn, line time.Duration, until time.Time) *TimedConn {
	t := &TimedConn{Conn: c, line: line, until: until}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.applyLocked()
	return t
}

// SetFarewell sets the line (without CRLF) written, once, when a read
// fails because the session deadline has passed: a protocol that writes
// nothing on a read timeout (go-imap) still says goodbye. Set it only
// where c is the connection the client's protocol runs on (above TLS).
func (t *TimedConn) SetFarewell(line string) {
	t.mu.Lock()
	t.farewell = line
	t.mu.Unlock()
}

func (t *TimedConn) Read(p []byte) (int, error) {
	t.mu.Lock()
	dead := t.dead
	t.mu.Unlock()
	if dead != nil {
		return 0, dead
	}
	n, err := t.Conn.Read(p)
	if n > 0 && t.line > 0 {
		t.mu.Lock()
		if t.waiting {
			t.waiting = false
			t.lineEnd = time.Now().Add(t.line)
			t.applyLocked()
		}
		t.mu.Unlock()
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		t.mu.Lock()
		t.dead = err
		t.mu.Unlock()
		t.sayFarewell()
	}
	return n, err
}

func (t *TimedConn) sayFarewell() {
	t.mu.Lock()
	line := t.farewell
	if line == "" || t.said || t.until.IsZero() || t.held || time.Now().Before(t.until) {
		t.mu.Unlock()
		return
	}
	t.said = true
	t.mu.Unlock()
	t.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(t.Conn, line+"\r\n")
}

// SetReadDeadline sets the protocol's read deadline; it marks the start of
// a new line, so it also stops the line clock.
func (t *TimedConn) SetReadDeadline(d time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.set = d
	t.lineEnd = time.Time{}
	t.waiting = true
	return t.applyLocked()
}

func (t *TimedConn) SetDeadline(d time.Time) error {
	if err := t.Conn.SetWriteDeadline(d); err != nil {
		return err
	}
	return t.SetReadDeadline(d)
}

// CloseWrite shuts down the writing side of the connection under t, if it
// can (TCP, TLS): a server that ends a session with unread input lingers
// that way rather than have its last words lost to a reset.
func (t *TimedConn) CloseWrite() error { return closeWrite(t.Conn) }

// closeWrite shuts down c's writing side if c can.
func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// Until sets the session deadline; zero lifts it.
func (t *TimedConn) Until(d time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.until = d
	t.applyLocked()
}

// LoggedIn lifts the session deadline: the login deadline is met.
func (t *TimedConn) LoggedIn() { t.Until(time.Time{}) }

// Hold suspends (on) or restores the line and session deadlines; while
// held, reads have the protocol's deadline alone and no line clock starts.
func (t *TimedConn) Hold(on bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.held = on
	if on {
		t.lineEnd, t.waiting = time.Time{}, false
	}
	t.applyLocked()
}

func (t *TimedConn) applyLocked() error {
	d := t.set
	if !t.held {
		for _, x := range []time.Time{t.lineEnd, t.until} {
			if !x.IsZero() && (d.IsZero() || x.Before(d)) {
				d = x
			}
		}
	}
	return t.Conn.SetReadDeadline(d)
}
