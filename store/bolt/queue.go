package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"yubin/store"

	bbolt "go.etcd.io/bbolt"
)

// The outbound queue. Layout:
//
//	queue     id                 -> JSON queueRecord (entry + blob id)
//	queuedue  nanos(next)|id     -> nothing: the retry schedule
//
// The raw message of an entry is a blob like a mailbox message's, with one
// reference per entry: the entries of one message (one per destination
// domain) share it.
var (
	bQueue    = []byte("queue")
	bQueueDue = []byte("queuedue")
)

// queueRecord is an entry as stored.
type queueRecord struct {
	store.QueueEntry
	Blob uint64 `json:"blob"`
}

// due is when the entry is next handed out: its next attempt, or the end
// of its lease if later. The schedule index is keyed by it.
func (rec *queueRecord) due() time.Time {
	if rec.LeaseUntil.After(rec.NextAttempt) {
		return rec.LeaseUntil
	}
	return rec.NextAttempt
}

func dueKey(t time.Time, id string) []byte {
	return append(u64key(nanos(t)), id...)
}

// queueBatch is the queue part of a write transaction: entries to add and
// at most one entry to update.
type queueBatch struct {
	adds   []store.Outbound // one domain each (prepareOutbound)
	settle *settleOp
	ids    []string // ids of the added entries, filled by write
}

type settleOp struct {
	id string
	fn func(e *store.QueueEntry) error
	// keepLease leaves the entry's lease as it is (RecordSent): the
	// attempt that ends is not the lease holder's.
	keepLease bool
}

func (q *queueBatch) empty() bool { return q == nil || len(q.adds) == 0 && q.settle == nil }

// check runs before anything in the transaction is written.
func (q *queueBatch) check(tx *bbolt.Tx) error {
	if q == nil || q.settle == nil {
		return nil
	}
	b := tx.Bucket(bQueue)
	if b == nil || b.Get([]byte(q.settle.id)) == nil {
		return fmt.Errorf("queue entry %s: %w", q.settle.id, store.ErrNoSuchMessage)
	}
	return nil
}

func (q *queueBatch) write(tx *bbolt.Tx, now time.Time) error {
	if q.empty() {
		return nil
	}
	qb, err := tx.CreateBucketIfNotExists(bQueue)
	if err != nil {
		return err
	}
	due, err := tx.CreateBucketIfNotExists(bQueueDue)
	if err != nil {
		return err
	}
	q.ids = q.ids[:0]
	// Entries with the same bytes (one message, several domains) share a blob.
	refs := make([]int, len(q.adds))
	owner := make([]int, len(q.adds))
	for i, o := range q.adds {
		owner[i] = i
		for j := 0; j < i; j++ {
			if owner[j] == j && q.adds[j].Tail == o.Tail && bytes.Equal(q.adds[j].Message, o.Message) {
				owner[i] = j
				break
			}
		}
		refs[owner[i]]++
	}
	blobOf := map[int]uint64{}
	for i, o := range q.adds {
		if owner[i] == i {
			id, err := putBlob(tx, refs[i], o.Tail, o.Message)
			if err != nil {
				return err
			}
			blobOf[i] = id
		}
	}
	for i, o := range q.adds {
		seq, err := qb.NextSequence()
		if err != nil {
			return err
		}
		qid := o.QueueID
		if qid == "" {
			qid = "Q"
		}
		id := qid + "-" + strconv.FormatUint(seq, 36)
		rec := queueRecord{QueueEntry: store.QueueEntry{
			ID: id, QueueID: o.QueueID, From: o.From, ReturnPath: o.ReturnPath, Origin: o.Origin,
			Size: o.Size(), Created: now.UTC(), NextAttempt: now.UTC(),
		}, Blob: blobOf[owner[i]]}
		for _, r := range o.Recipients {
			rec.Recipients = append(rec.Recipients, store.QueueRecipient{Addr: r})
			rec.Domain = r[strings.LastIndexByte(r, '@')+1:]
		}
		if err := putJSON(qb, id, rec); err != nil {
			return err
		}
		if err := due.Put(dueKey(rec.due(), id), nil); err != nil {
			return err
		}
		q.ids = append(q.ids, id)
	}
	if q.settle != nil {
		return settleEntry(tx, q.settle)
	}
	return nil
}

