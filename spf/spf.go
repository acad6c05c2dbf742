// Package spf is sender authentication of inbound mail: SPF (RFC 7208, this
// file), DKIM verification and DMARC (authcheck.go), the one
// Authentication-Results header they produce (arheader.go), and the DNS
// resolver they share. It also renders the SPF record every local domain
// should publish.
//
// SPF evaluation is done by blitiri.com.ar/go/spf (chasquid's and maddy's
// library: every mechanism and modifier, macros, the 10-lookup and 2-void-
// lookup limits of section 4.6.4), always with an explicit resolver so that
// tests can serve their own zones (package dnstest).
package spf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	libspf "blitiri.com.ar/go/spf"
)

// Result is an SPF result (RFC 7208 section 2.6); its string is the word
// used in Authentication-Results.
type Result = libspf.Result

// The results.
const (
	None      = libspf.None
	Neutral   = libspf.Neutral
	Pass      = libspf.Pass
	Fail      = libspf.Fail
	SoftFail  = libspf.SoftFail
	TempError = libspf.TempError
	PermError = libspf.PermError
)

// Resolver is what evaluation looks up. *net.Resolver implements it.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

var _ Resolver = (*net.Resolver)(nil)

// NewResolver returns a resolver that asks the DNS server at addr
// ("host:port", port 53 if omitted), or the system's resolver when addr is
// empty.
func NewResolver(addr string) *net.Resolver {
	if addr == "" {
		return net.DefaultResolver
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), "53")
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			d := net.Dialer{Timeout: 5 * time.Second}
			return d.DialContext(ctx, network, addr)
		},
	}
}

// Transient wraps r so that every failed lookup other than "no such
// name" is a temporary *net.DNSError: an unreachable resolver, a refused
// query or a cancelled context is a reason to try again later (temperror),
// never a verdict (permerror).
func Transient(r Resolver) Resolver {
	if t, ok := r.(transient); ok {
		return t
	}
	return transient{r}
}

type transient struct{ r Resolver }

func (t transient) LookupTXT(ctx context.Context, name string) ([]string, error) {
	v, err := t.r.LookupTXT(ctx, name)
	return v, tempErr(err, name)
}

func (t transient) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	v, err := t.r.LookupMX(ctx, name)
	return v, tempErr(err, name)
}

func (t transient) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	v, err := t.r.LookupIPAddr(ctx, host)
	return v, tempErr(err, host)
}

func (t transient) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	v, err := t.r.LookupAddr(ctx, addr)
	return v, tempErr(err, addr)
}

func tempErr(err error, name string) error {
	if err == nil {
		return nil
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		if de.IsNotFound || de.IsTemporary || de.IsTimeout {
			return de
		}
		c := *de
		c.IsTemporary = true
		return &c
	}
	return &net.DNSError{Err: err.Error(), Name: name, IsTemporary: true}
}

// Identity is what was checked: the MAIL FROM address, or for the null
// sender the HELO name (RFC 7208 section 2.4).
type Identity struct {
	Helo     bool   // true: the HELO identity was checked
	Sender   string // the MAIL FROM address, or postmaster@HELO
	Domain   string // the domain whose policy was evaluated
	HeloName string
}

// Check evaluates the SPF policy of mailFrom's domain (or, when mailFrom is
// "", of the HELO name) for a client at ip. Any DNS failure gives
// TempError; err explains a TempError or PermError (and may be set with
// other results, for the log).
func Check(ctx context.Context, r Resolver, ip net.IP, helo, mailFrom string) (Result, Identity, error) {
	id := Identity{Sender: mailFrom, HeloName: helo}
	if at := strings.LastIndexByte(mailFrom, '@'); at >= 0 && mailFrom != "" {
		id.Domain = mailFrom[at+1:]
	} else {
		id.Helo = true
		id.Domain = helo
		id.Sender = "postmaster@" + helo
	}
	if ip == nil || ip.To16() == nil {
		return None, id, fmt.Errorf("spf: no client address")
	}
	if !ValidDomain(id.Domain) {
		// A HELO that is an address literal or not a name at all: there
		// is no policy to look up (RFC 7208 section 4.3).
		return None, id, fmt.Errorf("spf: %q is not a domain name", id.Domain)
	}
	res, err := libspf.CheckHostWithSender(ip, helo, id.Sender,
		libspf.WithResolver(Transient(r)), libspf.WithContext(ctx))
	if res == TempError && err == nil {
		err = fmt.Errorf("spf: temporary DNS failure")
	}
	return res, id, err
}

// ValidDomain reports whether s is a syntactically valid domain name with
// at least two labels (no address literals, no IP addresses).
func ValidDomain(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if len(s) == 0 || len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Sender describes where this server's outgoing mail leaves from, to build
// the SPF record every local domain publishes.
type Sender struct {
	// Hostname is this server's host name; named with "a:" when no
	// addresses are given.
	Hostname string
	// IPv4 and IPv6 are this server's public addresses.
	IPv4, IPv6 []string
	// SmartHost is the host outgoing mail is relayed through ("host" or
	// "host:port"; "" = none). With a smart host the record names it
	// (or Include, when set) instead of this server.
	SmartHost string
	// Include are extra domains whose SPF policy is included (for example
	// a relay provider's "_spf.provider.example").
	Include []string
}

// Record returns the SPF TXT record value for s, ending in "-all".
func Record(s Sender) string {
	terms := []string{"v=spf1"}
	if host := smartHostName(s.SmartHost); host != "" {
		if len(s.Include) == 0 {
			if ip, err := netip.ParseAddr(host); err == nil && ip.Is4() {
				terms = append(terms, "ip4:"+ip.String())
			} else if err == nil {
				terms = append(terms, "ip6:"+ip.String())
			} else {
				terms = append(terms, "a:"+host)
			}
		}
	} else {
		for _, a := range s.IPv4 {
			terms = append(terms, "ip4:"+a)
		}
		for _, a := range s.IPv6 {
			terms = append(terms, "ip6:"+a)
		}
		if len(s.IPv4)+len(s.IPv6) == 0 {
			terms = append(terms, "a:"+strings.TrimSuffix(s.Hostname, "."))
		}
	}
	for _, d := range s.Include {
		terms = append(terms, "include:"+strings.TrimSuffix(d, "."))
	}
	return strings.Join(append(terms, "-all"), " ")
}

func smartHostName(hp string) string {
	if hp == "" {
		return ""
	}
	if h, _, err := net.SplitHostPort(hp); err == nil {
		return h
	}
	return strings.TrimSuffix(hp, ".")
}
