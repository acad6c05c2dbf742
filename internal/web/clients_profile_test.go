package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestMobileConfig: the client settings page links the profile; the
// profile is the account's (its address, no password), for the account
// and its domain's admin, 403 for anyone else; a session is needed.
func TestMobileConfig(t *testing.T) {
	e := newEnv(t)
	bob := e.browser()
	if a := bob.get(mail(bobAddr, "clients/mobileconfig")); !loggedOut(a) {
		t.Fatalf("without a session: %d", a.status)
	}
	bob.login(bobAddr, bobPW)
	if a := bob.get(mail(bobAddr, "clients")); !strings.Contains(a.body, `href="/mail/bob@example.com/clients/mobileconfig"`) {
		t.Fatalf("no profile link:\n%s", a.body)
	}
	a := bob.get(mail(bobAddr, "clients/mobileconfig"))
	if a.status != 200 || a.header.Get("Content-Type") != "application/x-apple-aspen-config" ||
		!strings.Contains(a.header.Get("Content-Disposition"), `filename="bob@example.com.mobileconfig"`) {
		t.Fatalf("profile: %d %v", a.status, a.header)
	}
	for _, want := range []string{"<string>com.apple.mail.managed</string>", "<key>EmailAddress</key>\n\t\t\t<string>bob@example.com</string>",
		"<key>IncomingMailServerPortNumber</key>\n\t\t\t<integer>993</integer>"} {
		if !strings.Contains(a.body, want) {
			t.Errorf("profile lacks %q:\n%s", want, a.body)
		}
	}
	if strings.Contains(a.body, bobPW) {
		t.Error("the profile carries the password")
	}
	if a := bob.get(mail(adminAddr, "clients/mobileconfig")); a.status != http.StatusForbidden {
		t.Errorf("another account's profile: %d", a.status)
	}
	info := e.browser()
	info.login(adminAddr, adminPW)
	if a := info.get(mail(bobAddr, "clients/mobileconfig")); a.status != 200 || !strings.Contains(a.body, "bob@example.com") {
		t.Errorf("the admin's download of bob's profile: %d", a.status)
	}
	carol := e.browser()
	carol.login(carolAddr, carolPW)
	if a := carol.get(mail(bobAddr, "clients/mobileconfig")); a.status != http.StatusForbidden {
		t.Errorf("another domain's admin: %d", a.status)
	}
}

// TestAutoconfigOnWeb: the web listener answers Thunderbird and Outlook
// without a session, for local domains only.
func TestAutoconfigOnWeb(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	a := b.get("/mail/config-v1.1.xml?emailaddress=" + url.QueryEscape("bob@www.example.com"))
	if a.status != 200 || !strings.Contains(a.body, `<emailProvider id="www.example.com">`) || !strings.Contains(a.body, "<username>%EMAILLOCALPART%@example.com</username>") {
		t.Fatalf("autoconfig: %d\n%s", a.status, a.body)
	}
	if a := b.get("/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=a@elsewhere.test"); a.status != http.StatusNotFound {
		t.Errorf("another domain: %d", a.status)
	}
	req := `<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>carol@other.test</EMailAddress></Request></Autodiscover>`
	r, err := http.NewRequestWithContext(t.Context(), "POST", e.srv.URL+"/AutoDiscover/AUTODISCOVER.xml", strings.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	a = b.do(r)
	if a.status != 200 || !strings.Contains(a.body, "<LoginName>carol@other.test</LoginName>") {
		t.Errorf("autodiscover: %d\n%s", a.status, a.body)
	}
	if a.header.Get("Content-Security-Policy") == "" {
		t.Errorf("autoconfig answers without the security headers")
	}
}
