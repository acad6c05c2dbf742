package bolt

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"yubin/store"

	bbolt "go.etcd.io/bbolt"
)

// store.Transfer: the state no other interface lists, read from and
// written to its buckets (spam, spamtrained, mail/<account>/imported,
// once, a mailbox's gone and gonestate, quotawarned).

// SpamOwners returns the owners of every spam model, sorted.
func (s *Store) SpamOwners(ctx context.Context) ([]string, error) {
	var out []string
	err := s.view(func(tx *bbolt.Tx) error {
		root := tx.Bucket(bSpam)
		if root == nil {
			return nil
		}
		return root.ForEach(func(k, v []byte) error {
			if v == nil {
				out = append(out, string(k))
			}
			return nil
		})
	})
	return out, err
}

// SpamModel calls fn with each token of owner's model and returns its
// totals.
func (s *Store) SpamModel(ctx context.Context, owner string, fn func(store.SpamToken) error) (store.SpamTotals, error) {
	var t store.SpamTotals
	err := s.view(func(tx *bbolt.Tx) error {
		ob := spamOwner(tx, owner)
		if ob == nil {
			return nil
		}
		t = getTotals(ob)
		tb := ob.Bucket(bTokens)
		if tb == nil {
			return nil
		}
		return tb.ForEach(func(k, v []byte) error {
			tv, ok := decodeToken(v)
			if !ok {
				return fmt.Errorf("spam model of %s: token %q: bad value %x", owner, k, v)
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			return fn(store.SpamToken{Token: string(k), Spam: tv.spam, Ham: tv.ham, Day: int64(tv.day)})
		})
	})
	return t, err
}

// LoadSpamModel replaces owner's model.
func (s *Store) LoadSpamModel(ctx context.Context, owner string, totals store.SpamTotals, tokens []store.SpamToken) error {
	if err := store.CheckSpamModel(owner, totals, tokens); err != nil {
		return err
	}
	sorted := slices.Clone(tokens)
	slices.SortFunc(sorted, func(a, b store.SpamToken) int { return strings.Compare(a.Token, b.Token) })
	return s.update(ctx, func(tx *bbolt.Tx) error {
		if err := s.deleteSpamModel(tx, owner); err != nil {
			return err
		}
		root, err := tx.CreateBucketIfNotExists(bSpam)
		if err != nil {
			return err
		}
		ob, err := root.CreateBucket(ownerKey(owner))
		if err != nil {
			return err
		}
		if err := putTotals(ob, totals); err != nil {
			return err
		}
		tb, err := ob.CreateBucket(bTokens)
		if err != nil {
			return err
		}
		tb.FillPercent = 1.0 // in key order
		for _, t := range sorted {
			if err := tb.Put([]byte(t.Token), tokenValue{t.Spam, t.Ham, uint64(max(t.Day, 0))}.encode()); err != nil {
				return err
			}
		}
		txid := tx.ID()
		tx.OnCommit(func() { s.spam.committed(string(ownerKey(owner)), spamChange{txid: txid, drop: true}) })
		return nil
	})
}

// eachMessage calls fn with every message record of account, by mailbox
// name and UID.
func eachMessage(tx *bbolt.Tx, account string, fn func(mailbox string, m record) error) error {
	mb, err := accountBucket(tx, account)
	if err != nil {
		return err
	}
	return mb.Bucket(bBoxes).ForEach(func(name, id []byte) error {
		return mb.Bucket(boxKey(id)).Bucket(bMsgs).ForEach(func(k, v []byte) error {
			m, err := decodeRecord(binary.BigEndian.Uint32(k), v)
			if err != nil {
				return fmt.Errorf("%s/%s uid %d: %w", account, name, binary.BigEndian.Uint32(k), err)
			}
			return fn(string(name), m)
		})
	})
}

// SpamTrainedMessages returns account's messages whose training is
// recorded.
func (s *Store) SpamTrainedMessages(ctx context.Context, account string) ([]store.SpamTrainedMessage, error) {
	var out []store.SpamTrainedMessage
	err := s.viewFresh(func(tx *bbolt.Tx) error {
		trained := tx.Bucket(bSpamTrained)
		return eachMessage(tx, account, func(mailbox string, m record) error {
			if trained == nil {
				return nil
			}
			if v := trained.Get(trainedKey(m.blob, account)); len(v) == 1 && store.SpamClass(v[0]) != store.NotTrained {
				out = append(out, store.SpamTrainedMessage{Mailbox: mailbox, UID: m.UID, Class: store.SpamClass(v[0])})
			}
			return nil
		})
	})
	return out, err
}

// LoadSpamTrained records what messages of account were trained as.
func (s *Store) LoadSpamTrained(ctx context.Context, account string, ms []store.SpamTrainedMessage) error {
	for _, m := range ms {
		if m.Class != store.Spam && m.Class != store.Ham {
			return fmt.Errorf("%w: %s UID %d trained as %v", store.ErrInvalid, m.Mailbox, m.UID, m.Class)
		}
	}
	return s.update(ctx, func(tx *bbolt.Tx) error {
		// Every message first: a clean error has written nothing.
		blobs := make([]uint64, len(ms))
		for i, m := range ms {
			blob, err := messageBlob(tx, store.MessageRef{Account: account, Mailbox: m.Mailbox, UID: m.UID})
			if err != nil {
				return clean(err)
			}
			blobs[i] = blob
		}
		b, err := tx.CreateBucketIfNotExists(bSpamTrained)
		if err != nil {
			return err
		}
		for i, m := range ms {
			if err := b.Put(trainedKey(blobs[i], account), []byte{byte(m.Class)}); err != nil {
				return err
			}
		}
		return nil
	})
}

// ImportKeys returns the keys imported into account, sorted.
func (s *Store) ImportKeys(ctx context.Context, account string) ([]string, error) {
	var out []string
	err := s.viewFresh(func(tx *bbolt.Tx) error {
		mb, err := accountBucket(tx, account)
		if err != nil {
			return err
		}
		if b := mb.Bucket(bImported); b != nil {
			return b.ForEach(func(k, _ []byte) error { out = append(out, string(k)); return nil })
		}
		return nil
	})
	return out, err
}

// LoadImportKeys records keys as imported into account, now.
func (s *Store) LoadImportKeys(ctx context.Context, account string, keys []string) error {
	for _, k := range keys {
		if k == "" || len(k) > store.MaxImportKeyLen {
			return fmt.Errorf("%w: import key of %d bytes (1 to %d)", store.ErrInvalid, len(k), store.MaxImportKeyLen)
		}
	}
	return s.update(ctx, func(tx *bbolt.Tx) error {
		mb, err := accountBucket(tx, account)
		if err != nil {
			return clean(err)
		}
		b, err := mb.CreateBucketIfNotExists(bImported)
		if err != nil {
			return err
		}
		when := binary.BigEndian.AppendUint64(nil, uint64(s.now().Unix()))
		for _, k := range keys {
			if err := b.Put([]byte(k), when); err != nil {
				return err
			}
		}
		return nil
	})
}

// OnceKeys returns the keys DeliverOnce recorded.
func (s *Store) OnceKeys(ctx context.Context) ([]store.OnceKey, error) {
	var out []store.OnceKey
	err := s.view(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bOnce)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			at, err := time.Parse(time.RFC3339, string(v))
			if err != nil {
				return fmt.Errorf("once key %q: %w", k, err)
			}
			out = append(out, store.OnceKey{Key: string(k), At: at})
			return nil
		})
	})
	return out, err
}

