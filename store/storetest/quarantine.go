package storetest

import (
	"bytes"
	"io"
	"slices"
	"testing"
	"time"

	"yubin/internal/testutil"
	"yubin/store"
)

// Quarantine: mail the spam filter holds outside the mailboxes.
var quarantineTests = []test{
	{"hold and list", testHold},
	{"release", testRelease},
	{"release once", testReleaseOnce},
	{"release over quota", testReleaseOverQuota},
	{"full quarantine goes to Junk", testHoldFull},
	{"delete", testDeleteHeld},
	{"prune", testPruneHeld},
	{"removed with the account", testHeldRemoved},
	{"restart", testHeldRestart},
}

var holdHeader = []byte("X-Yubin-Spam: yes; score=0.99\r\n")

func hold(i int) *store.QuarantineHold {
	return &store.QuarantineHold{QueueID: "Q" + string(rune('A'+i)), Sender: "spammer@bad.test", From: "Spammer <spammer@bad.test>",
		Subject: "Cheap pills", Score: 0.99, Signals: []string{"bayes:0.99", "spf-fail:+0.15"}}
}

// holdFor delivers a message to the quarantine of rcpts.
func (e *env) holdFor(h *store.QuarantineHold, msg []byte, rcpts ...string) []store.Delivered {
	e.t.Helper()
	d, err := e.s.Deliver(e.t.Context(), store.Delivery{Recipients: rcpts, Header: holdHeader, Message: msg, Quarantine: h})
	testutil.Must(e.t, err)
	if len(d) != len(rcpts) {
		e.t.Fatalf("held for %d recipients: %+v", len(rcpts), d)
	}
	return d
}

func (e *env) held(f store.QuarantineFilter) []store.QuarantineEntry {
	e.t.Helper()
	q, err := e.s.Quarantined(e.t.Context(), f)
	testutil.Must(e.t, err)
	return q
}

func ids(q []store.QuarantineEntry) []string {
	var out []string
	for _, x := range q {
		out = append(out, x.ID)
	}
	return out
}

func testHold(t *testing.T, e *env) {
	ctx := t.Context()
	msg := body(1)
	d := e.holdFor(hold(0), msg, info, bob)
	for _, x := range d {
		if x.Quarantine == "" || x.Mailbox != "" || x.UID != 0 {
			t.Errorf("held copy delivered as %+v", x)
		}
	}
	e.clock.Advance(time.Minute)
	d2 := e.holdFor(hold(1), body(2), info)
	e.holdFor(hold(2), body(3), carol)
	// Held mail is in no mailbox and counts against no quota.
	for _, a := range []string{info, bob} {
		if acct := e.account(a); acct.Used != 0 {
			t.Errorf("%s: usage %d", a, acct.Used)
		}
		for _, b := range e.names(a) {
			if n := len(e.uids(a, b)); n != 0 {
				t.Errorf("%s/%s holds %d messages", a, b, n)
			}
		}
	}
	if got, want := ids(e.held(store.QuarantineFilter{Account: "INFO@example.com"})), []string{d[0].Quarantine, d2[0].Quarantine}; !slices.Equal(got, want) {
		t.Errorf("info's quarantine %v, want %v (oldest first)", got, want)
	}
	if got := e.held(store.QuarantineFilter{Domain: "Example.COM"}); len(got) != 3 {
		t.Errorf("example.com's quarantine: %+v", got)
	}
	if got := e.held(store.QuarantineFilter{Domain: "other.test"}); len(got) != 1 || got[0].Account != carol {
		t.Errorf("other.test's quarantine: %+v", got)
	}
	ent, err := e.s.QuarantineEntry(ctx, d[0].Quarantine)
	testutil.Must(t, err)
	h := hold(0)
	want := store.QuarantineEntry{ID: d[0].Quarantine, Account: info, Arrived: start, QueueID: h.QueueID, Sender: h.Sender, From: h.From,
		Subject: h.Subject, Score: h.Score, Signals: h.Signals, Size: int64(len(holdHeader) + len(msg))}
	if !ent.Arrived.Equal(want.Arrived) || ent.ID != want.ID || ent.Account != want.Account || ent.QueueID != want.QueueID || ent.Sender != want.Sender ||
		ent.From != want.From || ent.Subject != want.Subject || ent.Score != want.Score || !slices.Equal(ent.Signals, want.Signals) || ent.Size != want.Size {
		t.Errorf("entry %+v, want %+v", ent, want)
	}
	r, _, err := e.s.OpenQuarantined(ctx, d[0].Quarantine)
	testutil.Must(t, err)
	got, err := io.ReadAll(r)
	r.Close()
	testutil.Must(t, err)
	if !bytes.Equal(got, append(slices.Clone(holdHeader), msg...)) {
		t.Errorf("held message reads %q", got)
	}
	runErrCases(t, e, []errCase{
		{"unknown id", func(e *env) error { _, err := e.s.QuarantineEntry(e.t.Context(), "nope"); return err }, store.ErrNoSuchMessage},
		{"open unknown id", func(e *env) error { _, _, err := e.s.OpenQuarantined(e.t.Context(), ""); return err }, store.ErrNoSuchMessage},
		{"no filter", func(e *env) error { _, err := e.s.Quarantined(e.t.Context(), store.QuarantineFilter{}); return err }, store.ErrInvalid},
		{"unknown account", func(e *env) error {
			_, err := e.s.Quarantined(e.t.Context(), store.QuarantineFilter{Account: "nobody@example.com"})
			return err
		}, store.ErrNoSuchAccount},
		{"unknown domain", func(e *env) error {
			_, err := e.s.Quarantined(e.t.Context(), store.QuarantineFilter{Domain: "nope.test"})
			return err
		}, store.ErrNoSuchDomain},
	})
}

