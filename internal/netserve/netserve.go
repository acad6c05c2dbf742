// Package netserve is the network side the mail protocol servers share:
// how a listener starts (Mode: plain with STARTTLS offered, or implicit
// TLS), the accept loop, TLS handshakes, turning connections away, the
// connection limit and graceful shutdown.
//
// pop3d and imapd serve through a Server. smtpd, whose accept loop
// belongs to go-smtp, uses Mode and Refuse.
package netserve

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Accept calls handle, on the accepting goroutine, for every connection ln
// accepts, until Accept fails for good. If closing reports true by then
// (the server is shutting down), Accept returns nil; else the error.
// handle must not block: it starts the connection's own goroutine.
func Accept(ln net.Listener, closing func() bool, handle func(net.Conn)) error {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if closing() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		handle(c)
	}
}

// ErrClosed is returned by Server.Serve once Shutdown has begun. It wraps
// net.ErrClosed: the listener is closed.
var ErrClosed = fmt.Errorf("netserve: server shut down: %w", net.ErrClosed)

// listeners is the set of listeners one server serves on; close (the
// server's Shutdown) closes them all, and a listener served after that is
// closed at once. The zero value is ready to use.
type listeners struct {
	mu     sync.Mutex
	set    map[net.Listener]struct{}
	closed bool
}

// serve runs Accept on ln until the set is closed (then it returns nil) or
// ln fails. If the set is already closed, it closes ln and returns ErrClosed.
func (l *listeners) serve(ln net.Listener, handle func(net.Conn)) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	if l.set == nil {
		l.set = map[net.Listener]struct{}{}
	}
	l.set[ln] = struct{}{}
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.set, ln)
		l.mu.Unlock()
	}()
	return Accept(ln, l.isClosed, handle)
}

func (l *listeners) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// close closes every listener being served and every later one.
func (l *listeners) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for ln := range l.set {
		ln.Close()
	}
}
