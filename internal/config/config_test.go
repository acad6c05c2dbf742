package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The example must parse and, apart from the host name, equal the defaults:
// that is what "every key with its default" promises.
func TestExampleIsDefault(t *testing.T) {
	p := filepath.Join(t.TempDir(), "y.toml")
	os.WriteFile(p, []byte(Example), 0o600)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	c.Hostname = d.Hostname
	if !reflect.DeepEqual(c, d) {
		t.Fatalf("example differs from defaults:\n%+v\n%+v", c, d)
	}
}

func TestLoadErrors(t *testing.T) {
	for name, body := range map[string]string{
		"unknown key":    "[smtp]\nmax_mesage_size = 5\n",
		"bad listen":     "[listen]\nsmtp = \"25\"\n",
		"half tls":       "[tls]\ncert = \"x.pem\"\n",
		"bad duration":   "[smtp]\nread_timeout = \"soon\"\n",
		"syntax":         "hostname = \n",
		"bad ipv4":       "[dns]\nipv4 = [\"2001:db8::1\"]\n",
		"bad ipv6":       "[dns]\nipv6 = [\"mail\"]\n",
		"bad dmarc":      "[dns]\ndmarc_policy = \"strict\"\n",
		"smart host":     "[outbound]\nsmart_host = \"relay.example\"\n",
		"smart tls":      "[outbound]\nsmart_host_tls = \"ssl\"\n",
		"half auth":      "[outbound]\nsmart_host_user = \"u\"\n",
		"auth no tls":    "[outbound]\nsmart_host_tls = \"none\"\nsmart_host_user = \"u\"\nsmart_host_password_file = \"p\"\n",
		"auth opport":    "[outbound]\nsmart_host_tls = \"opportunistic\"\nsmart_host_user = \"u\"\nsmart_host_password_file = \"p\"\n",
		"zero retry":     "[outbound]\nretry_for = \"0s\"\n",
		"short lease":    "[outbound]\nlease = \"2s\"\n",
		"acme and cert":  "[listen]\nhttp = \"0.0.0.0:80\"\n[tls]\nacme = true\ncert = \"c.pem\"\nkey = \"k.pem\"\n",
		"acme no http":   "[tls]\nacme = true\n",
		"acme http dir":  "[listen]\nhttp = \":80\"\n[tls]\nacme = true\nacme_directory = \"http://ca.example/dir\"\n",
		"acme email":     "[listen]\nhttp = \":80\"\n[tls]\nacme = true\nacme_email = \"nobody\"\n",
		"bad http":       "[listen]\nhttp = \"80\"\n",
		"short lines":    "[smtp]\nmax_line_length = 999\n",
		"huge lines":     "[smtp]\nmax_line_length = 1048577\n",
		"bad backend":    "[store]\nbackend = \"sqlite\"\n",
		"pg no url":      "[store]\nbackend = \"postgres\"\n",
		"pg bad url":     "[store]\nbackend = \"postgres\"\npostgres_url = \"mysql://x\"\n",
		"url no pg":      "[store]\npostgres_url = \"postgres://db/yubin\"\n",
		"web idle 0":     "[web]\nsession_idle = \"0s\"\n",
		"bad web listen": "[listen]\nweb = \"8443\"\n",
	} {
		p := filepath.Join(t.TempDir(), "y.toml")
		os.WriteFile(p, []byte(body), 0o600)
		if _, err := Load(p); err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error does not name the file: %v", name, err)
		}
	}
}

func TestShiftPorts(t *testing.T) {
	c := Default()
	c.Listen.Submissions = "off"
	c.Listen.POP3S = ""
	if err := c.ShiftPorts(10000); err != nil {
		t.Fatal(err)
	}
	if c.Listen.SMTP != "0.0.0.0:10025" || c.Listen.Submission != "0.0.0.0:10587" || c.Listen.Submissions != "off" || c.Listen.POP3 != "0.0.0.0:10110" || c.Listen.IMAPS != "0.0.0.0:10993" || c.Listen.POP3S != "" {
		t.Fatalf("got %+v", c.Listen)
	}
}

func TestACMEConfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "y.toml")
	os.WriteFile(p, []byte("[listen]\nhttp = \"0.0.0.0:80\"\n[tls]\nacme = true\nacme_email = \"admin@example.com\"\n"), 0o600)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if !c.TLS.ACME || c.TLS.ACMEDirectory != DefaultACMEDirectory || c.TLS.ACMEEmail != "admin@example.com" || c.Listen.HTTP != "0.0.0.0:80" {
		t.Fatalf("got %+v %+v", c.TLS, c.Listen)
	}
	// The mutual-exclusion error names both.
	os.WriteFile(p, []byte("[listen]\nhttp = \":80\"\n[tls]\nacme = true\ncert = \"c\"\nkey = \"k\"\n"), 0o600)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "mutually exclusive") {
		t.Fatalf("acme + cert: %v", err)
	}
	os.WriteFile(p, []byte("[tls]\nacme = true\n"), 0o600)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "listen.http") {
		t.Fatalf("acme without listen.http: %v", err)
	}
}

// Every value of outbound.smart_host_tls loads; a password goes with the
// two that encrypt only.
func TestSmartHostTLSValues(t *testing.T) {
	p := filepath.Join(t.TempDir(), "y.toml")
	for _, v := range []string{SmartHostSTARTTLS, SmartHostImplicitTLS, SmartHostOpportunistic, SmartHostNoTLS} {
		os.WriteFile(p, []byte("[outbound]\nsmart_host = \"relay.example:25\"\nsmart_host_tls = \""+v+"\"\n"), 0o600)
		if c, err := Load(p); err != nil || c.Outbound.SmartHostTLS != v {
			t.Errorf("%s: %v", v, err)
		}
		os.WriteFile(p, []byte("[outbound]\nsmart_host = \"relay.example:25\"\nsmart_host_tls = \""+v+"\"\nsmart_host_user = \"u\"\nsmart_host_password_file = \"pw\"\n"), 0o600)
		_, err := Load(p)
		if encrypts := v == SmartHostSTARTTLS || v == SmartHostImplicitTLS; (err == nil) != encrypts {
			t.Errorf("%s with a password: %v", v, err)
		}
	}
}

func TestSpamConfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "y.toml")
	os.WriteFile(p, []byte("[spam]\ndnsbl = [\"bl.spamcop.net\", {zone = \"zen.spamhaus.org\", reject = true}]\nuribl = [{zone = \"dbl.spamhaus.org\"}]\ndnsbl_timeout = \"2s\"\n[smtp]\nsubmission_messages_per_hour = 0\n"), 0o600)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	want := Default().Spam
	want.DNSBL = []Blocklist{{Zone: "bl.spamcop.net"}, {Zone: "zen.spamhaus.org", Reject: true}}
	want.URIBL = []Blocklist{{Zone: "dbl.spamhaus.org"}}
	want.DNSBLTimeout = Duration{2 * time.Second}
	if !reflect.DeepEqual(c.Spam, want) || c.SMTP.SubmissionMessagesPerHour != 0 || c.SMTP.SubmissionRecipientsPerHour != 1000 {
		t.Fatalf("got %+v %+v", c.Spam, c.SMTP)
	}
	for name, body := range map[string]string{
		"unknown key":   "[spam]\ndnsbl = [{zone = \"a.example\", rejct = true}]\n",
		"wrong type":    "[spam]\ndnsbl = [{zone = \"a.example\", reject = \"yes\"}]\n",
		"number":        "[spam]\ndnsbl = [5]\n",
		"not a zone":    "[spam]\ndnsbl = [\"zen\"]\n",
		"no zone":       "[spam]\ndnsbl = [{reject = true}]\n",
		"uribl reject":  "[spam]\nuribl = [{zone = \"dbl.example\", reject = true}]\n",
		"zero timeout":  "[spam]\ndnsbl_timeout = \"0s\"\n",
		"negative rate": "[smtp]\nsubmission_recipients_per_hour = -1\n",
	} {
		os.WriteFile(p, []byte(body), 0o600)
		if _, err := Load(p); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestStoreBackend: postgres with its URL is accepted, and described
// without the password.
func TestStoreBackend(t *testing.T) {
	p := filepath.Join(t.TempDir(), "y.toml")
	os.WriteFile(p, []byte("[store]\nbackend = \"postgres\"\npostgres_url = \"postgres://yubin:secret@db.example:5432/mail\"\n"), 0o600)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if d := c.StoreDescription(); strings.Contains(d, "secret") || !strings.Contains(d, "db.example:5432/mail") {
		t.Errorf("StoreDescription %q", d)
	}
	def := Default()
	if d := def.StoreDescription(); !strings.HasSuffix(d, "yubin.db") {
		t.Errorf("default StoreDescription %q", d)
	}
}
