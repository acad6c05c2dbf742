package bolt

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"yubin/store"
)

func verifyOK(t testing.TB, s *Store) {
	t.Helper()
	problems, err := s.Verify(t.Context())
	must(t, err)
	if len(problems) > 0 {
		t.Fatalf("Verify:\n%s", strings.Join(problems, "\n"))
	}
}

func deliverN(t testing.TB, s *Store, to, box string, n int) []uint32 {
	t.Helper()
	var uids []uint32
	for i := 0; i < n; i++ {
		d, err := s.Deliver(context.Background(), store.Delivery{Recipients: []string{to}, Mailbox: box, Message: []byte(fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i))})
		must(t, err)
		uids = append(uids, d[0].UID)
	}
	return uids
}

func names(t testing.TB, s *Store, acct string) []string {
	t.Helper()
	boxes, err := s.Mailboxes(t.Context(), acct)
	must(t, err)
	var out []string
	for _, b := range boxes {
		out = append(out, b.Name)
	}
	return out
}

func TestCheckMailboxName(t *testing.T) {
	good := []string{"Work", "Work/2024", "日本語", "a.b", "INBOX/sub", "Re: [list]", "x&y"}
	bad := []string{"", "..", "a/../b", "a..b", "*", "a%b", "a\x00b", "a\tb", "a\x7fb", "/a", "a/", "a//b", "./a", "a/./b", " a", "a /b",
		"\xff\xfe", strings.Repeat("x", store.MaxMailboxNameLen+1), strings.Repeat("a/", store.MaxMailboxDepth) + "a"}
	for _, n := range good {
		if err := store.CheckMailboxName(n); err != nil {
			t.Errorf("%q refused: %v", n, err)
		}
	}
	for _, n := range bad {
		if err := store.CheckMailboxName(n); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%q accepted (%v)", n, err)
		}
	}
}

func TestCreateDeleteRename(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	ctx := context.Background()
	const a = "info@example.com"
	m, err := s.CreateMailbox(ctx, a, "Work/2024/Q1")
	must(t, err)
	if m.Name != "Work/2024/Q1" || m.UIDNext != 1 || m.UIDValidity == 0 {
		t.Fatalf("created %+v", m)
	}
	if got := names(t, s, a); !slices.Equal(got, []string{"INBOX", "Drafts", "Junk", "Sent", "Trash", "Work", "Work/2024", "Work/2024/Q1"}) {
		t.Fatalf("mailboxes after create: %v", got)
	}
	if _, err := s.CreateMailbox(ctx, a, "work/2024/Q1/"); err != nil {
		t.Fatalf("names are case-sensitive apart from INBOX: %v", err)
	}
	if _, err := s.CreateMailbox(ctx, a, "Work/"); !errors.Is(err, store.ErrExists) {
		t.Fatalf("create existing: %v", err)
	}
	if _, err := s.CreateMailbox(ctx, a, "inbox"); !errors.Is(err, store.ErrExists) {
		t.Fatalf("create inbox: %v", err)
	}
	if _, err := s.CreateMailbox(ctx, a, "a/../b"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("create a/../b: %v", err)
	}
	if _, err := s.CreateMailbox(ctx, "nobody@example.com", "x"); !errors.Is(err, store.ErrNoSuchAccount) {
		t.Fatalf("create for unknown account: %v", err)
	}
	// UIDVALIDITY of a re-created mailbox differs.
	deliverN(t, s, a, "Work/2024/Q1", 3)
	used := mustAccount(t, s, a).Used
	if used == 0 {
		t.Fatal("no usage after delivery")
	}
	if err := s.DeleteMailbox(ctx, a, "Work"); !errors.Is(err, store.ErrHasChildren) {
		t.Fatalf("delete with children: %v", err)
	}
	if err := s.DeleteMailbox(ctx, a, "INBOX"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("delete INBOX: %v", err)
	}
	must(t, s.DeleteMailbox(ctx, a, "Work/2024/Q1"))
	if u := mustAccount(t, s, a).Used; u != 0 {
		t.Fatalf("usage after deleting the only mailbox with mail: %d", u)
	}
	m2, err := s.CreateMailbox(ctx, a, "Work/2024/Q1")
	must(t, err)
	if m2.UIDValidity == m.UIDValidity {
		t.Fatal("re-created mailbox has the old UIDVALIDITY")
	}
	verifyOK(t, s)

	// Rename moves children along and keeps UIDVALIDITY and UIDs.
	uids := deliverN(t, s, a, "Work/2024", 2)
	before, err := s.Mailbox(ctx, a, "Work/2024")
	must(t, err)
	must(t, s.RenameMailbox(ctx, a, "Work", "Archive/Old"))
	if got := names(t, s, a); !slices.Equal(got, []string{"INBOX", "Archive", "Archive/Old", "Archive/Old/2024", "Archive/Old/2024/Q1", "Drafts", "Junk", "Sent", "Trash", "work", "work/2024", "work/2024/Q1"}) {
		t.Fatalf("after rename: %v", got)
	}
	after, err := s.Mailbox(ctx, a, "Archive/Old/2024")
	must(t, err)
	if after.UIDValidity != before.UIDValidity || after.UIDNext != before.UIDNext || after.Messages != 2 {
		t.Fatalf("rename changed %+v to %+v", before, after)
	}
	if _, err := s.ReadMessage(ctx, a, "Archive/Old/2024", uids[1]); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ from, to string }{{"Archive", "Archive/Old/x"}, {"Archive", "Archive"}, {"Nope", "X"}, {"Sent", "Trash"}, {"Sent", "inbox"}, {"Sent", "bad*"}} {
		if err := s.RenameMailbox(ctx, a, c.from, c.to); err == nil {
			t.Errorf("rename %s to %s succeeded", c.from, c.to)
		}
	}
	verifyOK(t, s)
}

