package e2e

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"yubin/internal/testutil"
)

// curl runs curl and returns the HTTP status and the body.
func curl(t *testing.T, args ...string) (string, string) {
	t.Helper()
	bin := testutil.NeedCommand(t, "curl")
	out, err := exec.Command(bin, append([]string{"-sS", "--max-time", "20", "-w", "\n%{http_code}"}, args...)...).Output()
	if err != nil {
		t.Fatalf("curl %v: %v", args, err)
	}
	s := string(out)
	i := strings.LastIndexByte(s, '\n')
	return s[i+1:], s[:i]
}

// The real binary serves client autoconfiguration on listen.http: curl
// gets Thunderbird's clientConfig and Outlook's autodiscover answer with
// the ports the server listens on, and 404 for a domain not ours.
func TestAutoconfigOverHTTP(t *testing.T) {
	data, cfg := newDataDir(t)
	mustRewrite(t, cfg, "[listen]\n", "[listen]\nhttp = \"127.0.0.1:0\"\n")
	s := startServer(t, data, cfg)
	base := "http://" + s.addrs["http"]
	port := func(name string) string { return s.addrs[name][strings.LastIndexByte(s.addrs[name], ':')+1:] }

	code, body := curl(t, base+"/mail/config-v1.1.xml?emailaddress=info@child.example.com")
	if code != "200" {
		t.Fatalf("autoconfig: %s %s", code, body)
	}
	for _, want := range []string{
		`<emailProvider id="child.example.com">`,
		"<hostname>mx.example.com</hostname>",
		`<incomingServer type="imap">`,
		"<port>" + port("imaps") + "</port>\n      <socketType>SSL</socketType>",
		"<port>" + port("imap") + "</port>\n      <socketType>STARTTLS</socketType>",
		"<port>" + port("pop3s") + "</port>",
		"<port>" + port("submissions") + "</port>\n      <socketType>SSL</socketType>",
		"<port>" + port("submission") + "</port>\n      <socketType>STARTTLS</socketType>",
		"<username>%EMAILLOCALPART%@example.com</username>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("autoconfig lacks %q:\n%s", want, body)
		}
	}
	if code, body := curl(t, base+"/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=a@elsewhere.example"); code != "404" {
		t.Errorf("other domain: %s %s", code, body)
	}

	req := `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>info@example.com</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`
	code, body = curl(t, "-H", "Content-Type: text/xml", "--data-binary", req, base+"/Autodiscover/Autodiscover.xml")
	if code != "200" {
		t.Fatalf("autodiscover: %s %s", code, body)
	}
	re := regexp.MustCompile(`<Type>IMAP</Type>\s*<Server>mx.example.com</Server>\s*<Port>` + port("imaps") + `</Port>[\s\S]*<LoginName>info@example.com</LoginName>`)
	if !re.MatchString(body) || !strings.Contains(body, "<Type>SMTP</Type>") {
		t.Errorf("autodiscover answer:\n%s", body)
	}
	if code, _ := curl(t, "--data-binary", "<Autodiscover>", base+"/autodiscover/autodiscover.xml"); code != "400" {
		t.Errorf("malformed autodiscover: %s", code)
	}
	// Without ACME nothing else is served.
	if code, _ := curl(t, base+"/"); code != "404" {
		t.Errorf("GET /: %s", code)
	}
	s.stop(t)
}
