package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"yubin/store"

	bbolt "go.etcd.io/bbolt"
)

// Deliver stores the message for every recipient in one transaction and
// returns once it is on disk. Either every recipient gets it or none does:
// a *QuotaError names the first account it does not fit.
func (s *Store) Deliver(ctx context.Context, d store.Delivery) ([]store.Delivered, error) {
	return s.DeliverBatch(ctx, []store.Delivery{d})
}

// DeliverBatch stores several deliveries — for example different content
// for different recipients of one SMTP transaction — in one transaction:
// all of them or none.
func (s *Store) DeliverBatch(ctx context.Context, ds []store.Delivery) ([]store.Delivered, error) {
	return s.deliverBatch(ctx, ds, nil, "")
}

// deliverBatch is DeliverBatch plus, in the same transaction, the queue
// changes in q (nil: none; see DeliverAndQueue) and, when once is not "",
// the once-key of DeliverOnce: if it is already recorded nothing is
// written and the error is errDeliveredBefore.
func (s *Store) deliverBatch(ctx context.Context, ds []store.Delivery, q *queueBatch, once string) ([]store.Delivered, error) {
	preps, err := s.prepareDeliveries(ds)
	if err != nil {
		return nil, err
	}
	if len(preps) == 0 && q.empty() {
		return nil, fmt.Errorf("%w: nothing to deliver", store.ErrInvalid)
	}
	run := &deliveryRun{preps: preps, q: q, once: once}
	var redo []byte
	if once == "" && q.empty() {
		if redo, err = walRecord(preps); err != nil {
			return nil, err
		}
	}
	if redo != nil {
		// Written from the record: the transaction may commit after this
		// returns, and bbolt holds the values it is given until then.
		if run.preps, err = decodeWALRecord(redo); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	err = s.groupWriteRedo(ctx, s.deliverFn(run), redo, func() {
		if len(preps) > 0 {
			s.deliveries.Add(1)
			s.feed.Publish(run.events)
		}
		if q != nil && len(q.adds) > 0 {
			s.signalQueue()
		}
	})
	if err != nil {
		return nil, err
	}
	return run.out, nil
}

// prepared is a delivery checked and made ready for deliverFn.
type prepared struct {
	rcpts []string
	flags []string
	date  time.Time
	box   string
	hdr   []byte
	msg   []byte
	tail  *io.SectionReader
	size  int64
	hsize int64
	hold  *store.QuarantineHold
	env   []byte // encoded envelope
	// structure is Delivery.Structure (structures.go); nil for none
	structure []byte
}

// prepareDeliveries checks deliveries and works out everything about them
// that does not depend on the store's contents.
func (s *Store) prepareDeliveries(ds []store.Delivery) ([]prepared, error) {
	var preps []prepared
	for _, d := range ds {
		n, err := d.Normalize(s.now())
		if err != nil {
			return nil, err
		}
		preps = append(preps, prepared{n.Recipients, n.Flags, n.Date, n.Mailbox, d.Header, d.Message, d.Tail, d.Size(), n.HeaderSize, d.Quarantine, n.Envelope, d.Structure})
	}
	return preps, nil
}

// deliveryRun is one deliverBatch call: what it stores, and what its
// transaction found (out, events; reset at each run of deliverFn).
type deliveryRun struct {
	preps  []prepared
	q      *queueBatch
	once   string
	out    []store.Delivered
	events []store.Event
}

// deliverFn is the write of a deliveryRun, for groupWrite (or for the
// replay of the write-ahead log: the same run over the same store state
// writes the same).
func (s *Store) deliverFn(run *deliveryRun) func(tx *bbolt.Tx) error {
	preps, q, once := run.preps, run.q, run.once
	return func(tx *bbolt.Tx) error {
		out, events := run.out[:0], run.events[:0]
		defer func() { run.out, run.events = out, events }()
		if once != "" {
			if b := tx.Bucket(bOnce); b != nil && b.Get([]byte(once)) != nil {
				return clean(errDeliveredBefore)
			}
		}
		// Check everything before writing anything; usage adds up over
		// the deliveries of the batch.
		need := map[string]int64{}
		accts := map[string]store.Account{}
		// boxes[i][j] is where recipient j of delivery i goes: a
		// mailbox, or "" for the quarantine.
		boxes := make([][]string, len(preps))
		held := map[string]qcounts{}
		for i, p := range preps {
			boxes[i] = make([]string, len(p.rcpts))
			for j, r := range p.rcpts {
				a, ok := accts[r]
				if !ok {
					var err error
					if a, err = getAccount(tx, r); err != nil {
						return clean(err)
					}
					accts[r] = a
				}
				box := p.box
				if p.hold != nil {
					if holdFits(tx, r, p.size, p.hold.Limit, held[r]) {
						c := held[r]
						c.Messages++
						c.Bytes += p.size
						held[r] = c
						continue // held: outside the quota
					}
					// The quarantine is full: Junk instead, never dropped.
					box = "Junk"
					if _, _, err := mailboxBucket(tx, r, box); err != nil {
						box = "INBOX"
					}
				}
				boxes[i][j] = box
				need[r] += p.size
				if a.Quota > 0 && a.Used+need[r] > a.Quota {
					return clean(&store.QuotaError{Account: a.Address, Quota: a.Quota, Used: a.Used, Need: need[r]})
				}
				if _, _, err := mailboxBucket(tx, r, box); err != nil {
					return clean(err)
				}
			}
		}
		if err := q.check(tx); err != nil {
			return clean(err)
		}
		for i, p := range preps {
			size := p.size
			blob, err := putBlob(tx, len(p.rcpts), p.tail, p.hdr, p.msg)
			if err != nil {
				return err
			}
			if err := envelopeTable.put(tx, blob, p.env); err != nil {
				return err
			}
			if err := structureTable.put(tx, blob, p.structure); err != nil {
				return err
			}
			for j, r := range p.rcpts {
				a := accts[r]
				if boxes[i][j] == "" {
					id, err := putHold(tx, r, p.hold, blob, size, p.hsize, p.date)
					if err != nil {
						return err
					}
					out = append(out, store.Delivered{Account: a.Address, Quarantine: id})
					continue
				}
				b, meta, _ := mailboxBucket(tx, r, boxes[i][j])
				m := record{MessageInfo: store.MessageInfo{UID: meta.UIDNext, Size: size, HeaderSize: p.hsize, Date: p.date, Flags: p.flags, ModSeq: bumpModSeq(&meta)}, blob: blob}
				if err := b.Bucket(bMsgs).Put(u32key(m.UID), encodeRecord(&m)); err != nil {
					return err
				}
				meta.UIDNext++
				meta.Messages++
				meta.Size += size
				if err := putJSON(b, string(kMeta), meta); err != nil {
					return err
				}
				a.Used += size
				accts[r] = a
				if err := putJSON(tx.Bucket(bAccounts), a.Address, a); err != nil {
					return err
				}
				out = append(out, store.Delivered{Account: a.Address, Mailbox: meta.Name, UIDValidity: meta.UIDValidity, UID: m.UID})
				events = append(events, store.Event{Kind: store.EventNew, Account: a.Address, Mailbox: meta.Name, UIDValidity: meta.UIDValidity, UID: m.UID, Flags: p.flags, ModSeq: m.ModSeq})
			}
		}
		if once != "" {
			b, err := tx.CreateBucketIfNotExists(bOnce)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(once), []byte(s.now().UTC().Format(time.RFC3339))); err != nil {
				return err
			}
		}
		return q.write(tx, s.now())
	}
}

