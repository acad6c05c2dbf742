package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"yubin/store"
)

// A queue entry is a row: the entry as JSON (what the runner reads and
// settles), with the columns queries select on beside it. An entry is due
// at the later of next_attempt and lease_until.

// queueBatch is what a delivery transaction does to the queue.
type queueBatch struct {
	adds   []store.Outbound // one domain each (store.SplitOutbound)
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

// check fails before anything is written if the entry to settle is gone.
func (q *queueBatch) check(ctx context.Context, w *wtx) error {
	if q == nil || q.settle == nil {
		return nil
	}
	var one int
	err := w.QueryRow(ctx, `SELECT 1 FROM queue WHERE id = $1 FOR UPDATE`, q.settle.id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("queue entry %s: %w", q.settle.id, store.ErrNoSuchMessage)
	}
	return err
}

func (q *queueBatch) write(ctx context.Context, w *wtx, now time.Time) error {
	if q.empty() {
		return nil
	}
	q.ids = q.ids[:0]
	// Copies of one message to several domains share a blob.
	owner := make([]int, len(q.adds))
	blobOf := map[int]int64{}
	for i, o := range q.adds {
		owner[i] = i
		for j := 0; j < i; j++ {
			if owner[j] == j && q.adds[j].Tail == o.Tail && bytes.Equal(q.adds[j].Message, o.Message) {
				owner[i] = j
				break
			}
		}
		if owner[i] == i {
			id, err := w.putBlob(ctx, nil, o.Tail, o.Message)
			if err != nil {
				return err
			}
			blobOf[i] = id
		}
	}
	for i, o := range q.adds {
		var seq int64
		if err := w.QueryRow(ctx, `SELECT nextval('queue_seq')`).Scan(&seq); err != nil {
			return err
		}
		qid := o.QueueID
		if qid == "" {
			qid = "Q"
		}
		id := qid + "-" + strconv.FormatInt(seq, 36)
		e := store.QueueEntry{
			ID: id, QueueID: o.QueueID, From: o.From, ReturnPath: o.ReturnPath, Origin: o.Origin,
			Size: o.Size(), Created: now.UTC(), NextAttempt: now.UTC(),
		}
		for _, r := range o.Recipients {
			e.Recipients = append(e.Recipients, store.QueueRecipient{Addr: r})
			e.Domain = r[strings.LastIndexByte(r, '@')+1:]
		}
		if err := w.putEntry(ctx, e, blobOf[owner[i]], true); err != nil {
			return err
		}
		q.ids = append(q.ids, id)
	}
	w.queued = true
	if q.settle != nil {
		return w.settleEntry(ctx, q.settle)
	}
	return nil
}

// putEntry writes an entry: its JSON and the columns beside it.
func (w *wtx) putEntry(ctx context.Context, e store.QueueEntry, blob int64, insert bool) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	var until *time.Time
	if !e.LeaseUntil.IsZero() {
		until = &e.LeaseUntil
	}
	if insert {
		_, err = w.Exec(ctx, `INSERT INTO queue (id, blob, entry, created, next_attempt, lease_holder, lease_until) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			e.ID, blob, data, e.Created, e.NextAttempt, e.LeaseHolder, until)
	} else {
		_, err = w.Exec(ctx, `UPDATE queue SET entry = $2, next_attempt = $3, lease_holder = $4, lease_until = $5 WHERE id = $1`,
			e.ID, data, e.NextAttempt, e.LeaseHolder, until)
	}
	return err
}

func scanEntry(data []byte) (store.QueueEntry, error) {
	var e store.QueueEntry
	if err := json.Unmarshal(data, &e); err != nil {
		return e, fmt.Errorf("corrupt queue entry: %w", err)
	}
	return e, nil
}

func (w *wtx) settleEntry(ctx context.Context, op *settleOp) error {
	var data []byte
	var blob int64
	err := w.QueryRow(ctx, `SELECT entry, blob FROM queue WHERE id = $1 FOR UPDATE`, op.id).Scan(&data, &blob)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("queue entry %s: %w", op.id, store.ErrNoSuchMessage)
	}
	if err != nil {
		return err
	}
	e, err := scanEntry(data)
	if err != nil {
		return err
	}
	id, holder, until := e.ID, e.LeaseHolder, e.LeaseUntil
	if err := op.fn(&e); err != nil {
		return err
	}
	e.ID = id                                     // not the caller's to change
	e.LeaseHolder, e.LeaseUntil = "", time.Time{} // the attempt is over
	if op.keepLease {
		e.LeaseHolder, e.LeaseUntil = holder, until // another's goes on
	}
	w.queued = true
	if len(e.Pending()) == 0 {
		if _, err := w.Exec(ctx, `DELETE FROM queue WHERE id = $1`, id); err != nil {
			return err
		}
		return w.dropBlobs(ctx, []int64{blob})
	}
	return w.putEntry(ctx, e, blob, false)
}

// DeliverAndQueue stores local copies and queues outbound copies in one
// transaction.
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

// Enqueue puts messages on the outbound queue.
func (s *Store) Enqueue(ctx context.Context, out ...store.Outbound) ([]string, error) {
	_, ids, err := s.DeliverAndQueue(ctx, nil, out)
	return ids, err
}

// SettleQueued records an attempt's outcome (see store.Queue).
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

const dueExpr = `greatest(next_attempt, coalesce(lease_until, next_attempt))`

func (s *Store) entries(ctx context.Context, sql string, args ...any) ([]store.QueueEntry, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, dbError(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.QueueEntry, error) {
		var data []byte
		if err := r.Scan(&data); err != nil {
			return store.QueueEntry{}, err
		}
		return scanEntry(data)
	})
}

// QueueDue returns entries due at now and not leased, earliest first.
func (s *Store) QueueDue(ctx context.Context, now time.Time, max int) ([]store.QueueEntry, error) {
	lim := any(nil)
	if max > 0 {
		lim = max
	}
	return s.entries(ctx, `SELECT entry FROM queue WHERE `+dueExpr+` <= $1 ORDER BY `+dueExpr+`, id LIMIT $2`, now, lim)
}

// LeaseQueued leases those of ids that are due and not leased by another
// holder. Rows another node is leasing at this moment are skipped (FOR
// UPDATE SKIP LOCKED): each entry goes to one holder.
func (s *Store) LeaseQueued(ctx context.Context, ids []string, holder string, now, until time.Time) ([]store.QueueEntry, error) {
	if holder == "" || !until.After(now) {
		return nil, fmt.Errorf("%w: a lease needs a holder and an end after now", store.ErrInvalid)
	}
	var out []store.QueueEntry
	err := s.write(ctx, func(w *wtx) error {
		out = out[:0]
		rows, err := w.Query(ctx, `SELECT entry FROM queue WHERE id = ANY($1) AND next_attempt <= $2
			AND (lease_holder = $3 OR lease_until IS NULL OR lease_until <= $2) ORDER BY id FOR UPDATE SKIP LOCKED`, uniqueStrings(ids), now, holder)
		if err != nil {
			return err
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.QueueEntry, error) {
			var data []byte
			if err := r.Scan(&data); err != nil {
				return store.QueueEntry{}, err
			}
			return scanEntry(data)
		})
		if err != nil {
			return err
		}
		byID := map[string]store.QueueEntry{}
		for _, e := range got {
			e.LeaseHolder, e.LeaseUntil = holder, until.UTC()
			if err := w.putEntry(ctx, e, 0, false); err != nil {
				return err
			}
			byID[e.ID] = e
		}
		for _, id := range uniqueStrings(ids) { // in the order asked
			if e, ok := byID[id]; ok {
				out = append(out, e)
			}
		}
		return nil
	})
	return out, err
}

func uniqueStrings(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// RenewLeases moves the end of holder's leases on ids to until and
// returns the ids renewed (see store.Queue). The rows are locked (not
// skipped): a row another node is claiming or settling at this moment is
// decided by that node's transaction first, then read here as it left it.
func (s *Store) RenewLeases(ctx context.Context, ids []string, holder string, until time.Time) ([]string, error) {
	if holder == "" || until.IsZero() {
		return nil, fmt.Errorf("%w: a lease needs a holder and an end", store.ErrInvalid)
	}
	var kept []string
	err := s.write(ctx, func(w *wtx) error {
		kept = kept[:0]
		rows, err := w.Query(ctx, `SELECT entry FROM queue WHERE id = ANY($1) AND lease_holder = $2 ORDER BY id FOR UPDATE`, uniqueStrings(ids), holder)
		if err != nil {
			return err
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]byte, error) {
			var data []byte
			return data, r.Scan(&data)
		})
		if err != nil {
			return err
		}
		renewed := map[string]bool{}
		for _, data := range got {
			e, err := scanEntry(data)
			if err != nil {
				return err
			}
			e.LeaseUntil = until.UTC()
			if err := w.putEntry(ctx, e, 0, false); err != nil {
				return err
			}
			renewed[e.ID] = true
		}
		for _, id := range uniqueStrings(ids) { // in the order asked
			if renewed[id] {
				kept = append(kept, id)
			}
		}
		return nil
	})
	return kept, err
}

// ReleaseQueued ends holder's leases on ids without an attempt.
func (s *Store) ReleaseQueued(ctx context.Context, ids []string, holder string) error {
	return s.write(ctx, func(w *wtx) error {
		rows, err := w.Query(ctx, `SELECT entry FROM queue WHERE id = ANY($1) AND lease_holder = $2 ORDER BY id FOR UPDATE`, ids, holder)
		if err != nil {
			return err
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]byte, error) {
			var data []byte
			return data, r.Scan(&data)
		})
		if err != nil {
			return err
		}
		for _, data := range got {
			e, err := scanEntry(data)
			if err != nil {
				return err
			}
			e.LeaseHolder, e.LeaseUntil = "", time.Time{}
			if err := w.putEntry(ctx, e, 0, false); err != nil {
				return err
			}
		}
		w.queued = len(got) > 0
		return nil
	})
}

// QueueNextAttempt returns when the earliest entry is due.
func (s *Store) QueueNextAttempt(ctx context.Context) (time.Time, bool, error) {
	var next *time.Time
	err := s.pool.QueryRow(ctx, `SELECT min(`+dueExpr+`) FROM queue`).Scan(&next)
	if err != nil || next == nil {
		return time.Time{}, false, dbError(err)
	}
	return *next, true, nil
}

// QueueEntries lists the queue, oldest first.
func (s *Store) QueueEntries(ctx context.Context) ([]store.QueueEntry, error) {
	return s.entries(ctx, `SELECT entry FROM queue ORDER BY created, id`)
}

// QueueStats counts the entries and tells when the oldest was created.
func (s *Store) QueueStats(ctx context.Context) (int, time.Time, error) {
	var n int
	var oldest *time.Time
	if err := s.pool.QueryRow(ctx, `SELECT count(*), min(created) FROM queue`).Scan(&n, &oldest); err != nil {
		return 0, time.Time{}, dbError(err)
	}
	if oldest == nil {
		return n, time.Time{}, nil
	}
	return n, oldest.UTC(), nil
}

// QueueEntry returns one entry.
func (s *Store) QueueEntry(ctx context.Context, id string) (store.QueueEntry, error) {
	e, _, err := s.queueEntry(ctx, id)
	return e, err
}

func (s *Store) queueEntry(ctx context.Context, id string) (store.QueueEntry, int64, error) {
	var data []byte
	var blob int64
	err := s.pool.QueryRow(ctx, `SELECT entry, blob FROM queue WHERE id = $1`, id).Scan(&data, &blob)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.QueueEntry{}, 0, fmt.Errorf("queue entry %s: %w", id, store.ErrNoSuchMessage)
	}
	if err != nil {
		return store.QueueEntry{}, 0, dbError(err)
	}
	e, err := scanEntry(data)
	return e, blob, err
}

// OpenQueued reads an entry's message.
func (s *Store) OpenQueued(ctx context.Context, id string) (io.ReadCloser, store.QueueEntry, error) {
	e, blob, err := s.queueEntry(ctx, id)
	if err != nil {
		return nil, e, err
	}
	return s.openBlob(ctx, blob, e.Size), e, nil
}

// ReadQueued returns an entry's message.
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

// RetryQueued makes entries (all of them when ids is empty) due now.
func (s *Store) RetryQueued(ctx context.Context, ids []string) (int, error) {
	now := s.now().UTC()
	return s.queueEdit(ctx, ids, func(w *wtx, e *store.QueueEntry, blob int64) error {
		e.NextAttempt = now
		return w.putEntry(ctx, *e, blob, false)
	})
}

// DropQueued removes entries (all of them when ids is empty).
func (s *Store) DropQueued(ctx context.Context, ids []string) (int, error) {
	return s.queueEdit(ctx, ids, func(w *wtx, e *store.QueueEntry, blob int64) error {
		if _, err := w.Exec(ctx, `DELETE FROM queue WHERE id = $1`, e.ID); err != nil {
			return err
		}
		return w.dropBlobs(ctx, []int64{blob})
	})
}

func (s *Store) queueEdit(ctx context.Context, ids []string, fn func(w *wtx, e *store.QueueEntry, blob int64) error) (int, error) {
	n := 0
	err := s.write(ctx, func(w *wtx) error {
		n = 0
		var rows pgx.Rows
		var err error
		if len(ids) == 0 {
			rows, err = w.Query(ctx, `SELECT id, entry, blob FROM queue ORDER BY id FOR UPDATE`)
		} else {
			rows, err = w.Query(ctx, `SELECT id, entry, blob FROM queue WHERE id = ANY($1) ORDER BY id FOR UPDATE`, ids)
		}
		if err != nil {
			return err
		}
		type row struct {
			id   string
			data []byte
			blob int64
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
			var x row
			return x, r.Scan(&x.id, &x.data, &x.blob)
		})
		if err != nil {
			return err
		}
		byID := map[string]row{}
		for _, r := range got {
			byID[r.id] = r
		}
		order := ids
		if len(ids) == 0 {
			order = nil
			for _, r := range got {
				order = append(order, r.id)
			}
		}
		done := map[string]bool{}
		for _, id := range order {
			r, ok := byID[id]
			if !ok {
				return fmt.Errorf("queue entry %s: %w", id, store.ErrNoSuchMessage)
			}
			if done[id] {
				continue
			}
			done[id] = true
			e, err := scanEntry(r.data)
			if err != nil {
				return err
			}
			if err := fn(w, &e, r.blob); err != nil {
				return err
			}
			n++
		}
		w.queued = true
		return nil
	})
	return n, err
}
