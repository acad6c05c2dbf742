package web

import (
	"net/http"
	"net/url"
	"strings"

	"yubin/admin"
)

// siteRoutes: the Site Manager, the pages of a domain's admins (role
// admin) for their own parent domain and its children. Every page names
// its domain in the path; the admin service decides whether the caller
// may touch it (a domain admin: its parent domain and children, never
// another domain), so a page of another domain is 403 whether it exists
// or not.
func (s *Server) siteRoutes(rt *router) {
	rt.page("/site/{$}", s.siteHome)
	rt.page("/site/{domain}/{$}", s.siteAccounts)
	rt.form("/site/{domain}/accounts", s.siteAddAccount)
	s.siteAccountRoutes(rt)
	s.siteSettingsRoutes(rt)
	s.siteDNSRoutes(rt)
}

// siteHome opens the Site Manager of the caller's own domain.
func (s *Server) siteHome(c *call) {
	if !c.siteAdmin() {
		return
	}
	http.Redirect(c.w, c.r, sitePath(c.caller.Scope.Domain, "/"), http.StatusSeeOther)
}

// sitePath is the path of a Site Manager page of domain.
func sitePath(domain, rest string) string { return "/site/" + url.PathEscape(domain) + rest }

// siteAdmin answers 403 and returns false unless the caller is a domain
// admin: a user never sees the Site Manager (the admin service refuses
// every operation of it to a user as well).
func (c *call) siteAdmin() bool {
	if c.caller.Role != admin.RoleAdmin || c.caller.Scope.Domain == "" {
		c.s.errorPage(c, http.StatusForbidden, c.t("error.denied"))
		return false
	}
	return true
}

// siteDomain returns the page's {domain}, checked by the admin service:
// 403 for a domain outside the caller's (or unknown), a child domain's
// pages sent to its parent's (accounts and settings are the parent's).
// It answers and returns false when the page cannot go on.
func (c *call) siteDomain() (admin.Domain, bool) {
	if !c.siteAdmin() {
		return admin.Domain{}, false
	}
	d, err := do(c, admin.OpDomainShow, c.r.PathValue("domain"))
	if err != nil {
		if _, ok := inputError(err); ok {
			c.s.errorPage(c, http.StatusNotFound, c.t("site.nodomain"))
			return admin.Domain{}, false
		}
		c.fail(err)
		return admin.Domain{}, false
	}
	if d.Parent != "" {
		rest := strings.TrimPrefix(c.r.URL.Path, sitePath(c.r.PathValue("domain"), ""))
		http.Redirect(c.w, c.r, sitePath(d.Parent, rest), http.StatusSeeOther)
		return admin.Domain{}, false
	}
	return d, true
}

// siteAccountsData is the accounts page: every account of the domain
// with its usage, and the form to add one.
type siteAccountsData struct {
	Domain   admin.Domain
	Accounts []siteAccountRow
	Add      newAccountForm
}

type siteAccountRow struct {
	admin.Account
	Percent int
	Path    string // its page
}

// newAccountForm is what the add form holds (the passwords are never
// sent back).
type newAccountForm struct {
	Local, Role, Quota string
}

func (s *Server) siteAccounts(c *call) {
	d, ok := c.siteDomain()
	if !ok {
		return
	}
	s.renderAccounts(c, d, http.StatusOK, newAccountForm{Role: admin.RoleUser}, nil)
}

func (s *Server) renderAccounts(c *call, d admin.Domain, status int, add newAccountForm, errs map[string]string) {
	accts, err := do(c, admin.OpAccountList, d.Name)
	if err != nil {
		c.fail(err)
		return
	}
	data := siteAccountsData{Domain: d, Add: add}
	for _, a := range accts {
		row := siteAccountRow{Account: a, Path: sitePath(d.Name, "/accounts/"+url.PathEscape(a.Address))}
		if a.Quota > 0 {
			row.Percent = int(min(a.Used*100/a.Quota, 100))
		}
		data.Accounts = append(data.Accounts, row)
	}
	s.render(c, status, page{name: "site_accounts", data: data, errors: errs})
}

// siteAddAccount adds an account on the domain: the same checks as
// "yubin account add" (the admin service's), and the two passwords the
// same. Bad input: the form back with the error at its field.
func (s *Server) siteAddAccount(c *call) {
	d, ok := c.siteDomain()
	if !ok {
		return
	}
	f := newAccountForm{Local: c.value("local"), Role: c.value("role"), Quota: c.value("quota")}
	errs := map[string]string{}
	pw, pw2 := c.form.Get("password"), c.form.Get("password2")
	switch {
	case f.Local == "":
		errs["local"] = c.t("site.add.local.missing")
	case strings.Contains(f.Local, "@"):
		errs["local"] = c.t("site.add.local.at", d.Name)
	}
	switch {
	case pw == "":
		errs["password"] = c.t("password.new.missing")
	case pw != pw2:
		errs["password2"] = c.t("password.mismatch")
	}
	na := admin.NewAccount{Address: f.Local + "@" + d.Name, Password: pw, Role: f.Role}
	if f.Quota != "" {
		q, err := admin.ParseQuota(f.Quota)
		if err != nil {
			errs["quota"] = c.explain("site.invalid", err.Error())
		}
		na.Quota = &q
	}
	if len(errs) == 0 {
		_, err := do(c, admin.OpAccountAdd, na)
		if err == nil {
			http.Redirect(c.w, c.r, sitePath(d.Name, "/?done=account-add"), http.StatusSeeOther)
			return
		}
		m, ok := inputError(err)
		if !ok {
			c.fail(err)
			return
		}
		errs[fieldOf(m, "local", [2]string{"quota", "quota"}, [2]string{"role", "role"}, [2]string{"password", "password"})] = c.explain("site.invalid", m)
	}
	s.renderAccounts(c, d, http.StatusUnprocessableEntity, f, errs)
}
