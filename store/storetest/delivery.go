package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"yubin/internal/testutil"
	"yubin/store"
)

// Delivery and quota: Deliver, DeliverBatch, DeliverOnce, usage.
var deliveryTests = []test{
	{"deliver and read", testDeliverAndRead},
	{"header over body", testHeaderOverBody},
	{"tail from a file", testTail},
	{"deliver errors", testDeliverErrors},
	{"deliver batch", testDeliverBatch},
	{"quota", testQuota},
	{"quota under concurrent deliveries", testQuotaConcurrent},
	{"usage is exact", testUsageExact},
	{"deliver once", testDeliverOnce},
	{"deliver once concurrently", testDeliverOnceConcurrent},
	{"quota warning", testQuotaWarning},
}

func testDeliverAndRead(t *testing.T, e *env) {
	ctx := t.Context()
	// Big enough to be stored in pieces by any backend that does.
	msg := append([]byte("Subject: hi\r\n\r\n"), bytes.Repeat([]byte("0123456789abcdef"), 1<<14+7)...)
	got, err := e.s.Deliver(ctx, store.Delivery{Recipients: []string{"INFO@example.com", bob, "BOB@example.com"}, Message: msg})
	testutil.Must(t, err)
	inbox := e.mailbox(info, "INBOX")
	if want := []store.Delivered{
		{Account: info, Mailbox: "INBOX", UIDValidity: inbox.UIDValidity, UID: 1},
		{Account: bob, Mailbox: "INBOX", UIDValidity: e.mailbox(bob, "INBOX").UIDValidity, UID: 1},
	}; !slices.Equal(got, want) {
		t.Fatalf("delivered %+v, want %+v (once per account)", got, want)
	}
	if raw := e.read(bob, "inbox", 1); !bytes.Equal(raw, msg) {
		t.Fatal("message read back differs")
	}
	r, m, err := e.s.OpenMessage(ctx, info, "INBOX", 1)
	testutil.Must(t, err)
	raw, err := io.ReadAll(r)
	testutil.Must(t, err)
	testutil.Must(t, r.Close())
	if !bytes.Equal(raw, msg) {
		t.Fatal("message streamed back differs")
	}
	want := store.MessageInfo{UID: 1, Size: int64(len(msg)), HeaderSize: 15, Date: start}
	if !m.Date.Equal(want.Date) || m.UID != want.UID || m.Size != want.Size || m.HeaderSize != want.HeaderSize || len(m.Flags) != 0 {
		t.Errorf("OpenMessage: %+v, want %+v", m, want)
	}
	msgs, box, err := e.s.Messages(ctx, info, "INBOX")
	testutil.Must(t, err)
	if len(msgs) != 1 || msgs[0].Size != want.Size || msgs[0].HeaderSize != 15 || !msgs[0].Date.Equal(start) {
		t.Errorf("Messages: %+v, want %+v", msgs, want)
	}
	if box.UIDNext != 2 || box.Messages != 1 || box.Size != want.Size {
		t.Errorf("mailbox after delivery: %+v", box)
	}
	if a := e.account(info); a.Used != want.Size {
		t.Errorf("usage %d, want %d", a.Used, want.Size)
	}

	// An APPEND: a mailbox, flags and an internal date of its own.
	date := time.Date(2020, 2, 29, 23, 59, 58, 0, time.FixedZone("", 9*3600))
	got, err = e.s.Deliver(ctx, store.Delivery{Recipients: []string{info}, Mailbox: "Sent", Flags: []string{`\SEEN`, "$Work", `\seen`}, Date: date, Message: []byte("x\r\n\r\ny")})
	testutil.Must(t, err)
	if got[0].Mailbox != "Sent" || got[0].UID != 1 {
		t.Errorf("appended %+v", got)
	}
	msgs, _, err = e.s.Messages(ctx, info, "Sent")
	testutil.Must(t, err)
	if len(msgs) != 1 || !msgs[0].Date.Equal(date) || !slices.Equal(msgs[0].Flags, []string{"$Work", `\Seen`}) || msgs[0].HeaderSize != 5 {
		t.Errorf("appended message %+v: want its date, flags sorted and canonical", msgs)
	}
	// Empty message and header-only message.
	for _, raw := range []string{"", "Subject: no body"} {
		d := e.deliver(carol, "", []byte(raw))
		if got := e.read(carol, "INBOX", d.UID); string(got) != raw {
			t.Errorf("read %q back as %q", raw, got)
		}
	}
}

