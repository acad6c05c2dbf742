// Package smtpd is Yubin's SMTP server: port 25 (MX, mail from the
// Internet for local accounts only), 587 (submission with STARTTLS and
// AUTH) and 465 (submission over implicit TLS). It is built on
// github.com/emersion/go-smtp and hands every accepted message to the
// shared delivery path (package delivery).
package smtpd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"yubin/internal/auth"
	"yubin/internal/delivery"
	"yubin/internal/dnsbl"
	"yubin/internal/netserve"
	"yubin/internal/notify"
	"yubin/internal/sendlimit"
	"yubin/internal/spool"
	"yubin/store"
)

// Config holds the SMTP limits. Zero values take the defaults noted.
type Config struct {
	Hostname          string        // greeting and Received headers; "localhost"
	MaxMessageSize    int64         // bytes, advertised with SIZE; 50 MiB
	MaxRecipients     int           // accepted RCPTs per message; 100
	MaxLineLength     int           // bytes per line of a message (DATA, BDAT), its line end included; 64 KiB (see Serve)
	ReadTimeout       time.Duration // idle time allowed between commands; 5 min
	WriteTimeout      time.Duration // per reply; 5 min
	AllowInsecureAuth bool          // dev only: AUTH before TLS
	MaxConnections    int           // per listener; 0 = unlimited
	MaxConnsPerIP     int           // per client address (IPv6: /64) and listener; 0 = unlimited
	PreAuthTimeout    time.Duration // submission: time allowed before AUTH succeeds; 1 min
	MXSessionTimeout  time.Duration // port 25: a session's time, message transfers aside; 10 min
	LineTimeout       time.Duration // a command line, from its first byte; 1 min
	HandshakeTimeout  time.Duration // TLS handshake on 465 and after STARTTLS; 30 s
	// Deliverer is the delivery path (scanning, forwarding, ...) every
	// accepted message takes. Required.
	Deliverer *delivery.Deliverer
	// Spool holds DATA while it is received and delivered: a small
	// buffer in memory per message, the rest in a spool file, all within
	// the spool's budget of in-flight bytes (over it: 451 4.3.1).
	// Required.
	Spool *spool.Spool
	// Outbound accepts remote recipients of authenticated submissions for
	// the outbound queue; false refuses them with 550 5.7.1.
	Outbound bool
	// ReverseSRS, when set, maps an SRS address on one of our domains (a
	// bounce of a forwarded message) to the original sender: port 25 then
	// accepts it and the message goes back to that sender.
	ReverseSRS func(addr string) (string, error)
	// DNSBL, when it has DNSBL zones, looks the client of every port-25
	// connection up (in the background, from its first EHLO): a listing on
	// a zone marked reject is refused at RCPT with 554 5.7.1, other
	// listings go on the delivery Envelope for the spam stage. Submission
	// is never looked up.
	DNSBL *dnsbl.Checker
	// SendLimit, when set, limits what each account submits per hour
	// (587/465): over it, MAIL and RCPT get 451 4.7.0.
	SendLimit *sendlimit.Limiter
	// Notifier, when set, warns a domain's admins when one of its accounts
	// reaches its sending limit (once an hour per account).
	Notifier *notify.Notifier
	// Metrics, if set, counts transactions and failed logins
	// (internal/metrics).
	Metrics Metrics
}

// Metrics is what the server counts.
type Metrics interface {
	// SMTPTransaction counts a transaction on a listener ("mx",
	// "submission", "submissions") ended by a reply with code: the reply
	// to its data, a refused MAIL, or the last refused RCPT of a
	// transaction given up before its data.
	SMTPTransaction(listener string, code int)
	// AuthFailure counts a failed login ("smtp"); lockedOut: refused
	// because the client's address failed too often.
	AuthFailure(protocol string, lockedOut bool)
}

type noMetrics struct{}

func (noMetrics) SMTPTransaction(string, int) {}
func (noMetrics) AuthFailure(string, bool)    {}