// putBlob stores a raw message — the concatenation of parts, then tail
// (nil: none) — in chunks with the given reference count. Chunks are
// slices of the parts where they can be (bbolt keeps values until the
// commit); only a chunk that spans two parts is copied. The tail is read
// chunk by chunk into new buffers, which bbolt holds until the commit: a
// transaction holds its data in memory, so a big message costs its size
// (twice: values, then pages) while it is committed, however it came in.
func putBlob(tx *bbolt.Tx, refs int, tail *io.SectionReader, parts ...[]byte) (uint64, error) {
	refsB := tx.Bucket(bBlobRefs)
	id, err := refsB.NextSequence()
	if err != nil {
		return 0, err
	}
	blobs := tx.Bucket(bBlobs)
	blobs.FillPercent = 1.0 // keys only ever grow
	chunk := uint32(0)
	var pending []byte // a chunk being assembled across parts
	put := func(v []byte) error {
		err := blobs.Put(chunkKey(id, chunk), v)
		chunk++
		return err
	}
	for _, p := range parts {
		for len(p) > 0 {
			if len(pending) == 0 && len(p) >= chunkSize {
				if err := put(p[:chunkSize]); err != nil {
					return 0, err
				}
				p = p[chunkSize:]
				continue
			}
			n := min(chunkSize-len(pending), len(p))
			pending = append(pending, p[:n]...)
			p = p[n:]
			if len(pending) == chunkSize {
				if err := put(pending); err != nil {
					return 0, err
				}
				pending = nil
			}
		}
	}
	if tail != nil {
		r := io.NewSectionReader(tail, 0, tail.Size())
		for {
			if pending == nil {
				pending = make([]byte, 0, chunkSize)
			} else if cap(pending) < chunkSize {
				pending = append(make([]byte, 0, chunkSize), pending...)
			}
			n, err := io.ReadFull(r, pending[len(pending):chunkSize])
			pending = pending[:len(pending)+n]
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				break
			}
			if err != nil {
				return 0, err
			}
			if err := put(pending); err != nil {
				return 0, err
			}
			pending = nil
		}
	}
	if len(pending) > 0 || chunk == 0 {
		if err := put(pending); err != nil {
			return 0, err
		}
	}
	return id, refsB.Put(u64key(id), binary.AppendUvarint(nil, uint64(refs)))
}