// A delivery's Header goes on top of its Message: per-recipient fields
// over one body, each copy read back whole and counted whole.
func testHeaderOverBody(t *testing.T, e *env) {
	ctx := t.Context()
	msg := append([]byte("Subject: shared\r\n\r\n"), bytes.Repeat([]byte("b"), 100000)...)
	hdrs := map[string][]byte{info: []byte("Delivered-To: info@example.com\r\n"), bob: []byte("Delivered-To: bob@example.com\r\nX-Spam: no\r\n"), carol: nil}
	var ds []store.Delivery
	for _, a := range []string{info, bob, carol} {
		ds = append(ds, store.Delivery{Recipients: []string{a}, Header: hdrs[a], Message: msg})
	}
	got, err := e.s.DeliverBatch(ctx, ds)
	testutil.Must(t, err)
	for i, d := range got {
		want := append(slices.Clone(hdrs[d.Account]), msg...)
		if raw := e.read(d.Account, "INBOX", d.UID); !bytes.Equal(raw, want) {
			t.Errorf("%s reads %d bytes, want its header and the body, %d", d.Account, len(raw), len(want))
		}
		m, _, err := e.s.MessagesByUID(ctx, d.Account, "INBOX", []uint32{d.UID})
		testutil.Must(t, err)
		if n := int64(len(want)); m[0].Size != n || m[0].HeaderSize != int64(len(hdrs[d.Account]))+19 || ds[i].Size() != n {
			t.Errorf("%s: size %d, header %d; want %d and %d", d.Account, m[0].Size, m[0].HeaderSize, n, len(hdrs[d.Account])+19)
		}
		if a := e.account(d.Account); a.Used != int64(len(want)) {
			t.Errorf("%s uses %d, want %d", d.Account, a.Used, len(want))
		}
	}
	if _, err := e.s.Deliver(ctx, store.Delivery{Recipients: []string{info}, Header: []byte("X-No-CRLF: 1"), Message: msg}); !is(err, store.ErrInvalid) {
		t.Errorf("a header without its CRLF: %v", err)
	}
}

// A delivery's or outbound copy's Tail (a big message read from its spool
// file) follows Header and Message, read back whole and counted whole;
// Message must then hold the whole header section.
func testTail(t *testing.T, e *env) {
	ctx := t.Context()
	head := []byte("Received: x\r\nSubject: big\r\n\r\n")
	body := bytes.Repeat([]byte("0123456789abcdef\r\n"), 12000) // 216,000 bytes
	tail := io.NewSectionReader(bytes.NewReader(body), 0, int64(len(body)))
	hdr := []byte("Delivered-To: info@example.com\r\n")
	got, err := e.s.Deliver(ctx, store.Delivery{Recipients: []string{info}, Header: hdr, Message: head, Tail: tail})
	testutil.Must(t, err)
	want := append(append(slices.Clone(hdr), head...), body...)
	if raw := e.read(info, "INBOX", got[0].UID); !bytes.Equal(raw, want) {
		t.Fatalf("read %d bytes back, want %d", len(raw), len(want))
	}
	m, _, err := e.s.MessagesByUID(ctx, info, "INBOX", []uint32{got[0].UID})
	testutil.Must(t, err)
	if m[0].Size != int64(len(want)) || m[0].HeaderSize != int64(len(hdr)+len(head)) {
		t.Errorf("size %d, header %d; want %d and %d", m[0].Size, m[0].HeaderSize, len(want), len(hdr)+len(head))
	}
	if a := e.account(info); a.Used != int64(len(want)) {
		t.Errorf("usage %d, want %d", a.Used, len(want))
	}
	_, ids, err := e.s.DeliverAndQueue(ctx, nil, []store.Outbound{{QueueID: "Q", From: info,
		Recipients: []string{"a@one.test", "b@two.test"}, Origin: store.OriginForward, Message: head, Tail: tail}})
	testutil.Must(t, err)
	for _, id := range ids {
		raw, q, err := e.s.ReadQueued(ctx, id)
		testutil.Must(t, err)
		if !bytes.Equal(raw, want[len(hdr):]) || q.Size != int64(len(raw)) {
			t.Errorf("queued %d bytes (size %d), want %d", len(raw), q.Size, len(want)-len(hdr))
		}
	}
	open := io.NewSectionReader(bytes.NewReader(body), 0, int64(len(body)))
	if _, err := e.s.Deliver(ctx, store.Delivery{Recipients: []string{info}, Message: []byte("X-Header: not ended\r\n"), Tail: open}); !is(err, store.ErrInvalid) {
		t.Errorf("a tail with the header section not ended in Message: %v", err)
	}
}

