package bolt

import (
	"context"
	"encoding/binary"

	bbolt "go.etcd.io/bbolt"
)

// The MIME structures deliveries carry (store.Delivery.Structure), kept per
// blob beside its envelope and deleted with it:
//
//	structures  blob id -> the encoding, opaque here (imapd's)
var bStructures = []byte("structures")

// blobTable is a bucket of something worked out from a blob's bytes at
// delivery (an envelope, a MIME structure), keyed by blob id: put in the
// transaction that stores the blob, dropped with it (unrefBlob), checked
// by Verify.
type blobTable struct {
	bucket []byte
	name   string // for Verify's reports
}

var (
	envelopeTable  = blobTable{bEnvelopes, "envelope cache"}
	structureTable = blobTable{bStructures, "structures"}
)

// put keeps enc for blob id; nil keeps nothing.
func (t blobTable) put(tx *bbolt.Tx, id uint64, enc []byte) error {
	if enc == nil {
		return nil
	}
	b, err := tx.CreateBucketIfNotExists(t.bucket)
	if err != nil {
		return err
	}
	return b.Put(u64key(id), enc)
}

// drop forgets what is kept for a blob that is deleted.
func (t blobTable) drop(tx *bbolt.Tx, id uint64) error {
	if b := tx.Bucket(t.bucket); b != nil {
		return b.Delete(u64key(id))
	}
	return nil
}

// verify reports entries with a bad key or for blobs that are gone, and
// those check (if not nil) finds wrong.
func (t blobTable) verify(tx *bbolt.Tx, report func(format string, args ...any), check func(id uint64, v []byte)) {
	b := tx.Bucket(t.bucket)
	if b == nil {
		return
	}
	refs := tx.Bucket(bBlobRefs)
	b.ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			report("%s: bad key %x", t.name, k)
			return nil
		}
		id := binary.BigEndian.Uint64(k)
		if refs.Get(k) == nil {
			report("%s: entry for deleted blob %d", t.name, id)
		}
		if check != nil {
			check(id, v)
		}
		return nil
	})
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
		var bk [8]byte
		return eachRecord(b, account, mailbox, uids, func(i int, m record) {
			binary.BigEndian.PutUint64(bk[:], m.blob)
			if enc := structs.get(bk[:]); enc != nil {
				out[i] = append([]byte(nil), enc...)
			}
		})
	})
	return out, err
}
