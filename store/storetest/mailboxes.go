package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"yubin/internal/testutil"
	"yubin/store"
)

// Mailboxes: create, delete, rename (subscriptions: subscriptions.go).
var mailboxTests = []test{
	{"create", testCreateMailbox},
	{"names", testMailboxNames},
	{"delete", testDeleteMailbox},
	{"rename", testRenameMailbox},
	{"rename INBOX", testRenameInbox},
	{"limit", testMailboxLimit},
}

func testCreateMailbox(t *testing.T, e *env) {
	ctx := t.Context()
	m, err := e.s.CreateMailbox(ctx, info, "Work/2024/Q1")
	testutil.Must(t, err)
	if m.Name != "Work/2024/Q1" || m.UIDNext != 1 || m.UIDValidity == 0 || m.Messages != 0 || m.Subscribed {
		t.Fatalf("created %+v", m)
	}
	if got := e.mailbox(info, "Work/2024/Q1"); got != m {
		t.Errorf("Mailbox gives %+v, CreateMailbox gave %+v", got, m)
	}
	// Missing parents are made; INBOX comes first, then the others by name.
	if got, want := e.names(info), []string{"INBOX", "Drafts", "Junk", "Sent", "Trash", "Work", "Work/2024", "Work/2024/Q1"}; !slices.Equal(got, want) {
		t.Fatalf("mailboxes %v, want %v", got, want)
	}
	// Names are case-sensitive apart from INBOX; a trailing separator is ignored.
	_, err = e.s.CreateMailbox(ctx, info, "work/2024/Q1/")
	testutil.Must(t, err)
	e.mailbox(info, "work/2024/Q1")
	for name, want := range map[string]error{"Work/": store.ErrExists, "inbox": store.ErrExists, "Sent": store.ErrExists, "a/../b": store.ErrInvalid} {
		if _, err := e.s.CreateMailbox(ctx, info, name); !is(err, want) {
			t.Errorf("create %q: %v, want %v", name, err, want)
		}
	}
	if _, err := e.s.CreateMailbox(ctx, "nobody@example.com", "x"); !is(err, store.ErrNoSuchAccount) {
		t.Errorf("create for an unknown account: %v", err)
	}
	if _, err := e.s.Mailbox(ctx, info, "Nope"); !is(err, store.ErrNoSuchMailbox) {
		t.Errorf("unknown mailbox: %v", err)
	}
	// Mailboxes are per account.
	if got := e.names(bob); len(got) != len(store.DefaultMailboxes) {
		t.Errorf("bob's mailboxes %v", got)
	}
}

// The store refuses what store.CheckMailboxName refuses, on create and
// rename alike.
func testMailboxNames(t *testing.T, e *env) {
	ctx := t.Context()
	good := []string{"Work", "Work/2024", "日本語", "a.b", "INBOX/sub", "Re: [list]", "x&y", strings.Repeat("x", store.MaxMailboxNameLen),
		strings.Repeat("a/", store.MaxMailboxDepth-1) + "a"}
	bad := []string{"..", "a/../b", "a..b", "*", "a%b", "a\x00b", "a\tb", "a\x7fb", "a\u0085b", "a\u2028b", "/a", "a//b", "./a", "a/./b", " a", "a /b",
		"\xff\xfe", strings.Repeat("x", store.MaxMailboxNameLen+1), strings.Repeat("a/", store.MaxMailboxDepth) + "a"}
	for _, n := range good {
		if _, err := e.s.CreateMailbox(ctx, info, n); err != nil {
			t.Errorf("create %q: %v", n, err)
		}
	}
	before := e.names(info)
	for _, n := range bad {
		if _, err := e.s.CreateMailbox(ctx, info, n); !is(err, store.ErrInvalid) {
			t.Errorf("create %q: %v, want ErrInvalid", n, err)
		}
		if err := e.s.RenameMailbox(ctx, info, "Work", n); !is(err, store.ErrInvalid) {
			t.Errorf("rename to %q: %v, want ErrInvalid", n, err)
		}
	}
	if _, err := e.s.CreateMailbox(ctx, info, ""); err == nil {
		t.Error("created a mailbox with an empty name")
	}
	if got := e.names(info); !slices.Equal(got, before) {
		t.Errorf("refused names changed the mailboxes: %v, was %v", got, before)
	}
}

