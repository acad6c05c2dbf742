package autoconfig

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Outlook's autodiscover (the POX "2006" protocol, [MS-OXDSCLI]).
const (
	RequestNS        = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
	ResponseNS       = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
	OutlookSchema    = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
	MaxRequestBody   = 16 << 10 // a real request is a few hundred bytes
	maxRequestLength = 320      // an address, with room for blanks around it
)

// AutodiscoverRequest is the part of Outlook's request that is read.
type AutodiscoverRequest struct {
	XMLName xml.Name `xml:"Autodiscover"`
	Request struct {
		EMailAddress             string `xml:"EMailAddress"`
		AcceptableResponseSchema string `xml:"AcceptableResponseSchema"`
	} `xml:"Request"`
}

// ParseAutodiscover reads an autodiscover request from r (at most
// MaxRequestBody bytes; more is an error) and returns the address it asks
// about. Only the Outlook response schema can be answered: a request for
// another (mobilesync, Exchange ActiveSync) is an error, as is one without
// an address. The address itself is not checked here.
func ParseAutodiscover(r io.Reader) (string, error) {
	body, err := io.ReadAll(io.LimitReader(r, MaxRequestBody+1))
	if err != nil {
		return "", fmt.Errorf("reading the request: %w", err)
	}
	if len(body) > MaxRequestBody {
		return "", fmt.Errorf("request larger than %d bytes", MaxRequestBody)
	}
	var req AutodiscoverRequest
	if err := xml.Unmarshal(body, &req); err != nil {
		return "", fmt.Errorf("malformed autodiscover request: %w", err)
	}
	if ns := req.XMLName.Space; ns != "" && ns != RequestNS {
		return "", fmt.Errorf("request in namespace %q, want %q", ns, RequestNS)
	}
	if s := strings.TrimSpace(req.Request.AcceptableResponseSchema); s != "" && !strings.EqualFold(s, OutlookSchema) {
		return "", fmt.Errorf("response schema %q is not served (only %s)", s, OutlookSchema)
	}
	email := strings.TrimSpace(req.Request.EMailAddress)
	if email == "" {
		return "", errors.New("request without EMailAddress")
	}
	if len(email) > maxRequestLength {
		return "", fmt.Errorf("EMailAddress longer than %d bytes", maxRequestLength)
	}
	return email, nil
}

// AutodiscoverResponse is the answer, in the Outlook 2006a schema.
type AutodiscoverResponse struct {
	XMLName  xml.Name        `xml:"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006 Autodiscover"`
	Response OutlookResponse `xml:"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a Response"`
}

// OutlookResponse is the Response element.
type OutlookResponse struct {
	User    OutlookUser    `xml:"User"`
	Account OutlookAccount `xml:"Account"`
}

// OutlookUser names the user.
type OutlookUser struct {
	DisplayName string `xml:"DisplayName"`
}

// OutlookAccount is an e-mail account with its protocols.
type OutlookAccount struct {
	AccountType string            `xml:"AccountType"` // email
	Action      string            `xml:"Action"`      // settings
	Protocols   []OutlookProtocol `xml:"Protocol"`
}

// OutlookProtocol is one server: IMAP, POP3 or SMTP. Encryption (SSL or
// TLS, the latter meaning STARTTLS) overrides SSL for clients that know it.
type OutlookProtocol struct {
	Type           string `xml:"Type"`
	Server         string `xml:"Server"`
	Port           int    `xml:"Port"`
	DomainRequired string `xml:"DomainRequired"`
	LoginName      string `xml:"LoginName"`
	SPA            string `xml:"SPA"`
	SSL            string `xml:"SSL"`
	Encryption     string `xml:"Encryption"`
	AuthRequired   string `xml:"AuthRequired"`
	UsePOPAuth     string `xml:"UsePOPAuth,omitempty"`
	SMTPLast       string `xml:"SMTPLast,omitempty"`
}

// Autodiscover returns the answer for a: one protocol block each for
// IMAP, POP3 and SMTP, with the preferred port (implicit TLS when its
// listener is on).
func (s Settings) Autodiscover(a Account) AutodiscoverResponse {
	acct := OutlookAccount{AccountType: "email", Action: "settings"}
	for _, p := range []struct {
		typ     string
		servers []Server
	}{{"IMAP", s.IMAP}, {"POP3", s.POP3}, {"SMTP", s.SMTP}} {
		if len(p.servers) == 0 {
			continue
		}
		sv := p.servers[0]
		enc := "SSL"
		if sv.Socket == STARTTLS {
			enc = "TLS"
		}
		proto := OutlookProtocol{Type: p.typ, Server: s.Host, Port: sv.Port, DomainRequired: "off",
			LoginName: a.Login(), SPA: "off", SSL: "on", Encryption: enc, AuthRequired: "on"}
		if p.typ == "SMTP" {
			proto.UsePOPAuth, proto.SMTPLast = "on", "off"
		}
		acct.Protocols = append(acct.Protocols, proto)
	}
	return AutodiscoverResponse{Response: OutlookResponse{User: OutlookUser{DisplayName: a.Email}, Account: acct}}
}

// autodiscover answers POST /autodiscover/autodiscover.xml.
func (h *Handler) autodiscover(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed: autodiscover takes a POST", http.StatusMethodNotAllowed)
		return
	}
	email, err := ParseAutodiscover(http.MaxBytesReader(w, r.Body, MaxRequestBody+1))
	if err != nil {
		h.fail(w, r, badRequest{err})
		return
	}
	a, err := h.Account(r.Context(), email)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeXML(w, h.s.Autodiscover(a))
}
