package bolt

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"yubin/store"
)

// An account has at most Options.MaxMailboxes mailboxes, counting INBOX,
// the special mailboxes and the parents that CREATE and RENAME make; a
// refused request creates nothing, another account is not affected, and
// deleting a mailbox makes room again.
func TestMaxMailboxes(t *testing.T) {
	const max = 9 // INBOX, Sent, Drafts, Trash, Junk and four more
	s, err := Open(filepath.Join(t.TempDir(), "y.db"), Options{MaxMailboxes: max})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	ok := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	limited := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrLimit) {
			t.Fatalf("%s: %v, want ErrLimit", what, err)
		}
	}
	create := func(acct, name string) error { _, err := s.CreateMailbox(ctx, acct, name); return err }
	count := func(acct string) int {
		t.Helper()
		boxes, err := s.Mailboxes(ctx, acct)
		ok(err)
		return len(boxes)
	}
	ok(s.AddDomain(ctx, "example.com", ""))
	for _, a := range []string{"info@example.com", "bob@example.com"} {
		ok(s.AddAccount(ctx, store.Account{Address: a, PasswordHash: "x"}))
	}
	const info = "info@example.com"
	if n := count(info); n != 5 {
		t.Fatalf("a new account has %d mailboxes", n)
	}
	ok(create(info, "a"))
	ok(create(info, "b"))
	// Room for two more.
	limited("CREATE of 3 mailboxes (2 parents)", create(info, "p/q/r"))
	limited("RENAME making 3 parents", s.RenameMailbox(ctx, info, "a", "p/q/r/a"))
	if _, err := s.Mailbox(ctx, info, "p"); !errors.Is(err, store.ErrNoSuchMailbox) {
		t.Fatalf("a refused CREATE left a parent behind: %v", err)
	}
	ok(s.RenameMailbox(ctx, info, "a", "p/a")) // makes p
	ok(create(info, "c"))
	if n := count(info); n != max {
		t.Fatalf("%d mailboxes, want %d", n, max)
	}
	limited("CREATE at the limit", create(info, "d"))
	limited("RENAME INBOX at the limit (INBOX stays)", s.RenameMailbox(ctx, info, "INBOX", "old"))
	ok(s.RenameMailbox(ctx, info, "b", "p/b")) // makes none
	for i := 0; i < max-5; i++ {
		ok(create("bob@example.com", fmt.Sprint("x", i)))
	}
	ok(s.DeleteMailbox(ctx, info, "c"))
	ok(create(info, "d"))
	if err := create(info, "e"); !strings.Contains(fmt.Sprint(err), "at most 9 mailboxes") {
		t.Fatalf("the error does not say the limit: %v", err)
	}
	problems, err := s.Verify(ctx)
	ok(err)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
}
