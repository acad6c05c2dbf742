package autoconfig

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// outlookRequest is what Outlook posts.
func outlookRequest(email string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(email))
	return `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>` + b.String() + `</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>`
}

// adResponse is the 2006a response as Outlook reads it, namespaces
// included, written apart from the package's types.
type adResponse struct {
	XMLName  xml.Name `xml:"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006 Autodiscover"`
	Response struct {
		XMLName xml.Name `xml:"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a Response"`
		User    struct {
			DisplayName string `xml:"DisplayName"`
		} `xml:"User"`
		Account struct {
			AccountType string `xml:"AccountType"`
			Action      string `xml:"Action"`
			Protocol    []struct {
				Type, Server                                  string
				Port                                          int
				LoginName, SSL, Encryption, SPA, AuthRequired string
				DomainRequired                                string
			} `xml:"Protocol"`
		} `xml:"Account"`
	} `xml:"Response"`
}

func parseAD(t *testing.T, body string) adResponse {
	t.Helper()
	var r adResponse
	if err := xml.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("not an autodiscover response: %v\n%s", err, body)
	}
	return r
}

func TestAutodiscover(t *testing.T) {
	srv, _ := newServer(t)
	for _, path := range []string{"/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml", "/AutoDiscover/AutoDiscover.xml", "/AUTODISCOVER/AUTODISCOVER.XML"} {
		code, body := post(t, srv.URL+path, outlookRequest("Info@Example.com"))
		if code != 200 {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		r := parseAD(t, body)
		a := r.Response.Account
		if r.Response.User.DisplayName != "info@example.com" || a.AccountType != "email" || a.Action != "settings" {
			t.Errorf("%s: %+v", path, r)
		}
		var got []string
		for _, p := range a.Protocol {
			got = append(got, strings.Join([]string{p.Type, p.Server, strconv.Itoa(p.Port), p.LoginName, p.SSL, p.Encryption, p.SPA, p.AuthRequired, p.DomainRequired}, " "))
		}
		want := []string{
			"IMAP mail.example.com 993 info@example.com on SSL off on off",
			"POP3 mail.example.com 995 info@example.com on SSL off on off",
			"SMTP mail.example.com 465 info@example.com on SSL off on off",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: protocols\n%s", path, strings.Join(got, "\n"))
		}
	}

	// A child domain's address logs in as the parent's account.
	code, body := post(t, srv.URL+AutodiscoverPath, outlookRequest("info@sales.example.com"))
	if r := parseAD(t, body); code != 200 || r.Response.Account.Protocol[0].LoginName != "info@example.com" {
		t.Errorf("child: %d %s", code, body)
	}

	// With the implicit-TLS listeners off, STARTTLS ("TLS").
	s := testSettings()
	s.IMAP, s.POP3, s.SMTP = s.IMAP[1:], nil, s.SMTP[1:]
	r := s.Autodiscover(Account{Email: "a@example.com", Domain: "example.com", Parent: "example.com"})
	if p := r.Response.Account.Protocols; len(p) != 2 || p[0].Port != 143 || p[0].Encryption != "TLS" || p[1].Port != 587 || p[1].Encryption != "TLS" {
		t.Errorf("STARTTLS only: %+v", p)
	}
}

func TestAutodiscoverRefuses(t *testing.T) {
	srv, _ := newServer(t)
	u := srv.URL + AutodiscoverPath
	for name, tc := range map[string]struct {
		body string
		code int
	}{
		"other domain":   {outlookRequest("info@not.ours.example"), 404},
		"malformed XML":  {`<Autodiscover><Request><EMailAddress>info@example.com</Request>`, 400},
		"not XML":        {"hello", 400},
		"empty":          {"", 400},
		"no address":     {strings.Replace(outlookRequest("x"), "<EMailAddress>x</EMailAddress>", "", 1), 400},
		"bad address":    {outlookRequest("info@@example.com"), 400},
		"oversized":      {outlookRequest("info@example.com") + "<!--" + strings.Repeat("x", MaxRequestBody) + "-->", 400},
		"very oversized": {strings.Repeat("<a>", 1<<20), 400},
		"ActiveSync": {strings.Replace(outlookRequest("info@example.com"), "outlook/responseschema/2006a",
			"mobilesync/responseschema/2006", 1), 400},
		"other namespace": {strings.Replace(outlookRequest("info@example.com"), "outlook/requestschema/2006", "x", 1), 400},
		"entity":          {`<!DOCTYPE a [<!ENTITY e "info@example.com">]><Autodiscover><Request><EMailAddress>&e;</EMailAddress></Request></Autodiscover>`, 400},
	} {
		code, body := post(t, u, tc.body)
		if code != tc.code {
			t.Errorf("%s: %d %s, want %d", name, code, body, tc.code)
		}
		if strings.Contains(body, "Protocol") {
			t.Errorf("%s: settings in a refusal: %s", name, body)
		}
	}
	code, _ := get(t, u, "")
	if code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", code)
	}
	_, known := post(t, u, outlookRequest("info@example.com"))
	_, unknown := post(t, u, outlookRequest("nobody@example.com"))
	if strings.ReplaceAll(unknown, "nobody@", "info@") != known {
		t.Errorf("the answer tells an existing account from a missing one:\n%s\n%s", known, unknown)
	}
}

// FuzzParseAutodiscover: any body either is refused or gives an address
// that is non-empty, bounded and without surrounding blanks, and a
// request made of that address parses back to it.
func FuzzParseAutodiscover(f *testing.F) {
	f.Add([]byte(outlookRequest("info@example.com")))
	f.Add([]byte(`<Autodiscover><Request><EMailAddress>a@b.c</EMailAddress></Request></Autodiscover>`))
	f.Add([]byte(`<Autodiscover xmlns="x"><Request><EMailAddress>&lt;a&gt;</EMailAddress></Request></Autodiscover>`))
	f.Add([]byte("<Autodiscover><Request><EMailAddress><![CDATA[ a@b ]]></EMailAddress></Request></Autodiscover>"))
	f.Fuzz(func(t *testing.T, body []byte) {
		email, err := ParseAutodiscover(bytes.NewReader(body))
		if err != nil {
			if email != "" {
				t.Fatalf("error %v with address %q", err, email)
			}
			return
		}
		if len(body) > MaxRequestBody {
			t.Fatalf("accepted %d bytes", len(body))
		}
		if email == "" || len(email) > maxRequestLength || email != strings.TrimSpace(email) {
			t.Fatalf("address %q", email)
		}
		again, err := ParseAutodiscover(strings.NewReader(outlookRequest(email)))
		if err != nil || again != email {
			t.Fatalf("round trip of %q: %q %v", email, again, err)
		}
	})
}
