package dnsrecords

import (
	"context"
	"strings"
	"testing"

	"yubin/internal/config"
	"yubin/internal/testutil/dnstest"
)

func TestQuoteTXT(t *testing.T) {
	long := strings.Repeat("a", 255)
	for in, want := range map[string]string{
		"":                 `""`,
		"v=spf1 -all":      `"v=spf1 -all"`,
		`a"b\c`:            `"a\"b\\c"`,
		long:               `"` + long + `"`,
		long + "b":         `"` + long + `" "b"`,
		long + long + "cc": `"` + long + `" "` + long + `" "cc"`,
	} {
		if got := QuoteTXT(in); got != want {
			t.Errorf("QuoteTXT(%d bytes) = %q", len(in), got)
		}
	}
}

func settings() Settings {
	cfg := config.Default()
	cfg.Hostname = "mail.example.com"
	cfg.DNS.IPv4 = []string{"203.0.113.5"}
	cfg.Listen.POP3 = "off"
	cfg.Listen.Web = "off"
	return FromConfig(cfg)
}

func TestBuild(t *testing.T) {
	s := settings()
	ds := []Domain{
		{Name: "www.example.com", Parent: "example.com"},
		{Name: "example.com", Report: "boss@example.com", DKIM: []DKIMKey{{Selector: "sel", TXT: "v=DKIM1; k=ed25519; p=AAAA"}}},
		{Name: "example.net", Parent: "example.com"},
	}
	SortDomains(ds)
	if ds[0].Name != "example.com" || ds[1].Name != "example.net" || ds[2].Name != "www.example.com" {
		t.Fatalf("order %v", ds)
	}
	recs := Build(s, ds)
	zone := Zone(recs, s.Host)
	zones, err := dnstest.Parse(strings.NewReader(zone), "")
	if err != nil {
		t.Fatalf("%v\n%s", err, zone)
	}
	if got := zones["sel._domainkey.example.com."].TXT; len(got) != 1 || got[0] != "v=DKIM1; k=ed25519; p=AAAA" {
		t.Errorf("DKIM %q", got)
	}
	// Children's reports go to the parent's admin; example.net must be
	// authorized by example.com to send them there.
	if got := zones["_dmarc.example.net."].TXT; len(got) != 1 || got[0] != "v=DMARC1; p=quarantine; rua=mailto:boss@example.com" {
		t.Errorf("child DMARC %q", got)
	}
	if got := zones["example.net._report._dmarc.example.com."].TXT; len(got) != 1 || got[0] != "v=DMARC1" {
		t.Errorf("report authorization %q\n%s", got, zone)
	}
	if _, ok := zones["www.example.com._report._dmarc.example.com."]; ok {
		t.Errorf("authorization record for a subdomain")
	}
	if _, ok := zones["_pop3._tcp.example.com."]; ok {
		t.Errorf("SRV record for a listener that is off")
	}
	if z := zones["_submissions._tcp.example.com."].SRV; len(z) != 1 || z[0].Priority != 0 || z[0].Port != 465 {
		t.Errorf("submissions %+v", z)
	}
	if z := zones["_submission._tcp.example.com."].SRV; len(z) != 1 || z[0].Priority != 10 {
		t.Errorf("submission %+v", z)
	}
	if !strings.Contains(zone, "; --- the mail host mail.example.com\n") || !strings.Contains(zone, "autoconfig") {
		t.Errorf("zone text:\n%s", zone)
	}

	// No addresses configured: SPF names the host, the A record is a
	// comment, and check accepts any address.
	s.Sender.IPv4 = nil
	recs = Build(s, ds[:1])
	if recs[0].Type != "A" || recs[0].Value != "" || !strings.HasPrefix(recs[0].ZoneLine(), "; mail.example.com.") {
		t.Errorf("host record %+v", recs[0])
	}
	if !strings.Contains(Zone(recs, s.Host), `"v=spf1 a:mail.example.com -all"`) {
		t.Errorf("SPF without addresses")
	}
	z, _ := dnstest.Parse(strings.NewReader("mail.example.com. A 192.0.2.1\n"), "")
	r := dnstest.NewServer(t, z).NewResolver()
	if c := Check(context.Background(), r, recs[:1]); c[0].Status != OK {
		t.Errorf("any address: %+v", c[0])
	}
}

// The mail host being one of the domains: no separate host SPF record.
func TestBuildHostIsDomain(t *testing.T) {
	s := settings()
	s.Host = "example.com"
	for _, r := range Build(s, []Domain{{Name: "example.com"}}) {
		if r.Kind == KindHostSPF {
			t.Errorf("host SPF record %+v", r)
		}
	}
}

func TestFromConfigSmartHost(t *testing.T) {
	cfg := config.Default()
	cfg.Hostname = "mail.example.com"
	cfg.DNS.IPv4 = []string{"203.0.113.5"}
	cfg.Outbound.SmartHost = "smtp.relay.example:587"
	if got := spfOf(FromConfig(cfg)); got != "v=spf1 a:smtp.relay.example -all" {
		t.Errorf("smart host SPF %q", got)
	}
	cfg.DNS.SPFInclude = []string{"_spf.relay.example"}
	if got := spfOf(FromConfig(cfg)); got != "v=spf1 include:_spf.relay.example -all" {
		t.Errorf("smart host with include: %q", got)
	}
}

