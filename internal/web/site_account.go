package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"yubin/admin"
	"yubin/store"
)

// siteAccountRoutes: one account of the domain — quota, role, password
// reset, scan policy, removal with a confirmation step. Its forwarding
// and spam filter are the account's own Mail Manager pages, which a
// domain admin may open for any account of its domain.
func (s *Server) siteAccountRoutes(rt *router) {
	const p = "/site/{domain}/accounts/{account}"
	rt.page(p, s.siteAccount)
	rt.form(p+"/quota", s.siteQuota)
	rt.form(p+"/role", s.siteRole)
	rt.form(p+"/password", s.sitePassword)
	rt.form(p+"/scan", s.siteScan)
	rt.page(p+"/remove", s.siteRemovePage)
	rt.form(p+"/remove", s.siteRemove)
}

// siteAccountData is the account page.
type siteAccountData struct {
	Domain  string
	Account admin.AccountDetail
	Percent int
	Self    bool   // the caller's own account
	Path    string // the page's path
	Quota   string // the quota field
	Role    string
	Scan    []scanRow
	Mail    string // the account's Mail Manager
}

// siteTarget returns the page's domain and account, both checked: the
// account must be one of the domain's (404 otherwise).
func (c *call) siteTarget() (admin.Domain, admin.AccountDetail, bool) {
	d, ok := c.siteDomain()
	if !ok {
		return d, admin.AccountDetail{}, false
	}
	det, err := do(c, admin.OpAccountShow, c.account)
	if err != nil {
		c.fail(err)
		return d, det, false
	}
	if domainOf(det.Address) != d.Name {
		c.s.errorPage(c, http.StatusNotFound, c.t("error.noaccount"))
		return d, det, false
	}
	return d, det, true
}

// domainOf is the domain of an address.
func domainOf(addr string) string { return addr[strings.LastIndexByte(addr, '@')+1:] }

func (s *Server) siteAccount(c *call) {
	d, det, ok := c.siteTarget()
	if !ok {
		return
	}
	s.renderAccount(c, d, det, http.StatusOK, nil, nil)
}

// renderAccount renders the account page; form holds what a refused
// form sent (shown back), nil for the current values.
func (s *Server) renderAccount(c *call, d admin.Domain, det admin.AccountDetail, status int, form map[string]string, errs map[string]string) {
	sp, err := do(c, admin.OpScanShow, det.Address)
	if err != nil {
		c.fail(err)
		return
	}
	data := siteAccountData{Domain: d.Name, Account: det, Self: det.Address == c.caller.Address,
		Path: sitePath(d.Name, "/accounts/"+url.PathEscape(det.Address)), Quota: quotaText(det.Quota), Role: det.Role,
		Scan: scanRows(sp.ScanPolicy), Mail: "/mail/" + url.PathEscape(det.Address)}
	if det.Quota > 0 {
		data.Percent = int(min(det.Used*100/det.Quota, 100))
	}
	if v, ok := form["quota"]; ok {
		data.Quota = v
	}
	if v, ok := form["role"]; ok {
		data.Role = v
	}
	s.render(c, status, page{name: "site_account", data: data, errors: errs})
}

