// Package dnsrecords computes the DNS records an admin must publish for
// Yubin's domains — MX, SPF, DKIM, DMARC and the client SRV records of RFC
// 6186/8314 — prints them as zone-file lines, and checks what DNS actually
// serves against them.
package dnsrecords

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"yubin/internal/config"
	"yubin/spf"
)

// TTL of every printed record.
const TTL = 3600

// Kinds of records (Record.Kind).
const (
	KindHostA     = "host-a"   // the mail host's A/AAAA
	KindHostSPF   = "host-spf" // SPF of the mail host's name (HELO identity)
	KindMX        = "mx"
	KindSPF       = "spf"
	KindDKIM      = "dkim"
	KindDMARC     = "dmarc"
	KindDMARCAuth = "dmarc-report-auth" // RFC 7489 section 7.1 authorization
	KindSRV       = "srv"
	// Client autoconfiguration: autoconfig.DOMAIN (Thunderbird),
	// autodiscover.DOMAIN and _autodiscover._tcp.DOMAIN (Outlook).
	KindAutoconfig   = "autoconfig"
	KindAutodiscover = "autodiscover"
)

// Record is one DNS record to publish.
type Record struct {
	Domain string `json:"domain"` // the local domain it is for; "" for the mail host
	Kind   string `json:"kind"`
	Name   string `json:"name"` // absolute, with the final dot
	Type   string `json:"type"` // A, AAAA, MX, TXT, SRV, CNAME
	// Value in presentation form: "10 mail.example.com." for MX,
	// "0 1 587 mail.example.com." for SRV, an address for A/AAAA, the
	// target for CNAME, and the whole unquoted string for TXT. Empty for an A/AAAA record whose
	// address is not configured (any address is then accepted).
	Value   string `json:"value"`
	Comment string `json:"comment,omitempty"`
}

// ZoneLine is the record as one zone-file line; TXT values are quoted and
// split into strings of at most 255 bytes (RFC 1035 section 3.3.14).
func (r Record) ZoneLine() string {
	v := r.Value
	if r.Type == "TXT" {
		v = QuoteTXT(v)
	}
	if v == "" {
		return fmt.Sprintf("; %s\t%d\tIN\t%s\t<this server's address>", r.Name, TTL, r.Type)
	}
	return fmt.Sprintf("%s\t%d\tIN\t%s\t%s", r.Name, TTL, r.Type, v)
}

// QuoteTXT quotes a TXT value as zone-file character strings of at most
// 255 bytes each, escaping quotes and backslashes.
func QuoteTXT(s string) string {
	var parts []string
	for len(s) > 0 || len(parts) == 0 {
		n := min(len(s), 255)
		chunk := s[:n]
		s = s[n:]
		chunk = strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(chunk)
		parts = append(parts, `"`+chunk+`"`)
	}
	return strings.Join(parts, " ")
}

// Service is a client service published with an SRV record.
type Service struct {
	Name     string // "_submission._tcp"
	Port     int
	Protocol string // "SMTP submission", "IMAP", "POP3"
	TLS      string // "STARTTLS" or "SSL/TLS" (implicit TLS)
	Outgoing bool   // submission
}

// priority prefers implicit TLS (RFC 8314 section 5.1).
func (s Service) priority() int {
	if s.TLS == "STARTTLS" {
		return 10
	}
	return 0
}

// What describes the service in a comment: "IMAP, SSL/TLS".
func (s Service) What() string { return s.Protocol + ", " + s.TLS }

// Settings are what the records are made of.
type Settings struct {
	// Host is the mail host: the target of MX and SRV records.
	Host string
	// Sender describes where outgoing mail leaves from (SPF).
	Sender spf.Sender
	// DMARCPolicy is the suggested p= ("quarantine").
	DMARCPolicy string
	// DMARCReport is the address aggregate reports go to; "" = each
	// domain's Domain.Report.
	DMARCReport string
	// Services are the SRV records, in order.
	Services []Service
	// AutoconfigHTTP is whether listen.http is on: it serves
	// Thunderbird's autoconfig on port 80 at autoconfig.DOMAIN.
	AutoconfigHTTP bool
	// AutodiscoverPort is the port of the HTTPS listener that serves
	// Outlook's autodiscover (listen.web, as configured); 0 = none.
	AutodiscoverPort int
}

// DKIMKey is a public key to publish.
type DKIMKey struct {
	Selector string
	TXT      string // the record value ("v=DKIM1; k=...; p=...")
}

// Domain is one local domain.
type Domain struct {
	Name   string
	Parent string // "" for a parent domain
	DKIM   []DKIMKey
	// Report is where DMARC aggregate reports should go when
	// Settings.DMARCReport is empty; "" = the parent's Report (when the
	// parent is built too), else postmaster@ the parent domain.
	Report string
}

