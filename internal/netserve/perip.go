package netserve

import (
	"net"
	"net/netip"
	"sync"
)

// PerIP counts open connections per client address, for a cap per
// address. An IPv6 client counts by its /64, the block one host usually
// has to itself (one address each would make the cap easy to walk
// around). The zero value counts without a cap.
type PerIP struct {
	// Max is the most connections one address may have open; 0 means no
	// limit.
	Max int

	mu sync.Mutex
	n  map[string]int
}

// Add counts a new connection from addr, unless addr has Max open already:
// then it counts nothing and returns false. Each true needs a Done.
func (p *PerIP) Add(addr net.Addr) bool {
	k := ipKey(addr)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.Max > 0 && p.n[k] >= p.Max {
		return false
	}
	if p.n == nil {
		p.n = map[string]int{}
	}
	p.n[k]++
	return true
}

// Done uncounts a connection Add counted.
func (p *PerIP) Done(addr net.Addr) {
	k := ipKey(addr)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[k] <= 1 {
		delete(p.n, k)
		return
	}
	p.n[k]--
}

// ipKey is what an address counts under: the IPv4 address, or the IPv6 /64.
func ipKey(addr net.Addr) string {
	var ip netip.Addr
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
			ip = ap.Addr()
		}
	}
	if !ip.IsValid() {
		return addr.String()
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.WithZone("").Prefix(64)
		return p.String()
	}
	return ip.String()
}
