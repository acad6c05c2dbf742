package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"yubin/store"

	bbolt "go.etcd.io/bbolt"
)

// accountBucket is an account's mail bucket.
func accountBucket(tx *bbolt.Tx, account string) (*bbolt.Bucket, error) {
	account = strings.ToLower(account)
	mb := tx.Bucket(bMail).Bucket([]byte(account))
	if mb == nil {
		return nil, fmt.Errorf("account %s: %w", account, store.ErrNoSuchAccount)
	}
	return mb, nil
}

// hasChildren reports whether any mailbox is below name.
func hasChildren(mb *bbolt.Bucket, name string) bool {
	prefix := []byte(name + store.HierarchySeparator)
	k, _ := mb.Bucket(bBoxes).Cursor().Seek(prefix)
	return k != nil && bytes.HasPrefix(k, prefix)
}

// missingMailboxes returns the names that are not mailboxes yet.
func missingMailboxes(boxes *bbolt.Bucket, names []string) []string {
	var out []string
	for _, n := range names {
		if boxes.Get([]byte(n)) == nil {
			out = append(out, n)
		}
	}
	return out
}

// checkMailboxLimit fails with store.ErrLimit if adding n mailboxes to an
// account's would make more than Options.MaxMailboxes.
func (s *Store) checkMailboxLimit(boxes *bbolt.Bucket, n int) error {
	if s.maxBoxes <= 0 || n == 0 {
		return nil
	}
	have := 0
	c := boxes.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if have++; have+n > s.maxBoxes {
			return fmt.Errorf("%w: an account has at most %d mailboxes", store.ErrLimit, s.maxBoxes)
		}
	}
	return nil
}

// CreateMailbox creates a mailbox with a fresh UIDVALIDITY, and any of its
// missing parents (RFC 3501 6.3.3). A trailing separator is ignored.
func (s *Store) CreateMailbox(ctx context.Context, account, name string) (store.Mailbox, error) {
	name = store.CanonicalMailbox(strings.TrimSuffix(name, store.HierarchySeparator))
	if err := store.CheckMailboxName(name); err != nil {
		return store.Mailbox{}, err
	}
	var out store.Mailbox
	fn := func(tx *bbolt.Tx) error {
		mb, err := accountBucket(tx, account)
		if err != nil {
			return clean(err)
		}
		boxes := mb.Bucket(bBoxes)
		if boxes.Get([]byte(name)) != nil {
			return clean(fmt.Errorf("mailbox %s: %w", name, store.ErrExists))
		}
		missing := missingMailboxes(boxes, append(store.ParentMailboxes(name), name))
		if err := s.checkMailboxLimit(boxes, len(missing)); err != nil {
			return clean(err)
		}
		for _, p := range missing {
			if _, err := createMailbox(tx, mb, p, ""); err != nil {
				return err
			}
		}
		_, out, err = mailboxBucket(tx, account, name)
		return err
	}
	if err := s.groupWrite(ctx, fn, nil); err != nil {
		return store.Mailbox{}, err
	}
	return out, nil
}

// DeleteMailbox removes a mailbox and its messages and frees their quota.
// INBOX cannot be deleted, nor a mailbox with children (ErrHasChildren).
func (s *Store) DeleteMailbox(ctx context.Context, account, name string) error {
	name = store.CanonicalMailbox(name)
	if name == "INBOX" {
		return fmt.Errorf("%w: INBOX cannot be deleted", store.ErrInvalid)
	}
	var events []store.Event
	fn := func(tx *bbolt.Tx) error {
		events = events[:0]
		mb, err := accountBucket(tx, account)
		if err != nil {
			return clean(err)
		}
		box, meta, err := mailboxBucket(tx, account, name)
		if err != nil {
			return clean(err)
		}
		if hasChildren(mb, name) {
			return clean(fmt.Errorf("mailbox %s: %w", name, store.ErrHasChildren))
		}
		a, err := getAccount(tx, account)
		if err != nil {
			return clean(err)
		}
		err = box.Bucket(bMsgs).ForEach(func(k, v []byte) error {
			uid := binary.BigEndian.Uint32(k)
			m, err := decodeRecord(uid, v)
			if err != nil {
				return err
			}
			a.Used -= m.Size
			// The mailbox goes with its counter; its last events still
			// take mod-sequences above the ones before.
			events = append(events, store.Event{Kind: store.EventExpunge, Account: a.Address, Mailbox: meta.Name, UIDValidity: meta.UIDValidity, UID: uid, ModSeq: bumpModSeq(&meta)})
			return unrefBlob(tx, m.blob)
		})
		if err != nil {
			return err
		}
		id := mb.Bucket(bBoxes).Get([]byte(name))
		if err := mb.DeleteBucket(boxKey(id)); err != nil {
			return err
		}
		if err := mb.Bucket(bBoxes).Delete([]byte(name)); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bAccounts), a.Address, a)
	}
	return s.groupWrite(ctx, fn, func() { s.feed.Publish(events) })
}