// settleEntry applies op to its entry; an entry with nothing pending left
// is removed with its blob reference.
func settleEntry(tx *bbolt.Tx, op *settleOp) error {
	qb, due := tx.Bucket(bQueue), tx.Bucket(bQueueDue)
	var rec queueRecord
	if !getJSON(qb, op.id, &rec) {
		return fmt.Errorf("queue entry %s: %w", op.id, store.ErrNoSuchMessage)
	}
	oldDue := dueKey(rec.due(), rec.ID)
	e := rec.QueueEntry
	e.Recipients = slices.Clone(e.Recipients)
	if err := op.fn(&e); err != nil {
		return err
	}
	e.ID = rec.ID                                 // not the caller's to change
	e.LeaseHolder, e.LeaseUntil = "", time.Time{} // the attempt is over
	if op.keepLease {
		e.LeaseHolder, e.LeaseUntil = rec.LeaseHolder, rec.LeaseUntil // another's goes on
	}
	rec.QueueEntry = e
	if err := due.Delete(oldDue); err != nil {
		return err
	}
	if len(e.Pending()) == 0 {
		if err := qb.Delete([]byte(rec.ID)); err != nil {
			return err
		}
		return unrefBlob(tx, rec.Blob)
	}
	if err := putJSON(qb, rec.ID, rec); err != nil {
		return err
	}
	return due.Put(dueKey(rec.due(), rec.ID), nil)
}

// DeliverAndQueue stores deliveries for local accounts and puts outbound
// messages on the queue in one transaction: all of it or nothing. It
// returns the local copies and the ids of the new queue entries.
func (s *Store) DeliverAndQueue(ctx context.Context, ds []store.Delivery, out []store.Outbound) ([]store.Delivered, []string, error) {
	q := &queueBatch{}
	for _, o := range out {
		parts, err := store.SplitOutbound(o)
		if err != nil {
			return nil, nil, err
		}
		q.adds = append(q.adds, parts...)
	}
	d, err := s.deliverBatch(ctx, ds, q, "")
	if err != nil {
		return nil, nil, err
	}
	return d, q.ids, nil
}

// Enqueue puts outbound messages on the queue and returns the new entries'
// ids once they are on disk.
func (s *Store) Enqueue(ctx context.Context, out ...store.Outbound) ([]string, error) {
	_, ids, err := s.DeliverAndQueue(ctx, nil, out)
	return ids, err
}

// SettleQueued records the outcome of a delivery attempt: fn changes the
// entry (recipient states, next attempt, error); in the same transaction
// the deliveries ds (a DSN for a local sender) are stored and the messages
// out (a DSN for a remote one) are queued. An entry with no pending
// recipient left is removed. The error is ErrNoSuchMessage if the entry is
// gone (dropped meanwhile). fn runs inside the write transaction, on a copy
// of the entry as stored, and may run more than once (groupWrite's re-run
// rule): it must only change the entry. An error from it stores nothing.
func (s *Store) SettleQueued(ctx context.Context, id string, fn func(e *store.QueueEntry) error, ds []store.Delivery, out []store.Outbound) error {
	q := &queueBatch{settle: &settleOp{id: id, fn: fn}}
	for _, o := range out {
		parts, err := store.SplitOutbound(o)
		if err != nil {
			return err
		}
		q.adds = append(q.adds, parts...)
	}
	_, err := s.deliverBatch(ctx, ds, q, "")
	return err
}

// RecordSent marks those of rcpts still pending in entry id sent, and
// leaves its lease, schedule and errors as they are (see store.Queue).
func (s *Store) RecordSent(ctx context.Context, id string, rcpts []string) error {
	q := &queueBatch{settle: &settleOp{id: id, keepLease: true, fn: func(e *store.QueueEntry) error {
		e.MarkSent(rcpts)
		return nil
	}}}
	_, err := s.deliverBatch(ctx, nil, q, "")
	return err
}

