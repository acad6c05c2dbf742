package web

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"yubin/admin"
)

// secure sets the headers every answer carries.
func secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		// No script at all, no plugins, nothing framed, forms only to us.
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// call is one request to a page of a logged-in account.
type call struct {
	s      *Server
	w      http.ResponseWriter
	r      *http.Request
	ctx    context.Context // the request's, limited to the caller's scope
	caller admin.Caller
	sid    string // the session's id (its cookie)
	sess   *session
	lang   string
	form   url.Values // a POST's fields, checked (router.form)
	// account is the account the page is about: the {account} of its
	// path, checked against the caller's scope by the admin service
	// (a user: only their own; a domain admin: the domain's), or the
	// caller's own for a page without one.
	account string
}

// value is a form field, trimmed.
func (c *call) value(name string) string { return strings.TrimSpace(c.form.Get(name)) }

// errFormTooLarge and friends are why a form is refused before its
// handler sees it: status 400 (413 for the body).
var (
	errFormType = errors.New("the form must be sent as application/x-www-form-urlencoded")
	errFormSize = fmt.Errorf("the form is over %d bytes", maxBody)
)

// parseForm reads a POST body as a form within the limits: at most
// maxBody bytes, maxFields values, maxFieldBytes bytes a value, valid
// UTF-8 without NUL. It is the one place forms are read.
func parseForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/x-www-form-urlencoded" {
		return nil, errFormType
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, errFormSize
		}
		return nil, fmt.Errorf("the form is malformed: %v", err)
	}
	return checkForm(r.PostForm)
}

// checkForm applies the limits on fields to a parsed form.
func checkForm(f url.Values) (url.Values, error) {
	n := 0
	for k, vs := range f {
		if len(k) > 64 || !utf8.ValidString(k) {
			return nil, fmt.Errorf("the form has a field name that is too long or not UTF-8")
		}
		for _, v := range vs {
			n++
			if len(v) > maxFieldBytes {
				return nil, fmt.Errorf("the field %s is over %d bytes", k, maxFieldBytes)
			}
			if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
				return nil, fmt.Errorf("the field %s is not valid text", k)
			}
		}
	}
	if n > maxFields {
		return nil, fmt.Errorf("the form has %d values, more than %d", n, maxFields)
	}
	return f, nil
}

// router registers pages behind the session and form checks.
type router struct {
	s   *Server
	mux *http.ServeMux
}

// page registers a GET handler for a logged-in account.
func (rt *router) page(path string, h func(*call)) {
	rt.mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
		if c := rt.s.begin(w, r); c != nil && c.resolve() {
			h(c)
		}
	})
}

// form registers a POST handler for a logged-in account: the form is
// read within its limits and its CSRF token checked before h runs.
func (rt *router) form(path string, h func(*call)) {
	rt.mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
		c := rt.s.begin(w, r)
		if c == nil {
			return
		}
		f, err := parseForm(w, r)
		if err != nil {
			status := http.StatusBadRequest
			if errors.Is(err, errFormSize) {
				status = http.StatusRequestEntityTooLarge
			}
			c.s.errorPage(c, status, err.Error())
			return
		}
		if !equal(c.sess.csrf, f.Get("csrf")) {
			c.s.log.Warn("web: form without its CSRF token refused", "account", c.caller.Address, "path", r.URL.Path, "remote", r.RemoteAddr)
			c.s.errorPage(c, http.StatusForbidden, c.t("error.csrf"))
			return
		}
		c.form = f
		if c.resolve() {
			h(c)
		}
	})
}

// resolve sets c.account from the path's {account}: the admin service
// decides whether the caller may see it (403 if not; 404 for an unknown
// account of the caller's own domain). It answers and returns false when
// the page cannot go on.
func (c *call) resolve() bool {
	c.account = c.caller.Address
	a := c.r.PathValue("account")
	if a == "" {
		return true
	}
	det, err := do(c, admin.OpAccountShow, a)
	if err != nil {
		if _, ok := inputError(err); ok {
			c.s.errorPage(c, http.StatusNotFound, c.t("error.noaccount"))
			return false
		}
		c.fail(err)
		return false
	}
	c.account = det.Address
	return true
}

// own reports whether the page is about the caller's own account.
func (c *call) own() bool { return c.account == c.caller.Address }

// path is p (a path with {account}) for the page's account.
func (c *call) path(p string) string {
	return strings.ReplaceAll(p, "{account}", url.PathEscape(c.account))
}

// begin returns the call of a request with a live session, or answers
// it (a redirect to the login page) and returns nil. The session ends
// when it has expired, when the account is gone and when its password
// changed since the login, by any path (the CLI too).
func (s *Server) begin(w http.ResponseWriter, r *http.Request) *call {
	lang := s.language(r)
	ck, err := r.Cookie(sessionCookie)
	var sess *session
	if err == nil {
		sess = s.sessions.get(ck.Value)
	}
	if sess == nil {
		s.toLogin(w, r, err == nil)
		return nil
	}
	caller, err := s.svc.Caller(r.Context(), sess.account)
	if err != nil || !equal(caller.Stamp, sess.stamp) {
		s.sessions.end(ck.Value)
		s.toLogin(w, r, true)
		return nil
	}
	return &call{s: s, w: w, r: r, ctx: withScope(r.Context(), caller), caller: caller, sid: ck.Value, sess: sess, lang: lang}
}

// toLogin sends the browser to the login page; expired says a session
// cookie came that no longer opens one (it is removed).
func (s *Server) toLogin(w http.ResponseWriter, r *http.Request, expired bool) {
	to := "/login"
	if expired {
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
		to += "?ended=1"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// t translates key for the call's language.
func (c *call) t(key string, args ...any) string { return c.s.msgs.text(c.lang, key, args...) }

// fail answers an admin service error that is not the user's input: a
// 403 page for ErrDenied, a 500 otherwise.
func (c *call) fail(err error) {
	if errors.Is(err, admin.ErrDenied) {
		c.s.errorPage(c, http.StatusForbidden, c.t("error.denied"))
		return
	}
	c.s.log.Error("web: admin operation failed", "caller", c.caller.Address, "path", c.r.URL.Path, "err", err)
	c.s.errorPage(c, http.StatusInternalServerError, c.t("error.internal"))
}

// redirect answers a POST that worked: 303 to path (Post/Redirect/Get),
// with a notice key shown there.
func (c *call) redirect(path, notice string) {
	path = c.path(path)
	if notice != "" {
		path += "?done=" + url.QueryEscape(notice)
	}
	http.Redirect(c.w, c.r, path, http.StatusSeeOther)
}
