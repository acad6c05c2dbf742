package bolt

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"yubin/store"

	bbolt "go.etcd.io/bbolt"
)

// The quarantine:
//
//	quarantine/<account>/<id>   JSON qrecord: the entry and its blob
//	quarantine/<account>/"\x00" JSON qcounts: entries and bytes held
//	quarantineids/<id>          the account holding the entry
//
// A held message is a blob like any stored message, holding one
// reference; releasing it moves the reference to the INBOX record.
var (
	bQuarantine    = []byte("quarantine")
	bQuarantineIDs = []byte("quarantineids")
	kQCounts       = []byte{0}
)

type qrecord struct {
	store.QuarantineEntry
	Blob       uint64 `json:"blob"`
	HeaderSize int64  `json:"header_size"`
}

type qcounts struct {
	Messages int   `json:"messages"`
	Bytes    int64 `json:"bytes"`
}

var qidEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// newQuarantineID is 16 characters: 80 random bits.
func newQuarantineID() string {
	var b [10]byte
	rand.Read(b[:])
	return qidEncoding.EncodeToString(b[:])
}

func quarantineBucket(tx *bbolt.Tx, account string, create bool) (*bbolt.Bucket, error) {
	account = strings.ToLower(account)
	if !create {
		root := tx.Bucket(bQuarantine)
		if root == nil {
			return nil, nil
		}
		return root.Bucket([]byte(account)), nil
	}
	root, err := tx.CreateBucketIfNotExists(bQuarantine)
	if err != nil {
		return nil, err
	}
	return root.CreateBucketIfNotExists([]byte(account))
}

func getQCounts(qb *bbolt.Bucket) qcounts {
	var c qcounts
	if qb != nil {
		if v := qb.Get(kQCounts); v != nil {
			json.Unmarshal(v, &c)
		}
	}
	return c
}

func putQCounts(qb *bbolt.Bucket, c qcounts) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return qb.Put(kQCounts, data)
}

// holdFits reports whether a message of size fits account's quarantine,
// with pending (what this transaction holds already) added.
func holdFits(tx *bbolt.Tx, account string, size int64, lim store.QuarantineLimit, pending qcounts) bool {
	qb, _ := quarantineBucket(tx, account, false)
	c := getQCounts(qb)
	lim = lim.Effective()
	return c.Messages+pending.Messages+1 <= lim.Messages && c.Bytes+pending.Bytes+size <= lim.Bytes
}

// putHold stores a quarantine entry for account, holding blob.
func putHold(tx *bbolt.Tx, account string, h *store.QuarantineHold, blob uint64, size, hsize int64, now time.Time) (string, error) {
	qb, err := quarantineBucket(tx, account, true)
	if err != nil {
		return "", err
	}
	ids, err := tx.CreateBucketIfNotExists(bQuarantineIDs)
	if err != nil {
		return "", err
	}
	id := newQuarantineID()
	for ids.Get([]byte(id)) != nil {
		id = newQuarantineID()
	}
	rec := qrecord{QuarantineEntry: store.QuarantineEntry{
		ID: id, Account: strings.ToLower(account), Arrived: now.UTC(), QueueID: h.QueueID, Sender: h.Sender,
		From: h.From, Subject: h.Subject, Score: h.Score, Signals: h.Signals, Size: size,
	}, Blob: blob, HeaderSize: hsize}
	data, err := json.Marshal(rec)
	if err != nil {
		return "", err
	}
	if err := qb.Put([]byte(id), data); err != nil {
		return "", err
	}
	if err := ids.Put([]byte(id), []byte(rec.Account)); err != nil {
		return "", err
	}
	c := getQCounts(qb)
	c.Messages++
	c.Bytes += size
	return id, putQCounts(qb, c)
}

// getHold finds an entry by id.
func getHold(tx *bbolt.Tx, id string) (qrecord, *bbolt.Bucket, error) {
	var rec qrecord
	notFound := fmt.Errorf("quarantine entry %s: %w", id, store.ErrNoSuchMessage)
	ids := tx.Bucket(bQuarantineIDs)
	if ids == nil || id == "" {
		return rec, nil, notFound
	}
	acct := ids.Get([]byte(id))
	if acct == nil {
		return rec, nil, notFound
	}
	qb, _ := quarantineBucket(tx, string(acct), false)
	if qb == nil {
		return rec, nil, notFound
	}
	v := qb.Get([]byte(id))
	if v == nil {
		return rec, nil, notFound
	}
	if err := json.Unmarshal(v, &rec); err != nil {
		return rec, nil, fmt.Errorf("store: corrupt quarantine entry %s: %w", id, err)
	}
	return rec, qb, nil
}