func chunkKey(id uint64, chunk uint32) []byte {
	k := make([]byte, 12)
	binary.BigEndian.PutUint64(k, id)
	binary.BigEndian.PutUint32(k[8:], chunk)
	return k
}

// unrefBlob drops one reference and deletes the blob at zero.
func unrefBlob(tx *bbolt.Tx, id uint64) error {
	refsB := tx.Bucket(bBlobRefs)
	v := refsB.Get(u64key(id))
	n, k := binary.Uvarint(v)
	if k <= 0 {
		return fmt.Errorf("store: blob %d has no reference count", id)
	}
	if n > 1 {
		return refsB.Put(u64key(id), binary.AppendUvarint(nil, n-1))
	}
	if err := refsB.Delete(u64key(id)); err != nil {
		return err
	}
	if err := dropTrained(tx, id); err != nil {
		return err
	}
	c := tx.Bucket(bBlobs).Cursor()
	prefix := u64key(id)
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	if err := structureTable.drop(tx, id); err != nil {
		return err
	}
	return envelopeTable.drop(tx, id)
}

// Messages lists the messages of a mailbox in UID order, with the
// mailbox's metadata from the same snapshot.
func (s *Store) Messages(ctx context.Context, account, mailbox string) ([]store.MessageInfo, store.Mailbox, error) {
	var out []store.MessageInfo
	var meta store.Mailbox
	err := s.viewFresh(func(tx *bbolt.Tx) error {
		b, m, err := mailboxBucket(tx, account, mailbox)
		if err != nil {
			return err
		}
		meta = m
		out = make([]store.MessageInfo, 0, m.Messages)
		return b.Bucket(bMsgs).ForEach(func(k, v []byte) error {
			msg, err := decodeRecord(binary.BigEndian.Uint32(k), v)
			if err != nil {
				return fmt.Errorf("%s/%s uid %d: %w", account, mailbox, binary.BigEndian.Uint32(k), err)
			}
			out = append(out, msg.MessageInfo)
			return nil
		})
	})
	return out, meta, err
}

// OpenMessage returns a reader over a message's raw bytes. It reads chunk
// by chunk, so a large message is never loaded whole.
func (s *Store) OpenMessage(ctx context.Context, account, mailbox string, uid uint32) (io.ReadCloser, store.MessageInfo, error) {
	var m record
	err := s.viewFresh(func(tx *bbolt.Tx) error {
		b, _, err := mailboxBucket(tx, account, mailbox)
		if err != nil {
			return err
		}
		v := b.Bucket(bMsgs).Get(u32key(uid))
		if v == nil {
			return fmt.Errorf("uid %d in %s of %s: %w", uid, mailbox, account, store.ErrNoSuchMessage)
		}
		m, err = decodeRecord(uid, v)
		return err
	})
	if err != nil {
		return nil, m.MessageInfo, err
	}
	return &blobReader{s: s, id: m.blob, size: m.Size}, m.MessageInfo, nil
}

// ReadMessage returns a message's raw bytes.
func (s *Store) ReadMessage(ctx context.Context, account, mailbox string, uid uint32) ([]byte, error) {
	r, m, err := s.OpenMessage(ctx, account, mailbox, uid)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	buf := make([]byte, m.Size)
	_, err = io.ReadFull(r, buf)
	return buf, err
}

type blobReader struct {
	s     *Store
	id    uint64
	size  int64
	off   int64
	chunk uint32
	buf   []byte // the current chunk; buf[pos:] is still unread
	pos   int
}

func (r *blobReader) Read(p []byte) (int, error) {
	if r.pos == len(r.buf) {
		if r.off >= r.size {
			return 0, io.EOF
		}
		err := r.s.viewFresh(func(tx *bbolt.Tx) error {
			v := tx.Bucket(bBlobs).Get(chunkKey(r.id, r.chunk))
			if v == nil {
				return fmt.Errorf("message was expunged while being read: %w", store.ErrNoSuchMessage)
			}
			r.buf = append(r.buf[:0], v...) // the buffer is reused chunk after chunk
			r.pos = 0
			return nil
		})
		if err != nil {
			return 0, err
		}
		r.chunk++
		if len(r.buf) == 0 {
			return 0, io.ErrUnexpectedEOF
		}
	}
	n := copy(p, r.buf[r.pos:])
	r.pos += n
	r.off += int64(n)
	return n, nil
}

