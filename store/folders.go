package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// Mailbox hierarchy: names are UTF-8, levels separated by "/".
const (
	// HierarchySeparator separates the levels of a mailbox name.
	HierarchySeparator = "/"
	// MaxMailboxNameLen bounds a mailbox name in bytes.
	MaxMailboxNameLen = 512
	// MaxMailboxDepth bounds the number of levels of a mailbox name.
	MaxMailboxDepth = 32
)

// ErrHasChildren is returned by DeleteMailbox for a mailbox that has
// mailboxes below it.
var ErrHasChildren = errors.New("mailbox has child mailboxes")

// CheckMailboxName says whether name may be used for a new mailbox: valid
// UTF-8, no control characters, no IMAP wildcards (* and %), no "..", no
// empty, "." or over-long levels. INBOX in any case is the INBOX.
func CheckMailboxName(name string) error {
	bad := func(why string) error { return fmt.Errorf("%w: mailbox name %q: %s", ErrInvalid, name, why) }
	switch {
	case name == "":
		return bad("empty")
	case len(name) > MaxMailboxNameLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxMailboxNameLen))
	case !utf8.ValidString(name):
		return bad("not UTF-8")
	case strings.Contains(name, ".."):
		return bad(`contains ".."`)
	}
	for _, r := range name {
		switch {
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return bad("contains a control character")
		case r == '*' || r == '%':
			return bad("contains a wildcard (* or %)")
		case r == utf8.RuneError, r == '\u2028', r == '\u2029', r == '\ufeff':
			return bad("contains an invalid character")
		}
	}
	levels := strings.Split(name, HierarchySeparator)
	if len(levels) > MaxMailboxDepth {
		return bad(fmt.Sprintf("more than %d levels", MaxMailboxDepth))
	}
	for _, l := range levels {
		if l == "" {
			return bad("empty level (leading, trailing or doubled /)")
		}
		if l == "." {
			return bad(`"." level`)
		}
		if strings.TrimSpace(l) != l {
			return bad("level starts or ends with a space")
		}
	}
	return nil
}

// parents returns the ancestors of a mailbox name, outermost first.
func parents(name string) []string {
	var out []string
	for i := 0; i < len(name); i++ {
		if name[i] == '/' {
			out = append(out, name[:i])
		}
	}
	return out
}

// accountBucket is an account's mail bucket.
func accountBucket(tx *bolt.Tx, account string) (*bolt.Bucket, error) {
	account = strings.ToLower(account)
	mb := tx.Bucket(bMail).Bucket([]byte(account))
	if mb == nil {
		return nil, fmt.Errorf("account %s: %w", account, ErrNoSuchAccount)
	}
	return mb, nil
}

// hasChildren reports whether any mailbox is below name.
func hasChildren(mb *bolt.Bucket, name string) bool {
	prefix := []byte(name + HierarchySeparator)
	k, _ := mb.Bucket(bBoxes).Cursor().Seek(prefix)
	return k != nil && bytes.HasPrefix(k, prefix)
}

// CreateMailbox creates a mailbox with a fresh UIDVALIDITY, and any of its
// missing parents (RFC 3501 6.3.3). A trailing separator is ignored.
func (s *Store) CreateMailbox(ctx context.Context, account, name string) (Mailbox, error) {
	name = canonicalMailbox(strings.TrimSuffix(name, HierarchySeparator))
	if err := CheckMailboxName(name); err != nil {
		return Mailbox{}, err
	}
	var out Mailbox
	fn := func(tx *bolt.Tx) error {
		mb, err := accountBucket(tx, account)
		if err != nil {
			return clean(err)
		}
		boxes := mb.Bucket(bBoxes)
		if boxes.Get([]byte(name)) != nil {
			return clean(fmt.Errorf("mailbox %s: %w", name, ErrExists))
		}
		for _, p := range append(parents(name), name) {
			if boxes.Get([]byte(p)) != nil {
				continue
			}
			if _, err := createMailbox(tx, mb, p, ""); err != nil {
				return err
			}
		}
		_, out, err = mailboxBucket(tx, account, name)
		return err
	}
	if err := s.groupWrite(ctx, fn, nil); err != nil {
		return Mailbox{}, err
	}
	return out, nil
}

