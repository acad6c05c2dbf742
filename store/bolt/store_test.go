package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"yubin/store"
)

func openTest(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "y.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func setup(t testing.TB, s *Store) {
	t.Helper()
	must(t, s.AddDomain(t.Context(), "example.com", ""))
	must(t, s.AddDomain(t.Context(), "child.example.com", "example.com"))
	must(t, s.AddDomain(t.Context(), "other.test", ""))
	for _, a := range []string{"info@example.com", "bob@example.com", "carol@other.test"} {
		must(t, s.AddAccount(t.Context(), store.Account{Address: a, PasswordHash: "x", Quota: 1 << 20}))
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestDomainsAndAccounts(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	if err := s.AddDomain(t.Context(), "example.com", ""); !errors.Is(err, store.ErrExists) {
		t.Errorf("duplicate domain: %v", err)
	}
	if err := s.AddDomain(t.Context(), "x.child.example.com", "child.example.com"); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("child of child: %v", err)
	}
	if err := s.AddDomain(t.Context(), "y.example.com", "nope.test"); !errors.Is(err, store.ErrNoSuchDomain) {
		t.Errorf("unknown parent: %v", err)
	}
	if err := s.AddAccount(t.Context(), store.Account{Address: "info@example.com", PasswordHash: "x"}); !errors.Is(err, store.ErrExists) {
		t.Errorf("duplicate account: %v", err)
	}
	if err := s.AddAccount(t.Context(), store.Account{Address: "x@child.example.com", PasswordHash: "x"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("account on child: %v", err)
	}
	if err := s.AddAccount(t.Context(), store.Account{Address: "x@unknown.test", PasswordHash: "x"}); !errors.Is(err, store.ErrNoSuchDomain) {
		t.Errorf("account on unknown domain: %v", err)
	}
	if err := s.RemoveDomain(t.Context(), "example.com"); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("remove domain with children: %v", err)
	}
	for in, want := range map[string]string{"INFO@Child.Example.com": "info@example.com", "bob@example.com": "bob@example.com"} {
		got, err := s.Resolve(t.Context(), in)
		if err != nil || got != want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := s.Resolve(t.Context(), "nobody@example.com"); !errors.Is(err, store.ErrNoSuchAccount) {
		t.Errorf("unknown user: %v", err)
	}
	if _, err := s.Resolve(t.Context(), "info@elsewhere.test"); !errors.Is(err, store.ErrNoSuchDomain) {
		t.Errorf("remote: %v", err)
	}
	boxes, err := s.Mailboxes(t.Context(), "info@example.com")
	must(t, err)
	var names []string
	for _, b := range boxes {
		names = append(names, b.Name)
	}
	if fmt.Sprint(names) != "[INBOX Drafts Junk Sent Trash]" {
		t.Errorf("mailboxes %v", names)
	}
}

func TestDeliverReadFlagsExpunge(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	ctx := context.Background()
	sub := s.Subscribe(ctx, "bob@example.com", 10)
	defer sub.Close()
	big := bytes.Repeat([]byte("0123456789abcdef"), 3*chunkSize/16+7)
	msg := append([]byte("Subject: hi\r\n\r\n"), big...)
	got, err := s.Deliver(ctx, store.Delivery{Recipients: []string{"info@example.com", "bob@example.com", "BOB@example.com"}, Message: msg})
	must(t, err)
	if len(got) != 2 || got[0].UID != 1 || got[1].UID != 1 {
		t.Fatalf("delivered %+v", got)
	}
	ev := <-sub.C
	if ev.Kind != store.EventNew || ev.Mailbox != "INBOX" || ev.UID != 1 {
		t.Fatalf("event %+v", ev)
	}
	raw, err := s.ReadMessage(ctx, "bob@example.com", "inbox", 1)
	must(t, err)
	if !bytes.Equal(raw, msg) {
		t.Fatal("message differs")
	}
	msgs, box, err := s.Messages(ctx, "info@example.com", "INBOX")
	must(t, err)
	if len(msgs) != 1 || msgs[0].Size != int64(len(msg)) || msgs[0].HeaderSize != 15 || box.UIDNext != 2 {
		t.Fatalf("messages %+v box %+v", msgs, box)
	}
	ms, err := s.SetFlags(ctx, "info@example.com", "INBOX", []uint32{1, 99}, store.FlagsAdd, []string{`\seen`, "$Work"})
	must(t, err)
	if len(ms) != 1 || fmt.Sprint(ms[0].Flags) != `[$Work \Seen]` {
		t.Fatalf("flags %+v", ms)
	}
	a, _ := s.Account(ctx, "info@example.com")
	if a.Used != int64(len(msg)) {
		t.Fatalf("used %d", a.Used)
	}
	uids, err := s.Expunge(ctx, "info@example.com", "INBOX", []uint32{1})
	must(t, err)
	if len(uids) != 1 {
		t.Fatal(uids)
	}
	a, _ = s.Account(ctx, "info@example.com")
	if a.Used != 0 {
		t.Fatalf("used after expunge %d", a.Used)
	}
	// bob still has the shared blob.
	r, _, err := s.OpenMessage(ctx, "bob@example.com", "INBOX", 1)
	must(t, err)
	raw, _ = io.ReadAll(r)
	if !bytes.Equal(raw, msg) {
		t.Fatal("bob's copy damaged by info's expunge")
	}
	// A new message gets UID 2: UIDs are never reused.
	got, err = s.Deliver(ctx, store.Delivery{Recipients: []string{"info@example.com"}, Message: []byte("a\r\n\r\nb")})
	must(t, err)
	if got[0].UID != 2 {
		t.Fatalf("uid reused: %+v", got)
	}
	must(t, s.RemoveAccount(ctx, "bob@example.com"))
	p, err := s.Verify(ctx)
	must(t, err)
	if len(p) > 0 {
		t.Fatal(p)
	}
}

func TestQuota(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	must(t, s.SetQuota(t.Context(), "bob@example.com", 100))
	ctx := context.Background()
	_, err := s.Deliver(ctx, store.Delivery{Recipients: []string{"info@example.com", "bob@example.com"}, Message: bytes.Repeat([]byte("x"), 101)})
	var qe *store.QuotaError
	if !errors.As(err, &qe) || qe.Account != "bob@example.com" {
		t.Fatalf("want quota error for bob, got %v", err)
	}
	// All or nothing: info got nothing either.
	if a, _ := s.Account(ctx, "info@example.com"); a.Used != 0 {
		t.Fatalf("info used %d", a.Used)
	}
	_, err = s.Deliver(ctx, store.Delivery{Recipients: []string{"bob@example.com"}, Message: bytes.Repeat([]byte("x"), 100)})
	must(t, err)
	if a, _ := s.Account(ctx, "bob@example.com"); a.Used != 100 {
		t.Fatalf("bob used %d", a.Used)
	}
}

// Concurrent deliveries share commits, and a failing one in a batch does not
// take the others down.
func TestGroupCommit(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	must(t, s.SetQuota(t.Context(), "carol@other.test", 10))
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rcpt := "info@example.com"
			if i%10 == 0 {
				rcpt = "carol@other.test" // over quota
			}
			_, err := s.Deliver(ctx, store.Delivery{Recipients: []string{rcpt}, Message: []byte(fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i))})
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	var ok, quota int
	for err := range errs {
		var qe *store.QuotaError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &qe):
			quota++
		default:
			t.Fatal(err)
		}
	}
	if ok != 180 || quota != 20 {
		t.Fatalf("ok %d quota %d", ok, quota)
	}
	st := s.Stats()
	if st.Deliveries != 180 {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("%d deliveries in %d commits", st.Deliveries, st.Commits)
	p, _ := s.Verify(ctx)
	if len(p) > 0 {
		t.Fatal(p)
	}
}

