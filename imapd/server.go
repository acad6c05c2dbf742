// Package imapd serves IMAP4rev1 (RFC 3501) over the store: its own
// protocol layer (internal/imapwire reads commands and writes responses),
// with STARTTLS (RFC 2595), AUTHENTICATE PLAIN with SASL-IR (RFC 4959),
// LITERAL+ (RFC 7888), ID (RFC 2971), ENABLE (RFC 5161), IDLE (RFC 2177),
// NAMESPACE (RFC 2342), UIDPLUS (RFC 4315), MOVE (RFC 6851), UNSELECT (RFC
// 3691), SPECIAL-USE (RFC 6154), LIST-EXTENDED and LIST-STATUS (RFC 5258,
// 5819), CHILDREN (RFC 3348), ESEARCH (RFC 4731), APPENDLIMIT (RFC 7889),
// STATUS=SIZE (RFC 8438) and QUOTA (RFC 9208).
//
// conn.go is the command loop (states, dispatch, replies); each cmd_*.go
// file registers the commands of one area. Live updates come from the
// store's change feed (view.go), so a delivery over SMTP, a POP3 DELE or
// another IMAP session all show.
package imapd

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
	"yubin/internal/spool"
	"yubin/store"
)

// Config holds the IMAP server's settings.
type Config struct {
	Hostname          string
	AllowInsecureAuth bool          // allow LOGIN/AUTHENTICATE before TLS (development only)
	MaxConnections    int           // for the whole server; 0 = unlimited
	MaxConnsPerIP     int           // per client address (IPv6: /64), whole server; 0 = unlimited
	IdleTimeout       time.Duration // autologout of a silent authenticated client; default (and RFC 3501 minimum) 30m
	PreAuthTimeout    time.Duration // from connect to a successful login, whatever the client sends; default 1m
	HandshakeTimeout  time.Duration // TLS handshake on 993 and after STARTTLS; default 30s
	AppendLimit       int64         // largest APPEND; default 50 MiB, like SMTP's message size limit
	// Spool holds APPEND literals while they come in and are stored: a
	// small buffer in memory, the rest in a spool file, all within the
	// spool's budget of bytes in flight (an APPEND that does not fit gets
	// NO [LIMIT]). Required.
	Spool *spool.Spool
	// MaxUserIPConnections bounds the logged-in connections of one account
	// from one IP address (Dovecot's mail_max_userip_connections); a login
	// beyond it gets NO [LIMIT]. 0 = unlimited.
	MaxUserIPConnections int
	// UsageGrew, if set, is called (in the session's goroutine) after an
	// APPEND or COPY added to an account's usage: the server sends the
	// quota warning from there.
	UsageGrew func(ctx context.Context, account string)
	// Train, if set, is told what a command said about messages for the
	// spam filter (train.go). It is called in the session's goroutine and
	// must not block: the server queues the work.
	Train func(t Training)
	// Metrics, if set, counts failed logins (internal/metrics).
	Metrics Metrics
}

// Metrics is what the server counts.
type Metrics interface {
	// AuthFailure counts a failed login ("imap"); lockedOut: refused
	// because the client's address failed too often.
	AuthFailure(protocol string, lockedOut bool)
}

type noMetrics struct{}

func (noMetrics) AuthFailure(string, bool) {}

// Sessions returns how many connections are open, logged in or not.
func (s *Server) Sessions() int { return s.ns.Open() }

// Server serves IMAP on any number of listeners.
type Server struct {
	cfg Config
	st  store.Mail
	au  *auth.Authenticator
	log *slog.Logger

	ns netserve.Server

	userIPMu sync.Mutex
	userIP   map[userIP]int // logged-in connections per account and address

	// lists hands mailbox list changes to NOTIFY sessions (notify.go).
	lists listHub
}

type userIP struct{ account, ip string }

// loginFrom counts a login of k's account from k's address; it is false
// when that would be more than MaxUserIPConnections.
func (s *Server) loginFrom(k userIP) bool {
	s.userIPMu.Lock()
	defer s.userIPMu.Unlock()
	if max := s.cfg.MaxUserIPConnections; max > 0 && s.userIP[k] >= max {
		return false
	}
	if s.userIP == nil {
		s.userIP = map[userIP]int{}
	}
	s.userIP[k]++
	return true
}

// logoutFrom undoes a loginFrom.
func (s *Server) logoutFrom(k userIP) {
	s.userIPMu.Lock()
	defer s.userIPMu.Unlock()
	if s.userIP[k]--; s.userIP[k] <= 0 {
		delete(s.userIP, k)
	}
}

// New returns a server over st. log may be nil.
func New(cfg Config, st store.Mail, au *auth.Authenticator, log *slog.Logger) *Server {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Minute
	}
	if cfg.PreAuthTimeout <= 0 {
		cfg.PreAuthTimeout = time.Minute
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = netserve.DefaultHandshakeTimeout
	}
	if cfg.AppendLimit <= 0 || cfg.AppendLimit > 1<<32-1 {
		cfg.AppendLimit = 50 << 20
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "localhost"
	}
	if cfg.Spool == nil {
		panic("imapd.New: Config.Spool is required")
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("proto", "imap")
	return &Server{cfg: cfg, st: st, au: au, log: log,
		ns: netserve.Server{
			MaxConns:         cfg.MaxConnections,
			Refusal:          "* BYE [UNAVAILABLE] Too many connections, try again later",
			MaxConnsPerIP:    cfg.MaxConnsPerIP,
			IPRefusal:        "* BYE [UNAVAILABLE] Too many connections from your address, try again later",
			HandshakeTimeout: cfg.HandshakeTimeout,
			Log:              log,
		}}
}

// Serve accepts connections on ln until Shutdown, then returns nil (or
// netserve.ErrClosed if Shutdown had begun first). With netserve.Implicit,
// tlsConf wraps every connection; with netserve.Plain, tlsConf (if not
// nil) enables STARTTLS.
func (s *Server) Serve(ln net.Listener, mode netserve.Mode, tlsConf *tls.Config) error {
	if err := mode.CheckTLS(tlsConf); err != nil {
		return fmt.Errorf("imapd: %w", err)
	}
	return s.ns.Serve(ln, mode, tlsConf, func(c *netserve.Conn) { s.serveConn(c, mode, tlsConf) })
}

// serveConn serves one connection; from connect to login the client has
// PreAuthTimeout.
func (s *Server) serveConn(nc *netserve.Conn, mode netserve.Mode, tlsConf *tls.Config) {
	loginBy := time.Now().Add(s.cfg.PreAuthTimeout)
	c := newConn(s, nc.Conn, mode == netserve.Implicit, tlsConf, loginBy)
	if mode == netserve.Implicit {
		c.conf = nil
	}
	if !nc.OnShutdown(c.interrupt) {
		c.bye("Server shutting down")
		nc.Conn.Close()
		return
	}
	c.serve()
}

// Shutdown stops accepting, lets every command in progress finish, ends
// each session at its next command with BYE, and waits for them until ctx
// ends; then it cuts what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.ns.Shutdown(ctx)
}
