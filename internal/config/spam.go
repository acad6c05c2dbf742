package config

import (
	"fmt"
	"strings"
)

// Spam settings: the DNS blocklists (port 25 only). None by default.
type Spam struct {
	// DNSBL zones the connecting client's IP is looked up on. A listing is
	// a spam signal; on a zone marked reject it refuses the client (554
	// 5.7.1 at RCPT).
	DNSBL []Blocklist `toml:"dnsbl"`
	// URIBL zones the host names of URLs in messages are looked up on
	// (spam signals only).
	URIBL []Blocklist `toml:"uribl"`
	// DNSBLTimeout bounds the lookups of one client or one message; a zone
	// that has not answered by then is no listing.
	DNSBLTimeout Duration `toml:"dnsbl_timeout"`

	// Enabled runs the filter on mail from port 25 (each account's action
	// is in the store).
	Enabled bool `toml:"enabled"`
	// What each account's quarantine may hold; beyond it spam goes to Junk.
	QuarantineMaxMessages int   `toml:"quarantine_max_messages"`
	QuarantineMaxSize     int64 `toml:"quarantine_max_size"`
	// TokenMaxAge: tokens no training has seen for this long are dropped.
	TokenMaxAge Duration `toml:"token_max_age"`
}

// Blocklist is one DNSBL or URIBL zone. In the file it is the zone's name,
// or a table {zone = "…", reject = true}.
type Blocklist struct {
	Zone   string
	Reject bool
}

// UnmarshalTOML reads "zone.example" or {zone = "zone.example", reject = true}.
func (b *Blocklist) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		*b = Blocklist{Zone: v}
	case map[string]any:
		*b = Blocklist{}
		for k, x := range v {
			var ok bool
			switch k {
			case "zone":
				b.Zone, ok = x.(string)
			case "reject":
				b.Reject, ok = x.(bool)
			default:
				return fmt.Errorf("unknown key %q in a blocklist (want zone, reject)", k)
			}
			if !ok {
				return fmt.Errorf("blocklist %s = %v: wrong type", k, x)
			}
		}
	default:
		return fmt.Errorf("a blocklist is a zone name or {zone = \"…\", reject = true}, not %T", v)
	}
	return nil
}

func (s *Spam) validate() error {
	for key, lists := range map[string][]Blocklist{"spam.dnsbl": s.DNSBL, "spam.uribl": s.URIBL} {
		for _, b := range lists {
			z := strings.TrimSuffix(b.Zone, ".")
			if z == "" || !strings.Contains(z, ".") || strings.ContainsAny(z, " \t/@:") {
				return fmt.Errorf("%s: %q is not a zone name", key, b.Zone)
			}
			if b.Reject && key == "spam.uribl" {
				return fmt.Errorf("spam.uribl: %s: reject is for DNSBL zones only (a URIBL listing is a spam signal)", b.Zone)
			}
		}
	}
	if s.DNSBLTimeout.Duration <= 0 {
		return fmt.Errorf("spam.dnsbl_timeout must be positive")
	}
	if s.QuarantineMaxMessages <= 0 || s.QuarantineMaxSize <= 0 || s.TokenMaxAge.Duration <= 0 {
		return fmt.Errorf("spam.quarantine_max_messages, spam.quarantine_max_size and spam.token_max_age must be positive")
	}
	return nil
}