func (r *blobReader) Close() error { r.buf, r.pos = nil, 0; return nil }

// SetFlagsIf changes the flags of the given messages whose ModSeq is at
// most unchangedSince (UIDs that do not exist are skipped, repeats count
// once): a message whose flags change takes a new ModSeq. It returns the
// messages that passed as they are afterwards and the UIDs of those that
// did not, both in the order asked.
func (s *Store) SetFlagsIf(ctx context.Context, account, mailbox string, uids []uint32, op store.FlagOp, flags []string, unchangedSince uint64) ([]store.MessageInfo, []uint32, error) {
	flags, err := store.NormalizeFlags(flags)
	if err != nil {
		return nil, nil, err
	}
	uids = uniqueInOrder(uids)
	var out []store.MessageInfo
	var failed []uint32
	var events []store.Event
	fn := func(tx *bbolt.Tx) error {
		out, failed, events = out[:0], failed[:0], events[:0]
		b, meta, err := mailboxBucket(tx, account, mailbox)
		if err != nil {
			return clean(err)
		}
		msgs := b.Bucket(bMsgs)
		for _, uid := range uids {
			v := msgs.Get(u32key(uid))
			if v == nil {
				continue
			}
			m, err := decodeRecord(uid, v)
			if err != nil {
				return err
			}
			if m.ModSeq > unchangedSince {
				failed = append(failed, uid)
				continue
			}
			nf := op.Apply(m.Flags, flags)
			if slices.Equal(nf, m.Flags) {
				out = append(out, m.MessageInfo)
				continue
			}
			m.Flags = nf
			m.ModSeq = bumpModSeq(&meta)
			if err := msgs.Put(u32key(uid), encodeRecord(&m)); err != nil {
				return err
			}
			out = append(out, m.MessageInfo)
			events = append(events, store.Event{Kind: store.EventFlags, Account: strings.ToLower(account), Mailbox: meta.Name, UIDValidity: meta.UIDValidity, UID: uid, Flags: nf, ModSeq: m.ModSeq})
		}
		if len(events) == 0 {
			return nil
		}
		return putJSON(b, string(kMeta), meta)
	}
	if err := s.groupWrite(ctx, fn, func() { s.feed.Publish(events) }); err != nil {
		return nil, nil, err
	}
	return out, failed, nil
}

// uniqueInOrder drops the repeats of a list of UIDs, keeping its order.
func uniqueInOrder(uids []uint32) []uint32 {
	seen := make(map[uint32]struct{}, len(uids))
	out := make([]uint32, 0, len(uids))
	for _, u := range uids {
		if _, ok := seen[u]; !ok {
			seen[u] = struct{}{}
			out = append(out, u)
		}
	}
	return out
}

// Expunge removes the given messages (missing UIDs are skipped), frees
// their quota, and returns the UIDs removed.
func (s *Store) Expunge(ctx context.Context, account, mailbox string, uids []uint32) ([]uint32, error) {
	var out []uint32
	var events []store.Event
	fn := func(tx *bbolt.Tx) error {
		out, events = out[:0], events[:0]
		b, meta, err := mailboxBucket(tx, account, mailbox)
		if err != nil {
			return clean(err)
		}
		a, err := getAccount(tx, account)
		if err != nil {
			return clean(err)
		}
		msgs := b.Bucket(bMsgs)
		var gone []expunged
		for _, uid := range uids {
			v := msgs.Get(u32key(uid))
			if v == nil {
				continue
			}
			m, err := decodeRecord(uid, v)
			if err != nil {
				return err
			}
			if err := unrefBlob(tx, m.blob); err != nil {
				return err
			}
			if err := msgs.Delete(u32key(uid)); err != nil {
				return err
			}
			meta.Messages--
			meta.Size -= m.Size
			a.Used -= m.Size
			modseq := bumpModSeq(&meta)
			gone = append(gone, expunged{uid, modseq})
			out = append(out, uid)
			events = append(events, store.Event{Kind: store.EventExpunge, Account: a.Address, Mailbox: meta.Name, UIDValidity: meta.UIDValidity, UID: uid, ModSeq: modseq})
		}
		if len(out) == 0 {
			return nil
		}
		if err := s.rememberExpunged(b, gone); err != nil {
			return err
		}
		if err := putJSON(b, string(kMeta), meta); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bAccounts), a.Address, a)
	}
	if err := s.groupWrite(ctx, fn, func() { s.feed.Publish(events) }); err != nil {
		return nil, err
	}
	return out, nil
}
