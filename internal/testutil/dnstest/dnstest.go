// Package dnstest runs DNS zones written as zone files on a local
// go-mockdns server, for tests of everything that looks things up in DNS
// (SPF, DKIM and DMARC checks, DNS blocklists, "yubin dns check").
//
// Zone files use the usual master-file syntax (parsed by miekg/dns), so the
// output of "yubin dns records" can be served as it is. One extension: a
// line "$SERVFAIL name" makes every lookup of that name fail with SERVFAIL
// (a temporary error). Silent is a server that never answers (a timeout).
package dnstest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/foxcpp/go-mockdns"
	"github.com/miekg/dns"
)

// ErrServFail is what a $SERVFAIL name fails with (the server answers
// SERVFAIL; a client sees a temporary *net.DNSError).
var ErrServFail = &net.DNSError{Err: "server failure (test zone)", IsTemporary: true}

// Parse reads a zone file. Relative names are relative to origin ("" = the
// root).
func Parse(r io.Reader, origin string) (map[string]mockdns.Zone, error) {
	zones := map[string]mockdns.Zone{}
	var body strings.Builder
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) == 2 && strings.EqualFold(f[0], "$SERVFAIL") {
			name := fqdn(f[1], origin)
			z := zones[name]
			z.Err = ErrServFail
			zones[name] = z
			body.WriteString("\n") // keep line numbers
			continue
		}
		body.WriteString(line)
		body.WriteString("\n")
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	zp := dns.NewZoneParser(strings.NewReader(body.String()), dns.Fqdn(origin), "")
	zp.SetDefaultTTL(3600)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		name := strings.ToLower(rr.Header().Name)
		z := zones[name]
		switch rr := rr.(type) {
		case *dns.A:
			z.A = append(z.A, rr.A.String())
		case *dns.AAAA:
			z.AAAA = append(z.AAAA, rr.AAAA.String())
		case *dns.TXT:
			z.TXT = append(z.TXT, strings.Join(rr.Txt, ""))
		case *dns.MX:
			z.MX = append(z.MX, net.MX{Host: rr.Mx, Pref: rr.Preference})
		case *dns.CNAME:
			z.CNAME = rr.Target
		case *dns.SRV:
			z.SRV = append(z.SRV, net.SRV{Target: rr.Target, Port: rr.Port, Priority: rr.Priority, Weight: rr.Weight})
		case *dns.PTR:
			z.PTR = append(z.PTR, rr.Ptr)
		case *dns.NS:
			z.NS = append(z.NS, net.NS{Host: rr.Ns})
		default:
			return nil, fmt.Errorf("dnstest: record type %s not supported: %s", dns.TypeToString[rr.Header().Rrtype], rr)
		}
		zones[name] = z
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("dnstest: %w", err)
	}
	return zones, nil
}

// Load reads the zone files at paths into one set of zones.
func Load(paths ...string) (map[string]mockdns.Zone, error) {
	all := map[string]mockdns.Zone{}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		zones, err := Parse(f, "")
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		for name, z := range zones {
			all[name] = merge(all[name], z)
		}
	}
	return all, nil
}

func merge(a, b mockdns.Zone) mockdns.Zone {
	if b.Err != nil {
		a.Err = b.Err
	}
	if b.CNAME != "" {
		a.CNAME = b.CNAME
	}
	a.A = append(a.A, b.A...)
	a.AAAA = append(a.AAAA, b.AAAA...)
	a.TXT = append(a.TXT, b.TXT...)
	a.MX = append(a.MX, b.MX...)
	a.SRV = append(a.SRV, b.SRV...)
	a.PTR = append(a.PTR, b.PTR...)
	a.NS = append(a.NS, b.NS...)
	return a
}

func fqdn(name, origin string) string {
	name = strings.ToLower(name)
	if strings.HasSuffix(name, ".") {
		return name
	}
	if origin == "" || origin == "." {
		return name + "."
	}
	return name + "." + strings.ToLower(dns.Fqdn(origin))
}

// Server is a DNS server on 127.0.0.1 serving zones, closed when the test
// ends.
type Server struct {
	*mockdns.Server
}

// NewServer starts a server for zones.
func NewServer(t testing.TB, zones map[string]mockdns.Zone) *Server {
	t.Helper()
	s, err := mockdns.NewServerWithLogger(zones, logger{t}, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &Server{s}
}

// NewServerFromFiles starts a server for the zone files at paths.
func NewServerFromFiles(t testing.TB, paths ...string) *Server {
	t.Helper()
	zones, err := Load(paths...)
	if err != nil {
		t.Fatal(err)
	}
	return NewServer(t, zones)
}

// Addr is the server's "127.0.0.1:port" (UDP and TCP).
func (s *Server) Addr() string { return s.LocalAddr().String() }

type logger struct{ t testing.TB }

// Printf keeps the test log readable: the server traces every query, and
// SERVFAIL answers are on purpose here.
func (l logger) Printf(f string, args ...any) {
	if strings.HasPrefix(f, "DNS TRACE") || strings.HasPrefix(f, "lookup error") {
		return
	}
	l.t.Logf("mockdns: "+f, args...)
}

// Silent returns the "127.0.0.1:port" of a DNS server that never answers:
// every query to it times out, as with a name server that is down. It is
// closed when the test ends.
func Silent(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}
