// Package store keeps Yubin's domains, accounts, mailboxes and messages.
//
// It is the only package that knows about bbolt. Its API speaks mail —
// deliver, list, read, set flags, expunge, quota — so that another backend
// can implement the same methods later. Every method is safe for concurrent
// use. Writes are durable (fsync'd) when a method returns without error.
//
// Layout inside the bbolt file (for maintainers of this package only):
//
//	meta                      version, uidvalidity counter
//	domains   name         -> JSON Domain
//	accounts  address      -> JSON account record (hash, role, quota, usage)
//	mail/<address>/boxes      mailbox name -> mailbox id
//	mail/<address>/box<id>    "meta" -> JSON mailbox meta; msgs/uid -> record;
//	                          gone/modseq -> expunged uid, "gonestate" (modseq.go)
//	mail/<address>/subs       subscribed name -> 1 (subscriptions.go)
//	blobs     id|chunk     -> up to chunkSize bytes of a raw message
//	blobrefs  id           -> reference count (one blob shared by N recipients)
//	envelopes id           -> cached parsed envelope of a blob (envcache.go)
package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"yubin/store"

	bbolt "go.etcd.io/bbolt"
)

var (
	bMeta     = []byte("meta")
	bDomains  = []byte("domains")
	bAccounts = []byte("accounts")
	bMail     = []byte("mail")
	bBlobs    = []byte("blobs")
	bBlobRefs = []byte("blobrefs")
	bBoxes    = []byte("boxes")
	bMsgs     = []byte("msgs")
	kMeta     = []byte("meta")
	kUIDV     = []byte("uidvalidity")
	kVersion  = []byte("version")
)

// schemaVersion is the layout this code reads and writes. Version 2 added
// mod-sequences: Open upgrades a file of version 1 (migrateModSeq), and the
// code of version 1, which cannot read the new message records, refuses a
// file of version 2.
const (
	schemaVersion1 = "1"
	schemaVersion  = "2"
)

// chunkSize is how a raw message is split on disk, so that readers can
// stream it without holding a long read transaction.
const chunkSize = 64 << 10

// Options tune Open.
type Options struct {
	// LockTimeout is how long Open waits for another process to release
	// the file. Zero means fail at once with ErrLocked.
	LockTimeout time.Duration
	// NoSync disables fsync. Only for benchmarks that measure everything
	// but the disk; never for a server.
	NoSync bool
	// Now returns the current time (tests inject a clock). Defaults to time.Now.
	Now func() time.Time
	// MaxMailboxes bounds the mailboxes of one account, INBOX and the
	// special mailboxes included: CreateMailbox and RenameMailbox (which
	// may create parents) fail with store.ErrLimit beyond it. 0 = no limit.
	MaxMailboxes int
	// MaxExpunged and ExpungedAge bound what a mailbox remembers of its
	// expunges for Expunged: the latest MaxExpunged (0: DefaultMaxExpunged)
	// of the last ExpungedAge (0: DefaultExpungedAge). Asked about older
	// ones, Expunged names every UID the mailbox no longer holds.
	MaxExpunged int
	ExpungedAge time.Duration
	// CheckpointAfter is how long deliveries acknowledged from the
	// write-ahead log may wait for their bbolt commit when nothing else
	// asks for it (0: DefaultCheckpointAfter; wal.go).
	CheckpointAfter time.Duration
	// MaxSubscriptions bounds the names an account subscribes to (0:
	// DefaultMaxSubscriptions; never fewer than MaxMailboxes): SetSubscribed
	// fails with store.ErrLimit beyond it.
	MaxSubscriptions int
}