func TestReopenKeepsUIDs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "y.db")
	s, err := Open(path, Options{})
	must(t, err)
	setup(t, s)
	ctx := context.Background()
	d, err := s.Deliver(ctx, store.Delivery{Recipients: []string{"info@example.com"}, Message: []byte("x\r\n\r\ny")})
	must(t, err)
	if _, err := Open(path, Options{LockTimeout: 50 * time.Millisecond}); !errors.Is(err, store.ErrInUse) {
		t.Fatalf("second open: %v", err)
	}
	must(t, s.Close())
	s, err = Open(path, Options{})
	must(t, err)
	defer s.Close()
	d2, err := s.Deliver(ctx, store.Delivery{Recipients: []string{"info@example.com"}, Message: []byte("x\r\n\r\ny")})
	must(t, err)
	if d2[0].UIDValidity != d[0].UIDValidity || d2[0].UID != 2 {
		t.Fatalf("%+v then %+v", d, d2)
	}
}

func TestScanPolicyAndStops(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	a, _ := s.Account(t.Context(), "info@example.com")
	if a.Scan.Depth != store.ScanDiscard || a.Scan.Encrypted != store.ScanAccept {
		t.Fatalf("default policy %+v", a.Scan)
	}
	if err := s.SetScanPolicy(t.Context(), "info@example.com", store.ScanPolicy{Oversize: "maybe"}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad action: %v", err)
	}
	if err := s.SetScanPolicy(t.Context(), "info@example.com", store.ScanPolicy{Encrypted: store.ScanDiscard}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("encrypted=discard: %v", err)
	}
	must(t, s.SetScanPolicy(t.Context(), "info@example.com", store.ScanPolicy{Oversize: store.ScanAccept, Encrypted: store.ScanReject}))
	a, _ = s.Account(t.Context(), "info@example.com")
	if a.Scan.Oversize != store.ScanAccept || a.Scan.Partial != store.ScanDiscard || a.Scan.Encrypted != store.ScanReject {
		t.Fatalf("policy %+v", a.Scan)
	}

	ctx := context.Background()
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for i, d := range []string{"example.com", "other.test", "example.com"} {
		must(t, s.RecordStop(ctx, store.Stop{Time: t0.Add(time.Duration(i) * time.Hour), Direction: "inbound", Domains: []string{d}, Reasons: []string{"virus"}, Virus: "Eicar-Test-Signature"}))
	}
	got, err := s.Stops(ctx, t0, t0.Add(24*time.Hour), "EXAMPLE.com")
	must(t, err)
	if len(got) != 2 || !got[0].Time.Equal(t0) || !got[1].Time.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("stops %+v", got)
	}
	if got, _ := s.Stops(ctx, t0.Add(time.Minute), t0.Add(2*time.Hour), ""); len(got) != 1 {
		t.Fatalf("window: %+v", got)
	}
	n, err := s.PruneStops(ctx, t0.Add(90*time.Minute))
	must(t, err)
	if all, _ := s.Stops(ctx, time.Time{}, t0.Add(48*time.Hour), ""); n != 2 || len(all) != 1 {
		t.Fatalf("pruned %d, left %d", n, len(all))
	}
}

