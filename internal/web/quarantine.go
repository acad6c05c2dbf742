package web

import (
	"net/http"

	"yubin/admin"
)

func (s *Server) quarantineRoutes(rt *router) {
	rt.page("/mail/{account}/quarantine", s.quarantinePage)
	rt.page("/mail/{account}/quarantine/{id}", s.quarantineMessage)
	rt.form("/mail/{account}/quarantine", s.quarantineAct)
}

// quarantinePage lists the account's held mail, oldest first.
func (s *Server) quarantinePage(c *call) {
	list, err := do(c, admin.OpQuarantineList, admin.QuarantineList{Of: c.account})
	if err != nil {
		c.fail(err)
		return
	}
	s.render(c, http.StatusOK, page{name: "quarantine", data: list})
}

// quarantineMessage shows one held message as text: its header fields
// decoded, its text (HTML turned into text by the admin service), its
// parts — all escaped by html/template, so nothing in it is ever markup
// or script. A message of another account is "not found", as the
// service answers.
func (s *Server) quarantineMessage(c *call) {
	m, err := do(c, admin.OpQuarantineShow, admin.QuarantineShow{ID: c.r.PathValue("id")})
	if err != nil {
		if _, ok := inputError(err); ok {
			s.errorPage(c, http.StatusNotFound, c.t("quarantine.gone"))
			return
		}
		c.fail(err)
		return
	}
	if m.Account != c.account { // an admin's scope holds the domain; this page is the account's own
		s.errorPage(c, http.StatusNotFound, c.t("quarantine.gone"))
		return
	}
	s.render(c, http.StatusOK, page{name: "quarantine_message", data: m})
}

// quarantineAct releases or deletes the chosen messages.
func (s *Server) quarantineAct(c *call) {
	ids := c.form["id"]
	back := "/mail/{account}/quarantine"
	if len(ids) == 0 {
		list, _ := do(c, admin.OpQuarantineList, admin.QuarantineList{Of: c.account})
		s.render(c, http.StatusUnprocessableEntity, page{name: "quarantine", data: list, errors: map[string]string{"id": c.t("quarantine.none")}})
		return
	}
	// Only the account's own, even for an admin (whose scope holds the
	// domain): the request's scope narrows it.
	req := admin.QuarantineIDs{IDs: ids, Scope: admin.Scope{Account: c.account}}
	var err error
	notice := ""
	switch c.form.Get("action") {
	case "release":
		_, err = do(c, admin.OpQuarantineRelease, req)
		notice = "released"
	case "delete":
		_, err = do(c, admin.OpQuarantineDelete, req)
		notice = "deleted"
	default:
		s.errorPage(c, http.StatusBadRequest, c.t("quarantine.badaction"))
		return
	}
	if err != nil {
		if m, ok := inputError(err); ok {
			list, _ := do(c, admin.OpQuarantineList, admin.QuarantineList{Of: c.account})
			s.render(c, http.StatusUnprocessableEntity, page{name: "quarantine", data: list, errors: map[string]string{"id": c.explain("quarantine.invalid", m)}})
			return
		}
		c.fail(err)
		return
	}
	c.redirect(back, notice)
}
