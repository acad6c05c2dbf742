package bolt

import (
	"context"
	"encoding/binary"
	"math"
	"slices"
	"time"

	"yubin/store"

	bbolt "go.etcd.io/bbolt"
)

// Mod-sequences, expunged UIDs and \Recent (RFC 7162, RFC 3501 2.3.2).
//
// A mailbox's counter is the HighestModSeq of its meta: each change to a
// message takes the next value (bumpModSeq), which the record of a new or
// changed message keeps and the expunge of one remembers. A mailbox bucket
// also holds, besides meta and msgs:
//
//	gone       modseq -> uid (4 bytes) and unix seconds (8): the expunges it remembers
//	gonestate  floor and count (8 bytes each): gone holds every expunge
//	           with a modseq above floor, in count entries
//
// Stores of schema version 1 had none of this; migrateModSeq upgrades them
// when they are opened.

var (
	bGone      = []byte("gone")
	kGoneState = []byte("gonestate")
)

// maxModSeq is the greatest mod-sequence RFC 7162 allows (63 bits).
const maxModSeq = 1<<63 - 1

// What a mailbox remembers of its expunges by default (Options.MaxExpunged
// and Options.ExpungedAge): a client back within a month after fewer than
// 10,000 expunges gets exactly the UIDs it missed.
const (
	DefaultMaxExpunged = 10000
	DefaultExpungedAge = 30 * 24 * time.Hour
)

// bumpModSeq takes a mailbox's next mod-sequence; the caller writes meta.
func bumpModSeq(meta *store.Mailbox) uint64 {
	meta.HighestModSeq++
	return meta.HighestModSeq
}

// goneState is a mailbox's gonestate.
type goneState struct{ floor, count uint64 }

func readGoneState(box *bbolt.Bucket) goneState {
	v := box.Get(kGoneState)
	if len(v) != 16 {
		return goneState{}
	}
	return goneState{binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])}
}

func (g goneState) put(box *bbolt.Bucket) error {
	v := make([]byte, 16)
	binary.BigEndian.PutUint64(v, g.floor)
	binary.BigEndian.PutUint64(v[8:], g.count)
	return box.Put(kGoneState, v)
}

// expunged is one expunge: the UID and the mod-sequence it took.
type expunged struct {
	uid    uint32
	modseq uint64
}

// rememberExpunged records a mailbox's expunges, then forgets the oldest
// beyond Options.MaxExpunged and those older than Options.ExpungedAge,
// raising the floor past them.
func (s *Store) rememberExpunged(box *bbolt.Bucket, gone []expunged) error {
	if len(gone) == 0 {
		return nil
	}
	b, err := box.CreateBucketIfNotExists(bGone)
	if err != nil {
		return err
	}
	b.FillPercent = 1.0 // keys only ever grow
	st := readGoneState(box)
	now := s.now()
	for _, g := range gone {
		v := make([]byte, 12) // bbolt holds values until the commit
		binary.BigEndian.PutUint32(v, g.uid)
		binary.BigEndian.PutUint64(v[4:], uint64(now.Unix()))
		if err := b.Put(u64key(g.modseq), v); err != nil {
			return err
		}
		st.count++
	}
	cutoff := now.Add(-s.expungedAge).Unix()
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.First() {
		if st.count <= uint64(s.maxExpunged) && len(v) == 12 && int64(binary.BigEndian.Uint64(v[4:])) >= cutoff {
			break
		}
		st.floor = max(st.floor, binary.BigEndian.Uint64(k))
		if err := c.Delete(); err != nil {
			return err
		}
		st.count--
	}
	return st.put(box)
}