func TestDeliverBatch(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	must(t, s.SetQuota(t.Context(), "bob@example.com", 150))
	ctx := context.Background()
	// bob gets two different contents: 100 + 100 > 150, so nothing at all.
	_, err := s.DeliverBatch(ctx, []store.Delivery{
		{Recipients: []string{"info@example.com", "bob@example.com"}, Message: bytes.Repeat([]byte("a"), 100)},
		{Recipients: []string{"bob@example.com"}, Mailbox: "Junk", Message: bytes.Repeat([]byte("b"), 100)},
	})
	var qe *store.QuotaError
	if !errors.As(err, &qe) || qe.Account != "bob@example.com" || qe.Need != 200 {
		t.Fatalf("want bob's quota error for 200 bytes, got %v", err)
	}
	if a, _ := s.Account(ctx, "info@example.com"); a.Used != 0 {
		t.Fatal("partial batch delivered")
	}
	got, err := s.DeliverBatch(ctx, []store.Delivery{
		{Recipients: []string{"info@example.com"}, Message: []byte("x\r\n\r\nfor info")},
		{Recipients: []string{"bob@example.com"}, Mailbox: "Junk", Message: []byte("x\r\n\r\nfor bob")},
	})
	must(t, err)
	if len(got) != 2 || got[1].Mailbox != "Junk" {
		t.Fatalf("%+v", got)
	}
	raw, _ := s.ReadMessage(ctx, "bob@example.com", "Junk", 1)
	if string(raw) != "x\r\n\r\nfor bob" {
		t.Fatalf("bob's copy %q", raw)
	}
	if p, _ := s.Verify(ctx); len(p) > 0 {
		t.Fatal(p)
	}
}