// FromConfig returns the settings described by cfg.
func FromConfig(cfg config.Config) Settings {
	host := cfg.DNS.MXHost
	if host == "" {
		host = cfg.Hostname
	}
	s := Settings{
		Host: strings.ToLower(strings.TrimSuffix(host, ".")),
		Sender: spf.Sender{
			Hostname:  strings.TrimSuffix(cfg.Hostname, "."),
			IPv4:      cfg.DNS.IPv4,
			IPv6:      cfg.DNS.IPv6,
			Include:   cfg.DNS.SPFInclude,
			SmartHost: smartHost(cfg),
		},
		DMARCPolicy:    cfg.DNS.DMARCPolicy,
		DMARCReport:    cfg.DNS.DMARCReport,
		AutoconfigHTTP: !config.Off(cfg.Listen.HTTP),
	}
	if !config.Off(cfg.Listen.Web) {
		if _, p, err := net.SplitHostPort(cfg.Listen.Web); err == nil {
			s.AutodiscoverPort, _ = strconv.Atoi(p)
		}
	}
	for _, l := range []struct {
		addr string
		sv   Service
	}{
		// RFC 6186 and, for port 465, RFC 8314. Preferred first.
		{cfg.Listen.Submissions, Service{Name: "_submissions._tcp", Protocol: "SMTP submission", TLS: "SSL/TLS", Outgoing: true}},
		{cfg.Listen.Submission, Service{Name: "_submission._tcp", Protocol: "SMTP submission", TLS: "STARTTLS", Outgoing: true}},
		{cfg.Listen.IMAPS, Service{Name: "_imaps._tcp", Protocol: "IMAP", TLS: "SSL/TLS"}},
		{cfg.Listen.IMAP, Service{Name: "_imap._tcp", Protocol: "IMAP", TLS: "STARTTLS"}},
		{cfg.Listen.POP3S, Service{Name: "_pop3s._tcp", Protocol: "POP3", TLS: "SSL/TLS"}},
		{cfg.Listen.POP3, Service{Name: "_pop3._tcp", Protocol: "POP3", TLS: "STARTTLS"}},
	} {
		if config.Off(l.addr) {
			continue
		}
		_, p, err := net.SplitHostPort(l.addr)
		if err != nil {
			continue
		}
		port, err := strconv.Atoi(p)
		if err != nil {
			continue
		}
		sv := l.sv
		sv.Port = port
		s.Services = append(s.Services, sv)
	}
	return s
}

// smartHost is the relay outgoing mail goes through ([outbound]
// smart_host), "" for none. With one, SPF names the relay (or
// dns.spf_include) instead of this server.
func smartHost(cfg config.Config) string { return cfg.Outbound.SmartHost }

func fq(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) + "." }

// Build returns every record to publish for domains (give a parent and
// its children), mail host records first.
func Build(s Settings, domains []Domain) []Record {
	host := fq(s.Host)
	spfValue := spf.Record(s.Sender)
	policy := s.DMARCPolicy
	if policy == "" {
		policy = "quarantine"
	}
	var out []Record
	if len(s.Sender.IPv4)+len(s.Sender.IPv6) == 0 {
		out = append(out, Record{Kind: KindHostA, Name: host, Type: "A",
			Comment: "the mail host needs an A (and AAAA) record with this server's address; set dns.ipv4/dns.ipv6 in the config to have it printed"})
	}
	for _, a := range s.Sender.IPv4 {
		out = append(out, Record{Kind: KindHostA, Name: host, Type: "A", Value: a,
			Comment: "reverse DNS (PTR) of " + a + " should be " + host + " (ask your VPS provider)"})
	}
	for _, a := range s.Sender.IPv6 {
		out = append(out, Record{Kind: KindHostA, Name: host, Type: "AAAA", Value: a,
			Comment: "reverse DNS (PTR) of " + a + " should be " + host})
	}
	isDomain := false
	for _, d := range domains {
		if fq(d.Name) == host {
			isDomain = true
		}
	}
	if !isDomain {
		out = append(out, Record{Kind: KindHostSPF, Name: host, Type: "TXT", Value: spfValue,
			Comment: "SPF for the host name this server greets with (checked for bounces)"})
	}

	reports := map[string]string{}
	for _, d := range domains {
		reports[d.Name] = d.Report
	}
	for _, d := range domains {
		name := fq(d.Name)
		out = append(out, Record{Domain: d.Name, Kind: KindMX, Name: name, Type: "MX", Value: "10 " + host})
		out = append(out, Record{Domain: d.Name, Kind: KindSPF, Name: name, Type: "TXT", Value: spfValue})
		for _, k := range d.DKIM {
			out = append(out, Record{Domain: d.Name, Kind: KindDKIM, Name: fq(k.Selector + "._domainkey." + d.Name), Type: "TXT", Value: k.TXT})
		}
		report := s.DMARCReport
		if report == "" {
			report = d.Report
		}
		if report == "" && d.Parent != "" {
			report = reports[d.Parent]
		}
		if report == "" {
			parent := d.Name
			if d.Parent != "" {
				parent = d.Parent
			}
			report = "postmaster@" + parent
		}
		out = append(out, Record{Domain: d.Name, Kind: KindDMARC, Name: fq("_dmarc." + d.Name), Type: "TXT",
			Value: "v=DMARC1; p=" + policy + "; rua=mailto:" + report})
		if rd := report[strings.LastIndexByte(report, '@')+1:]; !sameOrg(rd, d.Name) {
			// The report address is in another domain: that domain says
			// it accepts reports for this one.
			out = append(out, Record{Domain: d.Name, Kind: KindDMARCAuth, Name: fq(d.Name + "._report._dmarc." + rd), Type: "TXT",
				Value: "v=DMARC1", Comment: "lets " + rd + " receive DMARC reports for " + d.Name + " (RFC 7489 section 7.1)"})
		}
		for _, sv := range s.Services {
			out = append(out, Record{Domain: d.Name, Kind: KindSRV, Name: fq(sv.Name + "." + d.Name), Type: "SRV",
				Value: fmt.Sprintf("%d 1 %d %s", sv.priority(), sv.Port, host), Comment: sv.What()})
		}
		out = append(out, autoconfigRecords(s, d.Name, host)...)
	}
	return out
}

