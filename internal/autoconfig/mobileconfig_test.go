package autoconfig

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// readPlist parses a property list document into maps, slices, strings,
// ints and bools, refusing anything that is not well-formed plist XML.
func readPlist(t *testing.T, doc []byte) any {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(string(doc)))
	d.Strict = true
	var root any
	sawDoctype := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not XML: %v\n%s", err, doc)
		}
		switch tok := tok.(type) {
		case xml.Directive:
			sawDoctype = strings.HasPrefix(string(tok), "DOCTYPE plist PUBLIC")
		case xml.StartElement:
			if tok.Name.Local != "plist" || root != nil {
				t.Fatalf("root element %s", tok.Name.Local)
			}
			root = plistValue(t, d, nextStart(t, d))
			if _, err := plistEnd(d); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !sawDoctype {
		t.Errorf("no plist DOCTYPE")
	}
	return root
}

func nextStart(t *testing.T, d *xml.Decoder) xml.StartElement {
	t.Helper()
	for {
		tok, err := d.Token()
		if err != nil {
			t.Fatalf("plist: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			return tok
		case xml.EndElement:
			t.Fatalf("plist: unexpected </%s>", tok.Name.Local)
		case xml.CharData:
			if strings.TrimSpace(string(tok)) != "" {
				t.Fatalf("plist: text %q between elements", tok)
			}
		}
	}
}

// plistEnd reads up to the next end element, which must come before any
// other start element; it returns the text before it.
func plistEnd(d *xml.Decoder) (string, error) {
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			return "", err
		}
		switch tok := tok.(type) {
		case xml.EndElement:
			return text.String(), nil
		case xml.StartElement:
			return "", fmt.Errorf("unexpected <%s>", tok.Name.Local)
		case xml.CharData:
			text.Write(tok)
		}
	}
}

func plistValue(t *testing.T, d *xml.Decoder, se xml.StartElement) any {
	t.Helper()
	switch se.Name.Local {
	case "dict":
		m := map[string]any{}
		for {
			tok, err := d.Token()
			if err != nil {
				t.Fatal(err)
			}
			switch tok := tok.(type) {
			case xml.EndElement:
				return m
			case xml.StartElement:
				if tok.Name.Local != "key" {
					t.Fatalf("dict: <%s> where a key belongs", tok.Name.Local)
				}
				k, err := plistEnd(d)
				if err != nil {
					t.Fatal(err)
				}
				if _, dup := m[k]; dup {
					t.Fatalf("dict: key %s twice", k)
				}
				m[k] = plistValue(t, d, nextStart(t, d))
			}
		}
	case "array":
		var a []any
		for {
			tok, err := d.Token()
			if err != nil {
				t.Fatal(err)
			}
			switch tok := tok.(type) {
			case xml.EndElement:
				return a
			case xml.StartElement:
				a = append(a, plistValue(t, d, tok))
			}
		}
	case "string":
		s, err := plistEnd(d)
		if err != nil {
			t.Fatal(err)
		}
		return s
	case "integer":
		s, err := plistEnd(d)
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("integer %q", s)
		}
		return n
	case "true", "false":
		if s, err := plistEnd(d); err != nil || s != "" {
			t.Fatalf("<%s> with %q %v", se.Name.Local, s, err)
		}
		return se.Name.Local == "true"
	}
	t.Fatalf("plist: element <%s>", se.Name.Local)
	return nil
}