// QueueDue returns up to max entries whose next attempt is at or before
// now, earliest first (max <= 0: all).
func (s *Store) QueueDue(ctx context.Context, now time.Time, max int) ([]store.QueueEntry, error) {
	var out []store.QueueEntry
	err := s.view(func(tx *bbolt.Tx) error {
		due, qb := tx.Bucket(bQueueDue), tx.Bucket(bQueue)
		if due == nil {
			return nil
		}
		lim := nanos(now)
		c := due.Cursor()
		for k, _ := c.First(); k != nil && len(k) > 8; k, _ = c.Next() {
			if u64(k[:8]) > lim || max > 0 && len(out) >= max {
				break
			}
			var rec queueRecord
			if getJSON(qb, string(k[8:]), &rec) {
				out = append(out, rec.QueueEntry)
			}
		}
		return nil
	})
	return out, err
}

// LeaseQueued leases those of ids that are due at now and not leased by
// another holder, until until, and returns them as stored. A leased entry
// is not handed out (QueueDue, LeaseQueued) to anyone else until the lease
// ends, SettleQueued records the attempt, or its holder releases it.
func (s *Store) LeaseQueued(ctx context.Context, ids []string, holder string, now, until time.Time) ([]store.QueueEntry, error) {
	if holder == "" || !until.After(now) {
		return nil, fmt.Errorf("%w: a lease needs a holder and an end after now", store.ErrInvalid)
	}
	var out []store.QueueEntry
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		out = out[:0]
		qb, due := tx.Bucket(bQueue), tx.Bucket(bQueueDue)
		if qb == nil {
			return nil
		}
		seen := map[string]bool{}
		for _, id := range ids {
			var rec queueRecord
			if seen[id] || !getJSON(qb, id, &rec) {
				continue
			}
			seen[id] = true
			if rec.NextAttempt.After(now) || rec.LeaseHolder != holder && rec.LeaseUntil.After(now) {
				continue
			}
			if err := putQueued(qb, due, &rec, func() { rec.LeaseHolder, rec.LeaseUntil = holder, until.UTC() }); err != nil {
				return err
			}
			out = append(out, rec.QueueEntry)
		}
		return nil
	})
	return out, err
}

// putQueued stores rec after change, keeping its entry in the due index
// (keyed by when it is next due, which change may move) right.
func putQueued(qb, due *bbolt.Bucket, rec *queueRecord, change func()) error {
	if err := due.Delete(dueKey(rec.due(), rec.ID)); err != nil {
		return err
	}
	change()
	if err := putJSON(qb, rec.ID, rec); err != nil {
		return err
	}
	return due.Put(dueKey(rec.due(), rec.ID), nil)
}

// RenewLeases moves the end of holder's leases on ids to until and
// returns the ids renewed (see store.Queue).
func (s *Store) RenewLeases(ctx context.Context, ids []string, holder string, until time.Time) ([]string, error) {
	if holder == "" || until.IsZero() {
		return nil, fmt.Errorf("%w: a lease needs a holder and an end", store.ErrInvalid)
	}
	var kept []string
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		kept = kept[:0]
		qb, due := tx.Bucket(bQueue), tx.Bucket(bQueueDue)
		if qb == nil {
			return nil
		}
		seen := map[string]bool{}
		for _, id := range ids {
			var rec queueRecord
			if seen[id] || !getJSON(qb, id, &rec) || rec.LeaseHolder != holder {
				continue
			}
			seen[id] = true
			if err := putQueued(qb, due, &rec, func() { rec.LeaseUntil = until.UTC() }); err != nil {
				return err
			}
			kept = append(kept, rec.ID)
		}
		return nil
	})
	return kept, err
}