// autoconfigRecords are the names mail clients look up to configure
// themselves for domain: autoconfig.DOMAIN (Thunderbird fetches
// https://autoconfig.DOMAIN/mail/config-v1.1.xml, then http://: the web
// listener on 443 or listen.http on 80),
// autodiscover.DOMAIN and the SRV record _autodiscover._tcp.DOMAIN
// (Outlook posts to https://autodiscover.DOMAIN/autodiscover/autodiscover.xml,
// or to the host and port the SRV record names: the HTTPS web listener).
// Only the names a listener that is on answers are printed.
func autoconfigRecords(s Settings, domain, host string) []Record {
	var out []Record
	if s.AutoconfigHTTP || s.AutodiscoverPort == 443 {
		out = append(out, Record{Domain: domain, Kind: KindAutoconfig, Name: fq("autoconfig." + domain), Type: "CNAME", Value: host,
			Comment: "Thunderbird's autoconfig, served on listen.http (port 80) and on the web listener when it is on 443; an A record with the mail host's address does as well"})
	}
	if s.AutodiscoverPort > 0 {
		out = append(out,
			Record{Domain: domain, Kind: KindAutodiscover, Name: fq("autodiscover." + domain), Type: "CNAME", Value: host,
				Comment: "Outlook's autodiscover; used when the web listener is on port 443, else Outlook follows the SRV record below"},
			Record{Domain: domain, Kind: KindAutodiscover, Name: fq("_autodiscover._tcp." + domain), Type: "SRV",
				Value: fmt.Sprintf("0 0 %d %s", s.AutodiscoverPort, host), Comment: "Outlook's autodiscover on the web listener (HTTPS)"})
	}
	return out
}

// sameOrg reports whether a and b share their last two labels (enough to
// decide whether a DMARC report authorization record is needed; a public
// suffix list is not worth it here).
func sameOrg(a, b string) bool {
	last2 := func(s string) string {
		l := strings.Split(strings.ToLower(strings.TrimSuffix(s, ".")), ".")
		if len(l) > 2 {
			l = l[len(l)-2:]
		}
		return strings.Join(l, ".")
	}
	return last2(a) == last2(b)
}

// Zone returns records as zone-file text, grouped per domain, with a
// heading and comments.
func Zone(records []Record, host string) string {
	var b strings.Builder
	group := "\x00"
	for _, r := range records {
		if r.Domain != group {
			group = r.Domain
			if b.Len() > 0 {
				b.WriteString("\n")
			}
			if group == "" {
				fmt.Fprintf(&b, "; --- the mail host %s\n", strings.TrimSuffix(host, "."))
			} else {
				fmt.Fprintf(&b, "; --- %s\n", group)
			}
		}
		if r.Comment != "" && r.Value != "" {
			fmt.Fprintf(&b, "; %s\n", r.Comment)
		}
		b.WriteString(r.ZoneLine())
		b.WriteString("\n")
		if r.Value == "" && r.Comment != "" {
			fmt.Fprintf(&b, "; (%s)\n", r.Comment)
		}
	}
	if b.Len() > 0 {
		b.WriteString("\n; Mail clients find the servers through the SRV records above (RFC 6186) and, for\n")
		b.WriteString("; Thunderbird and Outlook, the autoconfig. and autodiscover. names, which Yubin answers\n")
		b.WriteString("; on listen.http (autoconfig) and the HTTPS web listener (autodiscover) when they are on.\n")
	}
	return b.String()
}

// SortDomains orders a parent before its children, children by name.
func SortDomains(ds []Domain) {
	sort.SliceStable(ds, func(i, j int) bool {
		pi, pj := ds[i].Parent, ds[j].Parent
		if pi == "" {
			pi = ds[i].Name
		}
		if pj == "" {
			pj = ds[j].Name
		}
		if pi != pj {
			return pi < pj
		}
		if (ds[i].Parent == "") != (ds[j].Parent == "") {
			return ds[i].Parent == ""
		}
		return ds[i].Name < ds[j].Name
	})
}