// Store is an open mail store.
type Store struct {
	db  *bbolt.DB
	now func() time.Time
	// maxBoxes is Options.MaxMailboxes.
	maxBoxes int
	// maxSubs is Options.MaxSubscriptions.
	maxSubs int
	// maxExpunged and expungedAge are Options.MaxExpunged and ExpungedAge.
	maxExpunged int
	expungedAge time.Duration
	// checkpointAfter is Options.CheckpointAfter.
	checkpointAfter time.Duration
	feed            store.Feed
	queue           chan *commitReq
	// queueSig is signalled when outbound queue entries become due (queue.go).
	queueSig chan struct{}
	done     chan struct{}
	stopped  chan struct{} // closed when the committer has exited
	wg       sync.WaitGroup

	closeOnce sync.Once
	closed    atomic.Bool

	spam *spamCache // spamcache.go

	// The POP3 maildrop locks (maildroplock.go).
	dropMu sync.Mutex
	drops  map[string]bool

	commits    atomic.Int64 // write transactions committed by the group committer
	deliveries atomic.Int64 // Deliver/Append calls committed

	// The write-ahead log (wal.go); wal and walSeq belong to the
	// committer once Open has returned.
	wal    *wal
	walSeq uint64 // the last record's sequence number; bbolt has it in meta
	// broken, once set (by the committer), fails every write: a commit
	// failed after its log record was synced and acknowledged, and only a
	// restart (which replays the record) makes the store whole again.
	broken error
	// open is the transaction logged deliveries share until a checkpoint.
	open *openTx
	// pending, while not nil, is closed at the checkpoint that commits
	// deliveries whose callers have been answered from the log: readers
	// wait for it (waitApplied), so that what was acknowledged can be read,
	// and ask for the checkpoint on flushReq.
	pending  atomic.Pointer[chan struct{}]
	flushReq chan struct{}
	use      pendingUse
	replayed int // deliveries Open wrote from the log
}

// initialMmapSize is the memory map bbolt starts with: 1 GiB where the
// address space allows (beyond it bbolt grows the map 1 GiB at a time, and
// a writer that grows it waits for a backup in progress).
const initialMmapSize = 1 << 30 * (strconv.IntSize / 64)

// FileName is the store's file in a data directory.
const FileName = "yubin.db"

// PathIn is the store file of a data directory.
func PathIn(dataDir string) string { return filepath.Join(dataDir, FileName) }

// OpenDir opens (creating if needed) the store of a data directory.
func OpenDir(dataDir string, opts Options) (*Store, error) {
	return Open(PathIn(dataDir), opts)
}

