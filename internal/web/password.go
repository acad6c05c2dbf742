package web

import (
	"errors"
	"net/http"

	"yubin/admin"
	"yubin/internal/auth"
)

func (s *Server) passwordRoutes(rt *router) {
	rt.page("/mail/{account}/password", s.passwordPage)
	rt.form("/mail/{account}/password", s.changePassword)
}

// Only one's own password is changed here (with the current one): a
// domain admin resets another's in the Site Manager.
func (s *Server) passwordPage(c *call) {
	if !c.own() {
		s.errorPage(c, http.StatusForbidden, c.t("error.denied"))
		return
	}
	s.render(c, http.StatusOK, page{name: "password"})
}

// changePassword checks the current password (as a login: it counts
// against the lockout), then sets the new one through the admin service.
// Every other session of the account ends; this one goes on with a new id.
func (s *Server) changePassword(c *call) {
	if !c.own() {
		s.errorPage(c, http.StatusForbidden, c.t("error.denied"))
		return
	}
	cur, pw, pw2 := c.form.Get("current"), c.form.Get("new"), c.form.Get("new2")
	errs := map[string]string{}
	switch {
	case cur == "":
		errs["current"] = c.t("password.current.missing")
	case pw == "":
		errs["new"] = c.t("password.new.missing")
	case pw != pw2:
		errs["new2"] = c.t("password.mismatch")
	case pw == cur:
		errs["new"] = c.t("password.same")
	}
	if len(errs) > 0 {
		s.render(c, http.StatusUnprocessableEntity, page{name: "password", errors: errs})
		return
	}
	if _, err := s.auth.Authenticate(c.ctx, remoteAddr(c.r), c.account, cur); err != nil {
		key := "password.current.bad"
		status := http.StatusUnprocessableEntity
		switch {
		case errors.Is(err, auth.ErrTooManyFailures):
			key, status = "login.locked", http.StatusTooManyRequests
		case errors.Is(err, auth.ErrUnavailable):
			key, status = "login.unavailable", http.StatusServiceUnavailable
		}
		s.render(c, status, page{name: "password", errors: map[string]string{"current": c.t(key)}})
		return
	}
	if _, err := do(c, admin.OpAccountPasswd, admin.PasswordChange{Address: c.account, Password: pw}); err != nil {
		if m, ok := inputError(err); ok {
			s.render(c, http.StatusUnprocessableEntity, page{name: "password", errors: map[string]string{"new": c.explain("password.invalid", m)}})
			return
		}
		c.fail(err)
		return
	}
	caller, err := s.svc.Caller(c.ctx, c.account)
	if err != nil {
		c.fail(err)
		return
	}
	// The other sessions end at their next request anyway (their stamp
	// is old); end them now. This one gets a new id.
	n := s.sessions.endAccount(c.account)
	id, _ := s.sessions.start(caller.Address, caller.Stamp)
	s.setSession(c.w, id)
	s.log.Info("web: password changed", "account", c.account, "sessions_ended", n-1)
	c.redirect("/mail/{account}/password", "password")
}
