package server

import (
	"log/slog"

	"yubin/authcheck"
	"yubin/config"
	"yubin/delivery"
	"yubin/spf"
)

// authStage is the SPF/DKIM/DMARC check of mail from port 25.
func authStage(cfg config.Config, log *slog.Logger) delivery.Stage {
	return &authcheck.Checker{
		Hostname: cfg.Hostname,
		Resolver: spf.NewResolver(cfg.DNS.Resolver),
		Timeout:  cfg.DNS.LookupTimeout.Duration,
		Log:      log,
	}
}
