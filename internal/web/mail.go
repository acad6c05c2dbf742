package web

import (
	"net/http"

	"yubin/admin"
)

// mailRoutes: the Mail Manager, every account's own pages.
func (s *Server) mailRoutes(rt *router) {
	rt.page("/{$}", func(c *call) { c.redirect("/mail/{account}/", "") })
	rt.page("/mail/{account}/{$}", s.overview)
	s.passwordRoutes(rt)
	s.forwardRoutes(rt)
	s.spamRoutes(rt)
	s.quarantineRoutes(rt)
	s.stopsRoutes(rt)
	s.clientsRoutes(rt)
}

// overviewData is the overview: the account, its usage, its mailboxes.
type overviewData struct {
	Account admin.AccountDetail
	Percent int
}

// overview shows the account's usage against its quota.
func (s *Server) overview(c *call) {
	det, err := do(c, admin.OpAccountShow, c.account)
	if err != nil {
		c.fail(err)
		return
	}
	d := overviewData{Account: det}
	if det.Quota > 0 {
		d.Percent = int(min(det.Used*100/det.Quota, 100))
	}
	s.render(c, http.StatusOK, page{name: "overview", data: d})
}