// Open opens (creating if needed) the store file at path.
func Open(path string, opts Options) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	_, statErr := os.Stat(path)
	fresh := errors.Is(statErr, os.ErrNotExist)
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = time.Millisecond
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:        timeout,
		NoSync:         opts.NoSync,
		NoFreelistSync: true, // rebuilt on open; saves a write per commit
		FreelistType:   bbolt.FreelistMapType,
		// A read transaction holds bbolt's memory map: a writer that
		// must grow the map waits for every reader. A large map from
		// the start (address space only; the file grows as before)
		// keeps a long reader — a backup — from holding up writers.
		InitialMmapSize: initialMmapSize,
	})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("store %s: %w", path, store.ErrInUse)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	s := &Store{db: db, now: opts.Now, maxBoxes: opts.MaxMailboxes, queue: make(chan *commitReq, 1024), done: make(chan struct{}), stopped: make(chan struct{}), queueSig: make(chan struct{}, 1), flushReq: make(chan struct{}, 1), spam: newSpamCache()}
	if s.now == nil {
		s.now = time.Now
	}
	s.maxExpunged, s.expungedAge, s.maxSubs = opts.MaxExpunged, opts.ExpungedAge, opts.MaxSubscriptions
	if s.maxExpunged <= 0 {
		s.maxExpunged = DefaultMaxExpunged
	}
	if s.expungedAge <= 0 {
		s.expungedAge = DefaultExpungedAge
	}
	if s.checkpointAfter = opts.CheckpointAfter; s.checkpointAfter <= 0 {
		s.checkpointAfter = DefaultCheckpointAfter
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bMeta, bDomains, bAccounts, bMail, bBlobs, bBlobRefs} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bMeta)
		switch v := meta.Get(kVersion); {
		case v == nil:
			if err := meta.Put(kVersion, []byte(schemaVersion)); err != nil {
				return err
			}
			// UIDVALIDITY values start at the creation time, so a store
			// created anew never repeats values an old one handed out.
			return meta.Put(kUIDV, u64key(uint64(s.now().Unix())))
		case string(v) == schemaVersion1:
			if err := migrateModSeq(tx); err != nil {
				return fmt.Errorf("upgrading to schema version %s: %w", schemaVersion, err)
			}
			if err := meta.Put(kVersion, []byte(schemaVersion)); err != nil {
				return err
			}
		case string(v) != schemaVersion:
			return fmt.Errorf("unknown schema version %q", v)
		}
		// Subscriptions became a set of names within version 2: a file
		// written before keeps them as mailbox flags, which this reads
		// once. (The version stays: code of before reads such a file,
		// and only misses subscriptions changed since.)
		if err := migrateSubscriptions(tx); err != nil {
			return fmt.Errorf("upgrading subscriptions: %w", err)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	if s.wal, err = openWAL(path, fresh, opts.NoSync); err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	if err := s.replayWAL(); err != nil {
		s.wal.close()
		db.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	s.wg.Add(1)
	go s.committer()
	return s, nil
}

// Close waits for writes in flight and closes the file.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.done)
		s.wg.Wait()
		s.spam.close()
		s.feed.Close()
		err = errors.Join(s.db.Close(), s.wal.close())
	})
	return err
}

// Path is the file the store lives in.
func (s *Store) Path() string { return s.db.Path() }

// Stats returns counters since Open.
func (s *Store) Stats() store.Stats {
	return store.Stats{Commits: s.commits.Load(), Deliveries: s.deliveries.Load()}
}

// commitReq is one write waiting for the group committer.
type commitReq struct {
	fn    func(tx *bbolt.Tx) error
	after func() // run after a successful commit
	res   chan error
	// redo, when not nil, is what the write-ahead log needs to write fn
	// again (walRecord): a batch of such writes is acknowledged once its
	// log record is synced (wal.go).
	redo []byte
}

// cleanError marks an error returned by a write function before it wrote
// anything: the rest of the batch can still commit.
type cleanError struct{ err error }

func (e cleanError) Error() string { return e.err.Error() }
func (e cleanError) Unwrap() error { return e.err }

func clean(err error) error {
	if err == nil {
		return nil
	}
	return cleanError{err}
}

// update runs fn in a write transaction through the group committer: the
// one write path of the store. See groupWrite for the rules fn follows.
func (s *Store) update(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	return s.groupWrite(ctx, fn, nil)
}

// groupWrite runs fn in a write transaction shared with other concurrent
// callers and returns after it is committed to disk; after, if not nil,
// runs once the commit is durable (publishing to the change feed).
//
// The re-run rule. fn fails in one of two ways:
//   - clean(err): it failed before writing anything in this run. Its error
//     is its own result and the rest of the batch commits.
//   - any other error: it may have written half. The whole batch is rolled
//     back and every member is run again, alone, in its own transaction:
//     the members up to the failed one run twice (the failed one too, and
//     its second run's result goes to its caller), the others once.
//
// So fn may run more than once, and only its last run counts. It must act
// only through tx, deciding from what it reads there and never from what
// an earlier run saw (effects outside the store, like publishing, counting
// or signalling, go in after, which runs once), and reset at its start
// whatever results it captures (out = out[:0], found = false): what a
// rolled-back run left behind must not leak into the next. Where clean is
// in doubt, a plain error is always safe: it costs the batch a re-run.
// TestGroupCommitPoisonedMember checks the rule.
func (s *Store) groupWrite(ctx context.Context, fn func(tx *bbolt.Tx) error, after func()) error {
	return s.groupWriteRedo(ctx, fn, nil, after)
}

