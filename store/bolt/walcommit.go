package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"yubin/store"

	bbolt "go.etcd.io/bbolt"
)

// openTx is the write transaction that logged batches share until the next
// checkpoint (wal.go). Only the committer uses it.
type openTx struct {
	tx    *bbolt.Tx
	since time.Time
	// runs are the deliveries acknowledged in tx, from their records: run
	// again in a new transaction when tx must be rolled back.
	runs  []*deliveryRun
	bytes int // of records
}

// loggable tells whether a batch commits through the write-ahead log:
// every member can be redone from its record, and the record is not too big.
func (s *Store) loggable(batch []*commitReq) bool {
	n := 0
	for _, r := range batch {
		if r.redo == nil {
			return false
		}
		n += len(r.redo)
	}
	return n <= walMaxRecord
}

// commitLogged runs a batch of loggable writes in the open transaction and
// answers the callers once its log record is synced (wal.go).
func (s *Store) commitLogged(batch []*commitReq) {
	if s.open == nil {
		tx, err := s.db.Begin(true)
		if err != nil {
			s.answer(batch, nil, err)
			return
		}
		s.open = &openTx{tx: tx, since: time.Now()}
	}
	tx := s.open.tx
	errs := make([]error, len(batch))
	var payload []byte
	var runs []*deliveryRun
	for i, r := range batch {
		err := r.fn(tx)
		var ce cleanError
		if err != nil && !errors.As(err, &ce) {
			// Half written: roll back, write again what was acknowledged,
			// then each member alone.
			if rerr := s.rebuildOpen(); rerr != nil {
				s.answer(batch, nil, rerr)
				return
			}
			if len(batch) == 1 {
				r.res <- err
				return
			}
			for _, r := range batch {
				s.commitLogged([]*commitReq{r})
			}
			return
		}
		errs[i] = err
		if err == nil {
			payload = appendBytes(payload, r.redo)
			run, derr := redoRun(r.redo)
			if derr != nil {
				s.broken = fmt.Errorf("store: %w", derr) // cannot be: the record was made from it
				s.answer(batch, nil, s.broken)
				return
			}
			runs = append(runs, run)
		}
	}
	if len(runs) == 0 {
		s.answer(batch, errs, nil) // every member failed before writing
		return
	}
	seq := s.walSeq + 1
	if err := tx.Bucket(bMeta).Put(kWALSeq, u64key(seq)); err != nil {
		s.answer(batch, nil, s.failOpen(err))
		return
	}
	payload = append(binary.AppendUvarint(nil, uint64(len(runs))), payload...)
	if err := s.wal.append(seq, payload); err != nil {
		// Not logged: commit instead, with the batch.
		if cerr := s.checkpoint(); cerr != nil {
			s.answer(batch, nil, cerr)
			return
		}
		s.afterAll(batch, errs)
		s.answer(batch, errs, nil)
		return
	}
	s.walSeq = seq
	s.use.add(runs)
	s.open.runs = append(s.open.runs, runs...)
	s.open.bytes += len(payload)
	if s.pending.Load() == nil {
		ch := make(chan struct{})
		s.pending.Store(&ch)
	}
	s.afterAll(batch, errs)
	s.answer(batch, errs, nil)
	if s.open.bytes >= walMaxOpen || time.Since(s.open.since) >= s.checkpointAfter {
		s.checkpoint()
	}
}

// redoRun is the deliveryRun of a loggable write's record: the bytes it
// stores are the record's, which the store owns until the commit.
func redoRun(redo []byte) (*deliveryRun, error) {
	preps, err := decodeWALRecord(redo)
	if err != nil {
		return nil, err
	}
	return &deliveryRun{preps: preps}, nil
}

// checkpoint commits the open transaction, if any, and starts the log
// again. After a failed commit the store is broken: acknowledged
// deliveries are in the log only, until a restart replays them.
func (s *Store) checkpoint() error {
	if s.open == nil {
		return nil
	}
	txid := uint64(s.open.tx.ID())
	err := s.open.tx.Commit()
	s.open = nil
	if err != nil {
		s.broken = fmt.Errorf("store: a commit of deliveries acknowledged from the write-ahead log failed (restart to replay them): %w", err)
	} else {
		s.commits.Add(1)
		s.use.committed(txid)
		s.wal.reset()
	}
	if p := s.pending.Swap(nil); p != nil {
		close(*p)
	}
	return s.broken
}

// rebuildOpen rolls the open transaction back and writes again, in a new
// one, the deliveries acknowledged in it.
func (s *Store) rebuildOpen() error {
	if s.open == nil {
		return nil
	}
	s.open.tx.Rollback()
	runs := s.open.runs
	s.open = nil
	tx, err := s.db.Begin(true)
	if err != nil {
		return s.failOpen(err)
	}
	s.open = &openTx{tx: tx, since: time.Now(), runs: runs}
	for _, run := range runs {
		if err := s.deliverFn(run)(tx); err != nil {
			return s.failOpen(fmt.Errorf("writing acknowledged deliveries again: %w", err))
		}
	}
	if len(runs) > 0 {
		if err := tx.Bucket(bMeta).Put(kWALSeq, u64key(s.walSeq)); err != nil {
			return s.failOpen(err)
		}
	}
	return nil
}

// failOpen gives up the open transaction after err: the deliveries
// acknowledged in it are in the log only, until a restart replays them.
func (s *Store) failOpen(err error) error {
	if s.open != nil {
		s.open.tx.Rollback()
		s.open = nil
	}
	s.broken = fmt.Errorf("store: the transaction of deliveries acknowledged from the write-ahead log failed (restart to replay them): %w", err)
	if p := s.pending.Swap(nil); p != nil {
		close(*p)
	}
	return s.broken
}