// RenameMailbox renames a mailbox and every mailbox below it, keeping
// their UIDVALIDITY and UIDs. Renaming INBOX (RFC 3501 6.3.5) moves all its
// messages into a new mailbox of that name and leaves INBOX empty.
func (s *Store) RenameMailbox(ctx context.Context, account, oldName, newName string) error {
	oldName = store.CanonicalMailbox(oldName)
	newName = store.CanonicalMailbox(strings.TrimSuffix(newName, store.HierarchySeparator))
	if err := store.CheckMailboxName(newName); err != nil {
		return err
	}
	if newName == "INBOX" {
		return fmt.Errorf("mailbox INBOX: %w", store.ErrExists)
	}
	if newName == oldName || strings.HasPrefix(newName, oldName+store.HierarchySeparator) {
		return fmt.Errorf("%w: cannot rename %s to %s (itself or below itself)", store.ErrInvalid, oldName, newName)
	}
	var events []store.Event
	fn := func(tx *bbolt.Tx) error {
		events = events[:0]
		mb, err := accountBucket(tx, account)
		if err != nil {
			return clean(err)
		}
		boxes := mb.Bucket(bBoxes)
		if _, _, err := mailboxBucket(tx, account, oldName); err != nil {
			return clean(err)
		}
		if boxes.Get([]byte(newName)) != nil {
			return clean(fmt.Errorf("mailbox %s: %w", newName, store.ErrExists))
		}
		// Collect the renames first; a bucket must not change under ForEach.
		type rename struct{ from, to string }
		var renames []rename
		if oldName != "INBOX" {
			renames = append(renames, rename{oldName, newName})
			prefix := []byte(oldName + store.HierarchySeparator)
			c := boxes.Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				to := newName + string(k[len(oldName):])
				if len(to) > store.MaxMailboxNameLen {
					return clean(fmt.Errorf("%w: %s would become longer than %d bytes", store.ErrInvalid, k, store.MaxMailboxNameLen))
				}
				if boxes.Get([]byte(to)) != nil {
					return clean(fmt.Errorf("mailbox %s: %w", to, store.ErrExists))
				}
				renames = append(renames, rename{string(k), to})
			}
		}
		parents := missingMailboxes(boxes, store.ParentMailboxes(newName))
		adding := len(parents)
		if oldName == "INBOX" {
			adding++ // INBOX stays, and its messages move to a new mailbox
		}
		if err := s.checkMailboxLimit(boxes, adding); err != nil {
			return clean(err)
		}
		for _, p := range parents {
			if _, err := createMailbox(tx, mb, p, ""); err != nil {
				return err
			}
		}
		if oldName == "INBOX" {
			return s.renameInbox(tx, mb, account, newName, &events)
		}
		for _, r := range renames {
			id := append([]byte(nil), boxes.Get([]byte(r.from))...)
			if err := boxes.Delete([]byte(r.from)); err != nil {
				return err
			}
			if err := boxes.Put([]byte(r.to), id); err != nil {
				return err
			}
			box := mb.Bucket(boxKey(id))
			var meta store.Mailbox
			getJSON(box, string(kMeta), &meta)
			meta.Name = r.to
			if err := putJSON(box, string(kMeta), meta); err != nil {
				return err
			}
		}
		return nil
	}
	return s.groupWrite(ctx, fn, func() { s.feed.Publish(events) })
}

