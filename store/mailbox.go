package store

import (
	"context"
	"fmt"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Mailbox describes one mailbox (folder) of an account.
type Mailbox struct {
	Name        string `json:"name"`
	UIDValidity uint32 `json:"uidvalidity"`
	UIDNext     uint32 `json:"uidnext"`
	Messages    int    `json:"messages"`
	Size        int64  `json:"size"` // bytes of all messages in it
	SpecialUse  string `json:"special_use,omitempty"`
	Subscribed  bool   `json:"subscribed"`
}

func boxKey(id []byte) []byte { return append([]byte("box"), id...) }

// createMailbox makes a mailbox bucket under the account bucket mb.
func createMailbox(tx *bolt.Tx, mb *bolt.Bucket, name, specialUse string) (*bolt.Bucket, error) {
	boxes := mb.Bucket(bBoxes)
	if boxes.Get([]byte(name)) != nil {
		return nil, fmt.Errorf("mailbox %s: %w", name, ErrExists)
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
	meta := Mailbox{Name: name, UIDValidity: uidv, UIDNext: 1, SpecialUse: specialUse, Subscribed: true}
	return box, putJSON(box, string(kMeta), meta)
}

// canonicalMailbox makes "inbox" in any case mean INBOX (RFC 3501 5.1).
func canonicalMailbox(name string) string {
	if name == "" || strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}

// mailboxBucket finds an account's mailbox and its metadata.
func mailboxBucket(tx *bolt.Tx, account, name string) (*bolt.Bucket, Mailbox, error) {
	var meta Mailbox
	account = strings.ToLower(account)
	mb := tx.Bucket(bMail).Bucket([]byte(account))
	if mb == nil {
		return nil, meta, fmt.Errorf("account %s: %w", account, ErrNoSuchAccount)
	}
	name = canonicalMailbox(name)
	id := mb.Bucket(bBoxes).Get([]byte(name))
	if id == nil {
		return nil, meta, fmt.Errorf("mailbox %s of %s: %w", name, account, ErrNoSuchMailbox)
	}
	box := mb.Bucket(boxKey(id))
	getJSON(box, string(kMeta), &meta)
	return box, meta, nil
}

// Mailboxes lists an account's mailboxes, INBOX first, then by name.
func (s *Store) Mailboxes(ctx context.Context, account string) ([]Mailbox, error) {
	var out []Mailbox
	err := s.db.View(func(tx *bolt.Tx) error {
		mb := tx.Bucket(bMail).Bucket([]byte(strings.ToLower(account)))
		if mb == nil {
			return fmt.Errorf("account %s: %w", account, ErrNoSuchAccount)
		}
		return mb.Bucket(bBoxes).ForEach(func(_, id []byte) error {
			var m Mailbox
			getJSON(mb.Bucket(boxKey(id)), string(kMeta), &m)
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
func (s *Store) Mailbox(ctx context.Context, account, name string) (Mailbox, error) {
	var m Mailbox
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		_, m, err = mailboxBucket(tx, account, name)
		return err
	})
	return m, err
}