// ReleaseQueued ends holder's leases on ids (an attempt that did not
// happen): the entries are due again at their next attempt.
func (s *Store) ReleaseQueued(ctx context.Context, ids []string, holder string) error {
	return s.update(ctx, func(tx *bbolt.Tx) error {
		qb, due := tx.Bucket(bQueue), tx.Bucket(bQueueDue)
		if qb == nil {
			return nil
		}
		for _, id := range ids {
			var rec queueRecord
			if !getJSON(qb, id, &rec) || rec.LeaseHolder != holder {
				continue
			}
			if err := putQueued(qb, due, &rec, func() { rec.LeaseHolder, rec.LeaseUntil = "", time.Time{} }); err != nil {
				return err
			}
		}
		return nil
	})
}

// QueueNextAttempt returns the earliest next attempt of any entry; ok is
// false when the queue is empty.
func (s *Store) QueueNextAttempt(ctx context.Context) (next time.Time, ok bool, err error) {
	err = s.view(func(tx *bbolt.Tx) error {
		due := tx.Bucket(bQueueDue)
		if due == nil {
			return nil
		}
		if k, _ := due.Cursor().First(); len(k) > 8 {
			next, ok = time.Unix(0, int64(u64(k[:8]))), true
		}
		return nil
	})
	return next, ok, err
}

// QueueStats counts the entries and finds the oldest, decoding only the
// creation time of each.
func (s *Store) QueueStats(ctx context.Context) (entries int, oldest time.Time, err error) {
	err = s.view(func(tx *bbolt.Tx) error {
		qb := tx.Bucket(bQueue)
		if qb == nil {
			return nil
		}
		return qb.ForEach(func(k, v []byte) error {
			var rec struct {
				Created time.Time `json:"created"`
			}
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("store: corrupt queue record %q: %w", k, err)
			}
			entries++
			if oldest.IsZero() || rec.Created.Before(oldest) {
				oldest = rec.Created
			}
			return nil
		})
	})
	return entries, oldest, err
}

