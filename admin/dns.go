package admin

import (
	"context"
	"strings"
	"time"

	"yubin/internal/config"
	"yubin/internal/dnsrecords"
	"yubin/spf"
	"yubin/store"
)

// DNSCheckTimeout bounds all the lookups of one dns.check.
const DNSCheckTimeout = 2 * time.Minute

// dnsSetup is what the DNS records are made of and where they are looked
// up: from the config of the process that holds the store.
type dnsSetup struct {
	settings dnsrecords.Settings
	resolver string // host:port; "" = the system's
	set      bool
}

// SetDNS gives the Service what dns.records and dns.check need: the
// settings (from the config: the mail host, addresses, listeners) and the
// DNS server to ask ("" = the system's resolver).
func (s *Service) SetDNS(settings dnsrecords.Settings, resolver string) {
	s.dns = dnsSetup{settings: settings, resolver: resolver, set: true}
}

// DNSSettings returns the settings of the records for cfg, as the server
// and the CLI give them to SetDNS.
func DNSSettings(cfg config.Config) dnsrecords.Settings { return dnsrecords.FromConfig(cfg) }

// DNSRecords are the records to publish for a domain and its children.
type DNSRecords struct {
	Host    string              `json:"host"` // the mail host
	Records []dnsrecords.Record `json:"records"`
}

// DNSCheckRequest is the request of OpDNSCheck.
type DNSCheckRequest struct {
	Domain string `json:"domain"` // "" = every domain (the owner only)
	// Resolver is a DNS server to ask instead of the configured one
	// (host:port); only the server's owner may name one.
	Resolver string `json:"resolver,omitempty"`
}

// DNSRecords returns every record to publish for domain and its child
// domains (for a child: the child only), or for every domain when domain
// is "".
func (s *Service) DNSRecords(ctx context.Context, domain string) (DNSRecords, error) {
	if !s.dns.set {
		return DNSRecords{}, errorf(nil, "dns records: no DNS settings (SetDNS was not called)")
	}
	all, err := s.Domains(ctx)
	if err != nil {
		return DNSRecords{}, err
	}
	if strings.TrimSpace(domain) != "" {
		if domain, err = parseDomain("domain", domain); err != nil {
			return DNSRecords{}, err
		}
	}
	var pick []Domain
	found := domain == ""
	for _, d := range all {
		if domain == "" || d.Name == domain || d.Parent == domain {
			pick = append(pick, d)
			found = found || d.Name == domain
		}
	}
	if !found {
		return DNSRecords{}, errorf(store.ErrNoSuchDomain, "unknown domain %s", domain)
	}
	if len(pick) == 0 {
		return DNSRecords{}, errorf(store.ErrNoSuchDomain, "no domains yet (yubin domain add NAME)")
	}
	admins := map[string]string{} // parent domain -> its first admin account
	var ds []dnsrecords.Domain
	for _, d := range pick {
		keys, err := s.DKIMKeys(ctx, d.Name)
		if err != nil {
			return DNSRecords{}, err
		}
		parent := d.Name
		if d.Parent != "" {
			parent = d.Parent
		}
		if _, ok := admins[parent]; !ok {
			admins[parent] = ""
			accts, err := s.Accounts(ctx, parent)
			if err != nil {
				return DNSRecords{}, err
			}
			for _, a := range accts {
				if a.Role == RoleAdmin {
					admins[parent] = a.Address
					break
				}
			}
		}
		dd := dnsrecords.Domain{Name: d.Name, Parent: d.Parent, Report: admins[parent]}
		for _, k := range keys {
			dd.DKIM = append(dd.DKIM, dnsrecords.DKIMKey{Selector: k.Selector, TXT: k.TXT})
		}
		ds = append(ds, dd)
	}
	dnsrecords.SortDomains(ds)
	return DNSRecords{Host: s.dns.settings.Host, Records: dnsrecords.Build(s.dns.settings, ds)}, nil
}

// DNSCheck looks up every record DNSRecords returns for the request's
// domain and says which are published.
func (s *Service) DNSCheck(ctx context.Context, r DNSCheckRequest) ([]dnsrecords.Checked, error) {
	resolver := s.dns.resolver
	if strings.TrimSpace(r.Resolver) != "" {
		if !ScopeFrom(ctx).IsOwner() {
			return nil, errorf(ErrDenied, "only the server's owner may name the DNS server to ask")
		}
		resolver = strings.TrimSpace(r.Resolver)
	}
	recs, err := s.DNSRecords(ctx, r.Domain)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, DNSCheckTimeout)
	defer cancel()
	return dnsrecords.Check(ctx, spf.NewResolver(resolver), recs.Records), nil
}
