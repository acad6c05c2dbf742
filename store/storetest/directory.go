package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"yubin/internal/testutil"
	"yubin/store"
)

// Domains and accounts: the Directory and what Admin changes of them.
var directoryTests = []test{
	{"domains", testDomains},
	{"domain errors", testDomainErrors},
	{"remove domain", testRemoveDomain},
	{"accounts", testAccounts},
	{"account errors", testAccountErrors},
	{"resolve", testResolve},
	{"change account", testChangeAccount},
	{"remove account", testRemoveAccount},
}

func testDomains(t *testing.T, e *env) {
	ctx := t.Context()
	ds, err := e.s.Domains(ctx)
	testutil.Must(t, err)
	var got []string
	for _, d := range ds {
		got = append(got, d.Name+"<"+d.Parent)
		if !d.Created.Equal(start) {
			t.Errorf("domain %s created %v, want the store's clock %v", d.Name, d.Created, start)
		}
	}
	if want := []string{"child.example.com<example.com", "example.com<", "other.test<"}; !slices.Equal(got, want) {
		t.Errorf("Domains = %v, want %v (by name)", got, want)
	}
	d, err := e.s.Domain(ctx, "Child.EXAMPLE.com")
	testutil.Must(t, err)
	if d.Name != "child.example.com" || d.Parent != "example.com" {
		t.Errorf("Domain(Child.EXAMPLE.com) = %+v", d)
	}
	testutil.Must(t, e.s.AddDomain(ctx, "New.Example.ORG", ""))
	if d, err := e.s.Domain(ctx, "new.example.org"); err != nil || d.Name != "new.example.org" {
		t.Errorf("domain added in capitals: %+v, %v; want it lower-cased", d, err)
	}
	for dom, want := range map[string]bool{"example.com": true, "CHILD.example.com": true, "other.test": true, "elsewhere.test": false, "example": false} {
		if got := e.s.IsLocalDomain(ctx, dom); got != want {
			t.Errorf("IsLocalDomain(%s) = %v, want %v", dom, got, want)
		}
	}
}

func testDomainErrors(t *testing.T, e *env) {
	add := func(name, parent string) func(e *env) error {
		return func(e *env) error { return e.s.AddDomain(e.t.Context(), name, parent) }
	}
	remove := func(name string) func(e *env) error {
		return func(e *env) error { return e.s.RemoveDomain(e.t.Context(), name) }
	}
	runErrCases(t, e, []errCase{
		{"add existing", add("EXAMPLE.com", ""), store.ErrExists},
		{"add child of a child", add("x.child.example.com", "child.example.com"), store.ErrInvalid},
		{"add child of unknown", add("y.example.com", "nope.test"), store.ErrNoSuchDomain},
		{"add own child", add("z.test", "z.test"), store.ErrInvalid},
		{"add malformed", add("not a domain", ""), store.ErrInvalid},
		{"add with malformed parent", add("w.test", "bad parent"), store.ErrInvalid},
		{"remove with children", remove("example.com"), store.ErrInvalid},
		{"remove with accounts", remove("other.test"), store.ErrInvalid},
		{"remove unknown", remove("nope.test"), store.ErrNoSuchDomain},
		{"get unknown", func(e *env) error { _, err := e.s.Domain(e.t.Context(), "nope.test"); return err }, store.ErrNoSuchDomain},
	})
	if ds, _ := e.s.Domains(t.Context()); len(ds) != 3 {
		t.Errorf("refused changes changed the domains: %+v", ds)
	}
}

func testRemoveDomain(t *testing.T, e *env) {
	ctx := t.Context()
	testutil.Must(t, e.s.RemoveDomain(ctx, "CHILD.example.com"))
	if e.s.IsLocalDomain(ctx, "child.example.com") {
		t.Error("removed child domain is still local")
	}
	if _, err := e.s.Resolve(ctx, "info@child.example.com"); !is(err, store.ErrNoSuchDomain) {
		t.Errorf("Resolve at a removed domain: %v", err)
	}
	testutil.Must(t, e.s.RemoveAccount(ctx, carol))
	testutil.Must(t, e.s.RemoveDomain(ctx, "other.test"))
	if _, err := e.s.Domain(ctx, "other.test"); !is(err, store.ErrNoSuchDomain) {
		t.Errorf("removed domain: %v", err)
	}
	testutil.Must(t, e.s.AddDomain(ctx, "other.test", ""))
}

