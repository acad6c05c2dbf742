package dnsbl

import (
	"bytes"
	"net/netip"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// URLHosts returns the distinct host names of the http:// and https:// URLs
// in text, in order of appearance, at most max of them (max <= 0: no
// limit). User info is skipped (http://bank.example@evil.example/ is
// evil.example), and so are ports, IP addresses and anything that is not a
// host name.
func URLHosts(text []byte, max int) []string {
	var hosts []string
	seen := map[string]bool{}
	for rest := text; len(rest) > 0; {
		i := indexFold(rest, "http")
		if i < 0 {
			break
		}
		rest = rest[i+4:]
		switch {
		case hasPrefixFold(rest, "s://"):
			rest = rest[4:]
		case hasPrefixFold(rest, "://"):
			rest = rest[3:]
		default:
			continue
		}
		end := bytes.IndexAny(rest, "/?#\\ \t\r\n\"'<>()[]{}|^`")
		if end < 0 {
			end = len(rest)
		}
		authority := string(rest[:end])
		rest = rest[end:]
		if at := strings.LastIndexByte(authority, '@'); at >= 0 {
			authority = authority[at+1:]
		}
		if colon := strings.IndexByte(authority, ':'); colon >= 0 {
			authority = authority[:colon]
		}
		h, ok := hostName(authority)
		if !ok || seen[h] {
			continue
		}
		seen[h] = true
		hosts = append(hosts, h)
		if max > 0 && len(hosts) >= max {
			break
		}
	}
	return hosts
}

// queryNames is what CheckHosts asks for hosts: every registered domain
// first, then the hosts that differ from theirs, at most max names.
func queryNames(hosts []string, max int) []string {
	var domains, subs []string
	seen := map[string]bool{}
	for _, h := range hosts {
		h, ok := hostName(h)
		if !ok {
			continue
		}
		d, err := publicsuffix.EffectiveTLDPlusOne(h)
		if err != nil {
			continue // a public suffix itself (co.uk): nobody's domain
		}
		if !seen[d] {
			seen[d] = true
			domains = append(domains, d)
		}
		if !seen[h] {
			seen[h] = true
			subs = append(subs, h)
		}
	}
	names := append(domains, subs...)
	if len(names) > max {
		names = names[:max]
	}
	return names
}

// hostName returns s as a host name to look up — lower case, without a
// trailing dot — or false if it is not one: letters, digits and hyphens in
// labels of 1 to 63 bytes, at least two labels, at most 200 bytes (room is
// left for the zone), not an IP address.
func hostName(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSuffix(s, "."))
	if len(s) == 0 || len(s) > 200 || !strings.Contains(s, ".") {
		return "", false
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return "", false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", false
			}
		}
	}
	if tld := labels[len(labels)-1]; strings.Trim(tld, "0123456789") == "" {
		return "", false // 1.2.3.4 spelled oddly (e.g. 010.1.1.1)
	}
	return s, true
}

func indexFold(b []byte, lower string) int {
	for i := 0; i+len(lower) <= len(b); i++ {
		if hasPrefixFold(b[i:], lower) {
			return i
		}
	}
	return -1
}

func hasPrefixFold(b []byte, lower string) bool {
	if len(b) < len(lower) {
		return false
	}
	for i := 0; i < len(lower); i++ {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
