// Package dnsbl looks things up on DNS blocklists (RFC 5782): the IP
// address of a connecting client on DNSBL zones (zen.spamhaus.org, ...),
// and host names of the URLs in a message on URIBL zones
// (dbl.spamhaus.org, multi.uribl.com, ...).
//
// A lookup is an A query for <reversed IP>.<zone> or <host>.<zone>. An
// answer in 127.0.0.0/8 is a listing (its TXT record, when there is one,
// says why); the codes lists use to say "not answered" are errors, never
// listings: 127.255.255.0/24 (Spamhaus: query through a public resolver,
// too many queries, typo in the zone), 127.x.y.255 (Spamhaus DBL: an IP
// address asked as a host name) and 127.0.0.1 (URIBL: query refused), as
// is any answer outside 127.0.0.0/8 (a wildcard, a zone that is gone).
//
// Every zone is asked in parallel, within one timeout. A timeout, SERVFAIL
// or error code is no listing: the signal is just missing, and a list that
// is down never gets mail refused. Answers, listed and not listed, are
// cached for their TTL (at most MaxTTL), in a cache of bounded size, and
// concurrent lookups of one name share one query.
package dnsbl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// Zone is one blocklist.
type Zone struct {
	Name string // e.g. "zen.spamhaus.org"
	// Reject: a client listed here is refused (554 5.7.1 at RCPT) instead
	// of the listing being a spam signal. DNSBL zones only.
	Reject bool
}

// Hit is one listing.
type Hit struct {
	Zone    string   // the zone that lists it (lower case, no trailing dot)
	Reject  bool     // the zone is marked reject
	Query   string   // what is listed: the IP address or host name
	Answers []string // the A records, e.g. ["127.0.0.2", "127.0.0.4"]
	Reason  string   // the zone's TXT record, if any (printable ASCII, at most 200 bytes)
}

// String is "zone=answers", e.g. "zen.spamhaus.org=127.0.0.2,127.0.0.4".
func (h Hit) String() string { return h.Zone + "=" + strings.Join(h.Answers, ",") }

// Defaults for zero Config fields, and the longest an answer is kept.
const (
	DefaultTimeout   = 5 * time.Second
	DefaultCacheSize = 20000
	DefaultMaxNames  = 20
	MaxTTL           = 24 * time.Hour
)

// Config is what a Checker asks.
type Config struct {
	DNSBL []Zone // for the client's IP address
	URIBL []Zone // for host names in messages (Reject is ignored)
	// Timeout bounds one check: every zone and name in parallel, each
	// lookup (A, then TXT when listed) within it.
	Timeout   time.Duration
	CacheSize int          // answers kept, listed or not
	MaxNames  int          // URIBL: names asked per message (a host and its registered domain count apart)
	Log       *slog.Logger // zones that stop or start answering; may be nil
}

// Checker looks up blocklists. It is safe for concurrent use.
type Checker struct {
	r      Resolver
	cfg    Config
	log    *slog.Logger
	cache  *cache
	flight singleflight.Group
	zones  map[string]*zoneState // by zone name
	now    func() time.Time
}

// zoneState remembers whether a zone's last lookup failed, so that a list
// going down, and coming back, is logged once.
type zoneState struct{ failing atomic.Bool }

// answer is one zone's answer for one name.
type answer struct {
	listed  bool
	answers []string
	reason  string
}