func TestDomainSettingsOnceAndQuotaWarning(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	ds, err := s.DomainSettings(t.Context(), "example.com")
	must(t, err)
	if ds != (store.DomainSettings{}) {
		t.Fatalf("defaults %+v", ds)
	}
	if err := s.SetDomainSettings(t.Context(), "example.com", store.DomainSettings{Language: "fr"}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad language: %v", err)
	}
	must(t, s.SetDomainSettings(t.Context(), "example.com", store.DomainSettings{WarningsOff: true, Language: "ja", ReportTo: "info@example.com"}))
	if ds, _ = s.DomainSettings(t.Context(), "EXAMPLE.com"); !ds.WarningsOff || ds.Language != "ja" || ds.ReportTo != "info@example.com" {
		t.Fatalf("settings %+v", ds)
	}
	// A domain removed and added again starts with the defaults.
	must(t, s.SetDomainSettings(t.Context(), "other.test", store.DomainSettings{WarningsOff: true}))
	must(t, s.RemoveAccount(t.Context(), "carol@other.test"))
	must(t, s.RemoveDomain(t.Context(), "other.test"))
	must(t, s.AddDomain(t.Context(), "other.test", ""))
	if ds, _ = s.DomainSettings(t.Context(), "other.test"); ds.WarningsOff {
		t.Fatal("old settings came back")
	}

	ctx := context.Background()
	d := store.Delivery{Recipients: []string{"info@example.com"}, Message: []byte("Subject: report\r\n\r\nx\r\n")}
	for i, want := range []bool{true, false, false} {
		ok, err := s.DeliverOnce(ctx, "report/example.com/2026-11-25", d)
		must(t, err)
		if ok != want {
			t.Fatalf("DeliverOnce #%d = %v", i, ok)
		}
	}
	if msgs, _, _ := s.Messages(ctx, "info@example.com", "INBOX"); len(msgs) != 1 {
		t.Fatalf("%d reports", len(msgs))
	}

	must(t, s.SetQuota(ctx, "bob@example.com", 1000))
	check := func(want bool) {
		t.Helper()
		got, _, err := s.CheckQuotaWarning(ctx, "bob@example.com", 90)
		must(t, err)
		if got != want {
			t.Fatalf("crossed = %v, want %v", got, want)
		}
	}
	deliver := func(n int) []store.Delivered {
		got, err := s.Deliver(ctx, store.Delivery{Recipients: []string{"bob@example.com"}, Message: bytes.Repeat([]byte("x"), n)})
		must(t, err)
		return got
	}
	deliver(800)
	check(false)
	deliver(100) // 900 of 1000: crossed
	check(true)
	check(false) // once per crossing
	uid := deliver(50)[0].UID
	check(false)
	_, err = s.Expunge(ctx, "bob@example.com", "INBOX", []uint32{uid, 2})
	must(t, err)
	check(false) // 800: below again
	deliver(150)
	check(true) // crossed again
}

// Writes racing with Close either commit or fail with ErrClosed; none hangs.
func TestWritesRacingClose(t *testing.T) {
	for round := 0; round < 20; round++ {
		s, err := Open(filepath.Join(t.TempDir(), "y.db"), Options{NoSync: true})
		must(t, err)
		setup(t, s)
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < 50; j++ {
					_, err := s.Deliver(context.Background(), store.Delivery{Recipients: []string{"info@example.com"}, Message: []byte("x\r\n\r\ny")})
					if err != nil && !errors.Is(err, store.ErrClosed) {
						t.Error(err)
						return
					}
				}
			}()
		}
		s.Close()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("a write hangs after Close")
		}
	}
}