// removeHold deletes an entry; unref says whether its blob reference goes
// too (it does not when a release moves it to a mailbox).
func removeHold(tx *bbolt.Tx, qb *bbolt.Bucket, rec qrecord, unref bool) error {
	if err := qb.Delete([]byte(rec.ID)); err != nil {
		return err
	}
	if err := tx.Bucket(bQuarantineIDs).Delete([]byte(rec.ID)); err != nil {
		return err
	}
	c := getQCounts(qb)
	c.Messages = max(c.Messages-1, 0)
	c.Bytes = max(c.Bytes-rec.Size, 0)
	if err := putQCounts(qb, c); err != nil {
		return err
	}
	if unref {
		return unrefBlob(tx, rec.Blob)
	}
	return nil
}

// forEachHold calls fn for each entry of an account's quarantine bucket.
func forEachHold(qb *bbolt.Bucket, fn func(rec qrecord) error) error {
	if qb == nil {
		return nil
	}
	return qb.ForEach(func(k, v []byte) error {
		if bytes.Equal(k, kQCounts) {
			return nil
		}
		var rec qrecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("store: corrupt quarantine entry %s: %w", k, err)
		}
		return fn(rec)
	})
}

// Quarantined lists the entries of an account, or of every account of a
// domain, oldest first.
func (s *Store) Quarantined(ctx context.Context, f store.QuarantineFilter) ([]store.QuarantineEntry, error) {
	if (f.Account == "") == (f.Domain == "") {
		return nil, fmt.Errorf("%w: list the quarantine of an account or of a domain", store.ErrInvalid)
	}
	var out []store.QuarantineEntry
	err := s.viewFresh(func(tx *bbolt.Tx) error {
		if f.Account != "" {
			if _, err := getAccount(tx, f.Account); err != nil {
				return err
			}
			qb, _ := quarantineBucket(tx, f.Account, false)
			return forEachHold(qb, func(rec qrecord) error { out = append(out, rec.QuarantineEntry); return nil })
		}
		var d store.Domain
		dom := strings.ToLower(f.Domain)
		if !getJSON(tx.Bucket(bDomains), dom, &d) {
			return fmt.Errorf("domain %s: %w", dom, store.ErrNoSuchDomain)
		}
		root := tx.Bucket(bQuarantine)
		if root == nil {
			return nil
		}
		return root.ForEach(func(k, _ []byte) error {
			if !strings.HasSuffix(string(k), "@"+dom) {
				return nil
			}
			return forEachHold(root.Bucket(k), func(rec qrecord) error { out = append(out, rec.QuarantineEntry); return nil })
		})
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Arrived.Before(out[j].Arrived) })
	return out, err
}

// QuarantineEntry returns one entry.
func (s *Store) QuarantineEntry(ctx context.Context, id string) (store.QuarantineEntry, error) {
	var rec qrecord
	err := s.viewFresh(func(tx *bbolt.Tx) error {
		var err error
		rec, _, err = getHold(tx, id)
		return err
	})
	return rec.QuarantineEntry, err
}

// OpenQuarantined reads a held message, chunk by chunk.
func (s *Store) OpenQuarantined(ctx context.Context, id string) (io.ReadCloser, store.QuarantineEntry, error) {
	var rec qrecord
	err := s.viewFresh(func(tx *bbolt.Tx) error {
		var err error
		rec, _, err = getHold(tx, id)
		return err
	})
	if err != nil {
		return nil, rec.QuarantineEntry, err
	}
	return &blobReader{s: s, id: rec.Blob, size: rec.Size}, rec.QuarantineEntry, nil
}

// ReleaseQuarantined delivers a held message to its account's INBOX as
// it was held and removes the entry, in one transaction.
func (s *Store) ReleaseQuarantined(ctx context.Context, id string) (store.Delivered, error) {
	var out store.Delivered
	var events []store.Event
	fn := func(tx *bbolt.Tx) error {
		out, events = store.Delivered{}, events[:0]
		rec, qb, err := getHold(tx, id)
		if err != nil {
			return clean(err)
		}
		a, err := getAccount(tx, rec.Account)
		if err != nil {
			return clean(err)
		}
		if a.Quota > 0 && a.Used+rec.Size > a.Quota {
			return clean(&store.QuotaError{Account: a.Address, Quota: a.Quota, Used: a.Used, Need: rec.Size})
		}
		b, meta, err := mailboxBucket(tx, a.Address, "INBOX")
		if err != nil {
			return clean(err)
		}
		m := record{MessageInfo: store.MessageInfo{UID: meta.UIDNext, Size: rec.Size, HeaderSize: rec.HeaderSize, Date: rec.Arrived, ModSeq: bumpModSeq(&meta)}, blob: rec.Blob}
		if err := b.Bucket(bMsgs).Put(u32key(m.UID), encodeRecord(&m)); err != nil {
			return err
		}
		meta.UIDNext++
		meta.Messages++
		meta.Size += rec.Size
		if err := putJSON(b, string(kMeta), meta); err != nil {
			return err
		}
		a.Used += rec.Size
		if err := putJSON(tx.Bucket(bAccounts), a.Address, a); err != nil {
			return err
		}
		if err := removeHold(tx, qb, rec, false); err != nil {
			return err
		}
		out = store.Delivered{Account: a.Address, Mailbox: meta.Name, UIDValidity: meta.UIDValidity, UID: m.UID}
		events = append(events, store.Event{Kind: store.EventNew, Account: a.Address, Mailbox: meta.Name, UIDValidity: meta.UIDValidity, UID: m.UID, ModSeq: m.ModSeq})
		return nil
	}
	err := s.groupWrite(ctx, fn, func() {
		s.deliveries.Add(1)
		s.feed.Publish(events)
	})
	return out, err
}