// Expunged returns the UIDs expunged from a mailbox with a mod-sequence
// above since, ascending; when the mailbox no longer remembers them all,
// every UID below UIDNEXT that it does not hold.
func (s *Store) Expunged(ctx context.Context, account, mailbox string, since uint64) ([]uint32, error) {
	var out []uint32
	err := s.viewFresh(func(tx *bbolt.Tx) error {
		box, meta, err := mailboxBucket(tx, account, mailbox)
		if err != nil {
			return err
		}
		if since >= meta.HighestModSeq {
			return nil
		}
		if since >= readGoneState(box).floor {
			if b := box.Bucket(bGone); b != nil {
				c := b.Cursor()
				for k, v := c.Seek(u64key(since + 1)); k != nil; k, v = c.Next() {
					if len(v) >= 4 {
						out = append(out, binary.BigEndian.Uint32(v))
					}
				}
			}
			slices.Sort(out)
			return nil
		}
		next := uint32(1)
		c := box.Bucket(bMsgs).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			uid := binary.BigEndian.Uint32(k)
			for ; next < uid; next++ {
				out = append(out, next)
			}
			next = uid + 1
		}
		for ; next < meta.UIDNext; next++ {
			out = append(out, next)
		}
		return nil
	})
	return out, err
}

// ClaimRecent claims a mailbox's recent messages: it returns FirstRecent
// as it was and the mailbox with FirstRecent moved to UIDNext. A mailbox
// with nothing recent is answered without a write.
func (s *Store) ClaimRecent(ctx context.Context, account, mailbox string) (uint32, store.Mailbox, error) {
	var meta store.Mailbox
	err := s.viewFresh(func(tx *bbolt.Tx) error {
		var err error
		_, meta, err = mailboxBucket(tx, account, mailbox)
		return err
	})
	if err != nil {
		return 0, store.Mailbox{}, err
	}
	if meta.FirstRecent >= meta.UIDNext {
		return meta.UIDNext, meta, nil
	}
	var first uint32
	fn := func(tx *bbolt.Tx) error {
		box, m, err := mailboxBucket(tx, account, mailbox)
		if err != nil {
			return clean(err)
		}
		first, meta = m.FirstRecent, m
		if m.FirstRecent >= m.UIDNext {
			return nil
		}
		meta.FirstRecent = m.UIDNext
		return putJSON(box, string(kMeta), meta)
	}
	if err := s.groupWrite(ctx, fn, nil); err != nil {
		return 0, store.Mailbox{}, err
	}
	return min(first, meta.UIDNext), meta, nil
}

// SetFlags changes the flags of the given messages (UIDs that do not exist
// are skipped) and returns the messages as they are afterwards.
func (s *Store) SetFlags(ctx context.Context, account, mailbox string, uids []uint32, op store.FlagOp, flags []string) ([]store.MessageInfo, error) {
	out, _, err := s.SetFlagsIf(ctx, account, mailbox, uids, op, flags, math.MaxUint64)
	return out, err
}

// migrateModSeq upgrades a store of schema version 1, which had no
// mod-sequences, in the transaction that opens it: every mailbox gets
// HighestModSeq 1 (its records, of version 1, read as ModSeq 1), nothing
// recent (the old server's sessions saw what is there) and a floor of 1
// for its expunges (those before are not remembered; no client can know a
// mod-sequence from before).
func migrateModSeq(tx *bbolt.Tx) error {
	var boxes []*bbolt.Bucket
	err := tx.Bucket(bMail).ForEach(func(acct, v []byte) error {
		mb := tx.Bucket(bMail).Bucket(acct)
		if v != nil || mb == nil {
			return nil
		}
		return mb.Bucket(bBoxes).ForEach(func(_, id []byte) error {
			if box := mb.Bucket(boxKey(id)); box != nil {
				boxes = append(boxes, box)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, box := range boxes {
		var meta store.Mailbox
		getJSON(box, string(kMeta), &meta)
		if meta.HighestModSeq > 0 {
			continue
		}
		meta.HighestModSeq = 1
		meta.FirstRecent = meta.UIDNext
		if err := putJSON(box, string(kMeta), meta); err != nil {
			return err
		}
		if err := (goneState{floor: 1}).put(box); err != nil {
			return err
		}
	}
	return nil
}
