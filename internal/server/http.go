package server

import (
	"net/http"

	"yubin/admin"
	"yubin/internal/autoconfig"
	"yubin/internal/config"
)

// httpHandler is what listen.http serves: client autoconfiguration
// (Thunderbird's autoconfig, Outlook's autodiscover) and, with tls.acme,
// the CA's http-01 challenges; with ACME anything else is redirected to
// https (autocert's fallback), without it anything else is 404.
func httpHandler(ac *autoconfig.Handler, acme http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case autoconfig.Handles(r.URL.Path):
			ac.ServeHTTP(w, r)
		case acme != nil:
			acme.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}

// boundConfig is cfg with each listen address replaced by the address
// its listener is bound to: the same port unless the config says port 0
// (tests), when it is the port the system chose.
func boundConfig(cfg config.Config, bound []admin.Listener) config.Config {
	addr := map[string]*string{
		"submission": &cfg.Listen.Submission, "submissions": &cfg.Listen.Submissions,
		"pop3": &cfg.Listen.POP3, "pop3s": &cfg.Listen.POP3S,
		"imap": &cfg.Listen.IMAP, "imaps": &cfg.Listen.IMAPS,
	}
	for _, l := range bound {
		if p, ok := addr[l.Name]; ok {
			*p = l.Addr
		}
	}
	return cfg
}
