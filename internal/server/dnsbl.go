package server

import (
	"log/slog"

	"yubin/internal/config"
	"yubin/internal/dnsbl"
)

// blocklists is the checker of the [spam] DNSBL and URIBL zones, asking
// dns.resolver; nil when none is configured. smtpd looks port-25 clients
// up with it; the spam stage looks up the URL hosts of messages
// (CheckText).
func blocklists(cfg config.Config, log *slog.Logger) *dnsbl.Checker {
	if len(cfg.Spam.DNSBL) == 0 && len(cfg.Spam.URIBL) == 0 {
		return nil
	}
	zones := func(lists []config.Blocklist) []dnsbl.Zone {
		var out []dnsbl.Zone
		for _, b := range lists {
			out = append(out, dnsbl.Zone{Name: b.Zone, Reject: b.Reject})
		}
		return out
	}
	return dnsbl.New(dnsbl.NewResolver(cfg.DNS.Resolver), dnsbl.Config{
		DNSBL:   zones(cfg.Spam.DNSBL),
		URIBL:   zones(cfg.Spam.URIBL),
		Timeout: cfg.Spam.DNSBLTimeout.Duration,
		Log:     log,
	})
}
