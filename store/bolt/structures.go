package bolt

import (
	"context"
	"encoding/binary"
	"fmt"

	bbolt "go.etcd.io/bbolt"
)

// The MIME structures deliveries carry (store.Delivery.Structure), kept per
// blob beside its envelope and deleted with it:
//
//	structures  blob id -> the encoding, opaque here (imapd's)
var bStructures = []byte("structures")

// putStructure keeps the structure of a blob being stored, in the
// transaction that stores it; nil keeps nothing.
func putStructure(tx *bbolt.Tx, id uint64, enc []byte) error {
	if enc == nil {
		return nil
	}
	b, err := tx.CreateBucketIfNotExists(bStructures)
	if err != nil {
		return err
	}
	return b.Put(u64key(id), enc)
}

// dropStructure forgets the structure of a blob that is deleted.
func dropStructure(tx *bbolt.Tx, id uint64) error {
	if b := tx.Bucket(bStructures); b != nil {
		return b.Delete(u64key(id))
	}
	return nil
}

// Structures returns the structure stored with each message of uids (nil
// for a message stored without one, or not there), in the order of uids
// (store.Structures).
func (s *Store) Structures(ctx context.Context, account, mailbox string, uids []uint32) ([][]byte, error) {
	out := make([][]byte, len(uids))
	err := s.viewFresh(func(tx *bbolt.Tx) error {
		b, _, err := mailboxBucket(tx, account, mailbox)
		if err != nil {
			return err
		}
		sb := tx.Bucket(bStructures)
		if sb == nil {
			return nil
		}
		structs := seqCursor{c: sb.Cursor()}
		recs := seqCursor{c: b.Bucket(bMsgs).Cursor()}
		var uk [4]byte
		var bk [8]byte
		for i, uid := range uids {
			binary.BigEndian.PutUint32(uk[:], uid)
			v := recs.get(uk[:])
			if v == nil {
				continue
			}
			m, err := decodeRecord(uid, v)
			if err != nil {
				return fmt.Errorf("%s/%s uid %d: %w", account, mailbox, uid, err)
			}
			binary.BigEndian.PutUint64(bk[:], m.blob)
			if enc := structs.get(bk[:]); enc != nil {
				out[i] = append([]byte(nil), enc...)
			}
		}
		return nil
	})
	return out, err
}

// verifyStructures reports structures of blobs that are gone.
func verifyStructures(tx *bbolt.Tx, report func(format string, args ...any)) {
	b := tx.Bucket(bStructures)
	if b == nil {
		return
	}
	refs := tx.Bucket(bBlobRefs)
	b.ForEach(func(k, _ []byte) error {
		if len(k) != 8 {
			report("structures: bad key %x", k)
		} else if refs.Get(k) == nil {
			report("structures: entry for deleted blob %d", binary.BigEndian.Uint64(k))
		}
		return nil
	})
}