// LoadOnceKeys records keys as delivered under.
func (s *Store) LoadOnceKeys(ctx context.Context, keys []store.OnceKey) error {
	for _, k := range keys {
		if k.Key == "" {
			return fmt.Errorf("%w: empty once key", store.ErrInvalid)
		}
	}
	return s.update(ctx, func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bOnce)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := b.Put([]byte(k.Key), []byte(k.At.UTC().Format(time.RFC3339))); err != nil {
				return err
			}
		}
		return nil
	})
}

// RememberedExpunges returns what a mailbox remembers of its expunges.
func (s *Store) RememberedExpunges(ctx context.Context, account, mailbox string) (store.RememberedExpunges, error) {
	var r store.RememberedExpunges
	err := s.viewFresh(func(tx *bbolt.Tx) error {
		box, _, err := mailboxBucket(tx, account, mailbox)
		if err != nil {
			return err
		}
		r.Floor = readGoneState(box).floor
		b := box.Bucket(bGone)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if len(k) != 8 || len(v) != 12 {
				return fmt.Errorf("%s/%s: expunge record %x: %x", account, mailbox, k, v)
			}
			r.Expunges = append(r.Expunges, store.Expunge{UID: binary.BigEndian.Uint32(v), ModSeq: binary.BigEndian.Uint64(k),
				At: time.Unix(int64(binary.BigEndian.Uint64(v[4:])), 0).UTC()})
			return nil
		})
	})
	return r, err
}

// LoadRememberedExpunges replaces what a mailbox remembers of its
// expunges.
func (s *Store) LoadRememberedExpunges(ctx context.Context, account, mailbox string, r store.RememberedExpunges) error {
	return s.update(ctx, func(tx *bbolt.Tx) error {
		box, meta, err := mailboxBucket(tx, account, mailbox)
		if err != nil {
			return clean(err)
		}
		msgs := box.Bucket(bMsgs)
		if err := r.Check(meta, func(uid uint32) bool { return msgs.Get(u32key(uid)) != nil }); err != nil {
			return clean(err)
		}
		if box.Bucket(bGone) != nil {
			if err := box.DeleteBucket(bGone); err != nil {
				return err
			}
		}
		if len(r.Expunges) > 0 {
			b, err := box.CreateBucket(bGone)
			if err != nil {
				return err
			}
			b.FillPercent = 1.0
			for _, e := range r.Expunges {
				v := make([]byte, 12)
				binary.BigEndian.PutUint32(v, e.UID)
				binary.BigEndian.PutUint64(v[4:], uint64(e.At.Unix()))
				if err := b.Put(u64key(e.ModSeq), v); err != nil {
					return err
				}
			}
		}
		return goneState{floor: r.Floor, count: uint64(len(r.Expunges))}.put(box)
	})
}

// QuotaWarned reports whether account's quota warning was given.
func (s *Store) QuotaWarned(ctx context.Context, account string) (bool, error) {
	warned := false
	err := s.view(func(tx *bbolt.Tx) error {
		if _, err := getAccount(tx, account); err != nil {
			return err
		}
		b := tx.Bucket(bQuotaWarned)
		warned = b != nil && b.Get([]byte(strings.ToLower(account))) != nil
		return nil
	})
	return warned, err
}

// SetQuotaWarned sets whether account's quota warning was given.
func (s *Store) SetQuotaWarned(ctx context.Context, account string, warned bool) error {
	return s.update(ctx, func(tx *bbolt.Tx) error {
		a, err := getAccount(tx, account)
		if err != nil {
			return clean(err)
		}
		b, err := tx.CreateBucketIfNotExists(bQuotaWarned)
		if err != nil {
			return err
		}
		if warned {
			return b.Put([]byte(a.Address), []byte{1})
		}
		return b.Delete([]byte(a.Address))
	})
}
