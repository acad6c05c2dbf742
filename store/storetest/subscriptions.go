package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"yubin/internal/testutil"
	"yubin/store"
)

// Subscriptions (IMAP SUBSCRIBE, RFC 3501 6.3.6-7): a set of names per
// account, apart from the mailboxes.
var subscriptionTests = []test{
	{"default", testSubscriptionsDefault},
	{"subscribe", testSubscribe},
	{"create does not subscribe", testSubscribeCreate},
	{"delete keeps them", testSubscribeDelete},
	{"rename keeps them", testSubscribeRename},
	{"restart", testSubscribeRestart},
	{"limit", testSubscribeLimit},
}

// subscriptions is an account's subscriptions.
func (e *env) subscriptions(account string) []string {
	e.t.Helper()
	subs, err := e.s.Subscriptions(e.t.Context(), account)
	testutil.Must(e.t, err)
	return subs
}

// subscribed asserts an account's subscriptions, and that Mailbox and
// Mailboxes say which mailboxes they name.
func (e *env) subscribed(account string, want ...string) {
	e.t.Helper()
	if got := e.subscriptions(account); !slices.Equal(got, want) {
		e.t.Fatalf("%s subscribes to %q, want %q", account, got, want)
	}
	boxes, err := e.s.Mailboxes(e.t.Context(), account)
	testutil.Must(e.t, err)
	for _, b := range boxes {
		if b.Subscribed != slices.Contains(want, b.Name) {
			e.t.Fatalf("Mailboxes says %s/%s subscribed %v, subscriptions are %q", account, b.Name, b.Subscribed, want)
		}
		if m := e.mailbox(account, b.Name); m.Subscribed != b.Subscribed {
			e.t.Fatalf("Mailbox says %s/%s subscribed %v, Mailboxes %v", account, b.Name, m.Subscribed, b.Subscribed)
		}
	}
}

// defaultSubs are the subscriptions of a new account: its default
// mailboxes, INBOX first, then by name.
var defaultSubs = []string{"INBOX", "Drafts", "Junk", "Sent", "Trash"}

// A new account subscribes to its default mailboxes (clients that show
// only the subscribed mailboxes rely on it); others' are apart.
func testSubscriptionsDefault(t *testing.T, e *env) {
	ctx := t.Context()
	e.subscribed(info, defaultSubs...)
	testutil.Must(t, e.s.AddAccount(ctx, store.Account{Address: "Dave@example.com", PasswordHash: "x"}))
	e.subscribed("dave@example.com", defaultSubs...)
	if _, err := e.s.Subscriptions(ctx, "nobody@example.com"); !is(err, store.ErrNoSuchAccount) {
		t.Errorf("subscriptions of an unknown account: %v", err)
	}
	if err := e.s.SetSubscribed(ctx, "nobody@example.com", "INBOX", false); !is(err, store.ErrNoSuchAccount) {
		t.Errorf("unsubscribe for an unknown account: %v", err)
	}
}

// Subscribing needs the mailbox; unsubscribing works for any name; both
// are idempotent; INBOX is INBOX in any case and a trailing separator is
// not part of a name.
func testSubscribe(t *testing.T, e *env) {
	ctx := t.Context()
	set := func(acct, name string, on bool) { t.Helper(); testutil.Must(t, e.s.SetSubscribed(ctx, acct, name, on)) }
	set(bob, "Junk", false)
	e.subscribed(bob, "INBOX", "Drafts", "Sent", "Trash")
	set(bob, "Junk", false)
	set(bob, "Junk", true)
	set(bob, "Junk", true)
	e.subscribed(bob, defaultSubs...)
	e.subscribed(info, defaultSubs...)
	if err := e.s.SetSubscribed(ctx, bob, "Nope", true); !is(err, store.ErrNoSuchMailbox) {
		t.Errorf("subscribe to a missing mailbox: %v", err)
	}
	set(bob, "Nope", false)
	set(bob, "a//b", false)
	e.subscribed(bob, defaultSubs...)

	set(bob, "inbox", false)
	e.subscribed(bob, "Drafts", "Junk", "Sent", "Trash")
	set(bob, "InBoX", true)
	e.subscribed(bob, defaultSubs...)
	_, err := e.s.CreateMailbox(ctx, bob, "Work/2024")
	testutil.Must(t, err)
	set(bob, "Work/", true)
	set(bob, "Work/2024", true)
	e.subscribed(bob, "INBOX", "Drafts", "Junk", "Sent", "Trash", "Work", "Work/2024")
	set(bob, "Work/2024/", false)
	e.subscribed(bob, "INBOX", "Drafts", "Junk", "Sent", "Trash", "Work")
	// Names are case-sensitive apart from INBOX.
	if err := e.s.SetSubscribed(ctx, bob, "work", true); !is(err, store.ErrNoSuchMailbox) {
		t.Errorf("subscribe to work, having Work: %v", err)
	}
	set(bob, "WORK", false)
	e.subscribed(bob, "INBOX", "Drafts", "Junk", "Sent", "Trash", "Work")
}

