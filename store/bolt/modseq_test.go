package bolt

import (
	"encoding/binary"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"

	"yubin/internal/testutil"
	"yubin/store"

	bbolt "go.etcd.io/bbolt"
)

// A file of schema version 1, written before mod-sequences, opens as
// version 2: its messages read as ModSeq 1, every mailbox's HighestModSeq
// is 1 and nothing in it is recent; what it expunged before is not
// remembered, so Expunged since 0 names every UID not there, and since 1
// what was expunged after the upgrade, exactly.
func TestUpgradeFromVersion1(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(path, Options{})
	testutil.Must(t, err)
	setup(t, s)
	const acct = "info@example.com"
	for i := range 5 {
		_, err := s.Deliver(ctx, store.Delivery{Recipients: []string{acct}, Message: []byte("Subject: x\r\n\r\nbody " + string(rune('a'+i)) + "\r\n")})
		testutil.Must(t, err)
	}
	_, err = s.SetFlags(ctx, acct, "INBOX", []uint32{2}, store.FlagsAdd, []string{`\Seen`})
	testutil.Must(t, err)
	_, err = s.Expunge(ctx, acct, "INBOX", []uint32{3})
	testutil.Must(t, err)
	_, err = s.CopyMessages(ctx, acct, "INBOX", "Trash", []uint32{1, 2})
	testutil.Must(t, err)
	before, _, err := s.Messages(ctx, acct, "INBOX")
	testutil.Must(t, err)
	testutil.Must(t, s.Close())
	downgradeToVersion1(t, path)

	s, err = Open(path, Options{})
	testutil.Must(t, err)
	t.Cleanup(func() { s.Close() })
	verify := func(when string) {
		t.Helper()
		problems, err := s.Verify(ctx)
		testutil.Must(t, err)
		if len(problems) > 0 {
			t.Fatalf("Verify %s: %v", when, problems)
		}
	}
	verify("after the upgrade")
	if subs, err := s.Subscriptions(ctx, acct); err != nil || !slices.Equal(subs, []string{"INBOX", "Drafts", "Junk", "Sent", "Trash"}) {
		t.Errorf("subscriptions after the upgrade: %q, %v", subs, err)
	}
	s.viewFresh(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bMeta).Get(kVersion); string(v) != schemaVersion {
			t.Errorf("schema version %q after the upgrade", v)
		}
		return nil
	})
	for _, box := range []string{"INBOX", "Trash", "Junk"} {
		msgs, m, err := s.Messages(ctx, acct, box)
		testutil.Must(t, err)
		if m.HighestModSeq != 1 || m.FirstRecent != m.UIDNext {
			t.Errorf("%s after the upgrade: %+v", box, m)
		}
		for _, msg := range msgs {
			if msg.ModSeq != 1 {
				t.Errorf("%s UID %d after the upgrade: ModSeq %d", box, msg.UID, msg.ModSeq)
			}
		}
	}
	after, _, err := s.Messages(ctx, acct, "INBOX")
	testutil.Must(t, err)
	if !slices.EqualFunc(before, after, func(a, b store.MessageInfo) bool {
		return a.UID == b.UID && a.Size == b.Size && a.Date.Equal(b.Date) && slices.Equal(a.Flags, b.Flags)
	}) {
		t.Errorf("messages %+v became %+v", before, after)
	}
	expunged := func(since uint64, want ...uint32) {
		t.Helper()
		got, err := s.Expunged(ctx, acct, "INBOX", since)
		testutil.Must(t, err)
		if !slices.Equal(got, want) {
			t.Errorf("Expunged since %d: %v, want %v", since, got, want)
		}
	}
	expunged(0, 3)
	expunged(1)
	if first, _, err := s.ClaimRecent(ctx, acct, "INBOX"); err != nil || first != 6 {
		t.Errorf("ClaimRecent after the upgrade: %d, %v; want 6, nothing recent", first, err)
	}

	// Changes go on from 1.
	res, err := s.SetFlags(ctx, acct, "INBOX", []uint32{1}, store.FlagsAdd, []string{`\Flagged`})
	testutil.Must(t, err)
	if res[0].ModSeq != 2 {
		t.Errorf("the first change after the upgrade took ModSeq %d, want 2", res[0].ModSeq)
	}
	_, err = s.Expunge(ctx, acct, "INBOX", []uint32{4})
	testutil.Must(t, err)
	expunged(0, 3, 4)
	expunged(1, 4)
	expunged(3)
	ds, err := s.Deliver(ctx, store.Delivery{Recipients: []string{acct}, Message: []byte("Subject: new\r\n\r\nnew\r\n")})
	testutil.Must(t, err)
	if first, m, err := s.ClaimRecent(ctx, acct, "INBOX"); err != nil || first != ds[0].UID || m.HighestModSeq != 4 {
		t.Errorf("ClaimRecent after a delivery: %d, %+v, %v; want %d and HighestModSeq 4", first, m, err, ds[0].UID)
	}
	verify("after changes")

	// The upgrade is done once.
	testutil.Must(t, s.Close())
	s, err = Open(path, Options{})
	testutil.Must(t, err)
	if m, err := s.Mailbox(ctx, acct, "INBOX"); err != nil || m.HighestModSeq != 4 || m.FirstRecent != m.UIDNext {
		t.Errorf("INBOX reopened: %+v, %v", m, err)
	}
	expunged(0, 3, 4)
	expunged(1, 4)
	verify("reopened")
}

// downgradeToVersion1 rewrites a store file as schema version 1 wrote it:
// message records of version 1, mailbox metadata without mod-sequences or
// recent messages, no remembered expunges, subscriptions as mailbox flags.
func downgradeToVersion1(t *testing.T, path string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	testutil.Must(t, err)
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bMeta).Put(kVersion, []byte(schemaVersion1)); err != nil {
			return err
		}
		if err := downgradeSubscriptions(tx); err != nil {
			return err
		}
		var boxes []*bbolt.Bucket
		tx.Bucket(bMail).ForEach(func(acct, _ []byte) error {
			mb := tx.Bucket(bMail).Bucket(acct)
			return mb.Bucket(bBoxes).ForEach(func(_, id []byte) error {
				boxes = append(boxes, mb.Bucket(boxKey(id)))
				return nil
			})
		})
		for _, box := range boxes {
			var meta map[string]any
			if err := json.Unmarshal(box.Get(kMeta), &meta); err != nil {
				return err
			}
			delete(meta, "highest_modseq")
			delete(meta, "first_recent")
			v, _ := json.Marshal(meta)
			if err := box.Put(kMeta, v); err != nil {
				return err
			}
			if err := box.Delete(kGoneState); err != nil {
				return err
			}
			if box.Bucket(bGone) != nil {
				if err := box.DeleteBucket(bGone); err != nil {
					return err
				}
			}
			msgs := box.Bucket(bMsgs)
			var recs []record
			msgs.ForEach(func(k, v []byte) error {
				m, err := decodeRecord(binary.BigEndian.Uint32(k), v)
				recs = append(recs, m)
				return err
			})
			for _, m := range recs {
				if err := msgs.Put(u32key(m.UID), encodeRecordV1(&m)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	testutil.Must(t, err)
}