func mustAccount(t testing.TB, s *Store, a string) store.Account {
	t.Helper()
	acct, err := s.Account(t.Context(), a)
	must(t, err)
	return acct
}

func TestRenameInbox(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	ctx := context.Background()
	const a = "info@example.com"
	deliverN(t, s, a, "", 3)
	inbox, _ := s.Mailbox(ctx, a, "INBOX")
	sub := s.Subscribe(ctx, a, 64)
	defer sub.Close()
	must(t, s.RenameMailbox(ctx, a, "inbox", "Old Inbox"))
	in2, _ := s.Mailbox(ctx, a, "INBOX")
	if in2.Messages != 0 || in2.UIDValidity != inbox.UIDValidity || in2.UIDNext != inbox.UIDNext {
		t.Fatalf("INBOX after rename: %+v (was %+v)", in2, inbox)
	}
	old, err := s.Mailbox(ctx, a, "Old Inbox")
	must(t, err)
	if old.Messages != 3 || old.UIDNext != 4 || old.UIDValidity == inbox.UIDValidity {
		t.Fatalf("renamed inbox: %+v", old)
	}
	// New mail still goes to INBOX, with a UID never used before there.
	uids := deliverN(t, s, a, "", 1)
	if uids[0] != 4 {
		t.Fatalf("uid after rename: %d", uids[0])
	}
	kinds := map[store.EventKind]int{}
	for len(sub.C) > 0 {
		kinds[(<-sub.C).Kind]++
	}
	if kinds[store.EventExpunge] != 3 || kinds[store.EventNew] != 4 {
		t.Fatalf("events: %v", kinds)
	}
	verifyOK(t, s)
}

