// Package pop3d serves POP3 (RFC 1939) with CAPA (RFC 2449), STLS
// (RFC 2595), AUTH PLAIN (RFC 5034) and response codes (RFC 2449, 3206)
// over the store's INBOX.
package pop3d

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
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
	MaxConnections    int           // for the whole server; 0 = unlimited
	MaxConnsPerIP     int           // per client address (IPv6: /64), whole server; 0 = unlimited
	PreAuthTimeout    time.Duration // from connect to a successful login, whatever the client sends; default 1m
	LineTimeout       time.Duration // a command line, from its first byte; default 1m
	HandshakeTimeout  time.Duration // TLS handshake on 995 and after STLS; default 30s
	// Metrics, if set, counts failed logins (internal/metrics).
	Metrics Metrics
}

// Metrics is what the server counts.
type Metrics interface {
	// AuthFailure counts a failed login ("pop3"); lockedOut: refused
	// because the client's address failed too often.
	AuthFailure(protocol string, lockedOut bool)
}

type noMetrics struct{}

func (noMetrics) AuthFailure(string, bool) {}

// Sessions returns how many connections are open, logged in or not.
func (s *Server) Sessions() int { return s.ns.Open() }

// Server serves POP3 on any number of listeners.
type Server struct {
	cfg Config
	st  store.Maildrop
	au  *auth.Authenticator
	log *slog.Logger

	ns netserve.Server

	mu     sync.Mutex
	locked map[string]bool // maildrops held by a session in TRANSACTION state
	// releases give back the store's locks of the maildrops held.
	releases map[string]func()
}

// New returns a server over st. log may be nil.
func New(cfg Config, st store.Maildrop, au *auth.Authenticator, log *slog.Logger) *Server {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 10 * time.Minute
	}
	if cfg.PreAuthTimeout <= 0 {
		cfg.PreAuthTimeout = time.Minute
	}
	if cfg.LineTimeout <= 0 {
		cfg.LineTimeout = time.Minute
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = netserve.DefaultHandshakeTimeout
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "localhost"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("proto", "pop3")
	return &Server{cfg: cfg, st: st, au: au, log: log, locked: map[string]bool{}, releases: map[string]func(){},
		ns: netserve.Server{
			MaxConns:         cfg.MaxConnections,
			Refusal:          "-ERR [SYS/TEMP] Too many connections, try again later",
			MaxConnsPerIP:    cfg.MaxConnsPerIP,
			IPRefusal:        "-ERR [SYS/TEMP] Too many connections from your address, try again later",
			HandshakeTimeout: cfg.HandshakeTimeout,
			Log:              log,
		}}
}

// Serve accepts connections on ln until Shutdown, then returns nil (or
// netserve.ErrClosed if Shutdown had begun first). With netserve.Implicit,
// tlsConf wraps every connection; with netserve.Plain, tlsConf (if not
// nil) enables STLS.
func (s *Server) Serve(ln net.Listener, mode netserve.Mode, tlsConf *tls.Config) error {
	if err := mode.CheckTLS(tlsConf); err != nil {
		return fmt.Errorf("pop3d: %w", err)
	}
	return s.ns.Serve(ln, mode, tlsConf, func(c *netserve.Conn) {
		tc := netserve.NewTimedConn(c.Conn, s.cfg.LineTimeout, time.Now().Add(s.cfg.PreAuthTimeout))
		sess := newSession(s, tc, mode == netserve.Implicit, tlsConf)
		defer sess.close()
		c.OnShutdown(sess.interrupt) // if Shutdown has begun: greet, then say so
		sess.serve()
	})
}

// Shutdown stops accepting, ends every session at its next read (a session
// cut this way deletes nothing, as RFC 1939 wants), and waits for them
// until ctx ends; then it cuts what is left. A QUIT already being
// processed completes.
func (s *Server) Shutdown(ctx context.Context) error { return s.ns.Shutdown(ctx) }

// lock takes the maildrop of account; false if another session holds it:
// of this server, or, when the store has a lock of its own
// (store.MaildropLocker: a database several nodes share), of any process.
func (s *Server) lock(ctx context.Context, account string) (bool, error) {
	s.mu.Lock()
	if s.locked[account] {
		s.mu.Unlock()
		return false, nil
	}
	s.locked[account] = true
	s.mu.Unlock()
	l, ok := s.st.(store.MaildropLocker)
	if !ok {
		return true, nil
	}
	// The store's lock may take a round trip to a database: other
	// sessions' logins do not wait for it.
	release, ok, err := l.LockMaildrop(ctx, account)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil || !ok {
		delete(s.locked, account)
		return false, err
	}
	s.releases[account] = release
	return true, nil
}

func (s *Server) unlock(account string) {
	s.mu.Lock()
	delete(s.locked, account)
	release := s.releases[account]
	delete(s.releases, account)
	s.mu.Unlock()
	if release != nil {
		release()
	}
}
