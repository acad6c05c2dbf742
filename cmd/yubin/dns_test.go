package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"yubin/admin"
	"yubin/internal/config"
	"yubin/internal/dnsrecords"
	"yubin/internal/testutil"
	"yubin/internal/testutil/dnstest"
	"yubin/internal/testutil/teststore"
	"yubin/store"
)

// dnsSetup makes a data dir with example.com (children sales. and www.),
// its admin, and a config naming this server's addresses. It returns the
// data dir and the config path.
func dnsSetup(t *testing.T) (dir, cfgPath string) {
	t.Helper()
	dir, cfgPath = testutil.DataDir(t, `hostname = "mail.example.com"
[dns]
ipv4 = ["203.0.113.5"]
ipv6 = ["2001:db8::5"]
`)
	for _, args := range [][]string{
		{"domain", "add", "example.com"},
		{"domain", "add", "sales.example.com", "--parent", "example.com"},
		{"domain", "add", "www.example.com", "--parent", "example.com"},
		{"domain", "add", "other.test"},
	} {
		mustCLI(t, dir, "", append(args, "--config", cfgPath)...)
	}
	mustCLI(t, dir, "pw\n", "account", "add", "boss@example.com", "--role", "admin", "--password-stdin", "--config", cfgPath)
	return dir, cfgPath
}

func TestDNSRecordsParentWithTwoChildren(t *testing.T) {
	dir, cfgPath := dnsSetup(t)
	out := mustCLI(t, dir, "", "dns", "records", "example.com", "--config", cfgPath)

	// Valid zone-file syntax (every TXT string at most 255 bytes).
	zones, err := dnstest.Parse(strings.NewReader(out), "")
	if err != nil {
		t.Fatalf("not a zone file: %v\n%s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		for _, q := range regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`).FindAllStringSubmatch(line, -1) {
			if len(q[1]) > 255 {
				t.Errorf("TXT string of %d bytes: %s", len(q[1]), line)
			}
		}
	}
	if strings.Contains(out, "other.test") {
		t.Errorf("records of another parent domain printed")
	}
	spf := "v=spf1 ip4:203.0.113.5 ip6:2001:db8::5 -all"
	st := teststore.OpenDir(t, dir, teststore.Options{})
	svc := admin.NewService(st, 0)
	for _, d := range []string{"example.com", "sales.example.com", "www.example.com"} {
		z := zones[d+"."]
		if len(z.MX) != 1 || z.MX[0].Host != "mail.example.com." {
			t.Errorf("%s MX %+v", d, z.MX)
		}
		if len(z.TXT) != 1 || z.TXT[0] != spf {
			t.Errorf("%s SPF %q", d, z.TXT)
		}
		if dm := zones["_dmarc."+d+"."].TXT; len(dm) != 1 || dm[0] != "v=DMARC1; p=quarantine; rua=mailto:boss@example.com" {
			t.Errorf("%s DMARC %q", d, dm)
		}
		keys, err := svc.DKIMKeys(context.Background(), d)
		if err != nil || len(keys) != 2 {
			t.Fatalf("%s keys %v %v", d, keys, err)
		}
		for _, k := range keys {
			if got := zones[k.Name+"."].TXT; len(got) != 1 || got[0] != k.TXT {
				t.Errorf("%s DKIM %s: %q, want %q", d, k.Selector, got, k.TXT)
			}
		}
		for srv, port := range map[string]uint16{"_submission._tcp": 587, "_submissions._tcp": 465, "_imaps._tcp": 993, "_pop3s._tcp": 995} {
			s := zones[srv+"."+d+"."].SRV
			if len(s) != 1 || s[0].Port != port || s[0].Target != "mail.example.com." {
				t.Errorf("%s %s: %+v", d, srv, s)
			}
		}
	}
	if z := zones["mail.example.com."]; len(z.A) != 1 || z.A[0] != "203.0.113.5" || len(z.AAAA) != 1 || len(z.TXT) != 1 {
		t.Errorf("mail host: %+v", z)
	}
	st.Close()

	// --json, and a child domain alone.
	recs := decode[[]dnsrecords.Record](t, mustCLI(t, dir, "", "dns", "records", "sales.example.com", "--json", "--config", cfgPath))
	for _, r := range recs {
		if r.Domain != "" && r.Domain != "sales.example.com" {
			t.Errorf("record of %s for sales.example.com", r.Domain)
		}
	}
	if r := cli(t, dir, "", "dns", "records", "nope.example", "--config", cfgPath); r.code != 1 || !strings.Contains(r.err, "unknown domain nope.example") {
		t.Errorf("unknown domain: %+v", r)
	}
	if r := cli(t, dir, "", "dns", "frob"); r.code != 2 {
		t.Errorf("unknown command: %+v", r)
	}
}