func TestMobileConfig(t *testing.T) {
	s := testSettings()
	a := Account{Email: "o'neil&co@sales.example.com", Domain: "sales.example.com", Parent: "example.com"}
	doc, err := s.MobileConfig(a)
	if err != nil {
		t.Fatal(err)
	}
	top, ok := readPlist(t, doc).(map[string]any)
	if !ok {
		t.Fatalf("root is not a dict:\n%s", doc)
	}
	if top["PayloadType"] != "Configuration" || top["PayloadVersion"] != 1 || top["PayloadIdentifier"] != "yubin.com.example.mail.o'neil&co@sales.example.com" {
		t.Errorf("profile %v", top)
	}
	content, _ := top["PayloadContent"].([]any)
	if len(content) != 1 {
		t.Fatalf("payloads %v", top["PayloadContent"])
	}
	p := content[0].(map[string]any)
	for k, want := range map[string]any{
		"PayloadType":                      "com.apple.mail.managed",
		"EmailAccountType":                 "EmailTypeIMAP",
		"EmailAddress":                     "o'neil&co@sales.example.com",
		"IncomingMailServerHostName":       "mail.example.com",
		"IncomingMailServerPortNumber":     993,
		"IncomingMailServerUseSSL":         true,
		"IncomingMailServerUsername":       "o'neil&co@example.com",
		"IncomingMailServerAuthentication": "EmailAuthPassword",
		"OutgoingMailServerHostName":       "mail.example.com",
		"OutgoingMailServerPortNumber":     465,
		"OutgoingMailServerUseSSL":         true,
		"OutgoingMailServerUsername":       "o'neil&co@example.com",
		"OutgoingMailServerAuthentication": "EmailAuthPassword",
		"PayloadVersion":                   1,
	} {
		if p[k] != want {
			t.Errorf("%s = %#v, want %#v", k, p[k], want)
		}
	}
	for k := range p {
		if strings.Contains(strings.ToLower(k), "password") && k != "OutgoingPasswordSameAsIncomingPassword" {
			t.Errorf("the profile carries %s", k)
		}
	}
	u1, u2 := top["PayloadUUID"].(string), p["PayloadUUID"].(string)
	for _, u := range []string{u1, u2} {
		if len(u) != 36 || u[14] != '5' || strings.Count(u, "-") != 4 {
			t.Errorf("UUID %q", u)
		}
	}
	if u1 == u2 {
		t.Errorf("profile and payload share the UUID %s", u1)
	}
	// The same account, the same profile (a new download replaces the
	// installed one); another account, other identifiers.
	again, _ := s.MobileConfig(a)
	other, _ := s.MobileConfig(Account{Email: "b@example.com", Domain: "example.com", Parent: "example.com"})
	if string(again) != string(doc) || strings.Contains(string(other), u1) {
		t.Errorf("identifiers not derived from the account")
	}

	// STARTTLS only: the STARTTLS ports, still with SSL on (which the
	// Apple clients take as STARTTLS on those ports).
	s.IMAP, s.SMTP = s.IMAP[1:], s.SMTP[1:]
	doc, err = s.MobileConfig(a)
	if err != nil {
		t.Fatal(err)
	}
	p = readPlist(t, doc).(map[string]any)["PayloadContent"].([]any)[0].(map[string]any)
	if p["IncomingMailServerPortNumber"] != 143 || p["OutgoingMailServerPortNumber"] != 587 {
		t.Errorf("STARTTLS ports %v %v", p["IncomingMailServerPortNumber"], p["OutgoingMailServerPortNumber"])
	}
	s.SMTP = nil
	if _, err := s.MobileConfig(a); err == nil {
		t.Errorf("a profile without submission")
	}
}

func TestServeMobileConfig(t *testing.T) {
	w := httptest.NewRecorder()
	if err := testSettings().ServeMobileConfig(w, Account{Email: "info@example.com", Domain: "example.com", Parent: "example.com"}); err != nil {
		t.Fatal(err)
	}
	if w.Code != 200 || w.Header().Get("Content-Type") != MobileConfigType ||
		w.Header().Get("Content-Disposition") != `attachment; filename="info@example.com.mobileconfig"` {
		t.Errorf("%d %v", w.Code, w.Header())
	}
	readPlist(t, w.Body.Bytes())
	none := httptest.NewRecorder()
	if err := (Settings{Host: "h.example"}).ServeMobileConfig(none, Account{Email: "a@example.com", Domain: "example.com", Parent: "example.com"}); err == nil || none.Body.Len() > 0 || len(none.Header()) > 0 {
		t.Errorf("without listeners: %v, wrote %d bytes", err, none.Body.Len())
	}
	if got := safeFileName(`a"b\c/d@x.y`); got != "a_b_c_d@x.y" {
		t.Errorf("file name %q", got)
	}
}