// renameInbox moves INBOX's messages into a new mailbox; INBOX keeps its
// UIDVALIDITY, UIDNEXT and what is recent, so its UIDs are never reused.
// The messages take new mod-sequences in the new mailbox, and their
// expunges from INBOX are remembered there.
func (s *Store) renameInbox(tx *bbolt.Tx, mb *bbolt.Bucket, account, newName string, events *[]store.Event) error {
	dst, err := createMailbox(tx, mb, newName, "")
	if err != nil {
		return err
	}
	src, smeta, _ := mailboxBucket(tx, account, "INBOX")
	var dmeta store.Mailbox
	getJSON(dst, string(kMeta), &dmeta)
	acct := strings.ToLower(account)
	smsgs, dmsgs := src.Bucket(bMsgs), dst.Bucket(bMsgs)
	var msgs []record
	err = smsgs.ForEach(func(k, v []byte) error {
		m, err := decodeRecord(binary.BigEndian.Uint32(k), v)
		msgs = append(msgs, m)
		return err
	})
	if err != nil {
		return err
	}
	var gone []expunged
	for _, m := range msgs {
		if err := smsgs.Delete(u32key(m.UID)); err != nil {
			return err
		}
		gone = append(gone, expunged{m.UID, bumpModSeq(&smeta)})
		m.ModSeq = bumpModSeq(&dmeta)
		if err := dmsgs.Put(u32key(m.UID), encodeRecord(&m)); err != nil {
			return err
		}
		*events = append(*events,
			store.Event{Kind: store.EventExpunge, Account: acct, Mailbox: "INBOX", UIDValidity: smeta.UIDValidity, UID: m.UID, ModSeq: gone[len(gone)-1].modseq},
			store.Event{Kind: store.EventNew, Account: acct, Mailbox: newName, UIDValidity: dmeta.UIDValidity, UID: m.UID, Flags: m.Flags, ModSeq: m.ModSeq})
	}
	if err := s.rememberExpunged(src, gone); err != nil {
		return err
	}
	dmeta.UIDNext, dmeta.Messages, dmeta.Size, dmeta.FirstRecent = smeta.UIDNext, smeta.Messages, smeta.Size, smeta.FirstRecent
	smeta.Messages, smeta.Size = 0, 0
	if err := putJSON(dst, string(kMeta), dmeta); err != nil {
		return err
	}
	return putJSON(src, string(kMeta), smeta)
}

// CopyMessages copies messages (in UID order; missing UIDs are skipped) to
// another mailbox of the same account, sharing their stored bytes. The
// copies count against the quota: either all fit or a *QuotaError is
// returned and nothing is copied.
func (s *Store) CopyMessages(ctx context.Context, account, src, dst string, uids []uint32) (store.CopyResult, error) {
	return s.copyMessages(ctx, account, src, dst, uids, false)
}

// MoveMessages moves messages to another mailbox of the same account in one
// transaction (IMAP MOVE): new UIDs in dst, expunged from src. Usage does
// not change.
func (s *Store) MoveMessages(ctx context.Context, account, src, dst string, uids []uint32) (store.CopyResult, error) {
	return s.copyMessages(ctx, account, src, dst, uids, true)
}