func testRelease(t *testing.T, e *env) {
	ctx := t.Context()
	msg := body(1)
	d := e.holdFor(hold(0), msg, info, bob)
	e.clock.Advance(time.Hour)
	rel, err := e.s.ReleaseQuarantined(ctx, d[0].Quarantine)
	testutil.Must(t, err)
	if rel.Account != info || rel.Mailbox != "INBOX" || rel.UID == 0 {
		t.Fatalf("released to %+v", rel)
	}
	want := append(slices.Clone(holdHeader), msg...)
	if got := e.read(info, "INBOX", rel.UID); !bytes.Equal(got, want) {
		t.Errorf("released message %q, want %q byte for byte", got, want)
	}
	msgs, _, err := e.s.MessagesByUID(ctx, info, "INBOX", []uint32{rel.UID})
	testutil.Must(t, err)
	if len(msgs) != 1 || !msgs[0].Date.Equal(start) || msgs[0].Size != int64(len(want)) {
		t.Errorf("released message %+v: want its arrival time %v and size %d", msgs, start, len(want))
	}
	if u := e.account(info).Used; u != int64(len(want)) {
		t.Errorf("usage %d after release, want %d", u, len(want))
	}
	if q := e.held(store.QuarantineFilter{Account: info}); len(q) != 0 {
		t.Errorf("released entry still listed: %+v", q)
	}
	// bob's copy of the same message is still held, and goes with delete.
	if q := e.held(store.QuarantineFilter{Account: bob}); len(q) != 1 {
		t.Errorf("bob's quarantine %+v", q)
	}
	if n, err := e.s.DeleteQuarantined(ctx, []string{d[1].Quarantine}); err != nil || n != 1 {
		t.Errorf("delete: %d, %v", n, err)
	}
	if got := e.read(info, "INBOX", rel.UID); !bytes.Equal(got, want) {
		t.Errorf("released message changed when the other copy went: %q", got)
	}
}

func testReleaseOnce(t *testing.T, e *env) {
	d := e.holdFor(hold(0), body(1), info)
	errs := parallel(8, func(int) error { _, err := e.s.ReleaseQuarantined(e.t.Context(), d[0].Quarantine); return err })
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !is(err, store.ErrNoSuchMessage):
			t.Errorf("release: %v", err)
		}
	}
	if ok != 1 || len(e.uids(info, "INBOX")) != 1 {
		t.Errorf("%d releases succeeded, INBOX holds %v; want one", ok, e.uids(info, "INBOX"))
	}
	if _, err := e.s.ReleaseQuarantined(t.Context(), d[0].Quarantine); !is(err, store.ErrNoSuchMessage) {
		t.Errorf("releasing again: %v", err)
	}
}

func testReleaseOverQuota(t *testing.T, e *env) {
	ctx := t.Context()
	big := bytes.Repeat([]byte("x"), fixtureQuota/2)
	d := e.holdFor(hold(0), append([]byte("Subject: big\r\n\r\n"), big...), info)
	e.deliver(info, "INBOX", big)
	if _, err := e.s.ReleaseQuarantined(ctx, d[0].Quarantine); !is(err, errQuota) {
		t.Errorf("release over quota: %v", err)
	}
	if q := e.held(store.QuarantineFilter{Account: info}); len(q) != 1 {
		t.Errorf("a refused release lost the entry: %+v", q)
	}
	testutil.Must(t, e.s.SetQuota(ctx, info, 0))
	_, err := e.s.ReleaseQuarantined(ctx, d[0].Quarantine)
	testutil.Must(t, err)
}

