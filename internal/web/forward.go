package web

import (
	"net/http"
	"strings"

	"yubin/admin"
)

func (s *Server) forwardRoutes(rt *router) {
	rt.page("/mail/{account}/forward", s.forwardPage)
	rt.form("/mail/{account}/forward", s.setForward)
}

// forwardData is the forwarding form: the targets one a line.
type forwardData struct {
	Targets  string
	KeepCopy bool
	Active   bool // the account forwards now
	Max      int
}

func (s *Server) forwardPage(c *call) {
	f, err := do(c, admin.OpForwardShow, c.account)
	if err != nil {
		c.fail(err)
		return
	}
	d := forwardData{Targets: strings.Join(f.Targets, "\n"), KeepCopy: f.KeepCopy, Active: len(f.Targets) > 0, Max: admin.MaxForwardTargets}
	s.render(c, http.StatusOK, page{name: "forward", data: d})
}

// setForward replaces the rule: the same checks as "yubin forward set"
// (the admin service's); no targets stops forwarding.
func (s *Server) setForward(c *call) {
	targets := splitTargets(c.form.Get("targets"))
	keep := c.form.Get("keep_copy") == "on"
	d := forwardData{Targets: c.form.Get("targets"), KeepCopy: keep, Max: admin.MaxForwardTargets}
	if cur, err := do(c, admin.OpForwardShow, c.account); err == nil {
		d.Active = len(cur.Targets) > 0
	}
	if c.form.Get("action") == "clear" || len(targets) == 0 {
		if err := func() error { _, err := do(c, admin.OpForwardClear, c.account); return err }(); err != nil {
			c.fail(err)
			return
		}
		c.redirect("/mail/{account}/forward", "forward-clear")
		return
	}
	if len(targets) > admin.MaxForwardTargets {
		s.render(c, http.StatusUnprocessableEntity, page{name: "forward", data: d,
			errors: map[string]string{"targets": c.t("forward.toomany", admin.MaxForwardTargets, len(targets))}})
		return
	}
	if _, err := do(c, admin.OpForwardSet, admin.Forwarding{Address: c.account, Targets: targets, KeepCopy: keep}); err != nil {
		if m, ok := inputError(err); ok {
			s.render(c, http.StatusUnprocessableEntity, page{name: "forward", data: d, errors: map[string]string{"targets": c.explain("forward.invalid", m)}})
			return
		}
		c.fail(err)
		return
	}
	c.redirect("/mail/{account}/forward", "forward")
}