// New returns a Checker asking r.
func New(r Resolver, cfg Config) *Checker {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.MaxNames <= 0 {
		cfg.MaxNames = DefaultMaxNames
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Zones as hits name them: lower case, no trailing dot.
	clean := func(zones []Zone) []Zone {
		out := slices.Clone(zones)
		for i := range out {
			out[i].Name = strings.TrimSuffix(strings.ToLower(out[i].Name), ".")
		}
		return out
	}
	cfg.DNSBL, cfg.URIBL = clean(cfg.DNSBL), clean(cfg.URIBL)
	c := &Checker{r: r, cfg: cfg, log: log, cache: newCache(cfg.CacheSize), zones: map[string]*zoneState{}, now: time.Now}
	for _, z := range slices.Concat(cfg.DNSBL, cfg.URIBL) {
		c.zones[z.Name] = &zoneState{}
	}
	return c
}

// HasDNSBL reports whether any DNSBL zone is configured.
func (c *Checker) HasDNSBL() bool { return c != nil && len(c.cfg.DNSBL) > 0 }

// HasURIBL reports whether any URIBL zone is configured.
func (c *Checker) HasURIBL() bool { return c != nil && len(c.cfg.URIBL) > 0 }

// Rejects reports whether a DNSBL zone is marked reject (so that a
// listing is worth waiting for before answering RCPT).
func (c *Checker) Rejects() bool {
	return c != nil && slices.ContainsFunc(c.cfg.DNSBL, func(z Zone) bool { return z.Reject })
}

// CheckIP looks ip up on every DNSBL zone and returns its listings, in
// zone order. Zones that fail or time out are left out (and logged).
func (c *Checker) CheckIP(ctx context.Context, ip netip.Addr) []Hit {
	if !c.HasDNSBL() || !ip.IsValid() {
		return nil
	}
	ip = ip.Unmap()
	rev := Reverse(ip)
	var qs []query
	for _, z := range c.cfg.DNSBL {
		qs = append(qs, query{zone: z, subject: ip.String(), name: rev + "." + zoneName(z.Name)})
	}
	return c.run(ctx, qs)
}

// CheckHosts looks the host names up on every URIBL zone: each host's
// registered domain (example.com for www.example.com, by the public suffix
// list) and, when it differs, the host itself, at most MaxNames names.
// Names that are not host names (IP addresses, public suffixes) are skipped.
func (c *Checker) CheckHosts(ctx context.Context, hosts []string) []Hit {
	if !c.HasURIBL() {
		return nil
	}
	names := queryNames(hosts, c.cfg.MaxNames)
	var qs []query
	for _, z := range c.cfg.URIBL {
		z.Reject = false
		for _, n := range names {
			qs = append(qs, query{zone: z, subject: n, name: n + "." + zoneName(z.Name)})
		}
	}
	return c.run(ctx, qs)
}

// CheckText looks the hosts of the http and https URLs in text up on every
// URIBL zone (URLHosts, then CheckHosts). text should be decoded: a
// quoted-printable soft line break inside a URL cuts it short.
func (c *Checker) CheckText(ctx context.Context, text []byte) []Hit {
	if !c.HasURIBL() {
		return nil
	}
	return c.CheckHosts(ctx, URLHosts(text, c.cfg.MaxNames))
}

type query struct {
	zone    Zone
	subject string // the IP address or host name asked about
	name    string // the DNS name asked
}

// run asks every query in parallel within the timeout.
func (c *Checker) run(ctx context.Context, qs []query) []Hit {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	hits := make([]*Hit, len(qs))
	var wg sync.WaitGroup
	for i, q := range qs {
		wg.Go(func() {
			a, err := c.lookup(ctx, q.name)
			c.note(q.zone.Name, q.name, err)
			if err == nil && a.listed {
				hits[i] = &Hit{Zone: q.zone.Name, Reject: q.zone.Reject, Query: q.subject, Answers: a.answers, Reason: a.reason}
			}
		})
	}
	wg.Wait()
	var out []Hit
	for _, h := range hits {
		if h != nil {
			out = append(out, *h)
		}
	}
	return out
}

// note logs a zone that starts failing (warn) or answers again (info);
// failures in between are debug. A cancelled caller says nothing about the
// zone.
func (c *Checker) note(zone, name string, err error) {
	st := c.zones[zone]
	switch {
	case err == nil:
		if st.failing.Swap(false) {
			c.log.Info("dnsbl: zone answers again", "zone", zone)
		}
	case errors.Is(err, context.Canceled):
	case !st.failing.Swap(true):
		c.log.Warn("dnsbl: zone lookup failed; its signal is missing until it answers", "zone", zone, "name", name, "err", err)
	default:
		c.log.Debug("dnsbl: zone lookup failed", "zone", zone, "name", name, "err", err)
	}
}

// lookup answers name from the cache or from DNS. Concurrent lookups of
// one name share one query, which runs to its own timeout even when the
// caller that started it gives up.
func (c *Checker) lookup(ctx context.Context, name string) (answer, error) {
	if a, ok := c.cache.get(name, c.now()); ok {
		return a, nil
	}
	ch := c.flight.DoChan(name, func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.Timeout)
		defer cancel()
		a, ttl, err := c.resolve(lctx, name)
		if err != nil {
			return answer{}, err
		}
		if ttl = min(ttl, MaxTTL); ttl > 0 {
			c.cache.put(name, a, c.now().Add(ttl))
		}
		return a, nil
	})
	select {
	case r := <-ch:
		return r.Val.(answer), r.Err
	case <-ctx.Done():
		return answer{}, ctx.Err()
	}
}