// QueueEntries returns every queue entry, by id.
func (s *Store) QueueEntries(ctx context.Context) ([]store.QueueEntry, error) {
	var out []store.QueueEntry
	err := s.view(func(tx *bbolt.Tx) error {
		qb := tx.Bucket(bQueue)
		if qb == nil {
			return nil
		}
		return qb.ForEach(func(k, _ []byte) error {
			var rec queueRecord
			getJSON(qb, string(k), &rec)
			out = append(out, rec.QueueEntry)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool {
		return out[i].Created.Before(out[j].Created) || out[i].Created.Equal(out[j].Created) && out[i].ID < out[j].ID
	})
	return out, err
}

// QueueEntry returns one entry.
func (s *Store) QueueEntry(ctx context.Context, id string) (store.QueueEntry, error) {
	rec, err := s.queueRecord(id)
	return rec.QueueEntry, err
}

func (s *Store) queueRecord(id string) (queueRecord, error) {
	var rec queueRecord
	err := s.view(func(tx *bbolt.Tx) error {
		qb := tx.Bucket(bQueue)
		if qb == nil || !getJSON(qb, id, &rec) {
			return fmt.Errorf("queue entry %s: %w", id, store.ErrNoSuchMessage)
		}
		return nil
	})
	return rec, err
}

// OpenQueued returns a reader over a queue entry's raw message.
func (s *Store) OpenQueued(ctx context.Context, id string) (io.ReadCloser, store.QueueEntry, error) {
	rec, err := s.queueRecord(id)
	if err != nil {
		return nil, rec.QueueEntry, err
	}
	return &blobReader{s: s, id: rec.Blob, size: rec.Size}, rec.QueueEntry, nil
}

// ReadQueued returns a queue entry's raw message.
func (s *Store) ReadQueued(ctx context.Context, id string) ([]byte, store.QueueEntry, error) {
	r, e, err := s.OpenQueued(ctx, id)
	if err != nil {
		return nil, e, err
	}
	defer r.Close()
	buf := make([]byte, e.Size)
	_, err = io.ReadFull(r, buf)
	return buf, e, err
}

// RetryQueued makes the given entries (every entry when ids is empty) due
// now and returns how many there were.
func (s *Store) RetryQueued(ctx context.Context, ids []string) (int, error) {
	return s.queueEdit(ctx, ids, func(tx *bbolt.Tx, rec *queueRecord) error {
		return putQueued(tx.Bucket(bQueue), tx.Bucket(bQueueDue), rec, func() { rec.NextAttempt = s.now().UTC() })
	})
}

// DropQueued deletes the given entries (every entry when ids is empty)
// without a DSN and returns how many there were.
func (s *Store) DropQueued(ctx context.Context, ids []string) (int, error) {
	return s.queueEdit(ctx, ids, func(tx *bbolt.Tx, rec *queueRecord) error {
		if err := tx.Bucket(bQueueDue).Delete(dueKey(rec.due(), rec.ID)); err != nil {
			return err
		}
		if err := tx.Bucket(bQueue).Delete([]byte(rec.ID)); err != nil {
			return err
		}
		return unrefBlob(tx, rec.Blob)
	})
}

// queueEdit applies fn to the named entries (all when ids is empty). An
// unknown id fails the whole call before anything is written.
func (s *Store) queueEdit(ctx context.Context, ids []string, fn func(tx *bbolt.Tx, rec *queueRecord) error) (int, error) {
	n := 0
	err := s.groupWrite(ctx, func(tx *bbolt.Tx) error {
		n = 0
		qb := tx.Bucket(bQueue)
		var recs []queueRecord
		if qb != nil && len(ids) == 0 {
			qb.ForEach(func(k, _ []byte) error {
				var rec queueRecord
				getJSON(qb, string(k), &rec)
				recs = append(recs, rec)
				return nil
			})
		}
		for _, id := range ids {
			var rec queueRecord
			if qb == nil || !getJSON(qb, id, &rec) {
				return clean(fmt.Errorf("queue entry %s: %w", id, store.ErrNoSuchMessage))
			}
			// An id named twice is one entry: dropping it twice would
			// drop its message's reference twice.
			if !slices.ContainsFunc(recs, func(r queueRecord) bool { return r.ID == rec.ID }) {
				recs = append(recs, rec)
			}
		}
		for i := range recs {
			if err := fn(tx, &recs[i]); err != nil {
				return err
			}
			n++
		}
		return nil
	}, s.signalQueue)
	return n, err
}

// QueueChanged is signalled (without blocking) whenever entries are added
// or made due by RetryQueued: the queue runner waits on it.
func (s *Store) QueueChanged() <-chan struct{} { return s.queueSig }

func (s *Store) signalQueue() {
	select {
	case s.queueSig <- struct{}{}:
	default:
	}
}

// verifyQueue adds the queue's blob references to refs and sizes and
// checks the schedule index.
func verifyQueue(tx *bbolt.Tx, refs map[uint64]uint64, sizes map[uint64]int64, report func(string, ...any)) {
	qb, due := tx.Bucket(bQueue), tx.Bucket(bQueueDue)
	if qb == nil {
		return
	}
	indexed := map[string]bool{}
	if due != nil {
		due.ForEach(func(k, _ []byte) error {
			if len(k) <= 8 {
				report("queue schedule: malformed key %x", k)
				return nil
			}
			id := string(k[8:])
			if qb.Get(k[8:]) == nil {
				report("queue schedule names missing entry %s", id)
			}
			indexed[id] = true
			return nil
		})
	}
	qb.ForEach(func(k, v []byte) error {
		var rec queueRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			report("queue entry %s: %v", k, err)
			return nil
		}
		if !indexed[rec.ID] || due == nil || due.Get(dueKey(rec.due(), rec.ID)) == nil {
			report("queue entry %s is not in the schedule at its next attempt", rec.ID)
		}
		if len(rec.Pending()) == 0 {
			report("queue entry %s has no pending recipient", rec.ID)
		}
		refs[rec.Blob]++
		if prev, ok := sizes[rec.Blob]; ok && prev != rec.Size {
			report("blob %d referenced with sizes %d and %d", rec.Blob, prev, rec.Size)
		}
		sizes[rec.Blob] = rec.Size
		return nil
	})
}

func u64(b []byte) uint64 {
	var v uint64
	for _, c := range b[:8] {
		v = v<<8 | uint64(c)
	}
	return v
}
