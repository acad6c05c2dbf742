package dnsbl

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"yubin/internal/testutil"
	"yubin/internal/testutil/dnstest"
)

// The lists, as zone files. 127.0.0.2 is on both; 127.0.0.3 and .4 get
// error codes; 127.0.0.5 gets SERVFAIL; 2001:db8::1 is listed by nibbles.
const zones = `
2.0.0.127.zen.test.  A   127.0.0.2
2.0.0.127.zen.test.  A   127.0.0.4
2.0.0.127.zen.test.  TXT "https://zen.test/query/ip/127.0.0.2"
2.0.0.127.bl.test.   A   127.0.0.2
3.0.0.127.zen.test.  A   127.255.255.254
4.0.0.127.zen.test.  A   10.0.0.1
6.0.0.127.zen.test.  A   127.0.0.1
$SERVFAIL 5.0.0.127.zen.test.
1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.test. A 127.0.0.3

spam.test.dbl.test.          A 127.0.1.2
spam.test.dbl.test.          TXT "spam domain \007\013\010 see https://dbl.test/spam.test"
abused.clean.test.dbl.test.  A 127.0.1.102
evil.test.dbl.test.          A 127.0.1.255
`

var lists = Config{
	DNSBL: []Zone{{Name: "zen.test", Reject: true}, {Name: "BL.test."}},
	URIBL: []Zone{{Name: "dbl.test", Reject: true}},
}

func serve(t *testing.T) string {
	t.Helper()
	z, err := dnstest.Parse(strings.NewReader(zones), "")
	testutil.Must(t, err)
	return dnstest.NewServer(t, z).Addr()
}

// goResolver is Go's resolver asking addr.
func goResolver(addr string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
}

// Both kinds of resolver: ours (with TTLs) and Go's.
func resolvers(addr string) map[string]Resolver {
	return map[string]Resolver{"ttl": NewResolver(addr), "net": goResolver(addr)}
}

func TestCheckIP(t *testing.T) {
	addr := serve(t)
	zen := Hit{Zone: "zen.test", Reject: true, Query: "127.0.0.2", Answers: []string{"127.0.0.2", "127.0.0.4"}, Reason: "https://zen.test/query/ip/127.0.0.2"}
	bl := Hit{Zone: "bl.test", Query: "127.0.0.2", Answers: []string{"127.0.0.2"}}
	for name, r := range resolvers(addr) {
		t.Run(name, func(t *testing.T) {
			var log testutil.Buffer
			c := New(r, Config{DNSBL: lists.DNSBL, Log: slog.New(slog.NewTextHandler(&log, nil))})
			for _, tc := range []struct {
				ip   string
				want []Hit
			}{
				{"127.0.0.2", []Hit{zen, bl}},
				{"::ffff:127.0.0.2", []Hit{zen, bl}},
				{"2001:db8::1", []Hit{{Zone: "zen.test", Reject: true, Query: "2001:db8::1", Answers: []string{"127.0.0.3"}}}},
				{"127.0.0.9", nil}, // not listed
				{"127.0.0.3", nil}, // 127.255.255.254: refused, not listed
				{"127.0.0.4", nil}, // outside 127/8
				{"127.0.0.6", nil}, // 127.0.0.1: refused
				{"127.0.0.5", nil}, // SERVFAIL
			} {
				if got := c.CheckIP(t.Context(), netip.MustParseAddr(tc.ip)); !reflect.DeepEqual(got, tc.want) {
					t.Errorf("%s: got %#v, want %#v", tc.ip, got, tc.want)
				}
			}
			// A zone failing is logged once, not once per failed lookup.
			if n := strings.Count(log.String(), "zone lookup failed"); n != 1 {
				t.Errorf("%d warnings about failing lookups:\n%s", n, log.String())
			}
			// And answering again is logged.
			c.CheckIP(t.Context(), netip.MustParseAddr("127.0.0.9"))
			if !strings.Contains(log.String(), "zone answers again") {
				t.Errorf("log:\n%s", log.String())
			}
		})
	}
}

