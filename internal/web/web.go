// Package web is Yubin's HTTPS interface: the Mail Manager every account
// has, and the Site Manager of a domain's admins, on listen.web.
//
// Pages are rendered on the server with html/template and work without
// JavaScript (the Content-Security-Policy allows no script at all). Every
// change goes through the admin service (admin.Do on the server's own
// *admin.Service) with the scope of the account logged in
// (admin.WithScope): the rules of who may touch what live there, shared
// with the CLI, and the web never writes to the store itself.
//
// # Adding a page
//
// A page is three things, so that pages can be added without touching
// the others:
//
//  1. A handler file, e.g. site_accounts.go, with a method that registers
//     its routes, func (s *Server) siteAccountsRoutes(r *router), listed
//     once in routes.go's pages. Register each route with r.page (GET,
//     needs a session) or r.form (POST, needs a session and checks the CSRF
//     token, body and field limits before the handler runs). A handler
//     gets the request's *call: its Caller (who is logged in), its
//     context with the caller's admin scope, and the parsed form.
//     Call the admin service only through admin.Do(c.ctx, s.api, op, req)
//     (do(c, op, req) for short); an admin.ErrDenied answer is a 403 page (c.fail).
//  2. A template, templates/NAME.html, defining "title" and "content"
//     (see forward.html): it is parsed with layout.html, and gets a *view:
//     .T "key" translates, .CSRF is the hidden field every form must carry
//     ({{.CSRF}} inside the <form>), .Data is the page's own data,
//     .Err "field" the error to show next to a field, .Notice a message
//     shown on top.
//  3. Its messages in the catalogue, a file of its own like
//     messages_mail.go (English and Japanese for each key), listed once in
//     messages.go's catalogue. TestCatalogue fails on a key a template uses
//     that has no English or no Japanese text.
//
// A menu entry is a navItem in routes.go (Admin: true for the Site
// Manager's).
//
// The Mail Manager's pages are per account, /mail/ADDRESS/...: a user
// opens only their own (the admin service answers ErrDenied, a 403, for
// any other), a domain admin those of every account of its domain. The
// Site Manager can therefore link to /mail/ADDRESS/forward, /spam and
// /quarantine for an account's forwarding, spam policy and held mail
// rather than repeat them. Only the password page is one's own alone.
//
// Bad input answers the same form with the error next to its field and
// status 422 (s.render with the field errors), nothing changed: the
// admin service validates everything before it writes.
package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"time"

	"yubin/admin"
	"yubin/internal/auth"
	"yubin/internal/autoconfig"
)

// ClientPorts are the addresses mail clients use (host:port each, ""
// for a listener that is off), shown on the client settings page.
type ClientPorts struct {
	IMAP, IMAPS, POP3, POP3S, Submission, Submissions string
}

// Config is what a Server needs.
type Config struct {
	Admin    *admin.Service
	Auth     *auth.Authenticator
	Hostname string // the name clients use to reach the server
	Ports    ClientPorts
	// IdleTimeout ends a session not used for this long (default 30
	// minutes); MaxAge ends any session this long after login (default
	// 12 hours).
	IdleTimeout, MaxAge time.Duration
	// MaxSessions bounds the sessions held at once (default 10,000):
	// beyond it the oldest is ended.
	MaxSessions int
	// Autoconfig answers mail clients' autoconfiguration (Thunderbird,
	// Outlook) on this listener too, and makes the client settings
	// page's .mobileconfig; nil: neither.
	Autoconfig *autoconfig.Handler
	Now        func() time.Time // nil: time.Now
	Log        *slog.Logger     // nil: discard
	Metrics    Metrics          // nil: none
}

// Metrics counts what the web does (internal/metrics implements it).
type Metrics interface {
	// AuthFailure counts a failed login ("web"); lockedOut: refused
	// because the address failed too often.
	AuthFailure(protocol string, lockedOut bool)
}

type noMetrics struct{}

func (noMetrics) AuthFailure(string, bool) {}

// Server serves the pages.
type Server struct {
	cfg      Config
	svc      *admin.Service
	api      admin.API
	auth     *auth.Authenticator
	sessions *sessions
	pages    map[string]*template.Template
	msgs     catalogue
	handler  http.Handler
	log      *slog.Logger
	now      func() time.Time
}

// Form and body limits.
const (
	maxBody       = 64 << 10 // bytes of a POST body
	maxFields     = 64       // form values in all
	maxFieldBytes = 4096     // bytes of one value
)

// New returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Admin == nil || cfg.Auth == nil {
		return nil, errors.New("web: the admin service and the authenticator are required")
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Minute
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 12 * time.Hour
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 10000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	s := &Server{cfg: cfg, svc: cfg.Admin, api: cfg.Admin, auth: cfg.Auth, log: cfg.Log, now: cfg.Now,
		msgs: newCatalogue()}
	s.sessions = newSessions(cfg.IdleTimeout, cfg.MaxAge, cfg.MaxSessions, cfg.Now)
	var err error
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}
	s.handler = secure(s.routes())
	return s, nil
}

// ServeHTTP serves the pages.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// HTTPServer returns an http.Server for the pages with timeouts and
// limits set; serve it with ServeTLS (HTTP/2 and HTTP/1.1).
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

// remoteAddr is the client's address as internal/auth counts it.
func remoteAddr(r *http.Request) net.Addr {
	if a, err := net.ResolveTCPAddr("tcp", r.RemoteAddr); err == nil {
		return a
	}
	return &net.TCPAddr{}
}

// do runs an admin operation with the caller's scope.
func do[Req, Resp any](c *call, o admin.Op[Req, Resp], req Req) (Resp, error) {
	return admin.Do(c.ctx, c.s.api, o, req)
}

// withScope is ctx limited to the caller's scope.
func withScope(ctx context.Context, c admin.Caller) context.Context {
	return admin.WithScope(ctx, c.Scope)
}

// URL returns the address to open in a browser for a listener bound to
// addr: localhost for an unspecified or loopback address.
func URL(hostname, addr string) string {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "https://" + addr + "/"
	}
	if ip := net.ParseIP(h); h == "" || (ip != nil && (ip.IsUnspecified() || ip.IsLoopback())) {
		h = "localhost"
	}
	return fmt.Sprintf("https://%s/", net.JoinHostPort(h, p))
}
