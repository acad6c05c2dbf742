package netserve

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"
)

// Server accepts and tracks the connections of one protocol server on any
// number of listeners: implicit TLS, the connection limit and graceful
// shutdown. The protocol itself is the handler's, given to Serve. Set the
// fields before the first Serve; the zero value is ready to use.
type Server struct {
	// MaxConns is the most connections open at once, over all listeners;
	// 0 means no limit.
	MaxConns int
	// Refusal is the line (without CRLF) a connection gets when it is
	// turned away: MaxConns are open, or Shutdown has begun.
	Refusal string
	// MaxConnsPerIP is the most connections one client address (an IPv6
	// /64) may have open at once, over all listeners; 0 means no limit.
	MaxConnsPerIP int
	// IPRefusal is the line a connection over MaxConnsPerIP gets.
	IPRefusal string
	// HandshakeTimeout bounds an Implicit listener's TLS handshake, and
	// turning a connection away; 0 means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// Log gets failed TLS handshakes (debug) and handler panics (error);
	// nil discards.
	Log *slog.Logger

	lns     listeners
	perIP   PerIP
	mu      sync.Mutex
	conns   map[*Conn]struct{}
	closing bool
	wg      sync.WaitGroup
}

// Conn is a connection being served, over TLS already if its listener is
// Implicit.
type Conn struct {
	net.Conn
	raw       net.Conn // as accepted: Shutdown closes it when it gives up waiting
	srv       *Server
	interrupt func() // srv.mu
}

// Serve accepts connections on ln until Shutdown and serves each with
// handle, on a goroutine of its own. On an Implicit listener the TLS
// handshake is done (within HandshakeTimeout) before handle is called; on
// a Plain one tlsConf, if not nil, is there for the handler's STARTTLS.
// A connection counts as open, for MaxConns, MaxConnsPerIP and Shutdown,
// until handle returns; Serve closes it then, and logs a panic in handle.
//
// Serve returns nil after Shutdown, ErrClosed if Shutdown had already
// begun (and then it closes ln), or the error that stopped it accepting.
func (s *Server) Serve(ln net.Listener, mode Mode, tlsConf *tls.Config, handle func(*Conn)) error {
	if err := mode.CheckTLS(tlsConf); err != nil {
		return err
	}
	refuseTLS := tlsConf
	if mode != Implicit {
		refuseTLS = nil
	}
	return s.lns.serve(ln, func(raw net.Conn) {
		s.mu.Lock()
		s.perIP.Max = s.MaxConnsPerIP
		switch {
		case s.closing:
			s.mu.Unlock()
			go Refuse(raw, refuseTLS, s.Refusal, s.HandshakeTimeout)
			return
		case s.MaxConns > 0 && len(s.conns) >= s.MaxConns:
			s.mu.Unlock()
			s.log().Warn("connection refused: too many connections", "remote", raw.RemoteAddr().String(), "max", s.MaxConns)
			go Refuse(raw, refuseTLS, s.Refusal, s.HandshakeTimeout)
			return
		case !s.perIP.Add(raw.RemoteAddr()):
			s.mu.Unlock()
			s.log().Warn("connection refused: too many connections from this address", "remote", raw.RemoteAddr().String(), "max", s.MaxConnsPerIP)
			go Refuse(raw, refuseTLS, s.IPRefusal, s.HandshakeTimeout)
			return
		}
		raw = &slotConn{Conn: raw, srv: s}
		c := &Conn{Conn: raw, raw: raw, srv: s}
		if s.conns == nil {
			s.conns = map[*Conn]struct{}{}
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.run(c, mode, tlsConf, handle)
	})
}

// Open returns how many connections are open (being served, or in their
// implicit TLS handshake).
func (s *Server) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Server) run(c *Conn, mode Mode, tlsConf *tls.Config, handle func(*Conn)) {
	defer func() {
		if r := recover(); r != nil {
			s.log().Error("panic serving a connection", "remote", c.raw.RemoteAddr().String(), "panic", r, "stack", string(debug.Stack()))
		}
		// Uncounted before it is closed: a client that sees the close
		// may connect again at once.
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Conn.Close()
		s.wg.Done()
	}()
	if mode == Implicit {
		tc, err := c.implicitTLS(tlsConf)
		if err != nil {
			s.log().Debug("TLS handshake failed", "remote", c.raw.RemoteAddr().String(), "err", err)
			return
		}
		c.Conn = tc
	}
	handle(c)
}

// slotConn is an accepted connection as the handler (and TLS over it) has
// it: whoever closes it first gives up the client address's slot
// (MaxConnsPerIP) just before, so that a client that sees the close may
// connect again at once.
type slotConn struct {
	net.Conn
	srv  *Server
	once sync.Once
}

// Close may be called with srv.mu held (Shutdown giving up): PerIP has a
// lock of its own.
func (c *slotConn) Close() error {
	c.once.Do(func() { c.srv.perIP.Done(c.RemoteAddr()) })
	return c.Conn.Close()
}

// CloseWrite is the accepted connection's.
func (c *slotConn) CloseWrite() error { return closeWrite(c.Conn) }

// implicitTLS does the handshake of an Implicit listener's connection;
// Shutdown cuts it short.
func (c *Conn) implicitTLS(conf *tls.Config) (*tls.Conn, error) {
	// The deadline before OnShutdown: an interrupt is never overwritten.
	c.raw.SetDeadline(time.Now().Add(c.srv.handshakeTimeout()))
	if !c.OnShutdown(func() { c.raw.SetDeadline(time.Now()) }) {
		return nil, ErrClosed
	}
	tc, err := handshake(c.raw, conf)
	// Done with: a Shutdown from now on is the handler's (OnShutdown).
	c.srv.mu.Lock()
	c.interrupt = nil
	c.srv.mu.Unlock()
	return tc, err
}

// OnShutdown makes Shutdown call interrupt for this connection, instead of
// whatever was set before. interrupt should make the handler end the
// session soon, at its next command say, and must not block. If Shutdown
// has already begun, OnShutdown calls interrupt at once and returns false.
func (c *Conn) OnShutdown(interrupt func()) bool {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	if c.srv.closing {
		interrupt()
		return false
	}
	c.interrupt = interrupt
	return true
}

// Closing reports whether Shutdown has begun.
func (s *Server) Closing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Shutdown stops accepting, interrupts every connection (Conn.OnShutdown)
// and waits for their handlers to return. If ctx ends first, it closes the
// connections left and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.lns.close()
	for c := range s.conns {
		if c.interrupt != nil {
			c.interrupt()
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.raw.Close()
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}

// handshakeTimeout is HandshakeTimeout, or DefaultHandshakeTimeout.
func (s *Server) handshakeTimeout() time.Duration {
	if s.HandshakeTimeout > 0 {
		return s.HandshakeTimeout
	}
	return DefaultHandshakeTimeout
}

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return discard
	}
	return s.Log
}

var discard = slog.New(slog.DiscardHandler)
