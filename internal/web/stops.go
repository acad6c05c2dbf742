package web

import (
	"net/http"
	"strconv"

	"yubin/admin"
)

func (s *Server) stopsRoutes(rt *router) {
	rt.page("/mail/{account}/stops", s.stopsPage)
}

// stopsData is what scanning stopped that concerned the account.
type stopsData struct {
	Days  int
	Stops []admin.Stop
}

// stopsPage lists the scan stops of the last days (?days=N, 1 to 90;
// default 7).
func (s *Server) stopsPage(c *call) {
	days := 7
	if v := c.r.URL.Query().Get("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > admin.MaxStopDays {
			s.render(c, http.StatusBadRequest, page{name: "stops", data: stopsData{Days: days},
				errors: map[string]string{"days": c.t("stops.baddays", admin.MaxStopDays)}})
			return
		}
		days = n
	}
	list, err := do(c, admin.OpScanStops, admin.StopsQuery{Address: c.account, Days: days})
	if err != nil {
		c.fail(err)
		return
	}
	s.render(c, http.StatusOK, page{name: "stops", data: stopsData{Days: days, Stops: list}})
}
