package admin

import (
	"errors"
	"strings"
	"testing"

	"yubin/internal/config"
	"yubin/internal/dnsrecords"
	"yubin/internal/testutil"
	"yubin/internal/testutil/dnstest"
	"yubin/store"
)

// TestSiteOpsScopes: the operations the Site Manager adds (dns.records,
// dns.check, account.role, domain.show) follow the same rule: a domain
// admin on its parent domain and children, never another domain, a user
// on none of them; a scoped caller may not name the DNS server to ask.
func TestSiteOpsScopes(t *testing.T) {
	svc, _ := newService(t)
	populate(t, svc)
	zones, err := dnstest.Parse(strings.NewReader("example.com. MX 10 mail.example.com.\n"), "")
	testutil.Must(t, err)
	cfg := config.Default()
	cfg.Hostname = "mail.example.com"
	svc.SetDNS(DNSSettings(cfg), dnstest.NewServer(t, zones).Addr())

	user, err := svc.ScopeOf(ctx, "bob@example.com")
	testutil.Must(t, err)
	adm, err := svc.ScopeOf(ctx, "info@example.com")
	testutil.Must(t, err)
	bob, info := WithScope(ctx, user), WithScope(ctx, adm)

	before := snapshot(t, svc)
	for _, c := range []struct {
		name string
		err  error
		want error
	}{
		{"admin records own", errOnly(Do(info, svc, OpDNSRecords, "example.com")), nil},
		{"admin records child", errOnly(Do(info, svc, OpDNSRecords, "www.example.com")), nil},
		{"admin records other", errOnly(Do(info, svc, OpDNSRecords, "other.test")), ErrDenied},
		{"admin records all", errOnly(Do(info, svc, OpDNSRecords, "")), ErrDenied},
		{"admin check other", errOnly(Do(info, svc, OpDNSCheck, DNSCheckRequest{Domain: "other.test"})), ErrDenied},
		{"admin check resolver", errOnly(Do(info, svc, OpDNSCheck, DNSCheckRequest{Domain: "example.com", Resolver: "192.0.2.1:53"})), ErrDenied},
		{"admin role other", errOnly(Do(info, svc, OpAccountRole, RoleChange{Address: "carol@other.test", Role: "user"})), ErrDenied},
		{"admin role bad", errOnly(Do(info, svc, OpAccountRole, RoleChange{Address: "bob@example.com", Role: "root"})), store.ErrInvalid},
		{"admin show own", errOnly(Do(info, svc, OpDomainShow, "example.com")), nil},
		{"admin show other", errOnly(Do(info, svc, OpDomainShow, "other.test")), ErrDenied},
		{"user records", errOnly(Do(bob, svc, OpDNSRecords, "example.com")), ErrDenied},
		{"user check", errOnly(Do(bob, svc, OpDNSCheck, DNSCheckRequest{Domain: "example.com"})), ErrDenied},
		{"user role self", errOnly(Do(bob, svc, OpAccountRole, RoleChange{Address: "bob@example.com", Role: "admin"})), ErrDenied},
		{"user show", errOnly(Do(bob, svc, OpDomainShow, "example.com")), ErrDenied},
	} {
		switch {
		case c.want == nil && c.err != nil:
			t.Errorf("%s: %v, want it allowed", c.name, c.err)
		case c.want != nil && !errors.Is(c.err, c.want):
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
	}
	if after := snapshot(t, svc); after != before {
		t.Errorf("refused operations changed the state:\nbefore %s\nafter  %s", before, after)
	}

	// What the admin gets: its domain and children only, checked live.
	recs, err := Do(info, svc, OpDNSRecords, "example.com")
	testutil.Must(t, err)
	for _, r := range recs.Records {
		if r.Domain != "" && r.Domain != "example.com" && r.Domain != "www.example.com" {
			t.Errorf("record of %s", r.Domain)
		}
	}
	checked, err := Do(info, svc, OpDNSCheck, DNSCheckRequest{Domain: "example.com"})
	testutil.Must(t, err)
	mx := 0
	for _, c := range checked {
		if c.Kind == dnsrecords.KindMX && c.Domain == "example.com" {
			mx++
			if c.Status != dnsrecords.OK {
				t.Errorf("MX %+v", c)
			}
		}
	}
	if mx != 1 || len(checked) != len(recs.Records) {
		t.Errorf("%d checked of %d records, %d MX", len(checked), len(recs.Records), mx)
	}
	if a, err := Do(info, svc, OpAccountRole, RoleChange{Address: "bob@example.com", Role: "admin"}); err != nil || a.Role != RoleAdmin {
		t.Fatalf("role: %+v %v", a, err)
	}
	if d, err := Do(info, svc, OpDomainShow, "Example.com"); err != nil || d.Name != "example.com" || len(d.Children) != 1 || d.Accounts != 2 {
		t.Fatalf("domain.show: %+v %v", d, err)
	}
}
