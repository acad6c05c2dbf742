package admin

import (
	"errors"
	"testing"

	"yubin/internal/testutil"
	"yubin/store"
)

// TestScopes: with a caller's scope in the context, a user may act on their
// own account only, a domain admin on the accounts and domains of their own
// parent domain and its children, never another domain; what is not open to
// them is ErrDenied whether it exists or not, and changes nothing.
func TestScopes(t *testing.T) {
	svc, _ := newService(t)
	populate(t, svc)
	_, err := Do(ctx, svc, OpDomainAdd, NewDomain{Name: "ample.com"}) // a suffix of example.com
	testutil.Must(t, err)
	_, err = Do(ctx, svc, OpAccountAdd, NewAccount{Address: "eve@ample.com", Password: "pw"})
	testutil.Must(t, err)

	user, err := svc.ScopeOf(ctx, "bob@example.com")
	testutil.Must(t, err)
	adm, err := svc.ScopeOf(ctx, "info@example.com")
	testutil.Must(t, err)
	bob, info := WithScope(ctx, user), WithScope(ctx, adm)

	before := snapshot(t, svc)
	type c struct {
		name string
		err  error
		want error // nil: allowed
	}
	cases := []c{
		// The user: their own account, at any of its addresses.
		{"user shows self", errOnly(Do(bob, svc, OpAccountShow, "bob@example.com")), nil},
		{"user shows self at child", errOnly(Do(bob, svc, OpForwardShow, "Bob@www.example.com")), nil},
		{"user spam self", errOnly(Do(bob, svc, OpSpamShow, "bob@example.com")), nil},
		{"user stops self", errOnly(Do(bob, svc, OpScanStops, StopsQuery{Address: "bob@example.com"})), nil},
		{"user shows admin", errOnly(Do(bob, svc, OpAccountShow, "info@example.com")), ErrDenied},
		{"user shows unknown", errOnly(Do(bob, svc, OpAccountShow, "nobody@example.com")), ErrDenied},
		{"user shows malformed", errOnly(Do(bob, svc, OpAccountShow, "a@@b")), ErrDenied},
		{"user forwards other", errOnly(Do(bob, svc, OpForwardSet, Forwarding{Address: "carol@other.test", Targets: []string{"x@y.test"}})), ErrDenied},
		{"user own quota", errOnly(Do(bob, svc, OpAccountQuota, QuotaChange{Address: "bob@example.com", Quota: 0})), ErrDenied},
		{"user removes self", errOnly(Do(bob, svc, OpAccountRemove, "bob@example.com")), ErrDenied},
		{"user scan policy", errOnly(Do(bob, svc, OpScanPolicy, ScanPolicyChange{Address: "bob@example.com", Change: store.ScanPolicy{Oversize: store.ScanAccept}})), ErrDenied},
		{"user lists domain", errOnly(Do(bob, svc, OpAccountList, "example.com")), ErrDenied},
		{"user adds", errOnly(Do(bob, svc, OpAccountAdd, NewAccount{Address: "x@example.com", Password: "pw"})), ErrDenied},
		{"user settings", errOnly(Do(bob, svc, OpSettingsShow, "example.com")), ErrDenied},
		{"user domain list", errOnly(Do(bob, svc, OpDomainList, None{})), ErrDenied},
		{"user quarantine other", errOnly(Do(bob, svc, OpQuarantineList, QuarantineList{Of: "info@example.com"})), ErrDenied},
		{"user quarantine widened", errOnly(Do(bob, svc, OpQuarantineList, QuarantineList{Of: "carol@other.test", Scope: Scope{Account: "carol@other.test"}})), ErrDenied},
		{"user quarantine self", errOnly(Do(bob, svc, OpQuarantineList, QuarantineList{Of: "bob@example.com"})), nil},

		// The admin: its parent domain and children.
		{"admin shows user", errOnly(Do(info, svc, OpAccountShow, "bob@example.com")), nil},
		{"admin lists child", errOnly(Do(info, svc, OpAccountList, "www.example.com")), nil},
		{"admin lists own", errOnly(Do(info, svc, OpAccountList, "example.com")), nil},
		{"admin lists all", errOnly(Do(info, svc, OpAccountList, "")), ErrDenied},
		{"admin lists other", errOnly(Do(info, svc, OpAccountList, "other.test")), ErrDenied},
		{"admin lists suffix", errOnly(Do(info, svc, OpAccountList, "ample.com")), ErrDenied},
		{"admin lists unknown", errOnly(Do(info, svc, OpAccountList, "nowhere.test")), ErrDenied},
		{"admin shows other", errOnly(Do(info, svc, OpAccountShow, "carol@other.test")), ErrDenied},
		{"admin shows suffix", errOnly(Do(info, svc, OpAccountShow, "eve@ample.com")), ErrDenied},
		{"admin shows unknown own", errOnly(Do(info, svc, OpAccountShow, "nobody@example.com")), store.ErrNoSuchAccount},
		{"admin shows unknown other", errOnly(Do(info, svc, OpAccountShow, "nobody@other.test")), ErrDenied},
		{"admin quota other", errOnly(Do(info, svc, OpAccountQuota, QuotaChange{Address: "carol@other.test", Quota: 1})), ErrDenied},
		{"admin passwd other", errOnly(Do(info, svc, OpAccountPasswd, PasswordChange{Address: "carol@other.test", Password: "x"})), ErrDenied},
		{"admin adds other", errOnly(Do(info, svc, OpAccountAdd, NewAccount{Address: "x@other.test", Password: "pw"})), ErrDenied},
		{"admin settings other", errOnly(Do(info, svc, OpSettingsShow, "other.test")), ErrDenied},
		{"admin settings own", errOnly(Do(info, svc, OpSettingsShow, "example.com")), nil},
		{"admin domain add", errOnly(Do(info, svc, OpDomainAdd, NewDomain{Name: "x.example.com", Parent: "example.com"})), ErrDenied},
		{"admin queue", errOnly(Do(info, svc, OpQueueList, None{})), ErrDenied},
		{"admin status", errOnly(Do(info, svc, OpStatus, None{})), ErrDenied},
		{"admin quarantine other", errOnly(Do(info, svc, OpQuarantineList, QuarantineList{Of: "other.test"})), ErrDenied},
		{"admin quarantine own", errOnly(Do(info, svc, OpQuarantineList, QuarantineList{Of: "example.com"})), nil},
		{"admin quarantine narrowed", errOnly(Do(info, svc, OpQuarantineList, QuarantineList{Of: "bob@example.com", Scope: Scope{Account: "bob@example.com"}})), nil},
		{"admin quarantine widened", errOnly(Do(info, svc, OpQuarantineList, QuarantineList{Of: "other.test", Scope: Scope{Domain: "other.test"}})), ErrDenied},
	}
	for _, c := range cases {
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
	// Allowed changes do change.
	if _, err := Do(info, svc, OpAccountQuota, QuotaChange{Address: "bob@example.com", Quota: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if _, err := Do(bob, svc, OpForwardSet, Forwarding{Address: "bob@example.com", Targets: []string{"far@remote.test"}}); err != nil {
		t.Fatal(err)
	}
}

// TestCaller: the stamp of an account changes with its password, by any
// path, and only then.
func TestCaller(t *testing.T) {
	svc, _ := newService(t)
	populate(t, svc)
	a, err := svc.Caller(ctx, "Bob@Example.com")
	testutil.Must(t, err)
	if a.Address != "bob@example.com" || a.Scope != (Scope{Account: "bob@example.com"}) || a.Stamp == "" {
		t.Fatalf("caller %+v", a)
	}
	b, err := svc.Caller(ctx, "bob@example.com")
	testutil.Must(t, err)
	if b.Stamp != a.Stamp {
		t.Fatal("the stamp changed without a password change")
	}
	if _, err := Do(ctx, svc, OpAccountPasswd, PasswordChange{Address: "bob@example.com", Password: "new one"}); err != nil {
		t.Fatal(err)
	}
	c, err := svc.Caller(ctx, "bob@example.com")
	testutil.Must(t, err)
	if c.Stamp == a.Stamp {
		t.Fatal("the stamp did not change with the password")
	}
	adm, err := svc.Caller(ctx, "info@example.com")
	testutil.Must(t, err)
	if adm.Scope != (Scope{Domain: "example.com"}) || adm.Role != RoleAdmin {
		t.Fatalf("admin caller %+v", adm)
	}
	if _, err := svc.Caller(ctx, "nobody@example.com"); !errors.Is(err, store.ErrNoSuchAccount) {
		t.Fatalf("unknown caller: %v", err)
	}
}
