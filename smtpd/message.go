package smtpd

import (
	"bytes"
	"strings"
	"time"
)

// receivedInfo is what goes into the Received: trace header.
type receivedInfo struct {
	Helo     string // HELO/EHLO argument, as the client gave it
	IP       string // client IP (no reverse DNS lookup is done)
	Hostname string // our host name
	TLS      bool
	Auth     bool
	QueueID  string
	For      string // the recipient, when there is exactly one
	Date     time.Time
}

// receivedHeader returns the Received: header (RFC 5321 section 4.4,
// protocol names from RFC 3848), folded, ending in CRLF.
func receivedHeader(r receivedInfo) []byte {
	proto := "ESMTP"
	if r.TLS {
		proto += "S"
	}
	if r.Auth {
		proto += "A"
	}
	var b bytes.Buffer
	b.WriteString("Received: from ")
	b.WriteString(headerToken(r.Helo, "unknown"))
	b.WriteString(" ([")
	if strings.Contains(r.IP, ":") {
		b.WriteString("IPv6:") // RFC 5321 address literal
	}
	b.WriteString(headerToken(r.IP, "unknown"))
	b.WriteString("])\r\n\tby ")
	b.WriteString(headerToken(r.Hostname, "localhost"))
	b.WriteString(" with ")
	b.WriteString(proto)
	b.WriteString(" id ")
	b.WriteString(headerToken(r.QueueID, "unknown"))
	if r.For != "" {
		b.WriteString("\r\n\tfor <")
		b.WriteString(headerToken(r.For, "unknown"))
		b.WriteString(">")
	}
	b.WriteString(";\r\n\t")
	b.WriteString(r.Date.Format(time.RFC1123Z))
	b.WriteString("\r\n")
	return b.Bytes()
}

// headerToken makes a client-supplied word safe inside a header: at most
// 255 bytes of printable ASCII without the characters that structure a
// Received header (parentheses, angle brackets, semicolons, quotes,
// backslashes, spaces); anything else becomes '?'.
func headerToken(s, empty string) string {
	if s == "" {
		return empty
	}
	if len(s) > 255 {
		s = s[:255]
	}
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`()<>;"\`, r) {
			return '?'
		}
		return r
	}, s)
}
