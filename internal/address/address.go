// Package address parses and normalises the mail addresses Yubin accepts:
// envelope paths from SMTP (Parse) and account names from the admin CLI
// (ParseAccount).
//
// It is deliberately strict in syntax, and generous in length only where
// real mail needs it (see MaxLocalPart). A local part may contain only the characters of
// an RFC 5322 dot-atom minus the routing characters '%', '!' and '@' (which
// old MTAs interpret as "relay this onward"), a domain must be a plain host
// name: no address literals, no trailing dot, no empty labels. Everything is
// lower-cased, so "Info@Example.COM" and "info@example.com" are the same
// mailbox.
package address

import (
	"errors"
	"fmt"
	"strings"
)

// Limits on what Parse accepts. RFC 5321 section 4.5.3.1 sets 64 octets
// for a local part and 256 for a path, but also says that "to the maximum
// extent possible, implementation techniques that impose no limits on the
// length of these objects should be used": envelope senders of mailing
// lists and bounce handling (VERP, BATV, SRS) often have local parts of 100
// characters and more, and other servers (Postfix among them) accept them.
// So a local part may have up to 256 octets; a domain stays within DNS's
// 253. Past these an address is refused with ErrTooLong.
const (
	MaxLocalPart = 256
	MaxDomain    = 253
	MaxAddress   = MaxLocalPart + 1 + MaxDomain
)

// Limits on account names (ParseAccount): RFC 5321's, so that every
// address Yubin hands out works with every other server.
const (
	MaxAccountLocalPart = 64
	MaxAccountAddress   = 254 // a path of 256 octets, "<" and ">" included
)

// ErrTooLong is what errors.Is finds in the error for an address over the
// limits above.
var ErrTooLong = errors.New("address too long")

// tooLong is an error that says which limit was passed and is ErrTooLong.
type tooLong string

func (e tooLong) Error() string        { return string(e) }
func (e tooLong) Is(target error) bool { return target == ErrTooLong }

// Address is a normalised (lower-case) mail address.
type Address struct {
	Local  string
	Domain string
}

// String returns "local@domain".
func (a Address) String() string { return a.Local + "@" + a.Domain }

// ErrRouting is returned (wrapped) for addresses that try to route mail
// through this server to somewhere else: the %-hack, bang paths, quoted
// local parts that hide an '@', address literals and trailing dots.
var ErrRouting = errors.New("address uses a routing form that is not accepted")

// Parse parses "local@domain" and returns it normalised. The error says what
// is wrong; errors.Is(err, ErrRouting) tells a relay trick from plain garbage,
// errors.Is(err, ErrTooLong) an address over the limits.
func Parse(s string) (Address, error) {
	if s == "" {
		return Address{}, errors.New("empty address")
	}
	if len(s) > MaxAddress {
		return Address{}, tooLong(fmt.Sprintf("address longer than %d characters", MaxAddress))
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return Address{}, fmt.Errorf("address %q has no @domain", s)
	}
	local, domain := s[:at], s[at+1:]
	if local == "" {
		return Address{}, fmt.Errorf("address %q has an empty local part", s)
	}
	if err := checkLocal(local); err != nil {
		return Address{}, fmt.Errorf("address %q: %w", s, err)
	}
	d, err := ParseDomain(domain)
	if err != nil {
		return Address{}, fmt.Errorf("address %q: %w", s, err)
	}
	return Address{Local: strings.ToLower(local), Domain: d}, nil
}

// ParseAccount is Parse for the name of a new account, within RFC 5321's
// limits (MaxAccountLocalPart, MaxAccountAddress).
func ParseAccount(s string) (Address, error) {
	a, err := Parse(s)
	if err != nil {
		return Address{}, err
	}
	if len(a.Local) > MaxAccountLocalPart {
		return Address{}, fmt.Errorf("address %q: %w", s, tooLong(fmt.Sprintf("an account's local part may have at most %d characters (RFC 5321)", MaxAccountLocalPart)))
	}
	if len(a.String()) > MaxAccountAddress {
		return Address{}, fmt.Errorf("address %q: %w", s, tooLong(fmt.Sprintf("an account's address may have at most %d characters (RFC 5321)", MaxAccountAddress)))
	}
	return a, nil
}

func checkLocal(local string) error {
	if len(local) > MaxLocalPart {
		return tooLong(fmt.Sprintf("local part longer than %d characters", MaxLocalPart))
	}
	if strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") || strings.Contains(local, "..") {
		return errors.New("local part has a leading, trailing or double dot")
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte(".-_+=#$&'*/?^`{|}~", c) >= 0:
		case c == '%' || c == '!' || c == '@' || c == '"':
			return fmt.Errorf("%w (%q in the local part)", ErrRouting, c)
		default:
			return fmt.Errorf("local part contains %q", c)
		}
	}
	return nil
}

// ParseDomain checks and lower-cases a host name used as a mail domain.
func ParseDomain(d string) (string, error) {
	if d == "" {
		return "", errors.New("empty domain")
	}
	if strings.HasPrefix(d, "[") {
		return "", fmt.Errorf("%w (address literal %s)", ErrRouting, d)
	}
	if strings.HasSuffix(d, ".") {
		return "", fmt.Errorf("%w (trailing dot in %q)", ErrRouting, d)
	}
	if len(d) > MaxDomain {
		return "", tooLong(fmt.Sprintf("domain longer than %d characters", MaxDomain))
	}
	d = strings.ToLower(d)
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return "", fmt.Errorf("domain %q is not fully qualified", d)
	}
	for _, l := range labels {
		if l == "" {
			return "", fmt.Errorf("domain %q has an empty label", d)
		}
		if len(l) > 63 {
			return "", fmt.Errorf("domain %q has a label longer than 63 characters", d)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "", fmt.Errorf("domain %q has a label starting or ending with '-'", d)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", fmt.Errorf("domain %q contains %q", d, c)
			}
		}
	}
	return d, nil
}
