package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"yubin/internal/testutil"
	"yubin/store"
)

// Settings: per-domain and per-account settings, DKIM keys, the SRS key.
var settingsTests = []test{
	{"domain settings", testDomainSettings},
	{"scan policy", testScanPolicy},
	{"forward", testForward},
	{"forward refused", testForwardRefused},
	{"DKIM keys", testDKIMKeys},
	{"SRS secret", testSRSSecret},
}

func testDomainSettings(t *testing.T, e *env) {
	ctx := t.Context()
	if ds, err := e.s.DomainSettings(ctx, "example.com"); err != nil || ds != (store.DomainSettings{}) {
		t.Fatalf("defaults %+v, %v", ds, err)
	}
	set := func(domain string, ds store.DomainSettings) func(e *env) error {
		return func(e *env) error { return e.s.SetDomainSettings(e.t.Context(), domain, ds) }
	}
	runErrCases(t, e, []errCase{
		{"bad language", set("example.com", store.DomainSettings{Language: "fr"}), store.ErrInvalid},
		{"unknown domain", set("nope.test", store.DomainSettings{}), store.ErrNoSuchDomain},
		{"get unknown domain", func(e *env) error { _, err := e.s.DomainSettings(e.t.Context(), "nope.test"); return err }, store.ErrNoSuchDomain},
	})
	for _, lang := range []string{"", "en", "ja", "both"} {
		want := store.DomainSettings{WarningsOff: lang == "ja", Language: lang, ReportTo: "info@example.com"}
		testutil.Must(t, e.s.SetDomainSettings(ctx, "EXAMPLE.com", want))
		if ds, err := e.s.DomainSettings(ctx, "example.COM"); err != nil || ds != want {
			t.Errorf("settings %+v, %v; want %+v", ds, err, want)
		}
	}
	if ds, _ := e.s.DomainSettings(ctx, "child.example.com"); ds != (store.DomainSettings{}) {
		t.Errorf("a child domain shares its parent's settings: %+v", ds)
	}
	// A domain removed and added again starts with the defaults.
	testutil.Must(t, e.s.SetDomainSettings(ctx, "other.test", store.DomainSettings{WarningsOff: true}))
	testutil.Must(t, e.s.RemoveAccount(ctx, carol))
	testutil.Must(t, e.s.RemoveDomain(ctx, "other.test"))
	testutil.Must(t, e.s.AddDomain(ctx, "other.test", ""))
	if ds, _ := e.s.DomainSettings(ctx, "other.test"); ds != (store.DomainSettings{}) {
		t.Errorf("settings of a removed domain came back: %+v", ds)
	}
}

func testScanPolicy(t *testing.T, e *env) {
	ctx := t.Context()
	if a := e.account(info); a.Scan != (store.ScanPolicy{}).Effective() {
		t.Fatalf("default policy %+v", a.Scan)
	}
	set := func(p store.ScanPolicy) func(e *env) error {
		return func(e *env) error { return e.s.SetScanPolicy(e.t.Context(), info, p) }
	}
	runErrCases(t, e, []errCase{
		{"unknown action", set(store.ScanPolicy{Oversize: "maybe"}), store.ErrInvalid},
		{"discard encrypted", set(store.ScanPolicy{Encrypted: store.ScanDiscard}), store.ErrInvalid},
		{"reject oversize", set(store.ScanPolicy{Oversize: store.ScanReject}), store.ErrInvalid},
		{"unknown account", func(e *env) error { return e.s.SetScanPolicy(e.t.Context(), "x@example.com", store.ScanPolicy{}) }, store.ErrNoSuchAccount},
	})
	testutil.Must(t, e.s.SetScanPolicy(ctx, "INFO@example.com", store.ScanPolicy{Oversize: store.ScanAccept, Encrypted: store.ScanReject}))
	want := store.ScanPolicy{Oversize: store.ScanAccept, Depth: store.ScanDiscard, ExtractSize: store.ScanDiscard, Partial: store.ScanDiscard, Encrypted: store.ScanReject}
	if a := e.account(info); a.Scan != want {
		t.Errorf("policy %+v, want %+v (defaults filled in)", a.Scan, want)
	}
	if a := e.account(bob); a.Scan != (store.ScanPolicy{}).Effective() {
		t.Errorf("another account's policy changed: %+v", a.Scan)
	}
}

