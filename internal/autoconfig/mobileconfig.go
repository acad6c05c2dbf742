package autoconfig

import (
	"bytes"
	"crypto/sha1"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// MobileConfigType is the media type of an Apple configuration profile.
const MobileConfigType = "application/x-apple-aspen-config"

// MobileConfig returns an Apple configuration profile (a property list)
// with one com.apple.mail.managed payload: the IMAP and SMTP servers of s
// over TLS (implicit TLS when its listener is on), a's address and login,
// and no password (iOS and macOS ask for it when the profile is
// installed). The profile's identifiers are derived from the host and the
// address, so installing a new download replaces the old one.
func (s Settings) MobileConfig(a Account) ([]byte, error) {
	if len(s.IMAP) == 0 || len(s.SMTP) == 0 {
		return nil, errors.New("a profile needs IMAP and submission listeners, and one of them is off")
	}
	if a.Email == "" || a.Parent == "" {
		return nil, errors.New("a profile needs an address and its account")
	}
	in, out := s.IMAP[0], s.SMTP[0]
	login := a.Login()
	id := "yubin." + reverseDNS(s.Host) + "." + a.Email
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n")
	b.WriteString(`<plist version="1.0">` + "\n")
	p := plist{&b}
	p.open("dict", 0)
	p.key("PayloadContent", 1)
	p.open("array", 1)
	p.open("dict", 2)
	for _, kv := range []struct {
		k string
		v any
	}{
		{"EmailAccountDescription", a.Email},
		{"EmailAccountName", a.Email},
		{"EmailAccountType", "EmailTypeIMAP"},
		{"EmailAddress", a.Email},
		{"IncomingMailServerAuthentication", "EmailAuthPassword"},
		{"IncomingMailServerHostName", s.Host},
		{"IncomingMailServerPortNumber", in.Port},
		{"IncomingMailServerUseSSL", true},
		{"IncomingMailServerUsername", login},
		{"OutgoingMailServerAuthentication", "EmailAuthPassword"},
		{"OutgoingMailServerHostName", s.Host},
		{"OutgoingMailServerPortNumber", out.Port},
		{"OutgoingMailServerUseSSL", true},
		{"OutgoingMailServerUsername", login},
		{"OutgoingPasswordSameAsIncomingPassword", true},
		{"PayloadDescription", "Mail account " + a.Email},
		{"PayloadDisplayName", a.Email},
		{"PayloadIdentifier", id + ".mail"},
		{"PayloadType", "com.apple.mail.managed"},
		{"PayloadUUID", nameUUID(id + ".mail")},
		{"PayloadVersion", 1},
		{"PreventAppSheet", false},
		{"PreventMove", false},
		{"SMIMEEnabled", false},
	} {
		p.key(kv.k, 3)
		p.value(kv.v, 3)
	}
	p.close("dict", 2)
	p.close("array", 1)
	for _, kv := range []struct {
		k string
		v any
	}{
		{"PayloadDescription", "Sets up the mail account " + a.Email + " on " + s.Host + " (IMAP and SMTP over TLS). The password is asked for when it is installed."},
		{"PayloadDisplayName", "Mail: " + a.Email},
		{"PayloadIdentifier", id},
		{"PayloadOrganization", a.Domain},
		{"PayloadRemovalDisallowed", false},
		{"PayloadType", "Configuration"},
		{"PayloadUUID", nameUUID(id)},
		{"PayloadVersion", 1},
	} {
		p.key(kv.k, 1)
		p.value(kv.v, 1)
	}
	p.close("dict", 0)
	b.WriteString("</plist>\n")
	return b.Bytes(), nil
}

// ServeMobileConfig writes the profile for a as a download. When there
// is none to make (MobileConfig's error) it writes nothing and returns
// the error, for the caller to answer.
func (s Settings) ServeMobileConfig(w http.ResponseWriter, a Account) error {
	body, err := s.MobileConfig(a)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", MobileConfigType)
	w.Header().Set("Content-Disposition", `attachment; filename="`+safeFileName(a.Email)+`.mobileconfig"`)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, err = w.Write(body)
	return err
}

// safeFileName keeps the characters of an address that need no quoting.
func safeFileName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_', r == '@', r == '+':
			return r
		}
		return '_'
	}, s)
}

// plist writes property list elements, indented with tabs.
type plist struct{ b *bytes.Buffer }

func (p plist) indent(n int) { p.b.WriteString(strings.Repeat("\t", n)) }

func (p plist) open(tag string, n int) {
	p.indent(n)
	p.b.WriteString("<" + tag + ">\n")
}

func (p plist) close(tag string, n int) {
	p.indent(n)
	p.b.WriteString("</" + tag + ">\n")
}

func (p plist) key(k string, n int) {
	p.indent(n)
	p.b.WriteString("<key>")
	xml.EscapeText(p.b, []byte(k))
	p.b.WriteString("</key>\n")
}

func (p plist) value(v any, n int) {
	p.indent(n)
	switch v := v.(type) {
	case string:
		p.b.WriteString("<string>")
		xml.EscapeText(p.b, []byte(v))
		p.b.WriteString("</string>")
	case int:
		fmt.Fprintf(p.b, "<integer>%d</integer>", v)
	case bool:
		if v {
			p.b.WriteString("<true/>")
		} else {
			p.b.WriteString("<false/>")
		}
	default:
		panic(fmt.Sprintf("plist: value of type %T", v))
	}
	p.b.WriteString("\n")
}

// reverseDNS turns mail.example.com into com.example.mail.
func reverseDNS(host string) string {
	l := strings.Split(host, ".")
	for i, j := 0, len(l)-1; i < j; i, j = i+1, j-1 {
		l[i], l[j] = l[j], l[i]
	}
	return strings.Join(l, ".")
}

// nameUUID is a name-based UUID (version 5 layout, SHA-1 of the name):
// the same name, the same UUID.
func nameUUID(name string) string {
	h := sha1.Sum([]byte("yubin mobileconfig\x00" + name))
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%X-%X-%X-%X-%X", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}