func testAccounts(t *testing.T, e *env) {
	ctx := t.Context()
	e.clock.Advance(time.Hour)
	testutil.Must(t, e.s.AddAccount(ctx, store.Account{Address: "Dave@Example.COM", PasswordHash: "h", Used: 999, Created: start.Add(-time.Hour)}))
	a := e.account("DAVE@example.com")
	want := store.Account{Address: "dave@example.com", Role: store.RoleUser, PasswordHash: "h", Created: start.Add(time.Hour), Scan: store.ScanPolicy{}.Effective()}
	if !a.Created.Equal(want.Created) {
		t.Errorf("created %v, want the store's clock %v", a.Created, want.Created)
	}
	a.Created = want.Created
	if a != want {
		t.Errorf("new account %+v, want %+v (lower-cased, role user, no usage, default scan policy)", a, want)
	}
	if a.Domain() != "example.com" {
		t.Errorf("Domain() = %q", a.Domain())
	}
	for dom, want := range map[string][]string{
		"example.com": {bob, "dave@example.com", info},
		"OTHER.test":  {carol},
		"":            {bob, carol, "dave@example.com", info},
	} {
		as, err := e.s.Accounts(ctx, dom)
		testutil.Must(t, err)
		var got []string
		for _, a := range as {
			got = append(got, a.Address)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Accounts(%q) = %v, want %v", dom, got, want)
		}
	}
	if _, err := e.s.Accounts(ctx, "nope.test"); !is(err, store.ErrNoSuchDomain) {
		t.Errorf("Accounts of an unknown domain: %v", err)
	}
	// Every account starts with the default mailboxes, subscribed and empty.
	boxes, err := e.s.Mailboxes(ctx, "dave@example.com")
	testutil.Must(t, err)
	want2 := map[string]string{}
	for _, m := range store.DefaultMailboxes {
		want2[m.Name] = m.SpecialUse
	}
	if len(boxes) != len(want2) {
		t.Fatalf("mailboxes of a new account: %+v", boxes)
	}
	for _, b := range boxes {
		use, ok := want2[b.Name]
		if !ok || b.SpecialUse != use || !b.Subscribed || b.Messages != 0 || b.UIDNext != 1 || b.UIDValidity == 0 {
			t.Errorf("new account's mailbox %+v", b)
		}
	}
	testutil.Must(t, e.s.AddAccount(ctx, store.Account{Address: "admin@other.test", PasswordHash: "h", Role: store.RoleAdmin, Quota: 5}))
	if a := e.account("admin@other.test"); a.Role != store.RoleAdmin || a.Quota != 5 {
		t.Errorf("admin account %+v", a)
	}
}

func testAccountErrors(t *testing.T, e *env) {
	add := func(a store.Account) func(e *env) error {
		if a.PasswordHash == "" {
			a.PasswordHash = "x"
		}
		return func(e *env) error { return e.s.AddAccount(e.t.Context(), a) }
	}
	runErrCases(t, e, []errCase{
		{"add existing", add(store.Account{Address: "INFO@example.com"}), store.ErrExists},
		{"add on a child domain", add(store.Account{Address: "x@child.example.com"}), store.ErrInvalid},
		{"add on an unknown domain", add(store.Account{Address: "x@unknown.test"}), store.ErrNoSuchDomain},
		{"add malformed", add(store.Account{Address: "no at sign"}), store.ErrInvalid},
		// An account name keeps RFC 5321's 64 octets, though longer local
		// parts are looked up (testResolve).
		{"add with a 65-octet local part", add(store.Account{Address: strings.Repeat("x", 65) + "@example.com"}), store.ErrInvalid},
		{"add without password", func(e *env) error {
			return e.s.AddAccount(e.t.Context(), store.Account{Address: "x@example.com"})
		}, store.ErrInvalid},
		{"add with negative quota", add(store.Account{Address: "x@example.com", Quota: -1}), store.ErrInvalid},
		{"add with unknown role", add(store.Account{Address: "x@example.com", Role: "root"}), store.ErrInvalid},
		{"add with bad scan policy", add(store.Account{Address: "x@example.com", Scan: store.ScanPolicy{Depth: "maybe"}}), store.ErrInvalid},
		{"get unknown", func(e *env) error { _, err := e.s.Account(e.t.Context(), "x@example.com"); return err }, store.ErrNoSuchAccount},
		{"empty password", func(e *env) error { return e.s.SetPasswordHash(e.t.Context(), info, "") }, store.ErrInvalid},
		{"password of unknown", func(e *env) error { return e.s.SetPasswordHash(e.t.Context(), "x@example.com", "h") }, store.ErrNoSuchAccount},
		{"negative quota", func(e *env) error { return e.s.SetQuota(e.t.Context(), info, -1) }, store.ErrInvalid},
		{"quota of unknown", func(e *env) error { return e.s.SetQuota(e.t.Context(), "x@example.com", 1) }, store.ErrNoSuchAccount},
		{"unknown role", func(e *env) error { return e.s.SetRole(e.t.Context(), info, "root") }, store.ErrInvalid},
		{"role of unknown", func(e *env) error { return e.s.SetRole(e.t.Context(), "x@example.com", store.RoleAdmin) }, store.ErrNoSuchAccount},
		{"remove unknown", func(e *env) error { return e.s.RemoveAccount(e.t.Context(), "x@example.com") }, store.ErrNoSuchAccount},
	})
	if as, _ := e.s.Accounts(t.Context(), ""); len(as) != 3 {
		t.Errorf("refused changes changed the accounts: %+v", as)
	}
	if a := e.account(info); a.PasswordHash != "x" || a.Quota != fixtureQuota || a.Role != store.RoleUser {
		t.Errorf("refused changes changed %+v", a)
	}
}

