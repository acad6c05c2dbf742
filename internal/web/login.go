package web

import (
	"errors"
	"net/http"

	"yubin/internal/auth"
)

// loginRoutes: the login page, logging in and out.
func (s *Server) loginRoutes(rt *router) {
	rt.mux.HandleFunc("GET /login", s.loginPage)
	rt.mux.HandleFunc("POST /login", s.login)
	rt.form("/logout", s.logout)
}

// loginData is what the login page shows.
type loginData struct {
	Address string
}

// loginPage shows the form, with a fresh token in a cookie of its own
// that the form must bring back (there is no session yet to hold it).
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	lang := s.language(r)
	p := page{name: "login", data: loginData{}}
	if r.URL.Query().Get("ended") != "" {
		p.notice = s.msgs.text(lang, "login.ended")
	}
	s.loginForm(w, r, lang, http.StatusOK, p)
}

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request, lang string, status int, p page) {
	tok := token()
	http.SetCookie(w, &http.Cookie{Name: preCookie, Value: tok, Path: "/", MaxAge: 3600, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	v := s.newView(r, lang, p)
	v.csrf = tok
	s.write(w, status, "login", v)
}

// login checks the address and password with internal/auth, the same
// check and lockout as IMAP, POP3 and SMTP AUTH, and starts a session.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	lang := s.language(r)
	f, err := parseForm(w, r)
	if err != nil {
		s.loginForm(w, r, lang, http.StatusBadRequest, page{name: "login", data: loginData{}, problem: err.Error()})
		return
	}
	addr := f.Get("address")
	data := loginData{Address: addr}
	ck, cerr := r.Cookie(preCookie)
	if cerr != nil || !equal(ck.Value, f.Get("csrf")) {
		s.log.Warn("web: login form without its CSRF token refused", "remote", r.RemoteAddr)
		s.loginForm(w, r, lang, http.StatusForbidden, page{name: "login", data: data, problem: s.msgs.text(lang, "error.csrf")})
		return
	}
	if addr == "" || f.Get("password") == "" {
		s.loginForm(w, r, lang, http.StatusUnprocessableEntity, page{name: "login", data: data, problem: s.msgs.text(lang, "login.missing")})
		return
	}
	acct, err := s.auth.Authenticate(r.Context(), remoteAddr(r), addr, f.Get("password"))
	switch {
	case errors.Is(err, auth.ErrTooManyFailures):
		s.cfg.Metrics.AuthFailure("web", true)
		s.log.Warn("web: login refused, too many failures", "user", addr, "remote", r.RemoteAddr)
		s.loginForm(w, r, lang, http.StatusTooManyRequests, page{name: "login", data: data, problem: s.msgs.text(lang, "login.locked")})
		return
	case errors.Is(err, auth.ErrUnavailable):
		// The store could not be asked (a database away): not a wrong
		// password, and not counted as one (internal/auth).
		s.log.Error("web: login cannot be checked", "user", addr, "remote", r.RemoteAddr, "err", err)
		s.loginForm(w, r, lang, http.StatusServiceUnavailable, page{name: "login", data: data, problem: s.msgs.text(lang, "login.unavailable")})
		return
	case err != nil:
		s.cfg.Metrics.AuthFailure("web", false)
		s.log.Info("web: login failed", "user", addr, "remote", r.RemoteAddr)
		s.loginForm(w, r, lang, http.StatusUnauthorized, page{name: "login", data: data, problem: s.msgs.text(lang, "login.bad")})
		return
	}
	caller, err := s.svc.Caller(r.Context(), acct.Address)
	if err != nil {
		s.log.Error("web: login: reading the account", "account", acct.Address, "err", err)
		s.loginForm(w, r, lang, http.StatusInternalServerError, page{name: "login", data: data, problem: s.msgs.text(lang, "error.internal")})
		return
	}
	// A new id at every login: one set before (by anyone) is never used.
	if old, err := r.Cookie(sessionCookie); err == nil {
		s.sessions.end(old.Value)
	}
	id, _ := s.sessions.start(caller.Address, caller.Stamp)
	s.setSession(w, id)
	http.SetCookie(w, &http.Cookie{Name: preCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	s.log.Info("web: login", "account", caller.Address, "remote", r.RemoteAddr)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// setSession sets the session cookie: only over HTTPS, out of reach of
// script, never sent with a request another site starts. It has no
// Max-Age: it ends with the browser, and the server ends it sooner.
func (s *Server) setSession(w http.ResponseWriter, id string) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// logout ends the session.
func (s *Server) logout(c *call) {
	s.sessions.end(c.sid)
	http.SetCookie(c.w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	s.log.Info("web: logout", "account", c.account)
	http.Redirect(c.w, c.r, "/login", http.StatusSeeOther)
}
