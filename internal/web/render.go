package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"

	"yubin/admin"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// parsePages parses each page template with the layout: one template set
// per page, so every page defines its own "title" and "content".
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return nil, err
	}
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("web: layout: %w", err)
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFiles, n)
		if err != nil {
			return nil, fmt.Errorf("web: %s: %w", base, err)
		}
		pages[strings.TrimSuffix(base, ".html")] = t
	}
	return pages, nil
}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"size":  admin.FormatBytes,
	"usage": admin.FormatUsage,
	"percent": func(used, quota int64) int {
		if quota <= 0 {
			return 0
		}
		p := used * 100 / quota
		return int(min(p, 100))
	},
	"join": strings.Join,
}

// view is what a page template gets.
type view struct {
	msgs      catalogue
	Lang      string
	OtherLang string
	Path      string
	Caller    *admin.Caller // nil: not logged in
	Account   string        // the account the page is about
	Base      string        // its Mail Manager: /mail/ACCOUNT
	Nav       []navItem
	csrf      string
	Data      any
	Errors    map[string]string // field → error shown next to it
	Notice    string            // a message shown on top
	Problem   string            // an error not tied to a field
}

// T translates key (fmt arguments in args).
func (v *view) T(key string, args ...any) string { return v.msgs.text(v.Lang, key, args...) }

// CSRF is the hidden field every form carries.
func (v *view) CSRF() template.HTML {
	return template.HTML(`<input type="hidden" name="csrf" value="` + template.HTMLEscapeString(v.csrf) + `">`)
}

// App is the message key of the part of the web shown: the Site
// Manager's pages or the Mail Manager's.
func (v *view) App() string {
	if strings.HasPrefix(v.Path, "/site/") {
		return "app.site"
	}
	return "app.mail"
}

// Err is the error of a field, "" when none.
func (v *view) Err(field string) string { return v.Errors[field] }

// LangLink is the link that switches the language and comes back here.
func (v *view) LangLink() string {
	return "/lang?to=" + v.OtherLang + "&back=" + url.QueryEscape(v.Path)
}

// page is a page to render: a template and what it shows.
type page struct {
	name    string
	data    any
	errors  map[string]string
	notice  string
	problem string
}

// render writes a page of a logged-in account with status.
func (s *Server) render(c *call, status int, p page) {
	v := s.newView(c.r, c.lang, p)
	v.Caller = &c.caller
	v.Account = c.account
	v.Base = strings.TrimSuffix(c.path("/mail/{account}/"), "/")
	v.csrf = c.sess.csrf
	v.Nav = s.nav(c)
	s.write(c.w, status, p.name, v)
}

func (s *Server) newView(r *http.Request, lang string, p page) *view {
	other := "ja"
	if lang == "ja" {
		other = "en"
	}
	notice := p.notice
	if notice == "" {
		if k := r.URL.Query().Get("done"); k != "" && s.msgs.has("done."+k) {
			notice = s.msgs.text(lang, "done."+k)
		}
	}
	return &view{msgs: s.msgs, Lang: lang, OtherLang: other, Path: r.URL.Path, Data: p.data, Errors: p.errors, Notice: notice, Problem: p.problem}
}

// write executes a page into a buffer, then sends it: a template error
// never leaves half a page.
func (s *Server) write(w http.ResponseWriter, status int, name string, v *view) {
	t := s.pages[name]
	if t == nil {
		s.log.Error("web: no such page template", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		s.log.Error("web: rendering", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// errorPage answers status with a message, in the layout.
func (s *Server) errorPage(c *call, status int, msg string) {
	s.render(c, status, page{name: "error", data: http.StatusText(status), problem: msg})
}

// language is the request's language: the cookie the switch sets, else
// the first of ja and en in Accept-Language, else English.
func (s *Server) language(r *http.Request) string {
	if ck, err := r.Cookie(langCookie); err == nil && (ck.Value == "ja" || ck.Value == "en") {
		return ck.Value
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		tag = strings.ToLower(tag)
		switch {
		case tag == "ja" || strings.HasPrefix(tag, "ja-"):
			return "ja"
		case tag == "en" || strings.HasPrefix(tag, "en-"):
			return "en"
		}
	}
	return "en"
}

// switchLanguage sets the language cookie and goes back to the page.
func (s *Server) switchLanguage(w http.ResponseWriter, r *http.Request) {
	to := r.URL.Query().Get("to")
	if to != "ja" && to != "en" {
		to = "en"
	}
	http.SetCookie(w, &http.Cookie{Name: langCookie, Value: to, Path: "/", MaxAge: 365 * 24 * 3600, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	back := r.URL.Query().Get("back")
	// Only a path of ours: never another site. Browsers drop tabs and
	// newlines inside a URL ("/\t/evil.test" is //evil.test) and treat a
	// backslash as a slash, so no control character and no backslash.
	if !strings.HasPrefix(back, "/") || strings.HasPrefix(back, "//") || strings.ContainsFunc(back, func(r rune) bool {
		return r < 0x20 || r == 0x7f || r == '\\'
	}) {
		back = "/"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}
