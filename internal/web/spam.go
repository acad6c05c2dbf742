package web

import (
	"net/http"
	"strconv"

	"yubin/admin"
)

func (s *Server) spamRoutes(rt *router) {
	rt.page("/mail/{account}/spam", s.spamPage)
	rt.form("/mail/{account}/spam", s.setSpam)
}

// spamData is the spam filter form.
type spamData struct {
	Action    string
	Threshold string // "" = the default
	Default   string // the default threshold, for the hint
	Tag       bool
	State     *admin.SpamState
}

func (s *Server) spamPage(c *call) {
	st, err := do(c, admin.OpSpamShow, c.account)
	if err != nil {
		c.fail(err)
		return
	}
	s.render(c, http.StatusOK, page{name: "spam", data: spamFormOf(st)})
}

func spamFormOf(st admin.SpamState) spamData {
	d := spamData{Action: string(st.Action), Tag: st.Tag, State: &st, Default: "0.5"}
	if !st.DefaultThreshold {
		d.Threshold = strconv.FormatFloat(st.Threshold, 'f', -1, 64)
	}
	return d
}

// setSpam changes the policy through the admin service (its checks:
// action off, junk or quarantine; a threshold above 0 and at most 1).
func (s *Server) setSpam(c *call) {
	d := spamData{Action: c.value("action"), Threshold: c.value("threshold"), Tag: c.form.Get("tag") == "on", Default: "0.5"}
	if st, err := do(c, admin.OpSpamShow, c.account); err == nil {
		d.State = &st
	}
	ch := admin.SpamPolicyChange{Address: c.account, Action: d.Action, Threshold: d.Threshold, Tag: "off"}
	if ch.Threshold == "" {
		ch.Threshold = "default"
	}
	if d.Tag {
		ch.Tag = "on"
	}
	if ch.Action == "" {
		s.render(c, http.StatusUnprocessableEntity, page{name: "spam", data: d, errors: map[string]string{"action": c.t("spam.action.missing")}})
		return
	}
	if _, err := do(c, admin.OpSpamPolicy, ch); err != nil {
		if m, ok := inputError(err); ok {
			f := fieldOf(m, "action", [2]string{"threshold", "threshold"}, [2]string{"tag", "tag"})
			s.render(c, http.StatusUnprocessableEntity, page{name: "spam", data: d, errors: map[string]string{f: c.explain("spam.invalid", m)}})
			return
		}
		c.fail(err)
		return
	}
	c.redirect("/mail/{account}/spam", "spam")
}
