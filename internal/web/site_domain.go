package web

import (
	"net/http"

	"yubin/admin"
	"yubin/internal/dnsrecords"
)

// siteSettingsRoutes: the domain's settings — warning mails on or off and
// their language, the daily report's address (as "yubin warnings" and
// "yubin report set" do).
func (s *Server) siteSettingsRoutes(rt *router) {
	rt.page("/site/{domain}/settings", s.siteSettings)
	rt.form("/site/{domain}/settings", s.siteSaveSettings)
}

// siteSettingsData is the settings form.
type siteSettingsData struct {
	Domain   string
	Warnings bool
	Language string
	ReportTo string
}

func (s *Server) siteSettings(c *call) {
	d, ok := c.siteDomain()
	if !ok {
		return
	}
	ds, err := do(c, admin.OpSettingsShow, d.Name)
	if err != nil {
		c.fail(err)
		return
	}
	s.render(c, http.StatusOK, page{name: "site_settings",
		data: siteSettingsData{Domain: d.Name, Warnings: ds.Warnings, Language: ds.Language, ReportTo: ds.ReportTo}})
}

// siteSaveSettings changes the three settings in one operation: all or
// nothing (the admin service checks them all before it writes).
func (s *Server) siteSaveSettings(c *call) {
	d, ok := c.siteDomain()
	if !ok {
		return
	}
	f := siteSettingsData{Domain: d.Name, Warnings: c.value("warnings") == "on", Language: c.value("language"), ReportTo: c.value("report_to")}
	refuse := func(field, msg string) {
		s.render(c, http.StatusUnprocessableEntity, page{name: "site_settings", data: f, errors: map[string]string{field: msg}})
	}
	switch c.value("warnings") {
	case "on", "off":
	default:
		refuse("warnings", c.t("site.settings.warnings.missing"))
		return
	}
	_, err := do(c, admin.OpSettingsUpdate, admin.SettingsUpdate{Domain: d.Name,
		Change: admin.SettingsChange{Warnings: &f.Warnings, Language: &f.Language, ReportTo: &f.ReportTo}})
	if err != nil {
		m, ok := inputError(err)
		if !ok {
			c.fail(err)
			return
		}
		refuse(fieldOf(m, "report_to", [2]string{"language", "language"}), c.explain("site.invalid", m))
		return
	}
	http.Redirect(c.w, c.r, sitePath(d.Name, "/settings?done=site-settings"), http.StatusSeeOther)
}

// siteDNSRoutes: the records to publish for the domain and its children,
// and a live check of them (the admin service's dns.records and
// dns.check, as "yubin dns records" and "yubin dns check").
func (s *Server) siteDNSRoutes(rt *router) {
	rt.page("/site/{domain}/dns", s.siteDNS)
	rt.form("/site/{domain}/dns", s.siteDNSCheck)
}

// siteDNSData is the DNS page: the records, and with a check their state.
type siteDNSData struct {
	Domain  string
	Host    string
	Zone    string // the records as zone-file text
	Checked []dnsrecords.Checked
	Done    bool // a check ran
	Bad     int  // records not ok
}

func (s *Server) siteDNS(c *call) {
	d, ok := c.siteDomain()
	if !ok {
		return
	}
	recs, err := do(c, admin.OpDNSRecords, d.Name)
	if err != nil {
		c.fail(err)
		return
	}
	s.render(c, http.StatusOK, page{name: "site_dns", data: siteDNSData{Domain: d.Name, Host: recs.Host, Zone: dnsrecords.Zone(recs.Records, recs.Host)}})
}

// siteDNSCheck looks every record up now. It is a form (POST, with the
// CSRF token) because it makes the server send DNS queries.
func (s *Server) siteDNSCheck(c *call) {
	d, ok := c.siteDomain()
	if !ok {
		return
	}
	recs, err := do(c, admin.OpDNSRecords, d.Name)
	if err != nil {
		c.fail(err)
		return
	}
	checked, err := do(c, admin.OpDNSCheck, admin.DNSCheckRequest{Domain: d.Name})
	if err != nil {
		c.fail(err)
		return
	}
	data := siteDNSData{Domain: d.Name, Host: recs.Host, Zone: dnsrecords.Zone(recs.Records, recs.Host), Checked: checked, Done: true}
	for _, ch := range checked {
		if ch.Status != dnsrecords.OK {
			data.Bad++
		}
	}
	s.render(c, http.StatusOK, page{name: "site_dns", data: data})
}