func testResolve(t *testing.T, e *env) {
	for _, c := range []struct {
		addr, want string
		err        error
	}{
		{"info@example.com", info, nil},
		{"INFO@Child.Example.com", info, nil},
		{"Bob@EXAMPLE.COM", bob, nil},
		{"carol@other.test", carol, nil},
		{"nobody@example.com", "", store.ErrNoSuchAccount},
		{"nobody@child.example.com", "", store.ErrNoSuchAccount},
		{"info@elsewhere.test", "", store.ErrNoSuchDomain},
		{"not an address", "", store.ErrInvalid},
		{"a%b@example.com", "", store.ErrInvalid},
		// Longer than an account name can be, but an address all the same.
		{strings.Repeat("x", 150) + "@example.com", "", store.ErrNoSuchAccount},
		{strings.Repeat("x", 300) + "@example.com", "", store.ErrInvalid},
	} {
		got, err := e.s.Resolve(t.Context(), c.addr)
		if !is(err, c.err) || err == nil && got != c.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q, %v", c.addr, got, err, c.want, c.err)
		}
	}
}

func testChangeAccount(t *testing.T, e *env) {
	ctx := t.Context()
	testutil.Must(t, e.s.SetPasswordHash(ctx, "INFO@example.com", "new hash"))
	testutil.Must(t, e.s.SetQuota(ctx, info, 12345))
	testutil.Must(t, e.s.SetRole(ctx, info, store.RoleAdmin))
	if a := e.account(info); a.PasswordHash != "new hash" || a.Quota != 12345 || a.Role != store.RoleAdmin {
		t.Errorf("after changes %+v", a)
	}
	if a := e.account(bob); a.PasswordHash != "x" || a.Quota != fixtureQuota || a.Role != store.RoleUser {
		t.Errorf("another account changed too: %+v", a)
	}
	testutil.Must(t, e.s.SetQuota(ctx, info, 0))
	if a := e.account(info); a.Quota != 0 {
		t.Errorf("quota 0 (unlimited): %+v", a)
	}
}

func testRemoveAccount(t *testing.T, e *env) {
	ctx := t.Context()
	e.deliverN(bob, "", 3)
	_, err := e.s.CreateMailbox(ctx, bob, "Work")
	testutil.Must(t, err)
	e.deliverN(bob, "Work", 2)
	testutil.Must(t, e.s.RemoveAccount(ctx, "BOB@example.com"))
	for name, err := range map[string]error{
		"Account":   func() error { _, err := e.s.Account(ctx, bob); return err }(),
		"Resolve":   func() error { _, err := e.s.Resolve(ctx, bob); return err }(),
		"Mailboxes": func() error { _, err := e.s.Mailboxes(ctx, bob); return err }(),
		"Messages":  func() error { _, _, err := e.s.Messages(ctx, bob, "INBOX"); return err }(),
		"Deliver": func() error {
			_, err := e.s.Deliver(ctx, store.Delivery{Recipients: []string{bob}, Message: body(1)})
			return err
		}(),
	} {
		if !is(err, store.ErrNoSuchAccount) {
			t.Errorf("%s of a removed account: %v", name, err)
		}
	}
	// Added again, it starts empty.
	testutil.Must(t, e.s.AddAccount(ctx, store.Account{Address: bob, PasswordHash: "y"}))
	if a := e.account(bob); a.Used != 0 || a.PasswordHash != "y" {
		t.Errorf("account added again: %+v", a)
	}
	if got := e.names(bob); len(got) != len(store.DefaultMailboxes) {
		t.Errorf("account added again has mailboxes %v", got)
	}
	if m := e.mailbox(bob, "INBOX"); m.Messages != 0 || m.UIDNext != 1 {
		t.Errorf("INBOX of an account added again: %+v", m)
	}
}