// Creating a mailbox does not subscribe it, nor the parents it makes; a
// mailbox made again under a subscribed name is subscribed.
func testSubscribeCreate(t *testing.T, e *env) {
	ctx := t.Context()
	m, err := e.s.CreateMailbox(ctx, info, "Work/2024/Q1")
	testutil.Must(t, err)
	if m.Subscribed {
		t.Errorf("created %+v", m)
	}
	e.subscribed(info, defaultSubs...)
	testutil.Must(t, e.s.SetSubscribed(ctx, info, "Work/2024/Q1", true))
	testutil.Must(t, e.s.DeleteMailbox(ctx, info, "Work/2024/Q1"))
	m, err = e.s.CreateMailbox(ctx, info, "Work/2024/Q1")
	testutil.Must(t, err)
	if !m.Subscribed {
		t.Errorf("made again under a subscribed name: %+v", m)
	}
	e.subscribed(info, "INBOX", "Drafts", "Junk", "Sent", "Trash", "Work/2024/Q1")
}

// Deleting a mailbox leaves its name subscribed (RFC 3501 6.3.7: the
// server must not remove it unilaterally); it can be unsubscribed, but
// not subscribed again while there is no mailbox.
func testSubscribeDelete(t *testing.T, e *env) {
	ctx := t.Context()
	_, err := e.s.CreateMailbox(ctx, info, "Work/2024")
	testutil.Must(t, err)
	testutil.Must(t, e.s.SetSubscribed(ctx, info, "Work", true))
	testutil.Must(t, e.s.SetSubscribed(ctx, info, "Work/2024", true))
	testutil.Must(t, e.s.DeleteMailbox(ctx, info, "Work/2024"))
	testutil.Must(t, e.s.DeleteMailbox(ctx, info, "Work"))
	testutil.Must(t, e.s.DeleteMailbox(ctx, info, "Junk"))
	e.subscribed(info, "INBOX", "Drafts", "Junk", "Sent", "Trash", "Work", "Work/2024")
	if err := e.s.SetSubscribed(ctx, info, "Work", true); !is(err, store.ErrNoSuchMailbox) {
		t.Errorf("subscribe to a deleted mailbox: %v", err)
	}
	testutil.Must(t, e.s.SetSubscribed(ctx, info, "Work/2024", false))
	testutil.Must(t, e.s.SetSubscribed(ctx, info, "Junk", false))
	e.subscribed(info, "INBOX", "Drafts", "Sent", "Trash", "Work")
	testutil.Must(t, e.s.SetSubscribed(ctx, info, "Work", false))
	e.subscribed(info, "INBOX", "Drafts", "Sent", "Trash")
}

// Renaming a mailbox does not move subscriptions (as Dovecot: clients
// that want them moved unsubscribe the old name and subscribe the new).
func testSubscribeRename(t *testing.T, e *env) {
	ctx := t.Context()
	_, err := e.s.CreateMailbox(ctx, info, "Work/2024")
	testutil.Must(t, err)
	testutil.Must(t, e.s.SetSubscribed(ctx, info, "Work/2024", true))
	testutil.Must(t, e.s.RenameMailbox(ctx, info, "Work", "Archive/Work"))
	e.subscribed(info, "INBOX", "Drafts", "Junk", "Sent", "Trash", "Work/2024")
	if m := e.mailbox(info, "Archive/Work/2024"); m.Subscribed {
		t.Errorf("renamed mailbox %+v", m)
	}
	testutil.Must(t, e.s.RenameMailbox(ctx, info, "Junk", "Spam"))
	e.subscribed(info, "INBOX", "Drafts", "Junk", "Sent", "Trash", "Work/2024")
	// Renaming INBOX leaves INBOX; the mailbox it makes is not subscribed.
	e.deliverN(info, "", 1)
	testutil.Must(t, e.s.RenameMailbox(ctx, info, "INBOX", "Old"))
	e.subscribed(info, "INBOX", "Drafts", "Junk", "Sent", "Trash", "Work/2024")
}

