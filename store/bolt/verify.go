package bolt

import (
	"context"
	"encoding/binary"
	"fmt"

	"yubin/store"

	bbolt "go.etcd.io/bbolt"
)

// Verify checks the store's invariants: every account's usage equals the
// sum of its messages' sizes, every mailbox's counters match its messages,
// every blob's reference count matches the records that point to it and
// its chunks add up to the message size, every mailbox's HighestModSeq is
// at least its messages' and its expunges' ModSeqs, and the expunges it
// remembers are of UIDs it handed out and no longer holds, and every
// account has its subscriptions. It returns one line per problem.
func (s *Store) Verify(ctx context.Context) ([]string, error) {
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	err := s.viewFresh(func(tx *bbolt.Tx) error {
		refs := map[uint64]uint64{}
		sizes := map[uint64]int64{}
		accts := tx.Bucket(bAccounts)
		err := accts.ForEach(func(k, _ []byte) error {
			var a store.Account
			getJSON(accts, string(k), &a)
			mb := tx.Bucket(bMail).Bucket(k)
			if mb == nil {
				report("account %s has no mail bucket", a.Address)
				return nil
			}
			if subsBucket(mb) == nil {
				report("account %s has no subscriptions bucket", a.Address)
			}
			var used int64
			err := mb.Bucket(bBoxes).ForEach(func(name, id []byte) error {
				box := mb.Bucket(boxKey(id))
				var meta store.Mailbox
				getJSON(box, string(kMeta), &meta)
				var n int
				var size int64
				var maxUID uint32
				err := box.Bucket(bMsgs).ForEach(func(uk, v []byte) error {
					uid := binary.BigEndian.Uint32(uk)
					m, err := decodeRecord(uid, v)
					if err != nil {
						report("%s/%s uid %d: %v", a.Address, name, uid, err)
						return nil
					}
					n++
					size += m.Size
					maxUID = max(maxUID, uid)
					if m.ModSeq > meta.HighestModSeq {
						report("%s/%s uid %d: modseq %d above the mailbox's highest %d", a.Address, name, uid, m.ModSeq, meta.HighestModSeq)
					}
					refs[m.blob]++
					if prev, ok := sizes[m.blob]; ok && prev != m.Size {
						report("blob %d referenced with sizes %d and %d", m.blob, prev, m.Size)
					}
					sizes[m.blob] = m.Size
					return nil
				})
				if err != nil {
					return err
				}
				if n != meta.Messages || size != meta.Size {
					report("%s/%s: counters say %d messages/%d bytes, found %d/%d", a.Address, name, meta.Messages, meta.Size, n, size)
				}
				if maxUID >= meta.UIDNext {
					report("%s/%s: uid %d >= uidnext %d", a.Address, name, maxUID, meta.UIDNext)
				}
				if meta.HighestModSeq == 0 || meta.FirstRecent == 0 || meta.FirstRecent > meta.UIDNext {
					report("%s/%s: highest modseq %d, first recent %d of uidnext %d", a.Address, name, meta.HighestModSeq, meta.FirstRecent, meta.UIDNext)
				}
				verifyExpunged(box, meta, func(format string, args ...any) {
					report("%s/%s: "+format, append([]any{a.Address, name}, args...)...)
				})
				used += size
				return nil
			})
			if err != nil {
				return err
			}
			if used != a.Used {
				report("account %s: usage says %d bytes, messages sum to %d", a.Address, a.Used, used)
			}
			return nil
		})
		if err != nil {
			return err
		}
		verifyQueue(tx, refs, sizes, report)
		verifyQuarantine(tx, refs, sizes, report)
		verifyEnvelopes(tx, report)
		structureTable.verify(tx, report, nil)
		stored := map[uint64]int64{}
		tx.Bucket(bBlobs).ForEach(func(k, v []byte) error {
			stored[binary.BigEndian.Uint64(k)] += int64(len(v))
			return nil
		})
		tx.Bucket(bBlobRefs).ForEach(func(k, v []byte) error {
			id := binary.BigEndian.Uint64(k)
			n, _ := binary.Uvarint(v)
			if n != refs[id] {
				report("blob %d: reference count %d, referenced %d times", id, n, refs[id])
			}
			if stored[id] != sizes[id] {
				report("blob %d: %d bytes stored, records say %d", id, stored[id], sizes[id])
			}
			delete(refs, id)
			delete(stored, id)
			return nil
		})
		for id := range refs {
			report("blob %d is referenced but has no reference count", id)
		}
		for id := range stored {
			report("blob %d has chunks but no reference count", id)
		}
		return nil
	})
	return problems, err
}

// verifyExpunged checks the expunges a mailbox remembers: above its floor,
// at most its HighestModSeq, of UIDs below UIDNEXT that it no longer
// holds, each once, as many as gonestate counts.
func verifyExpunged(box *bbolt.Bucket, meta store.Mailbox, report func(format string, args ...any)) {
	st := readGoneState(box)
	b := box.Bucket(bGone)
	if b == nil {
		if st.count != 0 {
			report("%d expunges counted, none remembered", st.count)
		}
		return
	}
	var n uint64
	seen := map[uint32]bool{}
	msgs := box.Bucket(bMsgs)
	b.ForEach(func(k, v []byte) error {
		n++
		if len(k) != 8 || len(v) != 12 {
			report("expunge record %x: %x", k, v)
			return nil
		}
		modseq, uid := binary.BigEndian.Uint64(k), binary.BigEndian.Uint32(v)
		switch {
		case modseq <= st.floor || modseq > meta.HighestModSeq:
			report("uid %d expunged at modseq %d, outside (%d, %d]", uid, modseq, st.floor, meta.HighestModSeq)
		case uid == 0 || uid >= meta.UIDNext:
			report("uid %d expunged, uidnext %d", uid, meta.UIDNext)
		case seen[uid]:
			report("uid %d expunged twice", uid)
		case msgs.Get(u32key(uid)) != nil:
			report("uid %d expunged at modseq %d but still there", uid, modseq)
		}
		seen[uid] = true
		return nil
	})
	if n != st.count {
		report("%d expunges counted, %d remembered", st.count, n)
	}
}
