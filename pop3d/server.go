// Package pop3d serves POP3 (RFC 1939) with CAPA (RFC 2449), STLS
// (RFC 2595), AUTH PLAIN (RFC 5034) and response codes (RFC 2449, 3206)
// over the store's INBOX.
package pop3d

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"yubin/internal/auth"
	"yubin/internal/netserve"
	"yubin/store"
)

// Config holds the POP3 server's settings.
type Config struct {
	Hostname          string
	AllowInsecureAuth bool          // allow USER/PASS/AUTH before TLS (development only)
	IdleTimeout       time.Duration // RFC 1939: at least 10 minutes; default 10m
	MaxConnections    int           // per listener; 0 = unlimited
}

// Mode is how a listener starts.
type Mode int

const (
	Plain    Mode = iota // port 110: cleartext, STLS offered
	Implicit             // port 995: TLS from the first byte
)

// Server serves POP3 on any number of listeners.
type Server struct {
	cfg Config
	st  store.Maildrop
	au  *auth.Authenticator
	log *slog.Logger

	mu      sync.Mutex
	lns     netserve.Listeners
	conns   map[*session]struct{}
	locked  map[string]bool // maildrops held by a session in TRANSACTION state
	closing bool
	wg      sync.WaitGroup
}

// New returns a server over st. log may be nil.
func New(cfg Config, st store.Maildrop, au *auth.Authenticator, log *slog.Logger) *Server {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 10 * time.Minute
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "localhost"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, st: st, au: au, log: log.With("proto", "pop3"),
		conns: map[*session]struct{}{}, locked: map[string]bool{}}
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("pop3d: server closed")

// Serve accepts connections on ln until Shutdown. With Implicit, tlsConf
// wraps every connection; with Plain, tlsConf (if not nil) enables STLS.
func (s *Server) Serve(ln net.Listener, mode Mode, tlsConf *tls.Config) error {
	if mode == Implicit && tlsConf == nil {
		return errors.New("pop3d: implicit TLS needs a TLS config")
	}
	err := s.lns.Serve(ln, func(c net.Conn) {
		if mode == Implicit {
			c = tls.Server(c, tlsConf)
		}
		sess := newSession(s, c, mode == Implicit, tlsConf)
		s.mu.Lock()
		full := s.cfg.MaxConnections > 0 && len(s.conns) >= s.cfg.MaxConnections
		if s.closing || full {
			s.mu.Unlock()
			// Not on the accepting goroutine: on 995 the write is a handshake.
			go func() {
				c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				fmt.Fprintf(c, "-ERR [SYS/TEMP] Too many connections, try again later\r\n")
				c.Close()
			}()
			return
		}
		s.conns[sess] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				if r := recover(); r != nil {
					s.log.Error("panic in session", "remote", c.RemoteAddr().String(), "panic", r, "stack", string(debug.Stack()))
				}
				sess.close()
				s.mu.Lock()
				delete(s.conns, sess)
				s.mu.Unlock()
			}()
			sess.serve()
		}()
	})
	if errors.Is(err, netserve.ErrClosed) {
		return ErrServerClosed
	}
	return err
}

// Shutdown stops accepting, ends every session at its next read (a session
// cut this way deletes nothing, as RFC 1939 wants), and waits for them
// until ctx ends. A QUIT already being processed completes.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.lns.Close()
	for sess := range s.conns {
		sess.interrupt()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// lock takes the maildrop of account; false if another session holds it.
func (s *Server) lock(account string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locked[account] {
		return false
	}
	s.locked[account] = true
	return true
}

func (s *Server) unlock(account string) {
	s.mu.Lock()
	delete(s.locked, account)
	s.mu.Unlock()
}