// Subscriptions outlive a restart, those of deleted mailboxes too.
func testSubscribeRestart(t *testing.T, e *env) {
	ctx := t.Context()
	_, err := e.s.CreateMailbox(ctx, info, "Gone")
	testutil.Must(t, err)
	testutil.Must(t, e.s.SetSubscribed(ctx, info, "Gone", true))
	testutil.Must(t, e.s.DeleteMailbox(ctx, info, "Gone"))
	testutil.Must(t, e.s.SetSubscribed(ctx, info, "Sent", false))
	e.restart()
	e.subscribed(info, "INBOX", "Drafts", "Gone", "Junk", "Trash")
	e.subscribed(bob, defaultSubs...)
}

// An account subscribes to at most Options.MaxSubscriptions names, those
// of deleted mailboxes included, but always to as many as it may have
// mailboxes; a refused subscription changes nothing, subscribing a name
// again takes no room, and unsubscribing makes room.
func testSubscribeLimit(t *testing.T, e *env) {
	const max = 7 // the 5 default mailboxes and two more
	e = openEnv(t, e.open, Options{MaxSubscriptions: max})
	ctx := t.Context()
	for _, n := range []string{"a", "b", "c"} {
		_, err := e.s.CreateMailbox(ctx, info, n)
		testutil.Must(t, err)
		_, err = e.s.CreateMailbox(ctx, bob, n)
		testutil.Must(t, err)
	}
	testutil.Must(t, e.s.SetSubscribed(ctx, info, "a", true))
	testutil.Must(t, e.s.SetSubscribed(ctx, info, "b", true))
	testutil.Must(t, e.s.DeleteMailbox(ctx, info, "b"))
	err := e.s.SetSubscribed(ctx, info, "c", true)
	if !is(err, store.ErrLimit) || !strings.Contains(fmt.Sprint(err), "at most 7") {
		t.Fatalf("subscribe beyond the limit: %v, want ErrLimit saying the limit", err)
	}
	e.subscribed(info, "INBOX", "Drafts", "Junk", "Sent", "Trash", "a", "b")
	testutil.Must(t, e.s.SetSubscribed(ctx, info, "a", true))
	// Another account has room of its own.
	testutil.Must(t, e.s.SetSubscribed(ctx, bob, "a", true))
	testutil.Must(t, e.s.SetSubscribed(ctx, bob, "c", true))
	testutil.Must(t, e.s.SetSubscribed(ctx, info, "b", false))
	testutil.Must(t, e.s.SetSubscribed(ctx, info, "c", true))
	e.subscribed(info, "INBOX", "Drafts", "Junk", "Sent", "Trash", "a", "c")
	e.check()

	// The limit is never below the mailboxes an account may have.
	e = openEnv(t, e.open, Options{MaxMailboxes: 9, MaxSubscriptions: 6})
	for _, n := range []string{"a", "b", "c", "d"} {
		_, err := e.s.CreateMailbox(ctx, info, n)
		testutil.Must(t, err)
		testutil.Must(t, e.s.SetSubscribed(ctx, info, n, true))
	}
	e.subscribed(info, "INBOX", "Drafts", "Junk", "Sent", "Trash", "a", "b", "c", "d")
	testutil.Must(t, e.s.DeleteMailbox(ctx, info, "d"))
	_, err = e.s.CreateMailbox(ctx, info, "e")
	testutil.Must(t, err)
	if err := e.s.SetSubscribed(ctx, info, "e", true); !is(err, store.ErrLimit) {
		t.Errorf("subscribe to a tenth name with MaxMailboxes 9: %v, want ErrLimit", err)
	}
}