func TestReverse(t *testing.T) {
	for ip, want := range map[string]string{
		"192.0.2.99":                   "99.2.0.192",
		"::ffff:192.0.2.99":            "99.2.0.192",
		"2001:db8:1:2:3:4:567:89ab":    "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2", // RFC 5782 section 2.4
		"fe80::1ff:fe23:4567:890a":     "a.0.9.8.7.6.5.4.3.2.e.f.f.f.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f",
		"2001:db8::":                   "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2",
		"ffff:ffff:ffff:ffff::ffff:ff": "f.f.0.0.f.f.f.f.0.0.0.0.0.0.0.0.f.f.f.f.f.f.f.f.f.f.f.f.f.f.f.f",
	} {
		if got := Reverse(netip.MustParseAddr(ip)); got != want {
			t.Errorf("Reverse(%s) = %s, want %s", ip, got, want)
		}
	}
}

// A name server that does not answer: no listing, within the timeout.
func TestTimeout(t *testing.T) {
	for name, r := range resolvers(dnstest.Silent(t)) {
		t.Run(name, func(t *testing.T) {
			var log testutil.Buffer
			c := New(r, Config{DNSBL: lists.DNSBL, URIBL: lists.URIBL, Timeout: 100 * time.Millisecond,
				Log: slog.New(slog.NewTextHandler(&log, nil))})
			start := time.Now()
			if hits := c.CheckIP(t.Context(), netip.MustParseAddr("127.0.0.2")); hits != nil {
				t.Fatalf("hits %+v from a silent server", hits)
			}
			if hits := c.CheckHosts(t.Context(), []string{"spam.test"}); hits != nil {
				t.Fatalf("hits %+v from a silent server", hits)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v with a timeout of 100ms", d)
			}
			if !strings.Contains(log.String(), "zone=zen.test") || !strings.Contains(log.String(), "zone=dbl.test") {
				t.Errorf("failing zones not logged:\n%s", log.String())
			}
		})
	}
}