func testDeliverErrors(t *testing.T, e *env) {
	deliver := func(d store.Delivery) func(e *env) error {
		if d.Message == nil {
			d.Message = body(0)
		}
		return func(e *env) error { _, err := e.s.Deliver(e.t.Context(), d); return err }
	}
	runErrCases(t, e, []errCase{
		{"no recipients", deliver(store.Delivery{}), store.ErrInvalid},
		{"unknown account", deliver(store.Delivery{Recipients: []string{info, "nobody@example.com"}}), store.ErrNoSuchAccount},
		{"unknown mailbox", deliver(store.Delivery{Recipients: []string{info}, Mailbox: "Nope"}), store.ErrNoSuchMailbox},
		{"bad flag", deliver(store.Delivery{Recipients: []string{info}, Flags: []string{"a b"}}), store.ErrInvalid},
		{"unknown system flag", deliver(store.Delivery{Recipients: []string{info}, Flags: []string{`\Nope`}}), store.ErrInvalid},
		{"over quota", deliver(store.Delivery{Recipients: []string{info, bob}, Message: make([]byte, fixtureQuota+1)}), errQuota},
		{"empty batch", func(e *env) error { _, err := e.s.DeliverBatch(e.t.Context(), nil); return err }, store.ErrInvalid},
		{"read missing", func(e *env) error { _, err := e.s.ReadMessage(e.t.Context(), info, "INBOX", 1); return err }, store.ErrNoSuchMessage},
		{"open missing", func(e *env) error { _, _, err := e.s.OpenMessage(e.t.Context(), info, "INBOX", 1); return err }, store.ErrNoSuchMessage},
		{"list unknown mailbox", func(e *env) error { _, _, err := e.s.Messages(e.t.Context(), info, "Nope"); return err }, store.ErrNoSuchMailbox},
		{"list unknown account", func(e *env) error { _, _, err := e.s.Messages(e.t.Context(), "x@example.com", "INBOX"); return err }, store.ErrNoSuchAccount},
	})
	// All or nothing: the good recipients got nothing either.
	for _, a := range []string{info, bob} {
		if acct := e.account(a); acct.Used != 0 {
			t.Errorf("%s has %d bytes after failed deliveries", a, acct.Used)
		}
	}
}

func testDeliverBatch(t *testing.T, e *env) {
	ctx := t.Context()
	testutil.Must(t, e.s.SetQuota(ctx, bob, 150))
	// bob gets two different messages: 100 + 100 > 150, so nothing at all.
	_, err := e.s.DeliverBatch(ctx, []store.Delivery{
		{Recipients: []string{info, bob}, Message: bytes.Repeat([]byte("a"), 100)},
		{Recipients: []string{bob}, Mailbox: "Junk", Message: bytes.Repeat([]byte("b"), 100)},
	})
	var qe *store.QuotaError
	if !errors.As(err, &qe) || qe.Account != bob || qe.Quota != 150 || qe.Used != 0 || qe.Need != 200 {
		t.Fatalf("want bob's quota error for 200 bytes, got %v", err)
	}
	if a := e.account(info); a.Used != 0 {
		t.Fatal("part of a failed batch was delivered")
	}
	// One bad delivery spoils the batch too.
	_, err = e.s.DeliverBatch(ctx, []store.Delivery{
		{Recipients: []string{info}, Message: body(1)},
		{Recipients: []string{bob}, Mailbox: "Nope", Message: body(2)},
	})
	if !is(err, store.ErrNoSuchMailbox) || e.account(info).Used != 0 {
		t.Fatalf("batch with a missing mailbox: %v", err)
	}
	got, err := e.s.DeliverBatch(ctx, []store.Delivery{
		{Recipients: []string{info}, Message: []byte("x\r\n\r\nfor info")},
		{Recipients: []string{bob}, Mailbox: "Junk", Message: []byte("x\r\n\r\nfor bob")},
		{Recipients: []string{info}, Message: []byte("x\r\n\r\nfor info again")},
	})
	testutil.Must(t, err)
	if len(got) != 3 || got[0].UID != 1 || got[1].Mailbox != "Junk" || got[2].UID != 2 {
		t.Fatalf("delivered %+v", got)
	}
	for _, c := range []struct {
		acct, box string
		uid       uint32
		want      string
	}{{bob, "Junk", 1, "x\r\n\r\nfor bob"}, {info, "INBOX", 1, "x\r\n\r\nfor info"}, {info, "INBOX", 2, "x\r\n\r\nfor info again"}} {
		if raw := e.read(c.acct, c.box, c.uid); string(raw) != c.want {
			t.Errorf("%s/%s %d reads %q, want %q", c.acct, c.box, c.uid, raw, c.want)
		}
	}
}