func testHoldFull(t *testing.T, e *env) {
	ctx := t.Context()
	h := hold(0)
	h.Limit = store.QuarantineLimit{Messages: 2}
	var got []string
	for i := range 3 {
		d := e.holdFor(h, body(i), info)
		got = append(got, d[0].Mailbox)
	}
	if want := []string{"", "", "Junk"}; !slices.Equal(got, want) {
		t.Errorf("copies went to %q, want %q", got, want)
	}
	if n := len(e.uids(info, "Junk")); n != 1 {
		t.Errorf("Junk holds %d", n)
	}
	// By size: a message bigger than what is left.
	h.Limit = store.QuarantineLimit{Bytes: 100}
	d := e.holdFor(h, bytes.Repeat([]byte("y"), 200), bob)
	if d[0].Mailbox != "Junk" {
		t.Errorf("oversized for the quarantine: %+v", d)
	}
	// Without a Junk mailbox, INBOX.
	testutil.Must(t, e.s.DeleteMailbox(ctx, carol, "Junk"))
	d = e.holdFor(h, bytes.Repeat([]byte("y"), 200), carol)
	if d[0].Mailbox != "INBOX" {
		t.Errorf("without Junk: %+v", d)
	}
	// Once in a mailbox, the quota applies.
	h.Limit = store.QuarantineLimit{Messages: 1}
	_, err := e.s.Deliver(ctx, store.Delivery{Recipients: []string{info}, Message: bytes.Repeat([]byte("z"), fixtureQuota), Quarantine: h})
	if !is(err, errQuota) {
		t.Errorf("over quota in Junk: %v", err)
	}
}

func testDeleteHeld(t *testing.T, e *env) {
	ctx := t.Context()
	d := e.holdFor(hold(0), body(1), info, bob)
	n, err := e.s.DeleteQuarantined(ctx, []string{d[0].Quarantine, "nope", d[0].Quarantine})
	testutil.Must(t, err)
	if n != 1 {
		t.Errorf("deleted %d, want 1", n)
	}
	if q := e.held(store.QuarantineFilter{Domain: "example.com"}); len(q) != 1 || q[0].Account != bob {
		t.Errorf("left %+v", q)
	}
	if _, err := e.s.ReleaseQuarantined(ctx, d[0].Quarantine); !is(err, store.ErrNoSuchMessage) {
		t.Errorf("release after delete: %v", err)
	}
}

func testPruneHeld(t *testing.T, e *env) {
	ctx := t.Context()
	old := e.holdFor(hold(0), body(1), info, bob)
	e.clock.Advance(store.QuarantineRetention + time.Hour)
	fresh := e.holdFor(hold(1), body(2), info)
	n, err := e.s.PruneQuarantine(ctx, e.clock.Now().Add(-store.QuarantineRetention))
	testutil.Must(t, err)
	if n != 2 {
		t.Errorf("pruned %d, want 2", n)
	}
	if got := ids(e.held(store.QuarantineFilter{Domain: "example.com"})); !slices.Equal(got, []string{fresh[0].Quarantine}) {
		t.Errorf("left %v, want %v", got, fresh[0].Quarantine)
	}
	if _, err := e.s.QuarantineEntry(ctx, old[0].Quarantine); !is(err, store.ErrNoSuchMessage) {
		t.Errorf("pruned entry: %v", err)
	}
}

func testHeldRemoved(t *testing.T, e *env) {
	ctx := t.Context()
	d := e.holdFor(hold(0), body(1), carol, info)
	testutil.Must(t, e.s.RemoveAccount(ctx, carol))
	if _, err := e.s.QuarantineEntry(ctx, d[0].Quarantine); !is(err, store.ErrNoSuchMessage) {
		t.Errorf("entry of a removed account: %v", err)
	}
	if q := e.held(store.QuarantineFilter{Account: info}); len(q) != 1 {
		t.Errorf("info's copy: %+v", q)
	}
}

func testHeldRestart(t *testing.T, e *env) {
	d := e.holdFor(hold(0), body(1), info)
	e.restart()
	rel, err := e.s.ReleaseQuarantined(t.Context(), d[0].Quarantine)
	testutil.Must(t, err)
	if rel.Mailbox != "INBOX" {
		t.Errorf("released to %+v", rel)
	}
}