func testDeleteMailbox(t *testing.T, e *env) {
	ctx := t.Context()
	_, err := e.s.CreateMailbox(ctx, info, "Work/2024")
	testutil.Must(t, err)
	e.deliverN(info, "Work/2024", 3)
	e.deliverN(info, "", 2)
	inbox := e.mailbox(info, "INBOX")
	runErrCases(t, e, []errCase{
		{"with children", func(e *env) error { return e.s.DeleteMailbox(ctx, info, "Work") }, store.ErrHasChildren},
		{"INBOX", func(e *env) error { return e.s.DeleteMailbox(ctx, info, "inbox") }, store.ErrInvalid},
		{"unknown", func(e *env) error { return e.s.DeleteMailbox(ctx, info, "Nope") }, store.ErrNoSuchMailbox},
		{"unknown account", func(e *env) error { return e.s.DeleteMailbox(ctx, "nobody@example.com", "Work") }, store.ErrNoSuchAccount},
	})
	testutil.Must(t, e.s.DeleteMailbox(ctx, info, "Work/2024"))
	testutil.Must(t, e.s.DeleteMailbox(ctx, info, "Work"))
	if _, err := e.s.Mailbox(ctx, info, "Work/2024"); !is(err, store.ErrNoSuchMailbox) {
		t.Errorf("deleted mailbox: %v", err)
	}
	// Its messages no longer count; the others are untouched.
	if a := e.account(info); a.Used != inbox.Size {
		t.Errorf("usage %d after deleting, want the INBOX's %d", a.Used, inbox.Size)
	}
	if got := e.mailbox(info, "INBOX"); got != inbox {
		t.Errorf("INBOX changed: %+v, was %+v", got, inbox)
	}
}

func testRenameMailbox(t *testing.T, e *env) {
	ctx := t.Context()
	_, err := e.s.CreateMailbox(ctx, info, "Work/2024/Q1")
	testutil.Must(t, err)
	_, err = e.s.CreateMailbox(ctx, info, "work")
	testutil.Must(t, err)
	uids := e.deliverN(info, "Work/2024", 2)
	before := e.mailbox(info, "Work/2024")
	msgs, _, err := e.s.Messages(ctx, info, "Work/2024")
	testutil.Must(t, err)
	used := e.account(info).Used

	// Children move along, and missing parents of the new name are made.
	testutil.Must(t, e.s.RenameMailbox(ctx, info, "Work", "Archive/Old/"))
	if got, want := e.names(info), []string{"INBOX", "Archive", "Archive/Old", "Archive/Old/2024", "Archive/Old/2024/Q1", "Drafts", "Junk", "Sent", "Trash", "work"}; !slices.Equal(got, want) {
		t.Fatalf("after rename: %v, want %v", got, want)
	}
	// A renamed mailbox keeps its UIDVALIDITY, UIDs and messages.
	after := e.mailbox(info, "Archive/Old/2024")
	if after.UIDValidity != before.UIDValidity || after.UIDNext != before.UIDNext || after.Messages != 2 || after.Size != before.Size {
		t.Errorf("rename changed %+v to %+v", before, after)
	}
	msgs2, _, err := e.s.Messages(ctx, info, "Archive/Old/2024")
	testutil.Must(t, err)
	if !slices.EqualFunc(msgs, msgs2, func(a, b store.MessageInfo) bool { return a.UID == b.UID && a.Size == b.Size }) {
		t.Errorf("messages %+v became %+v", msgs, msgs2)
	}
	if got := e.read(info, "Archive/Old/2024", uids[1]); string(got) != string(body(1)) {
		t.Errorf("renamed mailbox's message reads %q", got)
	}
	if a := e.account(info); a.Used != used {
		t.Errorf("usage %d after a rename, was %d", a.Used, used)
	}
	rename := func(from, to string) func(e *env) error {
		return func(e *env) error { return e.s.RenameMailbox(e.t.Context(), info, from, to) }
	}
	runErrCases(t, e, []errCase{
		{"below itself", rename("Archive", "Archive/Old/x"), store.ErrInvalid},
		{"to itself", rename("Archive", "Archive"), store.ErrInvalid},
		{"unknown", rename("Nope", "X"), store.ErrNoSuchMailbox},
		{"onto an existing one", rename("Sent", "Trash"), store.ErrExists},
		{"onto INBOX", rename("Sent", "inbox"), store.ErrExists},
		{"bad name", rename("Sent", "bad*"), store.ErrInvalid},
		{"unknown account", func(e *env) error { return e.s.RenameMailbox(e.t.Context(), "nobody@example.com", "Sent", "X") }, store.ErrNoSuchAccount},
	})
	if got := e.mailbox(info, "Archive/Old/2024"); got != after {
		t.Errorf("refused renames changed %+v to %+v", after, got)
	}
}