func testQuota(t *testing.T, e *env) {
	ctx := t.Context()
	testutil.Must(t, e.s.SetQuota(ctx, bob, 100))
	_, err := e.s.Deliver(ctx, store.Delivery{Recipients: []string{info, bob}, Message: bytes.Repeat([]byte("x"), 101)})
	var qe *store.QuotaError
	if !errors.As(err, &qe) || qe.Account != bob || qe.Quota != 100 || qe.Used != 0 || qe.Need != 101 {
		t.Fatalf("want a quota error for bob, got %v", err)
	}
	if a := e.account(info); a.Used != 0 {
		t.Fatalf("info got %d bytes of a delivery that failed for bob", a.Used)
	}
	// Exactly full is allowed; one byte more is not.
	e.deliver(bob, "", bytes.Repeat([]byte("x"), 60))
	e.deliver(bob, "", bytes.Repeat([]byte("x"), 40))
	if a := e.account(bob); a.Used != 100 {
		t.Fatalf("bob uses %d, want 100", a.Used)
	}
	if _, err := e.s.Deliver(ctx, store.Delivery{Recipients: []string{bob}, Message: []byte("x")}); !is(err, errQuota) {
		t.Fatalf("one byte over quota: %v", err)
	}
	// A quota below usage is allowed; the account then takes nothing new.
	testutil.Must(t, e.s.SetQuota(ctx, bob, 50))
	if _, err := e.s.Deliver(ctx, store.Delivery{Recipients: []string{bob}, Message: []byte("x")}); !is(err, errQuota) {
		t.Fatalf("delivery over a lowered quota: %v", err)
	}
	// Expunging frees the space.
	_, err = e.s.Expunge(ctx, bob, "INBOX", []uint32{1})
	testutil.Must(t, err)
	e.deliver(bob, "", bytes.Repeat([]byte("x"), 10))
	if a := e.account(bob); a.Used != 50 {
		t.Fatalf("bob uses %d, want 50", a.Used)
	}
	// 0 is unlimited.
	testutil.Must(t, e.s.SetQuota(ctx, bob, 0))
	e.deliver(bob, "", make([]byte, 2*fixtureQuota))
}

// Concurrent deliveries to a nearly full account: each is all or nothing,
// and exactly as many fit as the quota allows.
func testQuotaConcurrent(t *testing.T, e *env) {
	ctx := t.Context()
	testutil.Must(t, e.s.SetQuota(ctx, info, 1000))
	testutil.Must(t, e.s.SetQuota(ctx, bob, 0))
	testutil.Must(t, e.s.SetQuota(ctx, carol, 10))
	deliveries := e.s.Stats().Deliveries
	const n = 60
	errs := parallel(n, func(i int) error {
		rcpts := []string{info, bob}
		if i%6 == 0 {
			rcpts = []string{carol} // never fits
		}
		_, err := e.s.Deliver(ctx, store.Delivery{Recipients: rcpts, Message: fmt.Appendf(nil, "%0100d", i)})
		return err
	})
	ok, full := 0, 0
	for i, err := range errs {
		var qe *store.QuotaError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &qe) && (qe.Account == info || i%6 == 0 && qe.Account == carol):
			full++
		default:
			t.Errorf("delivery %d: %v", i, err)
		}
	}
	if ok != 10 || full != n-10 {
		t.Errorf("%d deliveries fit and %d did not; want 10 and %d", ok, full, n-10)
	}
	if a := e.account(info); a.Used != 1000 {
		t.Errorf("info uses %d of 1000", a.Used)
	}
	if got := e.uids(bob, "INBOX"); len(got) != 10 {
		t.Errorf("bob got %d messages, want the 10 that fitted info's quota", len(got))
	}
	if a := e.account(carol); a.Used != 0 {
		t.Errorf("carol uses %d of 10", a.Used)
	}
	if got := e.s.Stats().Deliveries - deliveries; got != 10 {
		t.Errorf("Stats().Deliveries went up by %d, want 10", got)
	}
}