// Defaults for zero Config fields.
const (
	DefaultMaxMessageSize   = 50 << 20
	DefaultMaxRecipients    = 100
	DefaultMaxLineLength    = 64 << 10
	DefaultTimeout          = 5 * time.Minute
	DefaultPreAuthTimeout   = time.Minute
	DefaultMXSessionTimeout = 10 * time.Minute
	DefaultLineTimeout      = time.Minute
)

// lineSlack is how much longer than MaxLineLength a line go-smtp reads may
// be (Serve).
const lineSlack = 64 << 10

// maxHardErrors is how many refused RCPTs and failed AUTHs one connection
// may collect before it is closed with 421 (address harvesting, password
// guessing). go-smtp itself closes after a few syntax errors.
const maxHardErrors = 20

// Mode is the kind of listener.
type Mode int

const (
	MX          Mode = iota // port 25: mail from the Internet, no AUTH
	Submission              // port 587: STARTTLS, AUTH required
	Submissions             // port 465: implicit TLS, AUTH required
)

func (m Mode) String() string {
	switch m {
	case MX:
		return "mx"
	case Submission:
		return "submission"
	case Submissions:
		return "submissions"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// tlsMode is how the listener's connections start: 465 is implicit TLS,
// 25 and 587 are plain with STARTTLS.
func (m Mode) tlsMode() netserve.Mode {
	if m == Submissions {
		return netserve.Implicit
	}
	return netserve.Plain
}

// Server serves SMTP on any number of listeners.
type Server struct {
	cfg     Config
	store   store.Directory
	auth    *auth.Authenticator
	deliver *delivery.Deliverer
	spool   *spool.Spool
	log     *slog.Logger

	// ctx is cancelled when Shutdown gives up waiting: store calls and
	// logins in flight then stop.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	shutdown bool
	servers  []*smtp.Server
	conns    map[*trackedConn]struct{}

	testHookData func() // tests: called at the start of every DATA
}

// New returns a server that looks senders and recipients up in st and
// hands accepted messages to cfg.Deliverer. au may be nil only if no
// submission listener is served. log may be nil (discard).
func New(cfg Config, st store.Directory, au *auth.Authenticator, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "localhost"
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = DefaultMaxMessageSize
	}
	if cfg.MaxRecipients <= 0 {
		cfg.MaxRecipients = DefaultMaxRecipients
	}
	if cfg.MaxLineLength <= 0 {
		cfg.MaxLineLength = DefaultMaxLineLength
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultTimeout
	}
	if cfg.PreAuthTimeout <= 0 {
		cfg.PreAuthTimeout = DefaultPreAuthTimeout
	}
	if cfg.MXSessionTimeout <= 0 {
		cfg.MXSessionTimeout = DefaultMXSessionTimeout
	}
	if cfg.LineTimeout <= 0 {
		cfg.LineTimeout = DefaultLineTimeout
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = netserve.DefaultHandshakeTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	dl := cfg.Deliverer
	if dl == nil {
		panic("smtpd.New: Config.Deliverer is required")
	}
	if cfg.Spool == nil {
		panic("smtpd.New: Config.Spool is required")
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	return &Server{
		cfg:     cfg,
		store:   st,
		auth:    au,
		deliver: dl,
		spool:   cfg.Spool,
		log:     log,
		ctx:     ctx,
		cancel:  cancel,
		conns:   map[*trackedConn]struct{}{},
	}
}

// Serve accepts connections on ln (a plain TCP listener) until Shutdown
// and returns nil then. For Submissions it does the TLS itself with
// tlsConf; for MX and Submission tlsConf enables STARTTLS (nil: no TLS,
// and then no AUTH unless AllowInsecureAuth).
func (s *Server) Serve(ln net.Listener, mode Mode, tlsConf *tls.Config) error {
	if mode < MX || mode > Submissions {
		return fmt.Errorf("smtpd: unknown mode %d", mode)
	}
	if err := mode.tlsMode().CheckTLS(tlsConf); err != nil {
		return fmt.Errorf("smtpd: %s: %w", mode, err)
	}
	if mode != MX && s.auth == nil {
		return errors.New("smtpd: submission needs an authenticator")
	}
	gs := smtp.NewServer(&backend{srv: s, mode: mode})
	gs.Domain = s.cfg.Hostname
	gs.MaxMessageBytes = s.cfg.MaxMessageSize
	gs.MaxRecipients = s.cfg.MaxRecipients
	// go-smtp reads command lines and DATA through one line limit, and a
	// line over it ends the connection (after the DATA reply, for a
	// message). Lines of a message are held to MaxLineLength by receive,
	// which refuses the message and keeps the session; go-smtp's limit is
	// lineSlack above that, so a message line that is a little too long
	// (up to MaxLineLength+lineSlack) does not cost the connection. It is
	// also the bound on a command line, which go-smtp reads into memory.
	gs.MaxLineLength = s.cfg.MaxLineLength + lineSlack
	gs.ReadTimeout = s.cfg.ReadTimeout
	gs.WriteTimeout = s.cfg.WriteTimeout
	gs.AllowInsecureAuth = s.cfg.AllowInsecureAuth
	gs.ErrorLog = errorLog{s.log.With("listener", mode.String(), "addr", ln.Addr().String())}
	if mode.tlsMode() == netserve.Plain {
		gs.TLSConfig = tlsConf // STARTTLS
	}

	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.servers = append(s.servers, gs)
	s.mu.Unlock()

	ll := &limitListener{Listener: ln, srv: s, max: s.cfg.MaxConnections, perIP: netserve.PerIP{Max: s.cfg.MaxConnsPerIP},
		sessionTime: s.cfg.MXSessionTimeout}
	if mode != MX {
		ll.sessionTime = s.cfg.PreAuthTimeout // until AUTH
	}
	if mode.tlsMode() == netserve.Implicit {
		ll.tlsConf = tlsConf
	}
	err := gs.Serve(ll)
	if s.isShutdown() {
		return nil
	}
	return err
}

func (s *Server) isShutdown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutdown
}

// Shutdown stops accepting connections, closes idle ones (the client gets
// a 421 reply), lets messages being received and stored finish, and
// returns when every connection is gone. When ctx ends first, the rest are
// closed at once and ctx's error is returned. Mail that got 250 is always
// on disk; mail that did not is the client's to retry.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	servers := append([]*smtp.Server(nil), s.servers...)
	s.mu.Unlock()

	done := make(chan error, len(servers))
	for _, gs := range servers {
		go func() { done <- gs.Shutdown(context.Background()) }()
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	remaining := len(servers)
	for remaining > 0 {
		s.kickIdle()
		select {
		case <-done:
			remaining--
		case <-tick.C:
		case <-ctx.Done():
			// go-smtp's Close does nothing once Shutdown has begun, so
			// close the connections ourselves.
			s.cancel()
			s.closeAll()
			return ctx.Err()
		}
	}
	s.cancel()
	return nil
}

// closeAll closes every client connection at once.
func (s *Server) closeAll() {
	s.mu.Lock()
	conns := make([]*trackedConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// kickIdle makes every connection that is not inside DATA time out now:
// go-smtp answers "421 4.4.2" and closes it. A connection that just left
// DATA resets its deadline for the next command; Shutdown calls this
// repeatedly so it is caught the next time round.
func (s *Server) kickIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	past := time.Now().Add(-time.Second)
	for c := range s.conns {
		if !c.busy.Load() {
			c.Conn.SetReadDeadline(past)
		}
	}
}

// trackedConn is a client connection counted against MaxConnections and
// MaxConnsPerIP. Below it, a TimedConn holds the line deadline and the
// session's (port 25: its length; submission: the time to authenticate).
// It is what go-smtp's TLS runs over, on 465 from the start and after
// STARTTLS on 25 and 587 (handshake.go).
type trackedConn struct {
	net.Conn // timed
	timed    *netserve.TimedConn
	srv      *Server
	ln       *limitListener
	busy     atomic.Bool // a transaction is in flight: do not interrupt on shutdown
	once     sync.Once

	dnsbl clientCheckOnce // port 25: the client's DNSBL lookup

	// The TLS handshake go-smtp is running, if any (handshake.go); only
	// the connection's goroutine uses these.
	hsUntil  time.Time
	implicit *tls.Conn // 465: the TLS connection, until its handshake is done
	startTLS bool      // a STARTTLS handshake is running
	upgraded bool      // STARTTLS was answered: only TLS records go out
	hsFailed bool      // a STARTTLS handshake failed: the session is over
	greeted  bool
}

// authenticated stops the pre-auth clock.
func (c *trackedConn) authenticated() { c.timed.LoggedIn() }

// transfer marks the transfer of a message (DATA, BDAT): it runs under
// go-smtp's ReadTimeout alone, neither the line deadline nor port 25's
// session time cuts it.
func (c *trackedConn) transfer(on bool) {
	c.busy.Store(on)
	c.timed.Hold(on)
}

// Close uncounts the connection, before it closes it: a client that sees
// the close may connect again at once.
func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.srv.mu.Lock()
		delete(c.srv.conns, c)
		c.ln.n--
		c.ln.perIP.Done(c.RemoteAddr())
		c.srv.mu.Unlock()
	})
	return c.Conn.Close()
}