// DeleteMailbox removes a mailbox and its messages and frees their quota.
// INBOX cannot be deleted, nor a mailbox with children (ErrHasChildren).
func (s *Store) DeleteMailbox(ctx context.Context, account, name string) error {
	name = canonicalMailbox(name)
	if name == "INBOX" {
		return fmt.Errorf("%w: INBOX cannot be deleted", ErrInvalid)
	}
	var events []Event
	fn := func(tx *bolt.Tx) error {
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
			return clean(fmt.Errorf("mailbox %s: %w", name, ErrHasChildren))
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
			events = append(events, Event{Kind: EventExpunge, Account: a.Address, Mailbox: meta.Name, UIDValidity: meta.UIDValidity, UID: uid})
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
	return s.groupWrite(ctx, fn, func() { s.feed.publish(events) })
}

// RenameMailbox renames a mailbox and every mailbox below it, keeping
// their UIDVALIDITY and UIDs. Renaming INBOX (RFC 3501 6.3.5) moves all its
// messages into a new mailbox of that name and leaves INBOX empty.
func (s *Store) RenameMailbox(ctx context.Context, account, oldName, newName string) error {
	oldName = canonicalMailbox(oldName)
	newName = canonicalMailbox(strings.TrimSuffix(newName, HierarchySeparator))
	if err := CheckMailboxName(newName); err != nil {
		return err
	}
	if newName == "INBOX" {
		return fmt.Errorf("mailbox INBOX: %w", ErrExists)
	}
	if newName == oldName || strings.HasPrefix(newName, oldName+HierarchySeparator) {
		return fmt.Errorf("%w: cannot rename %s to %s (itself or below itself)", ErrInvalid, oldName, newName)
	}
	var events []Event
	fn := func(tx *bolt.Tx) error {
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
			return clean(fmt.Errorf("mailbox %s: %w", newName, ErrExists))
		}
		// Collect the renames first; a bucket must not change under ForEach.
		type rename struct{ from, to string }
		var renames []rename
		if oldName != "INBOX" {
			renames = append(renames, rename{oldName, newName})
			prefix := []byte(oldName + HierarchySeparator)
			c := boxes.Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				to := newName + string(k[len(oldName):])
				if len(to) > MaxMailboxNameLen {
					return clean(fmt.Errorf("%w: %s would become longer than %d bytes", ErrInvalid, k, MaxMailboxNameLen))
				}
				if boxes.Get([]byte(to)) != nil {
					return clean(fmt.Errorf("mailbox %s: %w", to, ErrExists))
				}
				renames = append(renames, rename{string(k), to})
			}
		}
		for _, p := range parents(newName) {
			if boxes.Get([]byte(p)) == nil {
				if _, err := createMailbox(tx, mb, p, ""); err != nil {
					return err
				}
			}
		}
		if oldName == "INBOX" {
			return renameInbox(tx, mb, account, newName, &events)
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
			var meta Mailbox
			getJSON(box, string(kMeta), &meta)
			meta.Name = r.to
			if err := putJSON(box, string(kMeta), meta); err != nil {
				return err
			}
		}
		return nil
	}
	return s.groupWrite(ctx, fn, func() { s.feed.publish(events) })
}