func testForward(t *testing.T, e *env) {
	ctx := t.Context()
	if f, err := e.s.GetForward(ctx, info); err != nil || len(f.Targets) != 0 {
		t.Fatalf("no rule yet: %+v, %v", f, err)
	}
	var ten []string
	for i := range store.MaxForwardTargets {
		ten = append(ten, fmt.Sprintf("t%d@remote.test", i))
	}
	e.clock.Advance(time.Minute)
	targets := append(slices.Clone(ten), " T0@Remote.Test ", ten[3])
	f, err := e.s.SetForward(ctx, "INFO@child.example.com", targets, true)
	testutil.Must(t, err)
	if !slices.Equal(f.Targets, ten) || !f.KeepCopy || !f.Updated.Equal(start.Add(time.Minute)) {
		t.Fatalf("rule %+v, want %v (normalised, without duplicates), keep copy, updated now", f, ten)
	}
	got, err := e.s.GetForward(ctx, "info@example.com")
	testutil.Must(t, err)
	if !slices.Equal(got.Targets, f.Targets) || got.KeepCopy != f.KeepCopy || !got.Updated.Equal(f.Updated) {
		t.Errorf("GetForward %+v, SetForward gave %+v", got, f)
	}
	// Local targets are allowed, other accounts' rules are their own.
	f, err = e.s.SetForward(ctx, bob, []string{"INFO@child.example.com", "carol@other.test"}, false)
	testutil.Must(t, err)
	if !slices.Equal(f.Targets, []string{"info@child.example.com", carol}) || f.KeepCopy {
		t.Errorf("local targets: %+v", f)
	}
	if got, _ := e.s.GetForward(ctx, info); len(got.Targets) != len(ten) {
		t.Errorf("info's rule changed with bob's: %+v", got)
	}
	testutil.Must(t, e.s.ClearForward(ctx, info))
	if got, _ := e.s.GetForward(ctx, info); len(got.Targets) != 0 {
		t.Errorf("cleared rule: %+v", got)
	}
	if f, err := e.s.SetForward(ctx, carol, nil, true); err != nil || len(f.Targets) != 0 {
		t.Errorf("setting no targets: %+v, %v", f, err)
	}
	// Removing the account removes its rule.
	testutil.Must(t, e.s.RemoveAccount(ctx, bob))
	testutil.Must(t, e.s.AddAccount(ctx, store.Account{Address: bob, PasswordHash: "x"}))
	if got, _ := e.s.GetForward(ctx, bob); len(got.Targets) != 0 {
		t.Errorf("rule survived the removal of its account: %+v", got)
	}
}

func testForwardRefused(t *testing.T, e *env) {
	ctx := t.Context()
	var ten []string
	for i := range store.MaxForwardTargets {
		ten = append(ten, fmt.Sprintf("t%d@remote.test", i))
	}
	before, err := e.s.SetForward(ctx, info, ten, true)
	testutil.Must(t, err)
	set := func(addr string, targets ...string) func(e *env) error {
		return func(e *env) error { _, err := e.s.SetForward(e.t.Context(), addr, targets, false); return err }
	}
	runErrCases(t, e, []errCase{
		{"too many", set(info, append(slices.Clone(ten), "k@remote.test")...), store.ErrInvalid},
		{"malformed", set(info, "not an address"), store.ErrInvalid},
		{"itself", set(info, "INFO@child.example.com"), store.ErrInvalid},
		{"no such local account", set(info, "nobody@example.com"), store.ErrInvalid},
		{"source routing", set(info, "a%b@remote.test"), store.ErrInvalid},
		{"unknown account", set("nobody@example.com", ten...), store.ErrNoSuchAccount},
		{"unknown domain", set("x@nope.test", ten...), store.ErrNoSuchDomain},
		{"get unknown account", func(e *env) error { _, err := e.s.GetForward(e.t.Context(), "x@example.com"); return err }, store.ErrNoSuchAccount},
	})
	got, err := e.s.GetForward(ctx, info)
	testutil.Must(t, err)
	if !slices.Equal(got.Targets, before.Targets) || !got.KeepCopy {
		t.Errorf("a refused change changed the rule: %+v", got)
	}
}