// The caller giving up does not wait for the lookup.
func TestCallerCancels(t *testing.T) {
	c := New(NewResolver(dnstest.Silent(t)), Config{DNSBL: lists.DNSBL, Timeout: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if hits := c.CheckIP(ctx, netip.MustParseAddr("127.0.0.2")); hits != nil {
		t.Fatalf("hits %+v", hits)
	}
}

type countTTL struct {
	TTLResolver
	n atomic.Int32
}

func (c *countTTL) LookupA(ctx context.Context, name string) ([]netip.Addr, time.Duration, error) {
	c.n.Add(1)
	return c.TTLResolver.LookupA(ctx, name)
}

type countNet struct {
	Resolver
	n atomic.Int32
}

func (c *countNet) LookupIP(ctx context.Context, network, name string) ([]net.IP, error) {
	c.n.Add(1)
	return c.Resolver.LookupIP(ctx, network, name)
}

// Answers are kept for their TTL: go-mockdns answers with TTL 9999 and
// its SOA says MINIMUM 60 (the negative TTL); Go's resolver tells no TTL.
func TestCacheTTL(t *testing.T) {
	addr := serve(t)
	ttl := &countTTL{TTLResolver: NewResolver(addr).(TTLResolver)}
	nr := &countNet{Resolver: goResolver(addr)}
	for _, tc := range []struct {
		name             string
		r                Resolver
		n                *atomic.Int32
		listed, unlisted time.Duration
	}{
		{"ttl", ttl, &ttl.n, 9999 * time.Second, 60 * time.Second},
		{"net", nr, &nr.n, DefaultTTL, DefaultNegativeTTL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New(tc.r, Config{DNSBL: []Zone{{Name: "zen.test"}}})
			base := time.Unix(1e9, 0)
			now := base
			c.now = func() time.Time { return now }
			for _, ip := range []struct {
				addr   string
				ttl    time.Duration
				listed bool
			}{{"127.0.0.2", tc.listed, true}, {"127.0.0.9", tc.unlisted, false}} {
				start := tc.n.Load()
				check := func(after time.Duration, queries int32) {
					t.Helper()
					now = base.Add(after)
					hits := c.CheckIP(t.Context(), netip.MustParseAddr(ip.addr))
					if (len(hits) == 1) != ip.listed {
						t.Errorf("%s after %v: hits %+v", ip.addr, after, hits)
					}
					if got := tc.n.Load() - start; got != queries {
						t.Errorf("%s after %v: %d queries, want %d", ip.addr, after, got, queries)
					}
				}
				check(0, 1)                    // asked
				check(0, 1)                    // cached
				check(ip.ttl-time.Second, 1)   // still cached
				check(ip.ttl, 2)               // expired: asked again
				check(2*ip.ttl-time.Second, 2) // and kept again
			}
			// A failure is not kept: SERVFAIL is asked again each time.
			start := tc.n.Load()
			c.CheckIP(t.Context(), netip.MustParseAddr("127.0.0.5"))
			c.CheckIP(t.Context(), netip.MustParseAddr("127.0.0.5"))
			if got := tc.n.Load() - start; got != 2 {
				t.Errorf("SERVFAIL asked %d times in two checks, want 2", got)
			}
		})
	}
}

// The cache keeps at most CacheSize answers, dropping the least recently used.
func TestCacheBounded(t *testing.T) {
	r := &countTTL{TTLResolver: NewResolver(serve(t)).(TTLResolver)}
	c := New(r, Config{DNSBL: []Zone{{Name: "zen.test"}}, CacheSize: 2})
	for _, ip := range []string{"127.0.0.2", "127.0.0.9", "127.0.0.10", "127.0.0.10", "127.0.0.9", "127.0.0.2"} {
		c.CheckIP(t.Context(), netip.MustParseAddr(ip))
	}
	// .2, .9, .10 asked (.2 pushed out), .10 and .9 from the cache, .2 asked again.
	if n := r.n.Load(); n != 4 {
		t.Errorf("%d queries, want 4", n)
	}
	if n := c.cache.len(); n != 2 {
		t.Errorf("cache holds %d answers, want 2", n)
	}
}

func TestCheckHosts(t *testing.T) {
	text := []byte(`<a href="https://www.Spam.test/x?y">x</a> http://bank.example@evil.test:8080/login
https://10.0.0.1/ HTTPS://ABUSED.clean.test./ spam2.test http:/nohost.test httpx://no.test https://co.uk/
http://-bad-.test/ http://www.spam.test/again`)
	hosts := URLHosts(text, 0)
	if want := []string{"www.spam.test", "evil.test", "abused.clean.test", "co.uk"}; !reflect.DeepEqual(hosts, want) {
		t.Errorf("URLHosts = %q, want %q", hosts, want)
	}
	if got := URLHosts(text, 2); len(got) != 2 {
		t.Errorf("URLHosts(2) = %q", got)
	}
	names := queryNames(hosts, 20)
	if want := []string{"spam.test", "evil.test", "clean.test", "www.spam.test", "abused.clean.test"}; !reflect.DeepEqual(names, want) {
		t.Errorf("queryNames = %q, want %q", names, want)
	}
	if got := queryNames(hosts, 2); !reflect.DeepEqual(got, names[:2]) {
		t.Errorf("queryNames(2) = %q", got)
	}

	addr := serve(t)
	for name, r := range resolvers(addr) {
		t.Run(name, func(t *testing.T) {
			c := New(r, Config{DNSBL: lists.DNSBL, URIBL: lists.URIBL})
			want := []Hit{ // evil.test answers an error code; reject is for DNSBL zones only
				{Zone: "dbl.test", Query: "spam.test", Answers: []string{"127.0.1.2"}, Reason: "spam domain  see https://dbl.test/spam.test"},
				{Zone: "dbl.test", Query: "abused.clean.test", Answers: []string{"127.0.1.102"}},
			}
			if got := c.CheckText(t.Context(), text); !reflect.DeepEqual(got, want) {
				t.Errorf("CheckText: got %#v, want %#v", got, want)
			}
			if got := New(r, Config{DNSBL: lists.DNSBL}).CheckText(t.Context(), text); got != nil {
				t.Errorf("no URIBL zones, hits %+v", got)
			}
		})
	}
}

// A Checker with nothing configured, or none at all, finds nothing.
func TestNothingConfigured(t *testing.T) {
	var nilChecker *Checker
	if nilChecker.HasDNSBL() || nilChecker.HasURIBL() || nilChecker.Rejects() || nilChecker.CheckIP(t.Context(), netip.MustParseAddr("127.0.0.2")) != nil {
		t.Fatal("a nil Checker checks")
	}
	c := New(NewResolver(serve(t)), Config{URIBL: lists.URIBL})
	if c.HasDNSBL() || c.Rejects() || c.CheckIP(t.Context(), netip.MustParseAddr("127.0.0.2")) != nil {
		t.Fatal("no DNSBL zones, yet an IP is checked")
	}
	if !New(nil, lists).Rejects() || New(nil, Config{DNSBL: []Zone{{Name: "a.test"}}}).Rejects() {
		t.Fatal("Rejects")
	}
}
