package bolt

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"

	"yubin/internal/testutil"
	"yubin/store"

	bbolt "go.etcd.io/bbolt"
)

// A file written when subscriptions were a flag of each mailbox opens with
// the same subscriptions as names, once: what changes after stays.
func TestUpgradeSubscriptions(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(path, Options{})
	testutil.Must(t, err)
	setup(t, s)
	const acct = "info@example.com"
	testutil.Must(t, s.AddAccount(ctx, store.Account{Address: "bob@example.com", PasswordHash: "x"}))
	for _, n := range []string{"Work", "Work/2024", "Lists"} {
		_, err := s.CreateMailbox(ctx, acct, n)
		testutil.Must(t, err)
	}
	testutil.Must(t, s.SetSubscribed(ctx, acct, "Work/2024", true))
	testutil.Must(t, s.SetSubscribed(ctx, acct, "Junk", false))
	testutil.Must(t, s.Close())
	db, err := bbolt.Open(path, 0o600, nil)
	testutil.Must(t, err)
	testutil.Must(t, db.Update(downgradeSubscriptions))
	testutil.Must(t, db.Close())

	subs := func(s *Store, acct string, want ...string) {
		t.Helper()
		got, err := s.Subscriptions(ctx, acct)
		testutil.Must(t, err)
		if !slices.Equal(got, want) {
			t.Errorf("%s subscribes to %q, want %q", acct, got, want)
		}
	}
	s, err = Open(path, Options{})
	testutil.Must(t, err)
	subs(s, acct, "INBOX", "Drafts", "Sent", "Trash", "Work/2024")
	subs(s, "bob@example.com", "INBOX", "Drafts", "Junk", "Sent", "Trash")
	if problems, err := s.Verify(ctx); err != nil || len(problems) > 0 {
		t.Fatalf("Verify after the upgrade: %v %v", problems, err)
	}
	// Once upgraded, the flags of before no longer count.
	testutil.Must(t, s.SetSubscribed(ctx, acct, "Work/2024", false))
	testutil.Must(t, s.DeleteMailbox(ctx, acct, "Sent"))
	testutil.Must(t, s.Close())
	s, err = Open(path, Options{})
	testutil.Must(t, err)
	t.Cleanup(func() { s.Close() })
	subs(s, acct, "INBOX", "Drafts", "Sent", "Trash")
}

// downgradeSubscriptions rewrites subscriptions as files written before
// kept them: a flag in each mailbox's metadata, no set of names.
func downgradeSubscriptions(tx *bbolt.Tx) error {
	mail := tx.Bucket(bMail)
	return mail.ForEach(func(acct, _ []byte) error {
		mb := mail.Bucket(acct)
		subs := mb.Bucket(bSubs)
		err := mb.Bucket(bBoxes).ForEach(func(name, id []byte) error {
			box := mb.Bucket(boxKey(id))
			var meta map[string]any
			if err := json.Unmarshal(box.Get(kMeta), &meta); err != nil {
				return err
			}
			meta["subscribed"] = subs.Get(name) != nil
			v, _ := json.Marshal(meta)
			return box.Put(kMeta, v)
		})
		if err != nil {
			return err
		}
		return mb.DeleteBucket(bSubs)
	})
}