// Usage follows every operation that adds or removes a message, to the
// byte (env.check compares it with the messages after the test, too).
func testUsageExact(t *testing.T, e *env) {
	ctx := t.Context()
	used := int64(0)
	step := func(what string, delta int64, fn func() error) {
		t.Helper()
		testutil.Must(t, fn())
		used += delta
		if a := e.account(info); a.Used != used {
			t.Fatalf("after %s: usage %d, want %d", what, a.Used, used)
		}
	}
	m1, m2, m3 := body(1), []byte("Subject: longer\r\n\r\nsome more text\r\n"), bytes.Repeat([]byte("z"), 70000)
	n1, n2, n3 := int64(len(m1)), int64(len(m2)), int64(len(m3))
	deliver := func(ds ...store.Delivery) func() error {
		return func() error { _, err := e.s.DeliverBatch(ctx, ds); return err }
	}
	_, err := e.s.CreateMailbox(ctx, info, "Box")
	testutil.Must(t, err)
	step("deliver", n1, deliver(store.Delivery{Recipients: []string{info, bob}, Message: m1}))
	step("append", n2, deliver(store.Delivery{Recipients: []string{info}, Mailbox: "Sent", Flags: []string{`\Seen`}, Message: m2}))
	step("batch", n3+n1, deliver(store.Delivery{Recipients: []string{info}, Message: m3}, store.Delivery{Recipients: []string{info}, Mailbox: "Box", Message: m1}))
	step("copy", n1+n3, func() error { _, err := e.s.CopyMessages(ctx, info, "INBOX", "Box", []uint32{1, 2}); return err })
	step("move", 0, func() error { _, err := e.s.MoveMessages(ctx, info, "Box", "Trash", []uint32{1, 2}); return err })
	step("flags", 0, func() error {
		_, err := e.s.SetFlags(ctx, info, "Trash", []uint32{1, 2}, store.FlagsAdd, []string{`\Deleted`})
		return err
	})
	step("expunge", -n1, func() error { _, err := e.s.Expunge(ctx, info, "Trash", []uint32{1}); return err })
	step("expunge again", 0, func() error { _, err := e.s.Expunge(ctx, info, "Trash", []uint32{1}); return err })
	step("rename", 0, func() error { return e.s.RenameMailbox(ctx, info, "Trash", "Bin") })
	step("deliver and queue", n2, func() error {
		_, _, err := e.s.DeliverAndQueue(ctx, []store.Delivery{{Recipients: []string{info}, Message: m2}},
			[]store.Outbound{{From: info, Recipients: []string{"x@remote.test"}, Message: m3}})
		return err
	})
	step("delete mailbox", -n3, func() error { return e.s.DeleteMailbox(ctx, info, "Box") })
	step("rename INBOX", 0, func() error { return e.s.RenameMailbox(ctx, info, "INBOX", "Old") })
	step("expunge all", -(n1 + n3 + n2), func() error { _, err := e.s.Expunge(ctx, info, "Old", []uint32{1, 2, 3}); return err })
	step("remove others", 0, func() error { return e.s.RemoveAccount(ctx, bob) })
}

