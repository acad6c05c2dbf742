package web

import (
	"net/http"
	"strings"

	"yubin/internal/autoconfig"
)

// navItem is an entry of the menu.
type navItem struct {
	Path  string
	Key   string // its message
	Admin bool   // only for role admin (the Site Manager)
	Here  bool   // the page shown
}

// menu is every entry, in order.
var menu = []navItem{
	{Path: "/mail/{account}/", Key: "nav.overview"},
	{Path: "/mail/{account}/password", Key: "nav.password"},
	{Path: "/mail/{account}/forward", Key: "nav.forward"},
	{Path: "/mail/{account}/spam", Key: "nav.spam"},
	{Path: "/mail/{account}/quarantine", Key: "nav.quarantine"},
	{Path: "/mail/{account}/stops", Key: "nav.stops"},
	{Path: "/mail/{account}/clients", Key: "nav.clients"},
	{Path: "/site/", Key: "nav.site", Admin: true},
}

// nav is the menu for the caller.
func (s *Server) nav(c *call) []navItem {
	var out []navItem
	for _, n := range menu {
		if n.Admin && c.caller.Role != "admin" {
			continue
		}
		n.Path = c.path(n.Path)
		n.Here = n.Path == c.r.URL.Path || (!strings.HasSuffix(n.Path, "/") && strings.HasPrefix(c.r.URL.Path, n.Path+"/")) ||
			(n.Admin && strings.HasPrefix(c.r.URL.Path, n.Path)) // every page of the Site Manager
		out = append(out, n)
	}
	return out
}

// routes returns the handler of every page. A new group of pages is one
// line in pages (see the package doc).
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	rt := &router{s: s, mux: mux}
	// The stylesheet, and nothing else (no listing of the directory).
	mux.HandleFunc("GET /static/style.css", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, staticFiles, "static/style.css")
	})
	mux.HandleFunc("GET /lang", s.switchLanguage)
	pages := []func(*router){
		s.loginRoutes,
		s.mailRoutes,
		s.siteRoutes,
	}
	for _, p := range pages {
		p(rt)
	}
	// A POST a browser says comes from another origin (Sec-Fetch-Site,
	// else Origin against Host) is refused before any handler, beside the
	// CSRF token and SameSite=Strict (which lets a sibling host of the
	// same site through). Autoconfig is not behind it: mail clients.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.log.Warn("web: cross-origin request refused", "path", r.URL.Path, "remote", r.RemoteAddr,
			"sec_fetch_site", r.Header.Get("Sec-Fetch-Site"), "origin", r.Header.Get("Origin"))
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
	}))
	protected := cop.Handler(mux)
	if ac := s.cfg.Autoconfig; ac != nil {
		// Client autoconfiguration, without a session (mail clients
		// ask before any login); the autodiscover path in any case.
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if autoconfig.Handles(r.URL.Path) {
				ac.ServeHTTP(w, r)
				return
			}
			protected.ServeHTTP(w, r)
		})
	}
	return protected
}
