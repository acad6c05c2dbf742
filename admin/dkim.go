package admin

import (
	"context"

	"yubin/internal/dkimkey"
)

// DKIMKey is the public side of a DKIM key: what DNS must publish.
type DKIMKey struct {
	Domain    string `json:"domain"`
	Selector  string `json:"selector"`
	Algorithm string `json:"algorithm"` // ed25519 or rsa
	Name      string `json:"name"`      // selector._domainkey.domain
	TXT       string `json:"txt"`       // the TXT record value
}

// DKIMKeys returns the public side of a domain's DKIM keys, generating the
// keys on first use.
func (s *Service) DKIMKeys(ctx context.Context, domain string) ([]DKIMKey, error) {
	d, err := parseDomain("domain", domain)
	if err != nil {
		return nil, err
	}
	if _, err := s.domain(d); err != nil {
		return nil, err
	}
	keys, err := dkimkey.ForDomain(ctx, s.st, d)
	if err != nil {
		return nil, translate(err)
	}
	out := make([]DKIMKey, 0, len(keys))
	for _, k := range keys {
		txt, err := k.TXT()
		if err != nil {
			return nil, err
		}
		out = append(out, DKIMKey{Domain: d, Selector: k.Selector, Algorithm: k.Algorithm, Name: k.DNSName(), TXT: txt})
	}
	return out, nil
}
