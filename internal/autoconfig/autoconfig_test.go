package autoconfig

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"yubin/internal/config"
	"yubin/internal/testutil/teststore"
	"yubin/store"
)

func testSettings() Settings {
	cfg := config.Default()
	cfg.Hostname = "mail.example.com"
	return FromConfig(cfg)
}

func TestFromConfig(t *testing.T) {
	s := testSettings()
	want := Settings{Host: "mail.example.com",
		IMAP: []Server{{993, SSL}, {143, STARTTLS}},
		POP3: []Server{{995, SSL}, {110, STARTTLS}},
		SMTP: []Server{{465, SSL}, {587, STARTTLS}}}
	if !equalSettings(s, want) {
		t.Errorf("defaults: %+v", s)
	}

	// The ports as configured (the embedded default's shift included), a
	// listener that is off left out, dns.mx_host before hostname.
	cfg := config.Default()
	cfg.Hostname = "host.example.com"
	cfg.DNS.MXHost = "MX.Example.com."
	if err := cfg.ShiftPorts(10000); err != nil {
		t.Fatal(err)
	}
	cfg.Listen.POP3 = "off"
	cfg.Listen.IMAPS = ""
	s = FromConfig(cfg)
	want = Settings{Host: "mx.example.com",
		IMAP: []Server{{10143, STARTTLS}},
		POP3: []Server{{10995, SSL}},
		SMTP: []Server{{10465, SSL}, {10587, STARTTLS}}}
	if !equalSettings(s, want) {
		t.Errorf("shifted: %+v", s)
	}
}

func equalSettings(a, b Settings) bool {
	eq := func(x, y []Server) bool {
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	}
	return a.Host == b.Host && eq(a.IMAP, b.IMAP) && eq(a.POP3, b.POP3) && eq(a.SMTP, b.SMTP)
}

// newServer serves the handler on 127.0.0.1 over a real store with
// example.com (child sales.example.com, account info@example.com) and
// other.test; not.ours.example is not a local domain.
func newServer(t *testing.T) (*httptest.Server, *Handler) {
	t.Helper()
	st := teststore.New(t, teststore.Options{
		NoSync:   true,
		Domains:  []teststore.Domain{{Name: "example.com"}, {Name: "sales.example.com", Parent: "example.com"}, {Name: "other.test"}},
		Accounts: []store.Account{{Address: "info@example.com", Role: store.RoleAdmin}},
	})
	h := New(testSettings(), st, nil)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, h
}

// get fetches url (with Host host when not "") and returns the status and
// body.
func get(t *testing.T, url, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/xml")
	return do(t, req)
}

// tbConfig is Thunderbird's clientConfig as Thunderbird reads it, written
// apart from the package's types.
type tbConfig struct {
	XMLName  xml.Name `xml:"clientConfig"`
	Version  string   `xml:"version,attr"`
	Provider struct {
		ID       string     `xml:"id,attr"`
		Domain   []string   `xml:"domain"`
		Incoming []tbServer `xml:"incomingServer"`
		Outgoing []tbServer `xml:"outgoingServer"`
	} `xml:"emailProvider"`
}

type tbServer struct {
	Type     string `xml:"type,attr"`
	Hostname string `xml:"hostname"`
	Port     int    `xml:"port"`
	Socket   string `xml:"socketType"`
	Auth     string `xml:"authentication"`
	Username string `xml:"username"`
}

func (s tbServer) String() string {
	return s.Type + " " + s.Hostname + ":" + strconv.Itoa(s.Port) + " " + s.Socket + " " + s.Auth + " " + s.Username
}

func parseTB(t *testing.T, body string) tbConfig {
	t.Helper()
	var c tbConfig
	if err := xml.Unmarshal([]byte(body), &c); err != nil {
		t.Fatalf("not a clientConfig: %v\n%s", err, body)
	}
	if !strings.HasPrefix(body, `<?xml version="1.0" encoding="UTF-8"?>`) {
		t.Errorf("no XML declaration:\n%s", body)
	}
	return c
}