// limitListener tracks connections and turns away those over the limits
// with "421 4.7.0". On an implicit-TLS listener its connections are TLS.
type limitListener struct {
	net.Listener
	srv         *Server
	max         int
	perIP       netserve.PerIP // srv.mu
	tlsConf     *tls.Config    // implicit TLS
	n           int            // open connections; srv.mu
	sessionTime time.Duration  // TimedConn's session deadline
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		s := l.srv
		s.mu.Lock()
		if s.shutdown {
			s.mu.Unlock()
			c.Close()
			continue
		}
		if l.max > 0 && l.n >= l.max {
			s.mu.Unlock()
			go l.refuse(c, "Too many connections", "max", l.max)
			continue
		}
		if !l.perIP.Add(c.RemoteAddr()) {
			s.mu.Unlock()
			go l.refuse(c, "Too many connections from your address", "max_per_ip", l.perIP.Max)
			continue
		}
		now := time.Now()
		timed := netserve.NewTimedConn(c, s.cfg.LineTimeout, now.Add(l.sessionTime))
		tc := &trackedConn{Conn: timed, timed: timed, srv: s, ln: l}
		s.conns[tc] = struct{}{}
		l.n++
		s.mu.Unlock()
		if l.tlsConf != nil {
			return tc.implicitTLS(l.tlsConf, now), nil
		}
		return tc, nil
	}
}

// refuse turns c away with 421 4.7.0 and why.
func (l *limitListener) refuse(c net.Conn, why, limitName string, limit int) {
	defer func() {
		if r := recover(); r != nil {
			l.srv.log.Error("panic refusing connection", "panic", r)
		}
	}()
	l.srv.log.Warn("smtp connection refused: "+strings.ToLower(why), "remote", c.RemoteAddr().String(), limitName, limit)
	netserve.Refuse(c, l.tlsConf, "421 4.7.0 "+l.srv.cfg.Hostname+" "+why+", try again later", l.srv.cfg.HandshakeTimeout)
}

// errorLog adapts go-smtp's internal error log to slog.
type errorLog struct{ log *slog.Logger }

func (e errorLog) Printf(format string, v ...any) { e.log.Warn(fmt.Sprintf(format, v...)) }
func (e errorLog) Println(v ...any)               { e.log.Warn(fmt.Sprint(v...)) }
