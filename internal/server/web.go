package server

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"

	"yubin/admin"
	"yubin/internal/auth"
	"yubin/internal/autoconfig"
	"yubin/internal/config"
	"yubin/internal/web"
)

// newWeb makes the web listener's server (listen.web): the pages of
// internal/web over TLS with the mail listeners' certificate source.
func newWeb(cfg config.Config, svc *admin.Service, au *auth.Authenticator, ac *autoconfig.Handler, tlsConf *tls.Config, m web.Metrics, log *slog.Logger) (*http.Server, func(net.Listener) error, error) {
	host := cfg.Hostname
	if cfg.DNS.MXHost != "" {
		host = cfg.DNS.MXHost
	}
	w, err := web.New(web.Config{
		Admin: svc, Auth: au, Hostname: host, Log: log, Autoconfig: ac, Metrics: m,
		IdleTimeout: cfg.Web.SessionIdle.Duration, MaxAge: cfg.Web.SessionMaxAge.Duration,
		Ports: web.ClientPorts{
			IMAP: on(cfg.Listen.IMAP), IMAPS: on(cfg.Listen.IMAPS),
			POP3: on(cfg.Listen.POP3), POP3S: on(cfg.Listen.POP3S),
			Submission: on(cfg.Listen.Submission), Submissions: on(cfg.Listen.Submissions),
		},
	})
	if err != nil {
		return nil, nil, err
	}
	srv := w.HTTPServer()
	tc := tlsConf.Clone()
	tc.NextProtos = []string{"h2", "http/1.1"}
	srv.TLSConfig = tc
	serve := func(ln net.Listener) error {
		if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
	return srv, serve, nil
}

// on is addr, or "" for a listener that is off.
func on(addr string) string {
	if config.Off(addr) {
		return ""
	}
	return addr
}