func TestThunderbird(t *testing.T) {
	srv, _ := newServer(t)
	for _, path := range []string{ThunderbirdPath, WellKnownPath} {
		code, body := get(t, srv.URL+path+"?emailaddress=Info%40Example.com", "")
		if code != 200 {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		c := parseTB(t, body)
		if c.Version != "1.1" || c.Provider.ID != "example.com" || len(c.Provider.Domain) != 1 || c.Provider.Domain[0] != "example.com" {
			t.Errorf("%s: provider %+v", path, c)
		}
		var in, out []string
		for _, s := range c.Provider.Incoming {
			in = append(in, s.String())
		}
		for _, s := range c.Provider.Outgoing {
			out = append(out, s.String())
		}
		wantIn := []string{
			"imap mail.example.com:993 SSL password-cleartext %EMAILADDRESS%",
			"imap mail.example.com:143 STARTTLS password-cleartext %EMAILADDRESS%",
			"pop3 mail.example.com:995 SSL password-cleartext %EMAILADDRESS%",
			"pop3 mail.example.com:110 STARTTLS password-cleartext %EMAILADDRESS%",
		}
		wantOut := []string{
			"smtp mail.example.com:465 SSL password-cleartext %EMAILADDRESS%",
			"smtp mail.example.com:587 STARTTLS password-cleartext %EMAILADDRESS%",
		}
		if strings.Join(in, "\n") != strings.Join(wantIn, "\n") || strings.Join(out, "\n") != strings.Join(wantOut, "\n") {
			t.Errorf("%s: servers\n%s\n%s", path, strings.Join(in, "\n"), strings.Join(out, "\n"))
		}
	}

	// A child domain: the login is the parent's account.
	code, body := get(t, srv.URL+ThunderbirdPath+"?emailaddress=info@sales.example.com", "")
	c := parseTB(t, body)
	if code != 200 || c.Provider.ID != "sales.example.com" || c.Provider.Incoming[0].Username != "%EMAILLOCALPART%@example.com" {
		t.Errorf("child domain: %d %+v", code, c)
	}

	// No emailaddress: the host name tells the domain.
	code, body = get(t, srv.URL+ThunderbirdPath, "autoconfig.other.test:8080")
	if c := parseTB(t, body); code != 200 || c.Provider.ID != "other.test" {
		t.Errorf("by host name: %d %s", code, body)
	}
	code, body = get(t, srv.URL+WellKnownPath, "example.com")
	if c := parseTB(t, body); code != 200 || c.Provider.ID != "example.com" {
		t.Errorf("well-known by host name: %d %s", code, body)
	}
}

// Another domain is 404, whatever the form of the question; a malformed
// address 400; and the answer never depends on whether the account
// exists.
func TestThunderbirdRefuses(t *testing.T) {
	srv, _ := newServer(t)
	for _, tc := range []struct {
		query, host string
		code        int
	}{
		{"?emailaddress=info@not.ours.example", "", 404},
		{"?emailaddress=info@example.com.evil.example", "", 404},
		{"", "autoconfig.not.ours.example", 404},
		{"", "127.0.0.1", 404},
		{"", "-bad-.example", 400},
		{"?emailaddress=no-at-sign", "", 400},
		{"?emailaddress=a%25b@example.com", "", 400},
		{"?emailaddress=info@[127.0.0.1]", "", 400},
	} {
		code, body := get(t, srv.URL+ThunderbirdPath+tc.query, tc.host)
		if code != tc.code {
			t.Errorf("%q host %q: %d %s, want %d", tc.query, tc.host, code, body, tc.code)
		}
		if strings.Contains(body, "clientConfig") {
			t.Errorf("%q: a config in a refusal: %s", tc.query, body)
		}
	}
	_, known := get(t, srv.URL+ThunderbirdPath+"?emailaddress=info@example.com", "")
	_, unknown := get(t, srv.URL+ThunderbirdPath+"?emailaddress=nobody@example.com", "")
	if known != unknown {
		t.Errorf("the answer tells an existing account from a missing one:\n%s\n%s", known, unknown)
	}
	if code, _ := get(t, srv.URL+"/mail/config-v1.2.xml?emailaddress=info@example.com", ""); code != 404 {
		t.Errorf("another path: %d", code)
	}
	code, _ := post(t, srv.URL+ThunderbirdPath+"?emailaddress=info@example.com", "")
	if code != http.StatusMethodNotAllowed {
		t.Errorf("POST to autoconfig: %d", code)
	}
}
