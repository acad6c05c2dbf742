package mailheader

import (
	"errors"
	"io"
	"mime"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
)

// parseAddressList returns the addresses of an address field's value
// (RFC 5322 3.4, with the obsolete forms mail still carries). A group is
// listed the way IMAP's ENVELOPE lists it (RFC 3501 7.4.2): a marker with
// the group's name in Mailbox and neither Name nor Host, its members, and
// a marker with nothing at all. An address with a source route
// ("<@relay:user@host>") keeps the route in Route. A mailbox that does not
// parse, or has no domain, is left out.
func parseAddressList(v string) []Address {
	if strings.ContainsAny(v, "\r\n") { // unfold
		v = strings.NewReplacer("\r", "", "\n", "").Replace(v)
	}
	var out []Address
	inGroup := false
	start := 0
	mailbox := func(end int) {
		if a, ok := parseMailbox(v[start:end]); ok {
			out = append(out, a)
		}
	}
	depth := 0 // comment nesting
	quoted, angle, literal := false, false, false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\' && (quoted || depth > 0):
			i++ // quoted-pair
		case quoted:
			quoted = c != '"'
		case depth > 0:
			switch c {
			case '(':
				depth++
			case ')':
				depth--
			}
		case literal:
			literal = c != ']'
		case c == '"':
			quoted = true
		case c == '(':
			depth = 1
		case c == '[':
			literal = true
		case angle:
			angle = c != '>'
		case c == '<':
			angle = true
		case c == ',':
			mailbox(i)
			start = i + 1
		case c == ':' && !inGroup:
			name := phrase(v[start:i])
			if name == "" {
				// Not a group's display name: part of a (broken)
				// address, which the mailbox parser judges.
				continue
			}
			out = append(out, Address{Mailbox: name})
			inGroup = true
			start = i + 1
		case c == ';':
			mailbox(i)
			start = i + 1
			if inGroup {
				out = append(out, Address{})
				inGroup = false
			}
		}
	}
	mailbox(len(v))
	if inGroup {
		out = append(out, Address{}) // a group left open
	}
	return out
}

// IsGroupStart and IsGroupEnd tell the group markers of an address list
// from mailboxes (which always have a Host).
func (a Address) IsGroupStart() bool { return a.Host == "" && a.Mailbox != "" }
func (a Address) IsGroupEnd() bool   { return a.Host == "" && a.Mailbox == "" }

// wordDecoder decodes encoded words (RFC 2047) in the charsets
// go-message knows once its charset package is imported.
var wordDecoder = mime.WordDecoder{CharsetReader: func(charset string, r io.Reader) (io.Reader, error) {
	if message.CharsetReader == nil {
		return nil, errors.New("unknown charset " + charset)
	}
	return message.CharsetReader(charset, r)
}}

// parseMailbox parses one mailbox (name-addr or addr-spec, a comment
// after an addr-spec as its name), with an obsolete source route.
func parseMailbox(s string) (Address, bool) {
	if strings.TrimSpace(s) == "" {
		return Address{}, false
	}
	var route string
	if lt := strings.IndexByte(s, '<'); lt >= 0 {
		rest := strings.TrimLeft(s[lt+1:], " \t\r\n")
		if strings.HasPrefix(rest, "@") {
			if colon := strings.IndexByte(rest, ':'); colon >= 0 && !strings.ContainsAny(rest[:colon], "<>\"") {
				route = strings.Map(func(r rune) rune {
					if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
						return -1
					}
					return r
				}, rest[:colon])
				s = s[:lt+1] + rest[colon+1:]
			}
		}
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return Address{}, false
	}
	at := strings.LastIndexByte(a.Address, '@')
	if at <= 0 || at == len(a.Address)-1 {
		return Address{}, false
	}
	return Address{Name: a.Name, Route: route, Mailbox: a.Address[:at], Host: a.Address[at+1:]}, true
}

// phrase returns a display name (RFC 5322 phrase): its words, unquoted,
// joined by single spaces, encoded words decoded; "" if s is no phrase.
func phrase(s string) string {
	var words []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '(':
			depth := 0
			for ; i < len(s); i++ {
				switch s[i] {
				case '\\':
					i++
				case '(':
					depth++
				case ')':
					depth--
				}
				if depth == 0 {
					break
				}
			}
			i++
		case c == '"':
			var b strings.Builder
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				if s[i] != '\r' && s[i] != '\n' {
					b.WriteByte(s[i])
				}
			}
			i++
			words = append(words, b.String())
		case strings.IndexByte("<>@,;:[]\\)", c) >= 0:
			return "" // not a phrase
		default:
			j := i
			for j < len(s) && strings.IndexByte(" \t\r\n()<>@,;:\\\"[]", s[j]) < 0 {
				j++
			}
			w := s[i:j]
			if d, err := wordDecoder.DecodeHeader(w); err == nil {
				w = d
			}
			words = append(words, w)
			i = j
		}
	}
	return strings.Join(words, " ")
}