func TestDNSCheck(t *testing.T) {
	dir, cfgPath := dnsSetup(t)
	zone := mustCLI(t, dir, "", "dns", "records", "example.com", "--config", cfgPath)

	// A zone with exactly the records: everything ok, exit 0.
	good := writeZone(t, zone)
	srv := dnstest.NewServerFromFiles(t, good)
	r := cli(t, dir, "", "dns", "check", "example.com", "--resolver", srv.Addr(), "--config", cfgPath)
	if r.code != 0 || strings.Contains(r.out, "missing") || strings.Contains(r.out, "different") {
		t.Fatalf("correct zone: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if !strings.Contains(r.out, "All 42 records are published.") {
		t.Errorf("summary:\n%s", r.out)
	}

	// A zone that is not right: old SPF, an MX elsewhere, one DKIM key
	// missing, p=none, a second SPF on a child, the A record elsewhere.
	lines := strings.Split(zone, "\n")
	var bad []string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "yubin-rsa._domainkey.example.com."):
			continue
		case strings.HasPrefix(l, "example.com.") && strings.Contains(l, "v=spf1"):
			l = `example.com. 3600 IN TXT "v=spf1 mx ~all"`
		case strings.HasPrefix(l, "sales.example.com.") && strings.Contains(l, "\tMX\t"):
			l = "sales.example.com. 3600 IN MX 10 mx.elsewhere.example."
		case strings.HasPrefix(l, "_dmarc.www.example.com."):
			l = `_dmarc.www.example.com. 3600 IN TXT "v=DMARC1; p=none"`
		case strings.HasPrefix(l, "mail.example.com.") && strings.Contains(l, "\tA\t"):
			l = "mail.example.com. 3600 IN A 198.51.100.1"
		case strings.HasPrefix(l, "_imaps._tcp.www.example.com."):
			l = "_imaps._tcp.www.example.com. 3600 IN SRV 0 1 9993 mail.example.com."
		}
		bad = append(bad, l)
	}
	bad = append(bad, `www.example.com. 3600 IN TXT "v=spf1 -all"`, `www.example.com. 3600 IN TXT "google-site-verification=x"`)
	srv2 := dnstest.NewServerFromFiles(t, writeZone(t, strings.Join(bad, "\n")))
	r = cli(t, dir, "", "dns", "check", "example.com", "--resolver", srv2.Addr(), "--config", cfgPath)
	if r.code != 1 {
		t.Fatalf("wrong zone: exit %d\n%s%s", r.code, r.out, r.err)
	}
	checked := decode[[]dnsrecords.Checked](t, cli(t, dir, "", "dns", "check", "example.com", "--json", "--resolver", srv2.Addr(), "--config", cfgPath).out)
	status := map[string]dnsrecords.Status{}
	for _, c := range checked {
		status[c.Name+" "+c.Type] = c.Status
	}
	for key, want := range map[string]dnsrecords.Status{
		"yubin-rsa._domainkey.example.com. TXT":     dnsrecords.Missing,
		"yubin-ed25519._domainkey.example.com. TXT": dnsrecords.OK,
		"example.com. TXT":                          dnsrecords.Different,
		"example.com. MX":                           dnsrecords.OK,
		"sales.example.com. MX":                     dnsrecords.Different,
		"_dmarc.www.example.com. TXT":               dnsrecords.OK, // p=none is the admin's choice: a note
		"www.example.com. TXT":                      dnsrecords.Different,
		"mail.example.com. A":                       dnsrecords.Different,
		"mail.example.com. AAAA":                    dnsrecords.OK,
		"_imaps._tcp.www.example.com. SRV":          dnsrecords.Different,
		"_pop3s._tcp.www.example.com. SRV":          dnsrecords.OK,
	} {
		if status[key] != want {
			t.Errorf("%s: %s, want %s", key, status[key], want)
		}
	}
	for _, want := range []string{
		"missing    yubin-rsa._domainkey.example.com. TXT",
		"different  example.com. TXT  (spf)\n           want:  \"v=spf1 ip4:203.0.113.5 ip6:2001:db8::5 -all\"\n           found: v=spf1 mx ~all",
		"found: 10 mx.elsewhere.example.",
		"note:  published p=none (p=quarantine suggested)",
		"note:  several SPF records",
		"need attention: 1 missing, 5 different, 0 not looked up",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("output lacks %q:\n%s", want, r.out)
		}
	}

	// No DNS server at all: errors, exit 1.
	if r := cli(t, dir, "", "dns", "check", "www.example.com", "--resolver", "127.0.0.1:1", "--config", cfgPath); r.code != 1 || !strings.Contains(r.out, "not looked up") {
		t.Errorf("no server: %+v", r)
	}
}

