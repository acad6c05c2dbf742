package bolt

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"yubin/store"

	bbolt "go.etcd.io/bbolt"
)

func boxKey(id []byte) []byte { return append([]byte("box"), id...) }

// createMailbox makes a mailbox bucket under the account bucket mb.
func createMailbox(tx *bbolt.Tx, mb *bbolt.Bucket, name, specialUse string) (*bbolt.Bucket, error) {
	boxes := mb.Bucket(bBoxes)
	if boxes.Get([]byte(name)) != nil {
		return nil, fmt.Errorf("mailbox %s: %w", name, store.ErrExists)
	}
	id, err := mb.NextSequence()
	if err != nil {
		return nil, err
	}
	uidv, err := nextUIDValidity(tx)
	if err != nil {
		return nil, err
	}
	if err := boxes.Put([]byte(name), u64key(id)); err != nil {
		return nil, err
	}
	box, err := mb.CreateBucket(boxKey(u64key(id)))
	if err != nil {
		return nil, err
	}
	if _, err := box.CreateBucket(bMsgs); err != nil {
		return nil, err
	}
	meta := store.Mailbox{Name: name, UIDValidity: uidv, UIDNext: 1, SpecialUse: specialUse, HighestModSeq: 1, FirstRecent: 1}
	return box, putJSON(box, string(kMeta), meta)
}

// mailboxBucket finds an account's mailbox and its metadata.
func mailboxBucket(tx *bbolt.Tx, account, name string) (*bbolt.Bucket, store.Mailbox, error) {
	var meta store.Mailbox
	account = strings.ToLower(account)
	mb := tx.Bucket(bMail).Bucket([]byte(account))
	if mb == nil {
		return nil, meta, fmt.Errorf("account %s: %w", account, store.ErrNoSuchAccount)
	}
	name = store.CanonicalMailbox(name)
	id := mb.Bucket(bBoxes).Get([]byte(name))
	if id == nil {
		return nil, meta, fmt.Errorf("mailbox %s of %s: %w", name, account, store.ErrNoSuchMailbox)
	}
	box := mb.Bucket(boxKey(id))
	getJSON(box, string(kMeta), &meta)
	meta.Subscribed = isSubscribed(mb, name)
	return box, meta, nil
}

// Mailboxes lists an account's mailboxes, INBOX first, then by name.
func (s *Store) Mailboxes(ctx context.Context, account string) ([]store.Mailbox, error) {
	var out []store.Mailbox
	err := s.viewFresh(func(tx *bbolt.Tx) error {
		mb := tx.Bucket(bMail).Bucket([]byte(strings.ToLower(account)))
		if mb == nil {
			return fmt.Errorf("account %s: %w", account, store.ErrNoSuchAccount)
		}
		return mb.Bucket(bBoxes).ForEach(func(_, id []byte) error {
			var m store.Mailbox
			getJSON(mb.Bucket(boxKey(id)), string(kMeta), &m)
			m.Subscribed = isSubscribed(mb, m.Name)
			out = append(out, m)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Name == "INBOX") != (out[j].Name == "INBOX") {
			return out[i].Name == "INBOX"
		}
		return out[i].Name < out[j].Name
	})
	return out, err
}

// Mailbox returns one mailbox's metadata.
func (s *Store) Mailbox(ctx context.Context, account, name string) (store.Mailbox, error) {
	var m store.Mailbox
	err := s.viewFresh(func(tx *bbolt.Tx) error {
		var err error
		_, m, err = mailboxBucket(tx, account, name)
		return err
	})
	return m, err
}