func (s *Store) copyMessages(ctx context.Context, account, src, dst string, uids []uint32, move bool) (store.CopyResult, error) {
	src, dst = store.CanonicalMailbox(src), store.CanonicalMailbox(dst)
	if move && src == dst {
		return store.CopyResult{}, fmt.Errorf("%w: source and destination are the same mailbox", store.ErrInvalid)
	}
	uids = sortedUnique(uids)
	var out store.CopyResult
	var events []store.Event
	fn := func(tx *bbolt.Tx) error {
		out, events = store.CopyResult{}, events[:0]
		sb, smeta, err := mailboxBucket(tx, account, src)
		if err != nil {
			return clean(err)
		}
		if _, _, err := mailboxBucket(tx, account, dst); err != nil {
			return clean(err)
		}
		a, err := getAccount(tx, account)
		if err != nil {
			return clean(err)
		}
		smsgs := sb.Bucket(bMsgs)
		var msgs []record
		var size int64
		for _, uid := range uids {
			v := smsgs.Get(u32key(uid))
			if v == nil {
				continue
			}
			m, err := decodeRecord(uid, v)
			if err != nil {
				return clean(err)
			}
			msgs = append(msgs, m)
			size += m.Size
		}
		if !move && a.Quota > 0 && a.Used+size > a.Quota {
			return clean(&store.QuotaError{Account: a.Address, Quota: a.Quota, Used: a.Used, Need: size})
		}
		// Look up dst again after the checks: with src == dst both views
		// must be the same bucket and metadata.
		db, dmeta, _ := mailboxBucket(tx, account, dst)
		dmsgs := db.Bucket(bMsgs)
		out.UIDValidity = dmeta.UIDValidity
		var gone []expunged
		for _, m := range msgs {
			srcUID := m.UID
			m.UID = dmeta.UIDNext
			m.ModSeq = bumpModSeq(&dmeta)
			dmeta.UIDNext++
			dmeta.Messages++
			dmeta.Size += m.Size
			if err := dmsgs.Put(u32key(m.UID), encodeRecord(&m)); err != nil {
				return err
			}
			if move {
				if err := smsgs.Delete(u32key(srcUID)); err != nil {
					return err
				}
				smeta.Messages--
				smeta.Size -= m.Size
				gone = append(gone, expunged{srcUID, bumpModSeq(&smeta)})
				events = append(events, store.Event{Kind: store.EventExpunge, Account: a.Address, Mailbox: smeta.Name, UIDValidity: smeta.UIDValidity, UID: srcUID, ModSeq: gone[len(gone)-1].modseq})
			} else if err := refBlob(tx, m.blob); err != nil {
				return err
			}
			out.Source = append(out.Source, srcUID)
			out.Dest = append(out.Dest, m.UID)
			events = append(events, store.Event{Kind: store.EventNew, Account: a.Address, Mailbox: dmeta.Name, UIDValidity: dmeta.UIDValidity, UID: m.UID, Flags: m.Flags, ModSeq: m.ModSeq})
		}
		if len(msgs) == 0 {
			return nil
		}
		if err := putJSON(db, string(kMeta), dmeta); err != nil {
			return err
		}
		if move {
			if err := s.rememberExpunged(sb, gone); err != nil {
				return err
			}
			return putJSON(sb, string(kMeta), smeta)
		}
		a.Used += size
		return putJSON(tx.Bucket(bAccounts), a.Address, a)
	}
	err := s.groupWrite(ctx, fn, func() {
		s.feed.Publish(events)
	})
	if err != nil {
		return store.CopyResult{}, err
	}
	return out, nil
}

// refBlob adds one reference to a blob.
func refBlob(tx *bbolt.Tx, id uint64) error {
	refsB := tx.Bucket(bBlobRefs)
	n, k := binary.Uvarint(refsB.Get(u64key(id)))
	if k <= 0 {
		return fmt.Errorf("store: blob %d has no reference count", id)
	}
	return refsB.Put(u64key(id), binary.AppendUvarint(nil, n+1))
}

func sortedUnique(uids []uint32) []uint32 {
	out := slices.Clone(uids)
	slices.Sort(out)
	return slices.Compact(out)
}

// MessagesByUID returns the given messages of a mailbox (missing UIDs are
// skipped), in the order asked, with the mailbox's metadata, from one
// snapshot: cheaper than Messages when a few of many are wanted.
func (s *Store) MessagesByUID(ctx context.Context, account, mailbox string, uids []uint32) ([]store.MessageInfo, store.Mailbox, error) {
	var out []store.MessageInfo
	var meta store.Mailbox
	err := s.viewFresh(func(tx *bbolt.Tx) error {
		b, m, err := mailboxBucket(tx, account, mailbox)
		if err != nil {
			return err
		}
		meta = m
		msgs := b.Bucket(bMsgs)
		out = make([]store.MessageInfo, 0, len(uids))
		for _, uid := range uids {
			v := msgs.Get(u32key(uid))
			if v == nil {
				continue
			}
			msg, err := decodeRecord(uid, v)
			if err != nil {
				return fmt.Errorf("%s/%s uid %d: %w", account, mailbox, uid, err)
			}
			out = append(out, msg.MessageInfo)
		}
		return nil
	})
	return out, meta, err
}