// afterAll runs the after functions of the members that succeeded.
func (s *Store) afterAll(batch []*commitReq, errs []error) {
	for i, r := range batch {
		if errs[i] == nil && r.after != nil {
			r.after()
		}
	}
}

// answer sends each member of batch its result: errs[i] (unwrapped from
// clean), or err for all when errs is nil.
func (s *Store) answer(batch []*commitReq, errs []error, err error) {
	for i, r := range batch {
		e := err
		if errs != nil {
			e = errs[i]
		}
		var ce cleanError
		if errors.As(e, &ce) {
			e = ce.err
		}
		r.res <- e
	}
}

// waitApplied waits until what has been acknowledged from the write-ahead
// log is committed to bbolt, asking the committer for a checkpoint, so
// that a reader sees it.
func (s *Store) waitApplied() {
	p := s.pending.Load()
	if p == nil {
		return
	}
	select {
	case s.flushReq <- struct{}{}:
	default: // asked already
	}
	<-*p
}

// viewFresh runs fn in a read transaction that sees every write
// acknowledged before it was called: reads of mailboxes and messages.
func (s *Store) viewFresh(fn func(tx *bbolt.Tx) error) error {
	s.waitApplied()
	return s.db.View(fn)
}

// view runs fn in a read transaction on what is committed: it may not
// see deliveries acknowledged from the write-ahead log since the last
// checkpoint. For what deliveries do not change (domains, settings, the
// spam models, the queue) and, through accountUse, quota usage.
func (s *Store) view(fn func(tx *bbolt.Tx) error) error {
	return s.db.View(fn)
}

// pendingUse is the quota usage that deliveries acknowledged from the log
// add to what is committed: the bytes per account since the commit of
// transaction base.
type pendingUse struct {
	mu    sync.Mutex
	base  uint64
	bytes map[string]int64
}

// committed records the commit of transaction txid (the committer).
func (u *pendingUse) committed(txid uint64) {
	u.mu.Lock()
	u.base, u.bytes = txid, nil
	u.mu.Unlock()
}

// add records acknowledged deliveries (the committer).
func (u *pendingUse) add(runs []*deliveryRun) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.bytes == nil {
		u.bytes = map[string]int64{}
	}
	for _, run := range runs {
		for _, p := range run.preps {
			for _, r := range p.rcpts {
				u.bytes[r] += p.size
			}
		}
	}
}

// since returns what acknowledged deliveries add to account's usage as
// read in a snapshot of transaction txid; ok is false when the snapshot is
// older than the last commit (read again).
func (u *pendingUse) since(txid uint64, account string) (n int64, ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case txid < u.base:
		return 0, false
	case txid > u.base: // committed, not yet recorded: nothing pending in it
		return 0, true
	}
	return u.bytes[account], true
}

// accountUse runs fn in a read transaction with the account's usage as of
// every delivery acknowledged before the call: what is committed plus what
// the log holds (deliveries only add).
func (s *Store) accountUse(addr string, fn func(tx *bbolt.Tx, a store.Account) error) error {
	addr = strings.ToLower(addr)
	for {
		retry := false
		err := s.db.View(func(tx *bbolt.Tx) error {
			a, err := getAccount(tx, addr)
			if err != nil {
				return err
			}
			n, ok := s.use.since(uint64(tx.ID()), addr)
			if !ok {
				retry = true // a checkpoint since: read again
				return nil
			}
			a.Used += n
			return fn(tx, a)
		})
		if !retry {
			return err
		}
	}
}

// replayWAL writes the log's records that bbolt does not have (Open,
// before the committer starts).
func (s *Store) replayWAL() error {
	err := s.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bMeta).Get(kWALSeq); v != nil {
			s.walSeq = binary.BigEndian.Uint64(v)
		}
		s.use.committed(uint64(tx.ID()))
		return nil
	})
	if err != nil {
		return err
	}
	type record struct {
		seq  uint64
		runs []*deliveryRun
	}
	var todo []record
	err = s.wal.records(func(seq uint64, payload []byte) error {
		if seq <= s.walSeq {
			return nil
		}
		if want := s.walSeq + 1 + uint64(len(todo)); seq != want {
			return fmt.Errorf("write-ahead log record %d follows the store's last (%d): the log is not this store's", seq, want-1)
		}
		d := &walDecoder{b: payload}
		var runs []*deliveryRun
		for range d.count() {
			run, err := redoRun(d.bytes())
			if err != nil {
				return fmt.Errorf("write-ahead log record %d: %w", seq, err)
			}
			runs = append(runs, run)
		}
		if d.err != nil || len(d.b) > 0 {
			return fmt.Errorf("write-ahead log record %d: bad member list", seq)
		}
		todo = append(todo, record{seq, runs})
		return nil
	})
	if err != nil || len(todo) == 0 {
		return err
	}
	last := todo[len(todo)-1].seq
	var txid uint64
	err = s.db.Update(func(tx *bbolt.Tx) error {
		txid = uint64(tx.ID())
		for _, rec := range todo {
			for i, run := range rec.runs {
				if err := s.deliverFn(run)(tx); err != nil {
					return fmt.Errorf("record %d, write %d of %d: %w", rec.seq, i+1, len(rec.runs), err)
				}
			}
		}
		return tx.Bucket(bMeta).Put(kWALSeq, u64key(last))
	})
	if err != nil {
		return fmt.Errorf("replaying the write-ahead log: %w", err)
	}
	s.walSeq = last
	s.use.committed(txid)
	for _, rec := range todo {
		for _, run := range rec.runs {
			s.replayed += len(run.preps)
		}
	}
	return nil
}

// Replayed is how many deliveries Open wrote from the write-ahead log:
// acknowledged before a crash, not yet in bbolt.
func (s *Store) Replayed() int { return s.replayed }