func testDKIMKeys(t *testing.T, e *env) {
	ctx := t.Context()
	if keys, err := e.s.DKIMKeys(ctx, "example.com"); err != nil || len(keys) != 0 {
		t.Fatalf("keys before any: %+v, %v", keys, err)
	}
	var calls atomic.Int32
	gen := func(sel string) func() ([]store.DKIMKey, error) {
		return func() ([]store.DKIMKey, error) {
			calls.Add(1)
			return []store.DKIMKey{{Selector: sel, Algorithm: "ed25519", PrivateKey: []byte("key " + sel), Created: start},
				{Selector: sel + "r", Algorithm: "rsa", PrivateKey: []byte("rsa " + sel), Created: start}}, nil
		}
	}
	same := func(a, b []store.DKIMKey) bool {
		return slices.EqualFunc(a, b, func(x, y store.DKIMKey) bool {
			return x.Selector == y.Selector && x.Algorithm == y.Algorithm && bytes.Equal(x.PrivateKey, y.PrivateKey) && x.Created.Equal(y.Created)
		})
	}
	want, _ := gen("y1")()
	calls.Store(0)
	// Racing first uses store one set of keys, and all get it.
	got := make([][]store.DKIMKey, 8)
	errs := parallel(len(got), func(i int) error {
		var err error
		got[i], err = e.s.EnsureDKIMKeys(ctx, "Example.com", gen(fmt.Sprint("y", i)))
		return err
	})
	for i, err := range errs {
		testutil.Must(t, err)
		if !same(got[i], got[0]) || len(got[i]) != 2 {
			t.Fatalf("EnsureDKIMKeys gave %+v to one caller and %+v to another", got[i], got[0])
		}
	}
	stored, err := e.s.DKIMKeys(ctx, "EXAMPLE.com")
	testutil.Must(t, err)
	if !same(stored, got[0]) {
		t.Errorf("stored %+v, handed out %+v", stored, got[0])
	}
	// Once stored, generate is not called again.
	calls.Store(0)
	again, err := e.s.EnsureDKIMKeys(ctx, "example.com", gen("other"))
	testutil.Must(t, err)
	if !same(again, stored) || calls.Load() != 0 {
		t.Errorf("second EnsureDKIMKeys: %+v, generate called %d times", again, calls.Load())
	}
	// Domains have their own keys; a failing generate stores nothing.
	if keys, err := e.s.EnsureDKIMKeys(ctx, "other.test", gen("y1")); err != nil || !same(keys, want) {
		t.Errorf("other.test keys %+v, %v", keys, err)
	}
	boom := errors.New("no entropy")
	if _, err := e.s.EnsureDKIMKeys(ctx, "child.example.com", func() ([]store.DKIMKey, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("failing generate: %v", err)
	}
	if keys, _ := e.s.DKIMKeys(ctx, "child.example.com"); len(keys) != 0 {
		t.Errorf("keys after a failing generate: %+v", keys)
	}
	if _, err := e.s.EnsureDKIMKeys(ctx, "nope.test", gen("x")); !is(err, store.ErrNoSuchDomain) {
		t.Errorf("keys for an unknown domain: %v", err)
	}
	e.restart()
	if keys, err := e.s.DKIMKeys(ctx, "example.com"); err != nil || !same(keys, stored) {
		t.Errorf("keys after restart %+v, %v", keys, err)
	}
}

func testSRSSecret(t *testing.T, e *env) {
	keys := make([][]byte, 8)
	errs := parallel(len(keys), func(i int) error {
		var err error
		keys[i], err = e.s.SRSSecret(e.t.Context())
		return err
	})
	for i, err := range errs {
		testutil.Must(t, err)
		if len(keys[i]) < 16 || !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("SRS secrets %x and %x", keys[i], keys[0])
		}
	}
	e.restart()
	if k, err := e.s.SRSSecret(t.Context()); err != nil || !bytes.Equal(k, keys[0]) {
		t.Errorf("SRS secret after restart %x, %v; was %x", k, err, keys[0])
	}
}
