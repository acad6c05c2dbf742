// Package autoconfig tells mail clients how to reach Yubin: Thunderbird's
// autoconfig (clientConfig v1.1 XML, GET /mail/config-v1.1.xml and
// /.well-known/autoconfig/mail/config-v1.1.xml), Outlook's autodiscover
// (POST /autodiscover/autodiscover.xml, the 2006a response schema) and
// Apple's configuration profile (.mobileconfig, MobileConfig).
//
// What is advertised is the config: the mail host (dns.mx_host, else
// hostname — the name the SRV records name) and the ports of the
// listeners that are on, as configured. The embedded default shifts every
// port by +10000 when not run as root, and autoconfig then advertises the
// shifted ports; a real deployment listens on the standard ones.
//
// The handler only answers for the local domains (parents and children):
// another domain gets 404. It never looks an account up, so it tells
// nobody whether an address exists: the answer for a domain is the same
// for every local part.
package autoconfig

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"

	"yubin/internal/address"
	"yubin/internal/config"
	"yubin/store"
)

// Security of a server port.
const (
	SSL      = "SSL"      // implicit TLS (993, 995, 465)
	STARTTLS = "STARTTLS" // plain, then STARTTLS/STLS (143, 110, 587)
)

// Server is one port clients may use.
type Server struct {
	Port   int
	Socket string // SSL or STARTTLS
}

// Settings are what clients are told. A protocol's servers are in order of
// preference: implicit TLS first (RFC 8314).
type Settings struct {
	Host string   // the mail host clients connect to
	IMAP []Server // incoming, IMAP
	POP3 []Server // incoming, POP3
	SMTP []Server // outgoing: submission with AUTH
}

// FromConfig returns the settings of cfg: the mail host is dns.mx_host,
// else hostname; a listener that is off is left out.
func FromConfig(cfg config.Config) Settings {
	host := cfg.DNS.MXHost
	if host == "" {
		host = cfg.Hostname
	}
	s := Settings{Host: strings.ToLower(strings.TrimSuffix(host, "."))}
	add := func(list *[]Server, addr, socket string) {
		if config.Off(addr) {
			return
		}
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			return
		}
		port, err := strconv.Atoi(p)
		if err != nil || port <= 0 || port > 65535 {
			return
		}
		*list = append(*list, Server{Port: port, Socket: socket})
	}
	add(&s.IMAP, cfg.Listen.IMAPS, SSL)
	add(&s.IMAP, cfg.Listen.IMAP, STARTTLS)
	add(&s.POP3, cfg.Listen.POP3S, SSL)
	add(&s.POP3, cfg.Listen.POP3, STARTTLS)
	add(&s.SMTP, cfg.Listen.Submissions, SSL)
	add(&s.SMTP, cfg.Listen.Submission, STARTTLS)
	return s
}

// Domains is the part of the store's Directory the handler needs.
type Domains interface {
	Domain(ctx context.Context, name string) (store.Domain, error)
}

// Handler answers autoconfig and autodiscover requests. Its zero value is
// not usable: make one with New.
type Handler struct {
	s       Settings
	domains Domains
	log     *slog.Logger
}

// New returns the handler for s, answering for the domains of d.
func New(s Settings, d Domains, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{s: s, domains: d, log: log}
}

// Paths served (Handles tells which requests to send here).
const (
	ThunderbirdPath  = "/mail/config-v1.1.xml"
	WellKnownPath    = "/.well-known/autoconfig/mail/config-v1.1.xml"
	AutodiscoverPath = "/autodiscover/autodiscover.xml" // any case
)

// Handles reports whether a request to path is one for h.
func Handles(path string) bool {
	return path == ThunderbirdPath || path == WellKnownPath || strings.EqualFold(path, AutodiscoverPath)
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == ThunderbirdPath || r.URL.Path == WellKnownPath:
		h.thunderbird(w, r)
	case strings.EqualFold(r.URL.Path, AutodiscoverPath):
		h.autodiscover(w, r)
	default:
		http.NotFound(w, r)
	}
}

// ErrNotLocal is the error of Account for a domain that is not ours.
var ErrNotLocal = errors.New("not a local domain")

// Account is the answer for one address: the address the client was
// given, and the login name, the address of the account that receives it
// (a child domain's mail goes to the parent's account of the same local
// part).
type Account struct {
	Email  string
	Domain string // of Email
	Parent string // the parent domain (Domain itself for a parent)
}

// Settings returns what h advertises.
func (h *Handler) Settings() Settings { return h.s }

// SetSettings replaces what h advertises. It is not synchronized with
// serving: call it before h serves (the server does, once its listeners
// are bound and their ports known).
func (h *Handler) SetSettings(s Settings) { h.s = s }

// lookup returns the parent of domain (itself for a parent): ErrNotLocal
// for a domain that is not ours, another error when the store fails.
func (h *Handler) lookup(ctx context.Context, domain string) (string, error) {
	d, err := h.domains.Domain(ctx, domain)
	if errors.Is(err, store.ErrNoSuchDomain) {
		return "", ErrNotLocal
	}
	if err != nil {
		return "", err
	}
	if d.Parent != "" {
		return d.Parent, nil
	}
	return d.Name, nil
}

// Account parses an address and looks its domain up: an error for a
// malformed address or a domain that is not ours. It does not look the
// account up (the web's client settings page passes the logged-in
// account's address).
func (h *Handler) Account(ctx context.Context, email string) (Account, error) {
	a, err := address.Parse(strings.TrimSpace(email))
	if err != nil {
		return Account{}, badRequest{err}
	}
	parent, err := h.lookup(ctx, a.Domain)
	if err != nil {
		return Account{}, err
	}
	return Account{Email: a.String(), Domain: a.Domain, Parent: parent}, nil
}

// badRequest is an error in what the client sent (400).
type badRequest struct{ err error }

func (e badRequest) Error() string { return e.err.Error() }

// fail answers an error: 400 for bad input, 404 for a domain that is not
// ours, 500 (logged) for the store failing.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var br badRequest
	switch {
	case errors.As(err, &br):
		http.Error(w, "bad request: "+br.Error(), http.StatusBadRequest)
	case errors.Is(err, ErrNotLocal):
		http.NotFound(w, r)
	default:
		h.log.Error("autoconfig", "path", r.URL.Path, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
}

// Login is the user name for email: the address itself on a parent
// domain, the parent's address of the same local part on a child.
func (a Account) Login() string {
	local := a.Email[:strings.LastIndexByte(a.Email, '@')]
	return local + "@" + a.Parent
}

func (a Account) String() string { return fmt.Sprintf("%s (login %s)", a.Email, a.Login()) }