// Renaming INBOX moves its messages to a new mailbox and leaves INBOX
// empty, with its UIDVALIDITY and UIDNEXT (RFC 3501 6.3.5).
func testRenameInbox(t *testing.T, e *env) {
	ctx := t.Context()
	e.deliverN(info, "", 3)
	inbox := e.mailbox(info, "INBOX")
	sub := e.s.Subscribe(ctx, info, 64)
	defer sub.Close()
	testutil.Must(t, e.s.RenameMailbox(ctx, info, "inbox", "Old Inbox"))
	in2 := e.mailbox(info, "INBOX")
	if in2.Messages != 0 || in2.Size != 0 || in2.UIDValidity != inbox.UIDValidity || in2.UIDNext != inbox.UIDNext {
		t.Errorf("INBOX after rename: %+v (was %+v)", in2, inbox)
	}
	old := e.mailbox(info, "Old Inbox")
	if old.Messages != 3 || old.Size != inbox.Size || old.UIDValidity == inbox.UIDValidity {
		t.Errorf("renamed INBOX: %+v (INBOX was %+v)", old, inbox)
	}
	if got := e.uids(info, "Old Inbox"); len(got) != 3 || got[2] >= old.UIDNext {
		t.Errorf("renamed INBOX has UIDs %v, UIDNEXT %d", got, old.UIDNext)
	}
	kinds := map[store.EventKind]int{}
	for _, ev := range drain(sub) {
		kinds[ev.Kind]++
	}
	if kinds[store.EventExpunge] != 3 || kinds[store.EventNew] != 3 {
		t.Errorf("events of renaming INBOX: %v, want 3 expunged and 3 new", kinds)
	}
	// New mail still goes to INBOX, under a UID never used there.
	if d := e.deliver(info, "", body(9)); d.UID != inbox.UIDNext || d.UIDValidity != inbox.UIDValidity {
		t.Errorf("delivered after renaming INBOX: %+v (INBOX was %+v)", d, inbox)
	}
}

// An account has at most Options.MaxMailboxes mailboxes, counting INBOX,
// the special mailboxes and the parents that CREATE and RENAME make; a
// refused request creates nothing, another account is not affected, and
// deleting a mailbox makes room again.
func testMailboxLimit(t *testing.T, e *env) {
	const max = 9 // INBOX, Drafts, Junk, Sent, Trash and four more
	e = openEnv(t, e.open, Options{MaxMailboxes: max})
	ctx := t.Context()
	create := func(acct, name string) error { _, err := e.s.CreateMailbox(ctx, acct, name); return err }
	limited := func(what string, err error) {
		t.Helper()
		if !is(err, store.ErrLimit) {
			t.Fatalf("%s: %v, want ErrLimit", what, err)
		}
	}
	testutil.Must(t, create(info, "a"))
	testutil.Must(t, create(info, "b"))
	// Room for two more.
	limited("CREATE of 3 mailboxes (2 parents)", create(info, "p/q/r"))
	limited("RENAME making 3 parents", e.s.RenameMailbox(ctx, info, "a", "p/q/r/a"))
	if _, err := e.s.Mailbox(ctx, info, "p"); !is(err, store.ErrNoSuchMailbox) {
		t.Fatalf("a refused CREATE left a parent behind: %v", err)
	}
	testutil.Must(t, e.s.RenameMailbox(ctx, info, "a", "p/a")) // makes p
	testutil.Must(t, create(info, "c"))
	if n := len(e.names(info)); n != max {
		t.Fatalf("%d mailboxes, want %d", n, max)
	}
	limited("CREATE at the limit", create(info, "d"))
	limited("RENAME INBOX at the limit (INBOX stays)", e.s.RenameMailbox(ctx, info, "INBOX", "old"))
	testutil.Must(t, e.s.RenameMailbox(ctx, info, "b", "p/b")) // makes none
	for i := 0; i < max-5; i++ {
		testutil.Must(t, create(bob, fmt.Sprint("x", i)))
	}
	testutil.Must(t, e.s.DeleteMailbox(ctx, info, "c"))
	testutil.Must(t, create(info, "d"))
	if err := create(info, "e"); !strings.Contains(fmt.Sprint(err), "at most 9 mailboxes") {
		t.Fatalf("the error does not say the limit: %v", err)
	}
	e.check()
}
