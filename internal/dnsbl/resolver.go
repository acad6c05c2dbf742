package dnsbl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Resolver is what a lookup asks. *net.Resolver implements it; its answers
// carry no TTL, so they are cached for DefaultTTL (listed) and
// DefaultNegativeTTL (not listed). A resolver that also implements
// TTLResolver (the one NewResolver returns) has its answers cached for
// their own TTL.
type Resolver interface {
	LookupIP(ctx context.Context, network, host string) ([]net.IP, error)
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

var _ Resolver = (*net.Resolver)(nil)

// TTLResolver answers A queries with the time the answer may be cached.
type TTLResolver interface {
	Resolver
	// LookupA returns the IPv4 addresses of name and the answer's TTL. A
	// name that does not exist, or has no A record, is no addresses, a nil
	// error and the negative-caching TTL (RFC 2308: the SOA's). Any other
	// failure is an error.
	LookupA(ctx context.Context, name string) ([]netip.Addr, time.Duration, error)
}

// TTLs for answers that do not say (a *net.Resolver, a negative answer
// without a SOA record).
const (
	DefaultTTL         = 5 * time.Minute
	DefaultNegativeTTL = 5 * time.Minute
)

// NewResolver returns a resolver that asks the DNS server at addr
// ("host:port", port 53 if omitted) and knows the TTL of its answers. With
// addr empty it asks the name servers of /etc/resolv.conf, or, when that
// cannot be read, Go's own resolver (net.DefaultResolver, no TTLs).
func NewResolver(addr string) Resolver {
	var servers []string
	if addr != "" {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			addr = net.JoinHostPort(strings.Trim(addr, "[]"), "53")
		}
		servers = []string{addr}
	} else if cc, err := dns.ClientConfigFromFile("/etc/resolv.conf"); err == nil {
		for _, s := range cc.Servers {
			servers = append(servers, net.JoinHostPort(s, cc.Port))
		}
	}
	if len(servers) == 0 {
		return net.DefaultResolver
	}
	return &client{servers: servers}
}

// client is a stub resolver on miekg/dns that reads TTLs: it sends each
// query to the servers in turn (UDP, then TCP when the answer is
// truncated) until one answers.
type client struct {
	servers []string
}

func (c *client) LookupA(ctx context.Context, name string) ([]netip.Addr, time.Duration, error) {
	resp, err := c.exchange(ctx, name, dns.TypeA)
	if err != nil {
		return nil, 0, err
	}
	var addrs []netip.Addr
	ttl, ok := answerTTL(resp)
	for _, rr := range resp.Answer {
		if a, isA := rr.(*dns.A); isA {
			if ip, ok := netip.AddrFromSlice(a.A.To4()); ok {
				addrs = append(addrs, ip)
			}
		}
	}
	if len(addrs) == 0 || !ok {
		return nil, negativeTTL(resp), nil
	}
	return addrs, ttl, nil
}

func (c *client) LookupIP(ctx context.Context, network, host string) ([]net.IP, error) {
	if network != "ip4" {
		return nil, fmt.Errorf("dnsbl: LookupIP %s: only ip4", network)
	}
	addrs, _, err := c.LookupA(ctx, host)
	if err == nil && len(addrs) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	ips := make([]net.IP, len(addrs))
	for i, a := range addrs {
		ips[i] = a.AsSlice()
	}
	return ips, err
}

func (c *client) LookupTXT(ctx context.Context, name string) ([]string, error) {
	resp, err := c.exchange(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	var txts []string
	for _, rr := range resp.Answer {
		if t, ok := rr.(*dns.TXT); ok {
			txts = append(txts, unescape(strings.Join(t.Txt, "")))
		}
	}
	if len(txts) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return txts, nil
}

// exchange asks the servers in turn; an answer with NOERROR or NXDOMAIN
// ends it, anything else (no answer, SERVFAIL, REFUSED) tries the next.
func (c *client) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	q.RecursionDesired = true
	var last error
	for _, srv := range c.servers {
		resp, err := exchangeOne(ctx, q, srv)
		switch {
		case err != nil:
			last = err
		case resp.Rcode == dns.RcodeSuccess || resp.Rcode == dns.RcodeNameError:
			return resp, nil
		default:
			last = fmt.Errorf("server %s answered %s", srv, dns.RcodeToString[resp.Rcode])
		}
		if ctx.Err() != nil {
			break
		}
	}
	var ne net.Error
	return nil, &net.DNSError{Err: last.Error(), Name: name, Server: c.servers[0],
		IsTemporary: true, IsTimeout: errors.As(last, &ne) && ne.Timeout() || ctx.Err() != nil}
}

func exchangeOne(ctx context.Context, q *dns.Msg, srv string) (*dns.Msg, error) {
	resp, _, err := (&dns.Client{Net: "udp"}).ExchangeContext(ctx, q, srv)
	if err == nil && resp.Truncated {
		resp, _, err = (&dns.Client{Net: "tcp"}).ExchangeContext(ctx, q, srv)
	}
	return resp, err
}

// answerTTL is the smallest TTL in the answer section (a CNAME chain
// counts too); ok is false for an empty answer.
func answerTTL(m *dns.Msg) (time.Duration, bool) {
	if len(m.Answer) == 0 {
		return 0, false
	}
	ttl := m.Answer[0].Header().Ttl
	for _, rr := range m.Answer[1:] {
		ttl = min(ttl, rr.Header().Ttl)
	}
	return time.Duration(ttl) * time.Second, true
}

// negativeTTL is how long "no such name" may be cached (RFC 2308 section
// 5): the smaller of the SOA record's TTL and its MINIMUM field.
func negativeTTL(m *dns.Msg) time.Duration {
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return time.Duration(min(soa.Hdr.Ttl, soa.Minttl)) * time.Second
		}
	}
	return DefaultNegativeTTL
}

// unescape turns miekg/dns's presentation form of a TXT string back into
// its bytes: \DDD (decimal) and \X.
func unescape(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] != '\\' || i+1 == len(s):
			b.WriteByte(s[i])
		case i+3 < len(s) && isDigits(s[i+1:i+4]):
			n := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0')
			b.WriteByte(byte(n))
			i += 3
		default:
			b.WriteByte(s[i+1])
			i++
		}
	}
	return b.String()
}

func isDigits(s string) bool {
	return strings.Trim(s, "0123456789") == ""
}
