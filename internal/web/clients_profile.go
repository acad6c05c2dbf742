package web

import (
	"net/http"
)

// mobileConfig is the Apple configuration profile of the page's account
// (autoconfig.Settings.MobileConfig: its IMAP and SMTP servers over TLS,
// its address, no password), a download for iOS and macOS.
func (s *Server) mobileConfig(c *call) {
	if s.cfg.Autoconfig == nil {
		s.errorPage(c, http.StatusNotFound, c.t("clients.noprofile"))
		return
	}
	a, err := s.cfg.Autoconfig.Account(c.ctx, c.account)
	if err != nil {
		s.log.Error("web: the account's domain for its profile", "account", c.account, "err", err)
		s.errorPage(c, http.StatusInternalServerError, c.t("error.internal"))
		return
	}
	if err := s.cfg.Autoconfig.Settings().ServeMobileConfig(c.w, a); err != nil {
		s.errorPage(c, http.StatusNotFound, c.t("clients.noprofile"))
	}
}