func testDeliverOnce(t *testing.T, e *env) {
	ctx := t.Context()
	d := store.Delivery{Recipients: []string{info}, Message: []byte("Subject: report\r\n\r\nx\r\n")}
	for i, want := range []bool{true, false, false} {
		ok, err := e.s.DeliverOnce(ctx, "report/example.com/2026-11-25", d)
		testutil.Must(t, err)
		if ok != want {
			t.Fatalf("DeliverOnce #%d = %v, want %v", i, ok, want)
		}
	}
	if ok, err := e.s.DeliverOnce(ctx, "report/example.com/2026-11-26", d); !ok || err != nil {
		t.Fatalf("another key: %v, %v", ok, err)
	}
	if got := e.uids(info, "INBOX"); len(got) != 2 {
		t.Fatalf("%d reports delivered, want 2", len(got))
	}
	for prefix, want := range map[string]string{
		"report/example.com/":           "report/example.com/2026-11-26",
		"report/":                       "report/example.com/2026-11-26",
		"report/other.test/":            "",
		"report/example.com/2026-11-25": "report/example.com/2026-11-25",
	} {
		if got, err := e.s.LastOnceKey(ctx, prefix); got != want || err != nil {
			t.Errorf("LastOnceKey(%q) = %q, %v; want %q", prefix, got, err, want)
		}
	}
	if _, err := e.s.LastOnceKey(ctx, ""); !is(err, store.ErrInvalid) {
		t.Errorf("LastOnceKey with an empty prefix: %v", err)
	}
	if _, err := e.s.DeliverOnce(ctx, "", d); !is(err, store.ErrInvalid) {
		t.Errorf("empty key: %v", err)
	}
	// A delivery that fails does not use the key up.
	testutil.Must(t, e.s.SetQuota(ctx, bob, 10))
	big := store.Delivery{Recipients: []string{bob}, Message: make([]byte, 100)}
	if ok, err := e.s.DeliverOnce(ctx, "warning/bob", big); ok || !is(err, errQuota) {
		t.Fatalf("DeliverOnce over quota = %v, %v", ok, err)
	}
	if k, err := e.s.LastOnceKey(ctx, "warning/"); k != "" || err != nil {
		t.Fatalf("a failed DeliverOnce left its key: %q, %v", k, err)
	}
	testutil.Must(t, e.s.SetQuota(ctx, bob, 0))
	if ok, err := e.s.DeliverOnce(ctx, "warning/bob", big); !ok || err != nil {
		t.Fatalf("DeliverOnce after a failure = %v, %v", ok, err)
	}
	// Keys outlive a restart.
	e.restart()
	if ok, err := e.s.DeliverOnce(ctx, "report/example.com/2026-11-25", d); ok || err != nil {
		t.Fatalf("DeliverOnce after restart = %v, %v", ok, err)
	}
	if got := e.uids(info, "INBOX"); len(got) != 2 {
		t.Fatalf("%d reports after restart, want 2", len(got))
	}
}

// Callers racing with one key: exactly one delivers.
func testDeliverOnceConcurrent(t *testing.T, e *env) {
	ctx := t.Context()
	const n = 16
	var delivered [n]bool
	errs := parallel(n, func(i int) error {
		var err error
		delivered[i], err = e.s.DeliverOnce(ctx, "digest/"+fmt.Sprint(i%2), store.Delivery{Recipients: []string{info}, Message: body(i)})
		return err
	})
	count := 0
	for i, err := range errs {
		testutil.Must(t, err)
		if delivered[i] {
			count++
		}
	}
	if count != 2 {
		t.Errorf("%d callers delivered, want 1 per key (2)", count)
	}
	if got := e.uids(info, "INBOX"); len(got) != 2 {
		t.Errorf("%d messages delivered, want 2", len(got))
	}
}

func testQuotaWarning(t *testing.T, e *env) {
	ctx := t.Context()
	testutil.Must(t, e.s.SetQuota(ctx, bob, 1000))
	check := func(want bool) {
		t.Helper()
		got, a, err := e.s.CheckQuotaWarning(ctx, bob, 90)
		testutil.Must(t, err)
		if got != want || a.Address != bob {
			t.Fatalf("crossed = %v (%s), want %v", got, a.Address, want)
		}
	}
	check(false)
	e.deliver(bob, "", make([]byte, 800))
	check(false)
	e.deliver(bob, "", make([]byte, 100)) // 900 of 1000: crossed
	check(true)
	check(false) // once per crossing
	uid := e.deliver(bob, "", make([]byte, 50)).UID
	check(false)
	_, err := e.s.Expunge(ctx, bob, "INBOX", []uint32{uid, 2})
	testutil.Must(t, err)
	check(false) // 800: below again
	e.deliver(bob, "", make([]byte, 150))
	check(true) // crossed again
	// Unlimited accounts never cross.
	testutil.Must(t, e.s.SetQuota(ctx, info, 0))
	e.deliver(info, "", make([]byte, 5000))
	if got, _, err := e.s.CheckQuotaWarning(ctx, info, 1); got || err != nil {
		t.Errorf("unlimited account crossed: %v, %v", got, err)
	}
	if _, _, err := e.s.CheckQuotaWarning(ctx, "nobody@example.com", 90); !is(err, store.ErrNoSuchAccount) {
		t.Errorf("unknown account: %v", err)
	}
	// An account removed and added again starts afresh: its first crossing
	// is reported.
	testutil.Must(t, e.s.RemoveAccount(ctx, bob))
	testutil.Must(t, e.s.AddAccount(ctx, store.Account{Address: bob, PasswordHash: "x", Quota: 1000}))
	e.deliver(bob, "", make([]byte, 950))
	check(true)
}