// DeleteQuarantined deletes entries; unknown ids are skipped.
func (s *Store) DeleteQuarantined(ctx context.Context, ids []string) (int, error) {
	n := 0
	err := s.groupWrite(ctx, func(tx *bbolt.Tx) error {
		n = 0
		for _, id := range ids {
			rec, qb, err := getHold(tx, id)
			if err != nil {
				continue
			}
			if err := removeHold(tx, qb, rec, true); err != nil {
				return err
			}
			n++
		}
		return nil
	}, nil)
	return n, err
}

// PruneQuarantine deletes the entries that arrived before before.
func (s *Store) PruneQuarantine(ctx context.Context, before time.Time) (int, error) {
	n := 0
	err := s.groupWrite(ctx, func(tx *bbolt.Tx) error {
		n = 0
		root := tx.Bucket(bQuarantine)
		if root == nil {
			return nil
		}
		var old []qrecord
		err := root.ForEach(func(k, _ []byte) error {
			return forEachHold(root.Bucket(k), func(rec qrecord) error {
				if rec.Arrived.Before(before) {
					old = append(old, rec)
				}
				return nil
			})
		})
		if err != nil {
			return err
		}
		for _, rec := range old {
			if err := removeHold(tx, root.Bucket([]byte(rec.Account)), rec, true); err != nil {
				return err
			}
			n++
		}
		return nil
	}, nil)
	return n, err
}

// deleteQuarantine removes an account's whole quarantine.
func deleteQuarantine(tx *bbolt.Tx, account string) error {
	qb, _ := quarantineBucket(tx, account, false)
	if qb == nil {
		return nil
	}
	var recs []qrecord
	if err := forEachHold(qb, func(rec qrecord) error { recs = append(recs, rec); return nil }); err != nil {
		return err
	}
	for _, rec := range recs {
		if err := tx.Bucket(bQuarantineIDs).Delete([]byte(rec.ID)); err != nil {
			return err
		}
		if err := unrefBlob(tx, rec.Blob); err != nil {
			return err
		}
	}
	return tx.Bucket(bQuarantine).DeleteBucket([]byte(strings.ToLower(account)))
}

// verifyQuarantine adds the quarantine's blob references to refs and
// checks its counters and index.
func verifyQuarantine(tx *bbolt.Tx, refs map[uint64]uint64, sizes map[uint64]int64, report func(string, ...any)) {
	root := tx.Bucket(bQuarantine)
	ids := tx.Bucket(bQuarantineIDs)
	indexed := 0
	if ids != nil {
		indexed = ids.Stats().KeyN
	}
	held := 0
	if root != nil {
		root.ForEach(func(k, _ []byte) error {
			qb := root.Bucket(k)
			var c qcounts
			err := forEachHold(qb, func(rec qrecord) error {
				held++
				c.Messages++
				c.Bytes += rec.Size
				refs[rec.Blob]++
				if prev, ok := sizes[rec.Blob]; ok && prev != rec.Size {
					report("blob %d referenced with sizes %d and %d", rec.Blob, prev, rec.Size)
				}
				sizes[rec.Blob] = rec.Size
				if ids == nil || string(ids.Get([]byte(rec.ID))) != string(k) {
					report("quarantine entry %s of %s is not indexed", rec.ID, k)
				}
				return nil
			})
			if err != nil {
				report("%v", err)
			}
			if got := getQCounts(qb); got != c {
				report("quarantine of %s: counters say %d messages/%d bytes, found %d/%d", k, got.Messages, got.Bytes, c.Messages, c.Bytes)
			}
			return nil
		})
	}
	if indexed != held {
		report("quarantine index has %d ids, %d entries are held", indexed, held)
	}
}
