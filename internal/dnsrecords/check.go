package dnsrecords

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/emersion/go-msgauth/dmarc"
)

// Resolver is what Check looks up. *net.Resolver implements it.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupCNAME(ctx context.Context, host string) (string, error)
}

var _ Resolver = (*net.Resolver)(nil)

// Status of a checked record.
type Status string

const (
	OK        Status = "ok"
	Missing   Status = "missing"
	Different Status = "different"
	Failed    Status = "error" // the lookup itself failed
)

// Checked is the outcome of looking one record up.
type Checked struct {
	Record
	Status Status   `json:"status"`
	Found  []string `json:"found,omitempty"` // what DNS has instead
	Note   string   `json:"note,omitempty"`
}

// Check looks every record up and compares it with what DNS serves.
func Check(ctx context.Context, r Resolver, records []Record) []Checked {
	out := make([]Checked, 0, len(records))
	for _, rec := range records {
		out = append(out, checkOne(ctx, r, rec))
	}
	return out
}

// AllOK reports whether every record is fine.
func AllOK(cs []Checked) bool {
	for _, c := range cs {
		if c.Status != OK {
			return false
		}
	}
	return true
}

func lookupErr(c *Checked, err error) Checked {
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound {
		c.Status = Missing
		return *c
	}
	c.Status = Failed
	c.Note = err.Error()
	return *c
}

func checkOne(ctx context.Context, r Resolver, rec Record) Checked {
	c := Checked{Record: rec}
	name := strings.TrimSuffix(rec.Name, ".")
	switch rec.Type {
	case "A", "AAAA":
		ips, err := r.LookupIPAddr(ctx, name)
		if err != nil {
			return lookupErr(&c, err)
		}
		var found []string
		for _, ip := range ips {
			if (ip.IP.To4() != nil) == (rec.Type == "A") {
				found = append(found, ip.IP.String())
			}
		}
		switch {
		case len(found) == 0:
			c.Status = Missing
		case rec.Value == "":
			c.Status, c.Note = OK, "resolves to "+strings.Join(found, ", ")
		case slices.ContainsFunc(found, func(s string) bool { return sameIP(s, rec.Value) }):
			c.Status = OK
		default:
			c.Status, c.Found = Different, found
		}
	case "MX":
		mxs, err := r.LookupMX(ctx, name)
		if err != nil {
			return lookupErr(&c, err)
		}
		want := rec.Value[strings.IndexByte(rec.Value, ' ')+1:]
		c.Status = Different
		for _, mx := range mxs {
			c.Found = append(c.Found, fmt.Sprintf("%d %s", mx.Pref, mx.Host))
			if strings.EqualFold(fq(mx.Host), fq(want)) {
				c.Status = OK
			}
		}
		if len(mxs) == 0 {
			c.Status = Missing
		}
		if c.Status == OK {
			c.Found = nil
		}
	case "SRV":
		_, srvs, err := r.LookupSRV(ctx, "", "", name)
		if err != nil {
			return lookupErr(&c, err)
		}
		var port, target string
		if f := strings.Fields(rec.Value); len(f) == 4 {
			port, target = f[2], f[3]
		}
		c.Status = Different
		for _, s := range srvs {
			c.Found = append(c.Found, fmt.Sprintf("%d %d %d %s", s.Priority, s.Weight, s.Port, s.Target))
			if fmt.Sprint(s.Port) == port && strings.EqualFold(fq(s.Target), fq(target)) {
				c.Status = OK
			}
		}
		if len(srvs) == 0 {
			c.Status = Missing
		}
		if c.Status == OK {
			c.Found = nil
		}
	case "CNAME":
		checkCNAME(ctx, r, &c, name)
	case "TXT":
		txts, err := r.LookupTXT(ctx, name)
		if err != nil {
			return lookupErr(&c, err)
		}
		checkTXT(&c, txts)
	default:
		c.Status, c.Note = Failed, "cannot check "+rec.Type+" records"
	}
	return c
}

