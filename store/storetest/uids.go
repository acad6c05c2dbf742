package storetest

import (
	"slices"
	"testing"

	"yubin/internal/testutil"
	"yubin/store"
)

// UIDs are never reused within a UIDVALIDITY, and a mailbox that loses
// its UIDs gets a greater UIDVALIDITY (RFC 3501 2.3.1.1). env.check also
// replays the change feed of every subtest, which fails on a UID handed
// out twice.
var uidTests = []test{
	{"after expunge", testUIDsAfterExpunge},
	{"after delete and create", testUIDsAfterRecreate},
	{"after remove and add account", testUIDsAfterAccountRecreate},
	{"after restart", testUIDsAfterRestart},
	{"copy and move", testUIDsCopyMove},
	{"concurrent writers", testUIDsConcurrent},
}

func testUIDsAfterExpunge(t *testing.T, e *env) {
	ctx := t.Context()
	uids := e.deliverN(info, "", 3)
	if !slices.Equal(uids, []uint32{1, 2, 3}) {
		t.Fatalf("first UIDs %v", uids)
	}
	_, err := e.s.Expunge(ctx, info, "INBOX", uids[1:])
	testutil.Must(t, err)
	if d := e.deliver(info, "", body(4)); d.UID != 4 {
		t.Fatalf("UID %d after expunging 2 and 3, want 4", d.UID)
	}
	_, err = e.s.Expunge(ctx, info, "INBOX", []uint32{1, 4})
	testutil.Must(t, err)
	if d := e.deliver(info, "", body(5)); d.UID != 5 {
		t.Fatalf("UID %d in an emptied mailbox, want 5", d.UID)
	}
	if m := e.mailbox(info, "INBOX"); m.UIDNext != 6 {
		t.Fatalf("UIDNEXT %d", m.UIDNext)
	}
}

// create creates info's mailbox Work, empty and with a UIDVALIDITY
// greater than was's (the zero Mailbox: any).
func (e *env) create(was store.Mailbox) store.Mailbox {
	e.t.Helper()
	m, err := e.s.CreateMailbox(e.t.Context(), info, "Work")
	testutil.Must(e.t, err)
	if m.UIDValidity <= was.UIDValidity || m.UIDNext != 1 || m.Messages != 0 {
		e.t.Fatalf("mailbox created again: %+v; the one before had UIDVALIDITY %d", m, was.UIDValidity)
	}
	return m
}

func testUIDsAfterRecreate(t *testing.T, e *env) {
	ctx := t.Context()
	var m store.Mailbox
	for i := range 4 {
		m = e.create(m)
		if d := e.deliver(info, "Work", body(i)); d.UIDValidity != m.UIDValidity {
			t.Fatalf("delivered under UIDVALIDITY %d into a mailbox of %d", d.UIDValidity, m.UIDValidity)
		}
		testutil.Must(t, e.s.DeleteMailbox(ctx, info, "Work"))
	}
	// A rename away and a create under the old name: a new UIDVALIDITY too.
	m = e.create(m)
	e.deliverN(info, "Work", 2)
	testutil.Must(t, e.s.RenameMailbox(ctx, info, "Work", "Old"))
	e.create(m)
}

func testUIDsAfterAccountRecreate(t *testing.T, e *env) {
	ctx := t.Context()
	e.deliverN(bob, "", 2)
	old, err := e.s.Mailboxes(ctx, bob)
	testutil.Must(t, err)
	testutil.Must(t, e.s.RemoveAccount(ctx, bob))
	testutil.Must(t, e.s.AddAccount(ctx, store.Account{Address: bob, PasswordHash: "x"}))
	now, err := e.s.Mailboxes(ctx, bob)
	testutil.Must(t, err)
	for i := range old {
		if old[i].Name != now[i].Name || now[i].UIDValidity <= old[i].UIDValidity {
			t.Errorf("%s had UIDVALIDITY %d, %s of the account added again has %d", old[i].Name, old[i].UIDValidity, now[i].Name, now[i].UIDValidity)
		}
	}
}

func testUIDsAfterRestart(t *testing.T, e *env) {
	ctx := t.Context()
	uids := e.deliverN(info, "", 3)
	_, err := e.s.Expunge(ctx, info, "INBOX", uids[2:])
	testutil.Must(t, err)
	before := e.mailbox(info, "INBOX")
	m := e.create(store.Mailbox{})
	testutil.Must(t, e.s.DeleteMailbox(ctx, info, "Work"))
	e.restart()
	if got := e.mailbox(info, "INBOX"); got != before {
		t.Fatalf("INBOX after restart %+v, was %+v", got, before)
	}
	if d := e.deliver(info, "", body(9)); d.UID != 4 || d.UIDValidity != before.UIDValidity {
		t.Fatalf("delivered after restart %+v, want UID 4 of %d", d, before.UIDValidity)
	}
	e.create(m)
}

// Copies and moves take UIDs above every UID the destination ever had.
func testUIDsCopyMove(t *testing.T, e *env) {
	ctx := t.Context()
	uids := e.deliverN(info, "", 3)
	e.deliverN(info, "Trash", 2)
	_, err := e.s.Expunge(ctx, info, "Trash", []uint32{2})
	testutil.Must(t, err)
	res, err := e.s.CopyMessages(ctx, info, "INBOX", "Trash", uids[:2])
	testutil.Must(t, err)
	if !slices.Equal(res.Dest, []uint32{3, 4}) {
		t.Fatalf("copied to UIDs %v, want [3 4]", res.Dest)
	}
	res, err = e.s.MoveMessages(ctx, info, "Trash", "INBOX", []uint32{4})
	testutil.Must(t, err)
	if !slices.Equal(res.Dest, []uint32{4}) {
		t.Fatalf("moved to UIDs %v, want [4]", res.Dest)
	}
	if d := e.deliver(info, "Trash", body(7)); d.UID != 5 {
		t.Fatalf("delivered after a move away: UID %d, want 5", d.UID)
	}
}

// Writers racing on one mailbox get distinct UIDs, ascending within each
// write.
func testUIDsConcurrent(t *testing.T, e *env) {
	ctx := t.Context()
	testutil.Must(t, e.s.SetQuota(ctx, info, 0))
	e.deliverN(info, "Junk", 10)
	got := make([][]uint32, 30)
	errs := parallel(30, func(i int) error {
		switch i % 3 {
		case 0:
			d, err := e.s.DeliverBatch(ctx, []store.Delivery{{Recipients: []string{info}, Message: body(i)}, {Recipients: []string{info}, Message: body(i + 100)}})
			for _, x := range d {
				got[i] = append(got[i], x.UID)
			}
			return err
		case 1:
			res, err := e.s.CopyMessages(ctx, info, "Junk", "INBOX", []uint32{1, 2, 3})
			got[i] = res.Dest
			return err
		default:
			d, err := e.s.Deliver(ctx, store.Delivery{Recipients: []string{info}, Message: body(i)})
			if err == nil {
				got[i] = []uint32{d[0].UID}
			}
			return err
		}
	})
	var all []uint32
	for i, err := range errs {
		testutil.Must(t, err)
		for j := 1; j < len(got[i]); j++ {
			if got[i][j] <= got[i][j-1] {
				t.Errorf("one write got UIDs %v", got[i])
			}
		}
		all = append(all, got[i]...)
	}
	slices.Sort(all)
	if len(slices.Compact(slices.Clone(all))) != len(all) || len(all) != 60 || all[59] >= e.mailbox(info, "INBOX").UIDNext {
		t.Errorf("UIDs of racing writers: %v, want 60 distinct UIDs below UIDNEXT", all)
	}
}
