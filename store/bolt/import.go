package bolt

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"yubin/internal/mailheader"
	"yubin/store"

	bbolt "go.etcd.io/bbolt"
)

// bImported is the bucket of an account's import keys, inside its mail
// bucket (mail/<address>/imported: key -> the time it was imported, Unix
// seconds), so that it goes with the account.
var bImported = []byte("imported")

// Imported reports which of keys were imported into account.
func (s *Store) Imported(ctx context.Context, account string, keys []string) ([]bool, error) {
	out := make([]bool, len(keys))
	err := s.viewFresh(func(tx *bbolt.Tx) error {
		mb, err := accountBucket(tx, account)
		if err != nil {
			return err
		}
		b := mb.Bucket(bImported)
		if b == nil {
			return nil
		}
		for i, k := range keys {
			out[i] = k != "" && b.Get([]byte(k)) != nil
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Import stores msgs in account, each under its key, in one transaction;
// see store.Importer.
func (s *Store) Import(ctx context.Context, account string, msgs []store.ImportMessage) (store.ImportResult, error) {
	account = strings.ToLower(account)
	if len(msgs) == 0 {
		return store.ImportResult{}, nil
	}
	type prepared struct {
		key   []byte
		box   string
		flags []string
		date  time.Time
		msg   []byte
		hsize int64
		env   []byte // encoded envelope
	}
	preps := make([]prepared, len(msgs))
	for i, m := range msgs {
		if m.Key == "" || len(m.Key) > store.MaxImportKeyLen {
			return store.ImportResult{}, fmt.Errorf("%w: import key of %d bytes (1 to %d)", store.ErrInvalid, len(m.Key), store.MaxImportKeyLen)
		}
		flags, err := store.NormalizeFlags(m.Flags)
		if err != nil {
			return store.ImportResult{}, err
		}
		date := m.Date
		if date.IsZero() {
			date = s.now()
		}
		preps[i] = prepared{[]byte(m.Key), store.CanonicalMailbox(m.Mailbox), flags, date, m.Message, int64(mailheader.HeaderSize(m.Message)), store.Envelope(nil, m.Message)}
	}
	var res store.ImportResult
	var full *store.QuotaError
	var events []store.Event
	fn := func(tx *bbolt.Tx) error {
		res, full, events = store.ImportResult{}, nil, events[:0]
		a, err := getAccount(tx, account)
		if err != nil {
			return clean(err)
		}
		mb, err := accountBucket(tx, account)
		if err != nil {
			return clean(err)
		}
		// Every mailbox first: a missing one stores nothing.
		type box struct {
			b    *bbolt.Bucket
			meta store.Mailbox
		}
		boxes := map[string]*box{}
		for _, p := range preps {
			if boxes[p.box] == nil {
				b, meta, err := mailboxBucket(tx, account, p.box)
				if err != nil {
					return clean(err)
				}
				boxes[p.box] = &box{b, meta}
			}
		}
		keys := mb.Bucket(bImported)
		seen := map[string]bool{}
		when := binary.BigEndian.AppendUint64(nil, uint64(s.now().Unix()))
		for _, p := range preps {
			if seen[string(p.key)] || keys != nil && keys.Get(p.key) != nil {
				res.Skipped++
				continue
			}
			size := int64(len(p.msg))
			if a.Quota > 0 && a.Used+size > a.Quota {
				full = &store.QuotaError{Account: a.Address, Quota: a.Quota, Used: a.Used, Need: size}
				break
			}
			if keys == nil {
				if keys, err = mb.CreateBucket(bImported); err != nil {
					return err
				}
			}
			blob, err := putBlob(tx, 1, nil, p.msg)
			if err != nil {
				return err
			}
			if err := envelopeTable.put(tx, blob, p.env); err != nil {
				return err
			}
			bx := boxes[p.box]
			m := record{MessageInfo: store.MessageInfo{UID: bx.meta.UIDNext, Size: size, HeaderSize: p.hsize, Date: p.date, Flags: p.flags, ModSeq: bumpModSeq(&bx.meta)}, blob: blob}
			if err := bx.b.Bucket(bMsgs).Put(u32key(m.UID), encodeRecord(&m)); err != nil {
				return err
			}
			bx.meta.UIDNext++
			bx.meta.Messages++
			bx.meta.Size += size
			a.Used += size
			if err := keys.Put(p.key, when); err != nil {
				return err
			}
			seen[string(p.key)] = true
			res.Imported++
			res.Bytes += size
			events = append(events, store.Event{Kind: store.EventNew, Account: a.Address, Mailbox: bx.meta.Name, UIDValidity: bx.meta.UIDValidity, UID: m.UID, Flags: p.flags, ModSeq: m.ModSeq})
		}
		if res.Imported == 0 {
			return nil
		}
		for _, bx := range boxes {
			if err := putJSON(bx.b, string(kMeta), bx.meta); err != nil {
				return err
			}
		}
		return putJSON(tx.Bucket(bAccounts), a.Address, a)
	}
	err := s.groupWrite(ctx, fn, func() {
		if len(events) > 0 {
			s.deliveries.Add(1)
			s.feed.Publish(events)
		}
	})
	if err != nil {
		return store.ImportResult{}, err
	}
	if full != nil {
		return res, full
	}
	return res, nil
}
