package web

import (
	"net/http"
	"strings"
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
		n.Here = n.Path == c.r.URL.Path || (!strings.HasSuffix(n.Path, "/") && strings.HasPrefix(c.r.URL.Path, n.Path+"/"))
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
	if s.cfg.Autoconfig != nil {
		s.cfg.Autoconfig.Register(mux) // no session: mail clients ask before any login
	}
	pages := []func(*router){
		s.loginRoutes,
		s.mailRoutes,
		s.siteRoutes,
	}
	for _, p := range pages {
		p(rt)
	}
	return mux
}