func sameIP(a, b string) bool {
	x, y := net.ParseIP(a), net.ParseIP(b)
	return x != nil && x.Equal(y)
}

// checkTXT compares the TXT records of a name with the one we want,
// among the records of the same kind (SPF records among "v=spf1 ...", and
// so on); other TXT records at the same name are ignored.
func checkTXT(c *Checked, txts []string) {
	var relevant []string
	for _, t := range txts {
		if sameKind(c.Kind, t) {
			relevant = append(relevant, t)
		}
	}
	if len(relevant) == 0 {
		c.Status = Missing
		return
	}
	c.Status = Different
	c.Found = relevant
	switch c.Kind {
	case KindDKIM:
		want := tag(c.Value, "p")
		for _, t := range relevant {
			if want != "" && stripSpace(tag(t, "p")) == want {
				c.Status = OK
			}
		}
	case KindDMARC:
		if len(relevant) > 1 {
			c.Note = "several DMARC records: receivers ignore them all"
			break
		}
		rec, err := dmarc.Parse(relevant[0])
		if err != nil {
			c.Note = err.Error()
			break
		}
		c.Status = OK
		if want := "p=" + tag(c.Value, "p"); string(rec.Policy) != tag(c.Value, "p") {
			c.Note = fmt.Sprintf("published p=%s (%s suggested)", rec.Policy, want)
		}
	case KindSPF, KindHostSPF:
		if len(relevant) > 1 {
			c.Note = "several SPF records: a permanent error for every receiver (RFC 7208 section 4.5)"
			break
		}
		if normSPF(relevant[0]) == normSPF(c.Value) {
			c.Status = OK
		}
	default:
		for _, t := range relevant {
			if strings.EqualFold(strings.TrimSpace(t), strings.TrimSpace(c.Value)) {
				c.Status = OK
			}
		}
	}
	if c.Status == OK {
		c.Found = nil
	}
}

func sameKind(kind, txt string) bool {
	l := strings.ToLower(strings.TrimSpace(txt))
	switch kind {
	case KindSPF, KindHostSPF:
		return l == "v=spf1" || strings.HasPrefix(l, "v=spf1 ")
	case KindDKIM:
		return strings.HasPrefix(l, "v=dkim1") || strings.Contains(l, "p=")
	case KindDMARC, KindDMARCAuth:
		return strings.HasPrefix(strings.ReplaceAll(l, " ", ""), "v=dmarc1")
	}
	return true
}

// tag returns the value of a "k=v; k=v" tag list's tag.
func tag(s, name string) string {
	for _, kv := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func stripSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
}

func normSPF(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

// checkCNAME checks that name leads to the record's target: a CNAME to it
// (or through a chain ending at it), or A/AAAA records with an address of
// the target's.
func checkCNAME(ctx context.Context, r Resolver, c *Checked, name string) {
	canon, err := r.LookupCNAME(ctx, name)
	if err != nil {
		lookupErr(c, err)
		return
	}
	if strings.EqualFold(fq(canon), fq(c.Value)) {
		c.Status = OK
		return
	}
	ips, err := r.LookupIPAddr(ctx, name)
	if err != nil {
		lookupErr(c, err)
		return
	}
	want, err := r.LookupIPAddr(ctx, strings.TrimSuffix(c.Value, "."))
	if err != nil {
		c.Status, c.Note = Failed, "looking up the target: "+err.Error()
		return
	}
	c.Status = Different
	if !strings.EqualFold(fq(canon), fq(name)) {
		c.Found = append(c.Found, "CNAME "+canon)
	}
	for _, ip := range ips {
		c.Found = append(c.Found, ip.IP.String())
		for _, w := range want {
			if ip.IP.Equal(w.IP) {
				c.Status, c.Note = OK, "an address record of "+strings.TrimSuffix(c.Value, ".")+"'s address, not a CNAME: fine"
			}
		}
	}
	if len(ips) == 0 {
		c.Status = Missing
	}
	if c.Status == OK {
		c.Found = nil
	}
}
