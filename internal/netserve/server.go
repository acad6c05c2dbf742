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
	// Log gets failed TLS handshakes (debug) and handler panics (error);
	// nil discards.
	Log *slog.Logger

	lns     listeners
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
// A connection counts as open, for MaxConns and Shutdown, until handle
// returns; Serve closes it then, and logs a panic in handle.
//
// Serve returns nil after Shutdown, ErrClosed if Shutdown had already
// begun (and then it closes ln), or the error that stopped it accepting.
func (s *Server) Serve(ln net.Listener, mode Mode, tlsConf *tls.Config, handle func(*Conn)) error {
	if err := mode.CheckTLS(tlsConf); err != nil {
		return err
	}
	return s.lns.serve(ln, func(raw net.Conn) {
		s.mu.Lock()
		if s.closing || s.MaxConns > 0 && len(s.conns) >= s.MaxConns {
			s.mu.Unlock()
			refuseTLS := tlsConf
			if mode != Implicit {
				refuseTLS = nil
			}
			go Refuse(raw, refuseTLS, s.Refusal)
			return
		}
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

func (s *Server) run(c *Conn, mode Mode, tlsConf *tls.Config, handle func(*Conn)) {
	defer func() {
		if r := recover(); r != nil {
			s.log().Error("panic serving a connection", "remote", c.raw.RemoteAddr().String(), "panic", r, "stack", string(debug.Stack()))
		}
		c.Conn.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
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

// implicitTLS does the handshake of an Implicit listener's connection;
// Shutdown cuts it short.
func (c *Conn) implicitTLS(conf *tls.Config) (*tls.Conn, error) {
	// The deadline before OnShutdown: an interrupt is never overwritten.
	c.raw.SetDeadline(time.Now().Add(HandshakeTimeout))
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

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return discard
	}
	return s.Log
}

var discard = slog.New(slog.DiscardHandler)