// renameInbox moves INBOX's messages into a new mailbox; INBOX keeps its
// UIDVALIDITY and UIDNEXT, so its UIDs are never reused.
func renameInbox(tx *bolt.Tx, mb *bolt.Bucket, account, newName string, events *[]Event) error {
	dst, err := createMailbox(tx, mb, newName, "")
	if err != nil {
		return err
	}
	src, smeta, _ := mailboxBucket(tx, account, "INBOX")
	var dmeta Mailbox
	getJSON(dst, string(kMeta), &dmeta)
	acct := strings.ToLower(account)
	smsgs, dmsgs := src.Bucket(bMsgs), dst.Bucket(bMsgs)
	var uids [][]byte
	err = smsgs.ForEach(func(k, v []byte) error {
		if err := dmsgs.Put(k, v); err != nil {
			return err
		}
		m, err := decodeRecord(binary.BigEndian.Uint32(k), v)
		if err != nil {
			return err
		}
		uids = append(uids, append([]byte(nil), k...))
		*events = append(*events,
			Event{Kind: EventExpunge, Account: acct, Mailbox: "INBOX", UIDValidity: smeta.UIDValidity, UID: m.UID},
			Event{Kind: EventNew, Account: acct, Mailbox: newName, UIDValidity: dmeta.UIDValidity, UID: m.UID, Flags: m.Flags})
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range uids {
		if err := smsgs.Delete(k); err != nil {
			return err
		}
	}
	dmeta.UIDNext, dmeta.Messages, dmeta.Size = smeta.UIDNext, smeta.Messages, smeta.Size
	smeta.Messages, smeta.Size = 0, 0
	if err := putJSON(dst, string(kMeta), dmeta); err != nil {
		return err
	}
	return putJSON(src, string(kMeta), smeta)
}

// SetSubscribed subscribes to or unsubscribes from a mailbox (IMAP
// SUBSCRIBE/UNSUBSCRIBE).
func (s *Store) SetSubscribed(ctx context.Context, account, name string, subscribed bool) error {
	fn := func(tx *bolt.Tx) error {
		box, meta, err := mailboxBucket(tx, account, name)
		if err != nil {
			return clean(err)
		}
		if meta.Subscribed == subscribed {
			return nil
		}
		meta.Subscribed = subscribed
		return putJSON(box, string(kMeta), meta)
	}
	return s.groupWrite(ctx, fn, nil)
}

// CopyResult tells where CopyMessages or MoveMessages put messages:
// Source[i] became Dest[i] in a mailbox with UIDValidity.
type CopyResult struct {
	UIDValidity uint32
	Source      []uint32
	Dest        []uint32
}

// CopyMessages copies messages (in UID order; missing UIDs are skipped) to
// another mailbox of the same account, sharing their stored bytes. The
// copies count against the quota: either all fit or a *QuotaError is
// returned and nothing is copied.
func (s *Store) CopyMessages(ctx context.Context, account, src, dst string, uids []uint32) (CopyResult, error) {
	return s.copyMessages(ctx, account, src, dst, uids, false)
}

// MoveMessages moves messages to another mailbox of the same account in one
// transaction (IMAP MOVE): new UIDs in dst, expunged from src. Usage does
// not change.
func (s *Store) MoveMessages(ctx context.Context, account, src, dst string, uids []uint32) (CopyResult, error) {
	return s.copyMessages(ctx, account, src, dst, uids, true)
}

func (s *Store) copyMessages(ctx context.Context, account, src, dst string, uids []uint32, move bool) (CopyResult, error) {
	src, dst = canonicalMailbox(src), canonicalMailbox(dst)
	if move && src == dst {
		return CopyResult{}, fmt.Errorf("%w: source and destination are the same mailbox", ErrInvalid)
	}
	uids = sortedUnique(uids)
	var out CopyResult
	var events []Event
	fn := func(tx *bolt.Tx) error {
		out, events = CopyResult{}, events[:0]
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
		var msgs []Message
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
			return clean(&QuotaError{Account: a.Address, Quota: a.Quota, Used: a.Used, Need: size})
		}
		// Look up dst again after the checks: with src == dst both views
		// must be the same bucket and metadata.
		db, dmeta, _ := mailboxBucket(tx, account, dst)
		dmsgs := db.Bucket(bMsgs)
		out.UIDValidity = dmeta.UIDValidity
		for _, m := range msgs {
			srcUID := m.UID
			m.UID = dmeta.UIDNext
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
				events = append(events, Event{Kind: EventExpunge, Account: a.Address, Mailbox: smeta.Name, UIDValidity: smeta.UIDValidity, UID: srcUID})
			} else if err := refBlob(tx, m.blob); err != nil {
				return err
			}
			out.Source = append(out.Source, srcUID)
			out.Dest = append(out.Dest, m.UID)
			events = append(events, Event{Kind: EventNew, Account: a.Address, Mailbox: dmeta.Name, UIDValidity: dmeta.UIDValidity, UID: m.UID, Flags: m.Flags})
		}
		if len(msgs) == 0 {
			return nil
		}
		if err := putJSON(db, string(kMeta), dmeta); err != nil {
			return err
		}
		if move {
			return putJSON(sb, string(kMeta), smeta)
		}
		a.Used += size
		return putJSON(tx.Bucket(bAccounts), a.Address, a)
	}
	err := s.groupWrite(ctx, fn, func() {
		s.feed.publish(events)
	})
	if err != nil {
		return CopyResult{}, err
	}
	return out, nil
}

// refBlob adds one reference to a blob.
func refBlob(tx *bolt.Tx, id uint64) error {
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
func (s *Store) MessagesByUID(ctx context.Context, account, mailbox string, uids []uint32) ([]Message, Mailbox, error) {
	var out []Message
	var meta Mailbox
	err := s.db.View(func(tx *bolt.Tx) error {
		b, m, err := mailboxBucket(tx, account, mailbox)
		if err != nil {
			return err
		}
		meta = m
		msgs := b.Bucket(bMsgs)
		out = make([]Message, 0, len(uids))
		for _, uid := range uids {
			v := msgs.Get(u32key(uid))
			if v == nil {
				continue
			}
			msg, err := decodeRecord(uid, v)
			if err != nil {
				return fmt.Errorf("%s/%s uid %d: %w", account, mailbox, uid, err)
			}
			out = append(out, msg)
		}
		return nil
	})
	return out, meta, err
}
