package autoconfig

import (
	"encoding/xml"
	"net"
	"net/http"
	"strings"

	"yubin/internal/address"
)

// ClientConfig is Thunderbird's autoconfig document, version 1.1
// (https://wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat).
type ClientConfig struct {
	XMLName  xml.Name      `xml:"clientConfig"`
	Version  string        `xml:"version,attr"`
	Provider EmailProvider `xml:"emailProvider"`
}

// EmailProvider is the clientConfig's one provider.
type EmailProvider struct {
	ID               string       `xml:"id,attr"`
	Domains          []string     `xml:"domain"`
	DisplayName      string       `xml:"displayName"`
	DisplayShortName string       `xml:"displayShortName"`
	Incoming         []MailServer `xml:"incomingServer"`
	Outgoing         []MailServer `xml:"outgoingServer"`
}

// MailServer is an incomingServer or outgoingServer element.
type MailServer struct {
	Type           string `xml:"type,attr"` // imap, pop3, smtp
	Hostname       string `xml:"hostname"`
	Port           int    `xml:"port"`
	SocketType     string `xml:"socketType"` // SSL, STARTTLS
	Authentication string `xml:"authentication"`
	Username       string `xml:"username"`
}

// Thunderbird returns the clientConfig for the addresses of domain, whose
// accounts are on parent (domain itself for a parent domain). The user
// name is a placeholder Thunderbird fills in with what the user typed:
// the full address, or on a child domain the same local part at the
// parent, which is the account that logs in.
func (s Settings) Thunderbird(domain, parent string) ClientConfig {
	user := "%EMAILADDRESS%"
	if parent != domain {
		user = "%EMAILLOCALPART%@" + parent
	}
	server := func(typ string, sv Server) MailServer {
		return MailServer{Type: typ, Hostname: s.Host, Port: sv.Port, SocketType: sv.Socket,
			Authentication: "password-cleartext", Username: user}
	}
	p := EmailProvider{ID: domain, Domains: []string{domain}, DisplayName: domain + " (Yubin)", DisplayShortName: domain}
	for _, sv := range s.IMAP {
		p.Incoming = append(p.Incoming, server("imap", sv))
	}
	for _, sv := range s.POP3 {
		p.Incoming = append(p.Incoming, server("pop3", sv))
	}
	for _, sv := range s.SMTP {
		p.Outgoing = append(p.Outgoing, server("smtp", sv))
	}
	return ClientConfig{Version: "1.1", Provider: p}
}

// thunderbird answers GET /mail/config-v1.1.xml?emailaddress=ADDR (and the
// .well-known path). Without emailaddress the domain is the request's
// host name, less an "autoconfig." in front.
func (h *Handler) thunderbird(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var domain, parent string
	if email := r.URL.Query().Get("emailaddress"); email != "" {
		a, err := h.Account(r.Context(), email)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		domain, parent = a.Domain, a.Parent
	} else {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		d, err := address.ParseDomain(strings.TrimPrefix(strings.ToLower(host), "autoconfig."))
		if err != nil {
			h.fail(w, r, badRequest{err})
			return
		}
		p, err := h.lookup(r.Context(), d)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		domain, parent = d, p
	}
	writeXML(w, h.s.Thunderbird(domain, parent))
}

// writeXML writes v as an XML document.
func writeXML(w http.ResponseWriter, v any) {
	b, err := xml.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write([]byte(xml.Header))
	w.Write(b)
	w.Write([]byte("\n"))
}