func spfOf(s Settings) string {
	for _, r := range Build(s, []Domain{{Name: "example.com"}}) {
		if r.Kind == KindSPF {
			return r.Value
		}
	}
	return ""
}

// The client autoconfiguration names: printed for the listeners that are
// on, and checked as a CNAME to the mail host or an address of its.
func TestAutoconfigRecords(t *testing.T) {
	s := settings()
	if s.AutoconfigHTTP || s.AutodiscoverPort != 0 {
		t.Fatalf("defaults: %+v", s)
	}
	for _, r := range Build(s, []Domain{{Name: "example.com"}}) {
		if r.Kind == KindAutoconfig || r.Kind == KindAutodiscover {
			t.Errorf("record for a listener that is off: %+v", r)
		}
	}
	cfg := config.Default()
	cfg.Hostname = "mail.example.com"
	cfg.Listen.HTTP = "0.0.0.0:80"
	s = FromConfig(cfg)
	if s.AutodiscoverPort != 8443 { // listen.web's default
		t.Errorf("autodiscover port %d", s.AutodiscoverPort)
	}
	recs := Build(s, []Domain{{Name: "example.com"}, {Name: "example.net", Parent: "example.com"}})
	var auto []Record
	for _, r := range recs {
		if r.Kind == KindAutoconfig || r.Kind == KindAutodiscover {
			auto = append(auto, r)
		}
	}
	var lines []string
	for _, r := range auto {
		lines = append(lines, r.ZoneLine())
	}
	want := []string{
		"autoconfig.example.com.\t3600\tIN\tCNAME\tmail.example.com.",
		"autodiscover.example.com.\t3600\tIN\tCNAME\tmail.example.com.",
		"_autodiscover._tcp.example.com.\t3600\tIN\tSRV\t0 0 8443 mail.example.com.",
		"autoconfig.example.net.\t3600\tIN\tCNAME\tmail.example.com.",
		"autodiscover.example.net.\t3600\tIN\tCNAME\tmail.example.com.",
		"_autodiscover._tcp.example.net.\t3600\tIN\tSRV\t0 0 8443 mail.example.com.",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("records:\n%s", strings.Join(lines, "\n"))
	}
	zone := Zone(recs, s.Host)
	if !strings.Contains(zone, "; Thunderbird's autoconfig, served on listen.http") {
		t.Errorf("no explanation:\n%s", zone)
	}
	// Without listen.http, autoconfig. only when the web is on 443
	// (Thunderbird asks https on 443, then http on 80).
	for port, want := range map[int]int{8443: 0, 443: 1} {
		s2 := s
		s2.AutoconfigHTTP, s2.AutodiscoverPort = false, port
		n := 0
		for _, r := range Build(s2, []Domain{{Name: "example.com"}}) {
			if r.Kind == KindAutoconfig {
				n++
			}
		}
		if n != want {
			t.Errorf("web on %d: %d autoconfig records, want %d", port, n, want)
		}
	}

	// What "dns records" prints, served: all ok.
	zones, err := dnstest.Parse(strings.NewReader(zone+"mail.example.com. A 203.0.113.5\n"), "")
	if err != nil {
		t.Fatalf("%v\n%s", err, zone)
	}
	r := dnstest.NewServer(t, zones).NewResolver()
	for _, c := range Check(t.Context(), r, auto) {
		if c.Status != OK {
			t.Errorf("published as printed: %+v", c)
		}
	}

	// An A record with the host's address is fine; another address, a
	// CNAME elsewhere, an SRV with another port, or nothing are not.
	z, err := dnstest.Parse(strings.NewReader(`mail.example.com. A 203.0.113.5
autoconfig.example.com. A 203.0.113.5
autodiscover.example.com. CNAME www.example.org.
www.example.org. A 198.51.100.1
_autodiscover._tcp.example.com. SRV 0 0 443 mail.example.com.
autoconfig.example.net. A 198.51.100.1
`), "")
	if err != nil {
		t.Fatal(err)
	}
	r = dnstest.NewServer(t, z).NewResolver()
	var got []string
	for _, c := range Check(t.Context(), r, auto) {
		got = append(got, c.Name+" "+string(c.Status)+" "+strings.Join(c.Found, ","))
	}
	wantChecked := []string{
		"autoconfig.example.com. ok ",
		"autodiscover.example.com. different CNAME www.example.org.,198.51.100.1",
		"_autodiscover._tcp.example.com. different 0 0 443 mail.example.com.",
		"autoconfig.example.net. different 198.51.100.1",
		"autodiscover.example.net. missing ",
		"_autodiscover._tcp.example.net. missing ",
	}
	if strings.Join(got, "\n") != strings.Join(wantChecked, "\n") {
		t.Errorf("checked:\n%s", strings.Join(got, "\n"))
	}
}