func writeZone(t *testing.T, text string) string {
	p := filepath.Join(t.TempDir(), "zone")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestQuickstartTwice(t *testing.T) {
	dir := filepath.Join(testutil.ShortDir(t), "data")
	args := []string{"quickstart", "Admin@Example.TEST", "--hostname", "mail.example.test", "--ipv4", "203.0.113.7", "--ipv6", "none"}
	out := mustCLI(t, dir, "", args...)
	pw := regexp.MustCompile(`(?m)^    ([A-Za-z0-9]{20})$`).FindStringSubmatch(out)
	if pw == nil {
		t.Fatalf("no password printed:\n%s", out)
	}
	for _, want := range []string{
		"data dir     " + dir + "  ",
		"created",
		"domain       example.test",
		"added (role admin)",
		"example.test.\t3600\tIN\tMX\t10 mail.example.test.",
		`"v=spf1 ip4:203.0.113.7 -all"`,
		"yubin-rsa._domainkey.example.test.",
		"_dmarc.example.test.\t3600\tIN\tTXT\t\"v=DMARC1; p=quarantine; rua=mailto:admin@example.test\"",
		"_submission._tcp.example.test.",
		"outgoing   SMTP submission  mail.example.test  587   STARTTLS",
		"outgoing   SMTP submission  mail.example.test  465   SSL/TLS",
		"incoming   POP3             mail.example.test  995   SSL/TLS",
		"incoming   IMAP             mail.example.test  993   SSL/TLS",
		"user name: the full address, e.g. admin@example.test",
		"yubin serve --config " + filepath.Join(dir, "yubin.toml"),
		"self-signed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	cfgPath := filepath.Join(dir, "yubin.toml")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Hostname != "mail.example.test" || cfg.DataDir != dir || len(cfg.DNS.IPv4) != 1 || len(cfg.DNS.IPv6) != 0 {
		t.Errorf("config: %+v", cfg)
	}
	cfgBytes, _ := os.ReadFile(cfgPath)
	cert, _ := os.ReadFile(filepath.Join(dir, "tls", "cert.pem"))
	if len(cert) == 0 || !bytes.Contains(cfgBytes, []byte("# this server's public addresses")) {
		t.Errorf("no certificate, or the config lost its comments")
	}
	checkAccount := func() {
		st := teststore.OpenDir(t, dir, teststore.Options{})
		defer st.Close()
		a, err := st.Account(t.Context(), "admin@example.test")
		if err != nil || a.Role != store.RoleAdmin {
			t.Fatalf("account %+v %v", a, err)
		}
		if err := bcrypt.CompareHashAndPassword([]byte(a.PasswordHash), []byte(pw[1])); err != nil {
			t.Errorf("printed password does not match: %v", err)
		}
	}
	checkAccount()

	// Again: nothing clobbered, no new password, says what exists.
	out2 := mustCLI(t, dir, "", args...)
	for _, want := range []string{"exists, kept (--hostname/--ipv4/--ipv6 ignored", "certificate  " + filepath.Join(dir, "tls", "cert.pem") + "  exists, kept",
		"domain       example.test", "exists (role admin), password unchanged"} {
		if !strings.Contains(out2, want) {
			t.Errorf("second run lacks %q:\n%s", want, out2)
		}
	}
	if strings.Contains(out2, "Password of") || strings.Contains(out2, pw[1]) {
		t.Errorf("second run printed a password:\n%s", out2)
	}
	cfgBytes2, _ := os.ReadFile(cfgPath)
	cert2, _ := os.ReadFile(filepath.Join(dir, "tls", "cert.pem"))
	if !bytes.Equal(cfgBytes, cfgBytes2) || !bytes.Equal(cert, cert2) {
		t.Errorf("config or certificate rewritten")
	}
	checkAccount()
	// The same DKIM keys both times.
	if a, b := dkimLine(out), dkimLine(out2); a == "" || a != b {
		t.Errorf("DKIM record changed:\n%s\n%s", a, b)
	}

	// A child domain cannot get an account; bad input exits 1 or 2.
	mustCLI(t, dir, "", "domain", "add", "sales.example.test", "--parent", "example.test", "--config", cfgPath)
	if r := cli(t, dir, "", "quickstart", "x@sales.example.test"); r.code != 1 || !strings.Contains(r.err, "child domain of example.test") {
		t.Errorf("child: %+v", r)
	}
	if r := cli(t, dir, "", "quickstart", "not an address"); r.code != 1 {
		t.Errorf("bad address: %+v", r)
	}
	if r := cli(t, dir, "", "quickstart"); r.code != 2 {
		t.Errorf("no address: %+v", r)
	}
	if r := cli(t, testutil.ShortDir(t), "", "quickstart", "a@b.example", "--ipv4", "2001:db8::1"); r.code != 1 {
		t.Errorf("bad --ipv4: %+v", r)
	}
}

func dkimLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "yubin-ed25519._domainkey.") {
			return l
		}
	}
	return ""
}