// resolve asks DNS: the A records, then, when they are a listing, the TXT
// record for the reason.
func (c *Checker) resolve(ctx context.Context, name string) (answer, time.Duration, error) {
	var addrs []netip.Addr
	ttl := DefaultTTL
	if tr, ok := c.r.(TTLResolver); ok {
		var err error
		if addrs, ttl, err = tr.LookupA(ctx, name); err != nil {
			return answer{}, 0, err
		}
	} else {
		ips, err := c.r.LookupIP(ctx, "ip4", name)
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return answer{}, DefaultNegativeTTL, nil
		}
		if err != nil {
			return answer{}, 0, err
		}
		for _, ip := range ips {
			if a, ok := netip.AddrFromSlice(ip.To4()); ok {
				addrs = append(addrs, a)
			}
		}
	}
	if len(addrs) == 0 {
		return answer{}, ttl, nil
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	addrs = slices.Compact(addrs)
	a := answer{listed: true}
	for _, ip := range addrs {
		if why, ok := listing(ip); !ok {
			return answer{}, 0, fmt.Errorf("%s: answer %s is not a listing (%s)", name, ip, why)
		}
		a.answers = append(a.answers, ip.String())
	}
	if txts, err := c.r.LookupTXT(ctx, name); err == nil && len(txts) > 0 {
		a.reason = printable(txts[0], 200)
	}
	return a, ttl, nil
}

// listing reports whether an A answer means "listed"; if not, why.
func listing(ip netip.Addr) (string, bool) {
	if !ip.Is4() {
		return "not IPv4", false
	}
	b := ip.As4()
	switch {
	case b[0] != 127:
		return "outside 127.0.0.0/8: a wildcard or a zone that is gone", false
	case b[1] == 255 && b[2] == 255:
		return "an error code: the list refuses our queries (public resolver, query limit or a typo in the zone name)", false
	case b[3] == 255:
		return "an error code: an IP address asked as a host name", false
	case b == [4]byte{127, 0, 0, 1}:
		return "an error code: query refused", false
	}
	return "", true
}

// Reverse is the DNSBL form of ip: IPv4 octets reversed (1.2.3.4 →
// 4.3.2.1), IPv6 nibbles reversed (RFC 5782 section 2.4). An IPv4-mapped
// IPv6 address is taken as IPv4.
func Reverse(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is4() {
		b := ip.As4()
		return fmt.Sprintf("%d.%d.%d.%d", b[3], b[2], b[1], b[0])
	}
	const hex = "0123456789abcdef"
	b := ip.As16()
	out := make([]byte, 0, 63)
	for i := len(b) - 1; i >= 0; i-- {
		if len(out) > 0 {
			out = append(out, '.')
		}
		out = append(out, hex[b[i]&0xf], '.', hex[b[i]>>4])
	}
	return string(out)
}

// zoneName is a zone as it is appended: rooted (a trailing dot, so no
// search domain is ever tried).
func zoneName(z string) string { return z + "." }

// printable keeps the printable ASCII of s, at most n bytes: a TXT record
// goes into an SMTP reply and the log.
func printable(s string, n int) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < n; i++ {
		if s[i] >= 0x20 && s[i] < 0x7f {
			b.WriteByte(s[i])
		}
	}
	return strings.TrimSpace(b.String())
}