// groupWriteRedo is groupWrite of a write the write-ahead log can redo
// from redo (nil: it cannot).
func (s *Store) groupWriteRedo(ctx context.Context, fn func(tx *bbolt.Tx) error, redo []byte, after func()) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	r := &commitReq{fn: fn, after: after, res: make(chan error, 1), redo: redo}
	select {
	case s.queue <- r:
	case <-s.done:
		return store.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued the write will be decided; wait for the outcome even if
	// ctx ends, so the caller never reports failure for committed mail.
	select {
	case err := <-r.res:
		return err
	case <-s.stopped:
		// The committer has drained the queue and exited: a request it
		// did not see was never written.
		select {
		case err := <-r.res:
			return err
		default:
			return store.ErrClosed
		}
	}
}

// committer batches whatever writes queued up while the previous commit
// was being fsync'd: one client gets no added latency, many share fsyncs.
func (s *Store) committer() {
	defer s.wg.Done()
	defer close(s.stopped)
	const maxBatch = 256
	checkpoint := time.NewTimer(time.Hour)
	checkpoint.Stop()
	for {
		var first *commitReq
		var due <-chan time.Time
		if s.open != nil {
			checkpoint.Reset(s.checkpointAfter - time.Since(s.open.since))
			due = checkpoint.C
		}
		select {
		case first = <-s.queue:
		case <-s.flushReq:
		case <-due:
		case <-s.done:
			// Drain what is queued, then stop.
			for {
				select {
				case r := <-s.queue:
					s.commitBatch([]*commitReq{r})
				default:
					s.checkpoint()
					return
				}
			}
		}
		checkpoint.Stop()
		if first == nil {
			s.checkpoint()
			continue
		}
		batch := []*commitReq{first}
	fill:
		for len(batch) < maxBatch {
			select {
			case r := <-s.queue:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		s.commitBatch(batch)
	}
}

// commitBatch commits a batch in one transaction; if a member fails after
// writing, it commits each member alone instead (see groupWrite).
func (s *Store) commitBatch(batch []*commitReq) {
	if s.broken != nil {
		for _, r := range batch {
			r.res <- s.broken
		}
		return
	}
	if s.loggable(batch) {
		s.commitLogged(batch)
		return
	}
	// Any other write commits after what the log holds.
	if err := s.checkpoint(); err != nil {
		s.answer(batch, nil, err)
		return
	}
	errs := make([]error, len(batch))
	var txid uint64
	err := s.db.Update(func(tx *bbolt.Tx) error {
		txid = uint64(tx.ID())
		for i, r := range batch {
			err := r.fn(tx)
			var ce cleanError
			if err != nil && !errors.As(err, &ce) {
				return err // poisoned: roll everything back
			}
			errs[i] = err
		}
		return nil
	})
	if err != nil && len(batch) > 1 {
		// Someone failed half-way; give each their own transaction.
		for _, r := range batch {
			s.commitBatch([]*commitReq{r})
		}
		return
	}
	if err == nil {
		s.commits.Add(1)
		s.use.committed(txid)
	}
	for i, r := range batch {
		e := err
		if e == nil {
			e = errs[i]
			if e == nil && r.after != nil {
				r.after()
			}
		}
		var ce cleanError
		if errors.As(e, &ce) {
			e = ce.err
		}
		r.res <- e
	}
}

// nextUIDValidity hands out a fresh UIDVALIDITY.
func nextUIDValidity(tx *bbolt.Tx) (uint32, error) {
	meta := tx.Bucket(bMeta)
	v := binary.BigEndian.Uint64(meta.Get(kUIDV))
	v++
	if v > 0xffffffff {
		v = 1
	}
	return uint32(v), meta.Put(kUIDV, u64key(v))
}

var _ store.Store = (*Store)(nil)
