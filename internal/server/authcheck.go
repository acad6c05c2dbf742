package server

import (
	"log/slog"

	"yubin/internal/config"
	"yubin/internal/delivery"
	"yubin/spf"
)

// authStage is the SPF/DKIM/DMARC check of mail from port 25.
func authStage(cfg config.Config, log *slog.Logger) delivery.Stage {
	return &spf.Checker{
		Hostname: cfg.Hostname,
		Resolver: spf.NewResolver(cfg.DNS.Resolver),
		Timeout:  cfg.DNS.LookupTimeout.Duration,
		Log:      log,
	}
}
