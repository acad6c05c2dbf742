package bolt

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"yubin/internal/mailheader"
	"yubin/store"

	bbolt "go.etcd.io/bbolt"
)

// Envelope cache.
//
// Parsing a header for every message of a big FETCH ENVELOPE costs far more
// than the rest of the command, so the parsed envelope is kept, like
// Dovecot's cache, in its own bucket keyed by the blob id of the raw
// message. Blobs never change and their ids are never reused, so an entry
// never goes stale; a copy of a message (COPY, MOVE, several recipients)
// shares the entry. Entries are made on first request and written in the
// background, one group commit per call; envelopeTable.drop removes the entry
// of a blob that is deleted. A delivered, appended or imported message
// gets its entry in the transaction that stores it (store.Delivery.Normalize,
// envelopeTable.put), so its first FETCH finds it warm.
//
//	envelopes  blob id -> encodeEnvelope
var bEnvelopes = []byte("envelopes")

// envelopeWrites counts the background cache writes in flight (tests wait
// for them).
var envelopeWrites sync.WaitGroup

// Envelopes returns the envelopes of the given messages of a mailbox, in
// the order asked, from one snapshot. A UID that does not exist gets a
// zero Envelope. Envelopes not cached yet are parsed from the message and
// cached in the background.
func (s *Store) Summaries(ctx context.Context, account, mailbox string, uids []uint32) ([]mailheader.Summary, error) {
	out := make([]mailheader.Summary, len(uids))
	var misses []envelopeMiss
	err := s.viewFresh(func(tx *bbolt.Tx) error {
		b, _, err := mailboxBucket(tx, account, mailbox)
		if err != nil {
			return err
		}
		var cache *seqCursor
		if cb := tx.Bucket(bEnvelopes); cb != nil { // none until the first entry is written
			cache = &seqCursor{c: cb.Cursor()}
		}
		var bk [8]byte
		return eachRecord(b, account, mailbox, uids, func(i int, m record) {
			if cache != nil {
				binary.BigEndian.PutUint64(bk[:], m.blob)
				if e, ok := mailheader.Decode(cache.get(bk[:])); ok {
					out[i] = e
					return
				}
			}
			misses = append(misses, envelopeMiss{i: i, blob: m.blob, size: min(m.HeaderSize, store.MaxEnvelopeHeader)})
		})
	})
	if err != nil || len(misses) == 0 {
		return out, err
	}
	entries := make([]envelopeEntry, 0, len(misses))
	for len(misses) > 0 {
		// Headers are read a few MiB at a time, however many are missing.
		n, total := 0, int64(0)
		for n < len(misses) && (n == 0 || total+misses[n].size <= envelopeReadBudget) {
			total += misses[n].size
			n++
		}
		batch := misses[:n]
		misses = misses[n:]
		s.viewFresh(func(tx *bbolt.Tx) error {
			blobs := tx.Bucket(bBlobs)
			for j := range batch {
				batch[j].hdr = readHeaderBytes(blobs, batch[j].blob, batch[j].size)
			}
			return nil
		})
		// Parse on every CPU: a first FETCH of a big mailbox parses them all.
		enc := make([][]byte, len(batch))
		workers := min(runtime.GOMAXPROCS(0), (len(batch)+63)/64)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for j := w; j < len(batch); j += workers {
					m := &batch[j]
					out[m.i] = mailheader.Parse(m.hdr)
					enc[j] = mailheader.Encode(&out[m.i])
					m.hdr = nil
				}
			})
		}
		wg.Wait()
		for j, m := range batch {
			entries = append(entries, envelopeEntry{m.blob, enc[j]})
		}
	}
	envelopeWrites.Add(1)
	go func() {
		defer envelopeWrites.Done()
		s.saveEnvelopes(entries)
	}()
	return out, nil
}

// envelopeMiss is a message whose envelope is not cached.
type envelopeMiss struct {
	i    int // in the caller's list
	blob uint64
	size int64 // of the header to read
	hdr  []byte
}

// envelopeEntry is an envelope to cache.
type envelopeEntry struct {
	blob uint64
	enc  []byte
}

// envelopeReadBudget is how many bytes of headers Envelopes holds at once.
const envelopeReadBudget = 4 << 20

// eachRecord calls fn with the record of each message of uids in the
// mailbox bucket b, in the order of uids (i its index there); a UID not in
// the mailbox is skipped. Records are read with one cursor, fast when uids
// ascend (as FETCH asks for them).
func eachRecord(b *bbolt.Bucket, account, mailbox string, uids []uint32, fn func(i int, m record)) error {
	recs := seqCursor{c: b.Bucket(bMsgs).Cursor()}
	var uk [4]byte
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
		fn(i, m)
	}
	return nil
}

// seqCursor looks keys up in a bucket. Its position carries over from one
// lookup to the next, so keys asked in ascending order (UIDs, and the blob
// ids of the messages they name) are found by stepping forward a little
// rather than by searching the bucket each time.
type seqCursor struct {
	c    *bbolt.Cursor
	k, v []byte
}

func (u *seqCursor) get(want []byte) []byte {
	for step := 0; u.k != nil && step < 8 && bytes.Compare(u.k, want) < 0; step++ {
		u.k, u.v = u.c.Next()
	}
	if u.k == nil || !bytes.Equal(u.k, want) {
		u.k, u.v = u.c.Seek(want)
	}
	if u.k != nil && bytes.Equal(u.k, want) {
		return u.v
	}
	return nil
}

// readHeaderBytes copies up to size bytes (at most store.MaxEnvelopeHeader) of
// the start of a blob.
func readHeaderBytes(blobs *bbolt.Bucket, id uint64, size int64) []byte {
	size = min(size, store.MaxEnvelopeHeader)
	out := make([]byte, 0, size)
	for chunk := uint32(0); int64(len(out)) < size; chunk++ {
		v := blobs.Get(chunkKey(id, chunk))
		if len(v) == 0 {
			break
		}
		out = append(out, v[:min(int64(len(v)), size-int64(len(out)))]...)
	}
	return out
}

// saveEnvelopes caches parsed envelopes, in one group commit, skipping
// blobs deleted meanwhile. A failure only means they are parsed again
// next time.
func (s *Store) saveEnvelopes(entries []envelopeEntry) {
	if s.closed.Load() {
		return
	}
	slices.SortFunc(entries, func(a, b envelopeEntry) int { return cmp.Compare(a.blob, b.blob) })
	s.groupWrite(context.Background(), func(tx *bbolt.Tx) error {
		refs := tx.Bucket(bBlobRefs)
		var b *bbolt.Bucket
		for _, e := range entries {
			id, v := e.blob, e.enc
			if refs.Get(u64key(id)) == nil {
				continue // expunged since it was read
			}
			if b == nil {
				var err error
				if b, err = tx.CreateBucketIfNotExists(bEnvelopes); err != nil {
					return err
				}
			}
			if err := b.Put(u64key(id), v); err != nil {
				return err
			}
		}
		return nil
	}, nil)
}

// verifyEnvelopes reports cached envelopes of blobs that no longer exist
// (unrefBlob drops them) and entries that do not decode. For Verify.
func verifyEnvelopes(tx *bbolt.Tx, report func(format string, args ...any)) {
	envelopeTable.verify(tx, report, func(id uint64, v []byte) {
		if _, ok := mailheader.Decode(v); !ok && len(v) > 0 && v[0] == mailheader.Version {
			report("envelope cache: entry for blob %d does not decode", id)
		}
	})
}

// int -> *time.Location