// quotaText is a quota as the form shows it: "0" for none, else a size
// ParseQuota reads back.
func quotaText(q int64) string {
	if q == 0 {
		return "0"
	}
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if q%u.n == 0 {
			return strconv.FormatInt(q/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatInt(q, 10)
}

// siteDone sends the browser back to the account page with a notice.
func (c *call) siteDone(d string, addr, notice string) {
	http.Redirect(c.w, c.r, sitePath(d, "/accounts/"+url.PathEscape(addr)+"?done="+url.QueryEscape(notice)), http.StatusSeeOther)
}

// siteRefused shows the account page again with err at field, or fails
// for an error that is not the input's.
func (s *Server) siteRefused(c *call, d admin.Domain, det admin.AccountDetail, err error, field string, form map[string]string) {
	m, ok := inputError(err)
	if !ok {
		c.fail(err)
		return
	}
	s.renderAccount(c, d, det, http.StatusUnprocessableEntity, form, map[string]string{field: c.explain("site.invalid", m)})
}

func (s *Server) siteQuota(c *call) {
	d, det, ok := c.siteTarget()
	if !ok {
		return
	}
	in := c.value("quota")
	form := map[string]string{"quota": in}
	if in == "" {
		s.renderAccount(c, d, det, http.StatusUnprocessableEntity, form, map[string]string{"quota": c.t("site.quota.missing")})
		return
	}
	q, err := admin.ParseQuota(in)
	if err != nil {
		s.renderAccount(c, d, det, http.StatusUnprocessableEntity, form, map[string]string{"quota": c.explain("site.invalid", err.Error())})
		return
	}
	if _, err := do(c, admin.OpAccountQuota, admin.QuotaChange{Address: det.Address, Quota: q}); err != nil {
		s.siteRefused(c, d, det, err, "quota", form)
		return
	}
	c.siteDone(d.Name, det.Address, "quota")
}

func (s *Server) siteRole(c *call) {
	d, det, ok := c.siteTarget()
	if !ok {
		return
	}
	role := c.value("role")
	form := map[string]string{"role": role}
	if det.Address == c.caller.Address && role != admin.RoleAdmin {
		// An admin cannot take the Site Manager away from itself here.
		s.renderAccount(c, d, det, http.StatusUnprocessableEntity, form, map[string]string{"role": c.t("site.role.self")})
		return
	}
	if role != admin.RoleAdmin && role != admin.RoleUser {
		s.renderAccount(c, d, det, http.StatusUnprocessableEntity, form, map[string]string{"role": c.t("site.role.bad")})
		return
	}
	if _, err := do(c, admin.OpAccountRole, admin.RoleChange{Address: det.Address, Role: role}); err != nil {
		s.siteRefused(c, d, det, err, "role", form)
		return
	}
	c.siteDone(d.Name, det.Address, "role")
}

// sitePassword sets a new password for the account (a reset: the
// current one is not asked). Its sessions end, as at any password change.
func (s *Server) sitePassword(c *call) {
	d, det, ok := c.siteTarget()
	if !ok {
		return
	}
	pw, pw2 := c.form.Get("password"), c.form.Get("password2")
	switch {
	case det.Address == c.caller.Address:
		// One's own password only with the current one (the Mail
		// Manager's Password page): a session left open must not be
		// enough to take the account for good.
		s.renderAccount(c, d, det, http.StatusUnprocessableEntity, nil, map[string]string{"password": c.t("site.password.self")})
		return
	case pw == "":
		s.renderAccount(c, d, det, http.StatusUnprocessableEntity, nil, map[string]string{"password": c.t("password.new.missing")})
		return
	case pw != pw2:
		s.renderAccount(c, d, det, http.StatusUnprocessableEntity, nil, map[string]string{"password2": c.t("password.mismatch")})
		return
	}
	if _, err := do(c, admin.OpAccountPasswd, admin.PasswordChange{Address: det.Address, Password: pw}); err != nil {
		s.siteRefused(c, d, det, err, "password", nil)
		return
	}
	c.siteDone(d.Name, det.Address, "site-password")
}

// scanRow is one field of the scan policy form.
type scanRow struct {
	Field   string // the form's name, and its message site.scan.FIELD
	Value   string
	Options []string
}

// scanFields are the scan policy's fields as the form names them.
var scanFields = []string{"oversize", "depth", "extract_size", "partial", "encrypted"}

// scanRows is p as the form shows it.
func scanRows(p store.ScanPolicy) []scanRow {
	both := []string{string(store.ScanDiscard), string(store.ScanAccept)}
	return []scanRow{
		{"oversize", string(p.Oversize), both},
		{"depth", string(p.Depth), both},
		{"extract_size", string(p.ExtractSize), both},
		{"partial", string(p.Partial), both},
		{"encrypted", string(p.Encrypted), []string{string(store.ScanAccept), string(store.ScanReject)}},
	}
}

func (s *Server) siteScan(c *call) {
	d, det, ok := c.siteTarget()
	if !ok {
		return
	}
	ch := store.ScanPolicy{
		Oversize: store.ScanAction(c.value("oversize")), Depth: store.ScanAction(c.value("depth")),
		ExtractSize: store.ScanAction(c.value("extract_size")), Partial: store.ScanAction(c.value("partial")),
		Encrypted: store.ScanAction(c.value("encrypted")),
	}
	for _, f := range scanFields {
		if c.value(f) == "" {
			s.renderAccount(c, d, det, http.StatusUnprocessableEntity, nil, map[string]string{"scan": c.t("site.scan.missing")})
			return
		}
	}
	if _, err := do(c, admin.OpScanPolicy, admin.ScanPolicyChange{Address: det.Address, Change: ch}); err != nil {
		s.siteRefused(c, d, det, err, "scan", nil)
		return
	}
	c.siteDone(d.Name, det.Address, "scan")
}

// siteRemoveData is the confirmation page of a removal.
type siteRemoveData struct {
	Domain  string
	Account admin.AccountDetail
	Path    string
}

func (s *Server) siteRemovePage(c *call) {
	d, det, ok := c.siteTarget()
	if !ok {
		return
	}
	s.renderRemove(c, d, det, http.StatusOK, nil)
}

func (s *Server) renderRemove(c *call, d admin.Domain, det admin.AccountDetail, status int, errs map[string]string) {
	s.render(c, status, page{name: "site_remove", errors: errs,
		data: siteRemoveData{Domain: d.Name, Account: det, Path: sitePath(d.Name, "/accounts/"+url.PathEscape(det.Address))}})
}

// siteRemove removes the account and all its mail once the admin has
// typed its address on the confirmation page; never the caller's own.
func (s *Server) siteRemove(c *call) {
	d, det, ok := c.siteTarget()
	if !ok {
		return
	}
	switch {
	case det.Address == c.caller.Address:
		s.renderRemove(c, d, det, http.StatusUnprocessableEntity, map[string]string{"confirm": c.t("site.remove.self")})
		return
	case !strings.EqualFold(c.value("confirm"), det.Address):
		s.renderRemove(c, d, det, http.StatusUnprocessableEntity, map[string]string{"confirm": c.t("site.remove.confirm.bad", det.Address)})
		return
	}
	if _, err := do(c, admin.OpAccountRemove, det.Address); err != nil {
		if m, ok := inputError(err); ok {
			s.renderRemove(c, d, det, http.StatusUnprocessableEntity, map[string]string{"confirm": c.explain("site.invalid", m)})
			return
		}
		c.fail(err)
		return
	}
	http.Redirect(c.w, c.r, sitePath(d.Name, "/?done=account-remove"), http.StatusSeeOther)
}