func TestCopyMoveQuota(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	ctx := context.Background()
	const a = "info@example.com"
	uids := deliverN(t, s, a, "", 4)
	used := mustAccount(t, s, a).Used
	res, err := s.CopyMessages(ctx, a, "INBOX", "Trash", []uint32{uids[2], uids[0], 999, uids[0]})
	must(t, err)
	if !slices.Equal(res.Source, []uint32{uids[0], uids[2]}) || !slices.Equal(res.Dest, []uint32{1, 2}) {
		t.Fatalf("copy result %+v", res)
	}
	if tr, _ := s.Mailbox(ctx, a, "Trash"); tr.UIDValidity != res.UIDValidity || tr.Messages != 2 {
		t.Fatalf("Trash %+v", tr)
	}
	used2 := mustAccount(t, s, a).Used
	if want := used + 2*used/4; used2 != want {
		t.Fatalf("usage after copy %d, want %d", used2, want)
	}
	// The copy shares bytes: expunging the original keeps the copy readable.
	_, err = s.Expunge(ctx, a, "INBOX", []uint32{uids[0]})
	must(t, err)
	b, err := s.ReadMessage(ctx, a, "Trash", 1)
	must(t, err)
	if !strings.Contains(string(b), "body 0") {
		t.Fatalf("copy reads %q", b)
	}
	verifyOK(t, s)

	// Move: new UIDs, gone from the source, usage unchanged.
	sub := s.Subscribe(ctx, a, 64)
	defer sub.Close()
	res, err = s.MoveMessages(ctx, a, "INBOX", "Junk", []uint32{uids[1], uids[3]})
	must(t, err)
	if !slices.Equal(res.Dest, []uint32{1, 2}) {
		t.Fatalf("move %+v", res)
	}
	if u := mustAccount(t, s, a).Used; u != used2-used/4 {
		t.Fatalf("usage after move %d", u)
	}
	msgs, _, _ := s.Messages(ctx, a, "INBOX")
	if len(msgs) != 1 || msgs[0].UID != uids[2] {
		t.Fatalf("INBOX after move: %+v", msgs)
	}
	var got []string
	for len(sub.C) > 0 {
		ev := <-sub.C
		got = append(got, fmt.Sprintf("%s %s %d", ev.Kind, ev.Mailbox, ev.UID))
	}
	if want := []string{"expunge INBOX 2", "new Junk 1", "expunge INBOX 4", "new Junk 2"}; !slices.Equal(got, want) {
		t.Fatalf("move events %v, want %v", got, want)
	}
	if _, err := s.MoveMessages(ctx, a, "Junk", "junk", []uint32{1}); err == nil {
		t.Fatal("move to the same mailbox")
	}
	if _, err := s.MoveMessages(ctx, a, "Junk", "Nope", []uint32{1}); !errors.Is(err, store.ErrNoSuchMailbox) {
		t.Fatalf("move to missing mailbox: %v", err)
	}
	verifyOK(t, s)

	// Quota: a copy that does not fit copies nothing.
	acct := mustAccount(t, s, a)
	must(t, s.SetQuota(ctx, a, acct.Used+10))
	_, err = s.CopyMessages(ctx, a, "Junk", "Drafts", []uint32{1, 2})
	var qe *store.QuotaError
	if !errors.As(err, &qe) {
		t.Fatalf("copy over quota: %v", err)
	}
	if d, _ := s.Mailbox(ctx, a, "Drafts"); d.Messages != 0 {
		t.Fatal("partial copy over quota")
	}
	// Moving still works when full.
	_, err = s.MoveMessages(ctx, a, "Junk", "Drafts", []uint32{1, 2})
	must(t, err)
	// Copy into the same mailbox duplicates.
	must(t, s.SetQuota(ctx, a, 0))
	res, err = s.CopyMessages(ctx, a, "Drafts", "Drafts", []uint32{1})
	must(t, err)
	if !slices.Equal(res.Dest, []uint32{3}) {
		t.Fatalf("self copy %+v", res)
	}
	// Deleting a mailbox with shared blobs keeps the others.
	must(t, s.DeleteMailbox(ctx, a, "Drafts"))
	verifyOK(t, s)
	if _, err := s.ReadMessage(ctx, a, "Trash", 1); err != nil {
		t.Fatal(err)
	}
}

func TestSubscribedAndByUID(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	ctx := context.Background()
	const a = "bob@example.com"
	must(t, s.SetSubscribed(ctx, a, "Junk", false))
	if m, _ := s.Mailbox(ctx, a, "Junk"); m.Subscribed {
		t.Fatal("still subscribed")
	}
	if err := s.SetSubscribed(ctx, a, "Nope", true); !errors.Is(err, store.ErrNoSuchMailbox) {
		t.Fatalf("subscribe missing: %v", err)
	}
	uids := deliverN(t, s, a, "", 5)
	msgs, meta, err := s.MessagesByUID(ctx, a, "INBOX", []uint32{uids[4], 77, uids[1]})
	must(t, err)
	if len(msgs) != 2 || msgs[0].UID != uids[4] || msgs[1].UID != uids[1] || meta.Messages != 5 {
		t.Fatalf("by uid: %+v %+v", msgs, meta)
	}
}

// Concurrent copies and moves through the group committer keep the
// invariants.
func TestCopyMoveConcurrent(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	ctx := context.Background()
	const a = "info@example.com"
	must(t, s.SetQuota(ctx, a, 0))
	deliverN(t, s, a, "", 50)
	_, err := s.CreateMailbox(ctx, a, "A")
	must(t, err)
	done := make(chan error, 20)
	for i := 0; i < 20; i++ {
		go func(i int) {
			var err error
			if i%2 == 0 {
				_, err = s.CopyMessages(ctx, a, "INBOX", "A", []uint32{uint32(i + 1), uint32(i + 2)})
			} else {
				_, err = s.MoveMessages(ctx, a, "INBOX", "Trash", []uint32{uint32(i + 20)})
			}
			done <- err
		}(i)
	}
	timeout := time.After(20 * time.Second)
	for i := 0; i < 20; i++ {
		select {
		case err := <-done:
			must(t, err)
		case <-timeout:
			t.Fatal("timeout")
		}
	}
	verifyOK(t, s)
}
