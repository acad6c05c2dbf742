// Package postgres is the PostgreSQL backend of the store: every promise of
// package store kept with SQL, so that several Yubin nodes can share one
// database. It is the only package that imports pgx.
//
// How the promises are kept (for maintainers of this package):
//
//   - Every write that touches an account's mail first locks the account's
//     row (SELECT … FOR UPDATE, several accounts in address order): writes
//     to one account are serialised across nodes, so UIDs (the mailbox's
//     uidnext), mod-sequences (highest_modseq) and usage (used) are read
//     and written back within the lock, and stay exact.
//   - The change feed: a write's events go into the events table in its
//     transaction, numbered by the account's event_seq (under the same
//     lock, so in commit order), with pg_notify naming the account. The
//     writing node publishes them after the commit, before the write
//     returns; every node LISTENs and publishes what others committed
//     (feed.go).
//   - Message bytes are in the database, in chunks of ChunkSize (blob.go):
//     a blob is shared by the copies of a message and deleted with the last
//     row (message, queue entry, quarantine entry) referring to it.
//   - The outbound queue: leases are columns of the entry, claimed with
//     FOR UPDATE SKIP LOCKED (queue.go).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"yubin/store"
)

// ChunkSize is how a raw message is split into rows.
const ChunkSize = 256 << 10

// Defaults of Options.
const (
	DefaultMaxExpunged      = 10000
	DefaultExpungedAge      = 30 * 24 * time.Hour
	DefaultMaxSubscriptions = 1000
	// EventAge is how long events stay in the events table: a node whose
	// connection was away longer tells its subscribers to resync.
	EventAge = time.Hour
)

// Options tune Open.
type Options struct {
	// Now returns the current time (tests inject a clock). Defaults to time.Now.
	Now func() time.Time
	// MaxMailboxes bounds the mailboxes of one account (0 = no limit).
	MaxMailboxes int
	// MaxExpunged and ExpungedAge bound what a mailbox remembers of its
	// expunges (see store.Mail.Expunged).
	MaxExpunged int
	ExpungedAge time.Duration
	// MaxSubscriptions bounds an account's subscriptions (0: the default).
	MaxSubscriptions int
	// MaxConns bounds the connections of the pool (0: pgxpool's default).
	MaxConns int32
}

// Store is an open PostgreSQL store.
type Store struct {
	pool        *pgxpool.Pool
	now         func() time.Time
	maxBoxes    int
	maxSubs     int
	maxExpunged int
	expungedAge time.Duration
	schema      string // the schema the tables are in (current_schema())
	feedChan    string // the NOTIFY channel of the change feed
	queueChan   string // the NOTIFY channel of the queue

	feed     store.Feed
	cursors  sync.Map // account -> *cursor (feed.go)
	queueSig chan struct{}
	drops    dropLocks // maildroplock.go

	done chan struct{}
	wg   sync.WaitGroup
	// inflight is held (read-locked) by every call that uses the pool:
	// Close takes it to wait for them.
	inflight  sync.RWMutex
	closeOnce sync.Once
	closed    atomic.Bool

	commits    atomic.Int64
	deliveries atomic.Int64
}

// Open connects to the database at url (a postgres:// URL or a key=value
// connection string), creates or migrates the schema, and starts following
// the change feed of other nodes.
func Open(ctx context.Context, url string, o Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	s := &Store{now: o.Now, maxBoxes: o.MaxMailboxes, maxSubs: o.MaxSubscriptions, maxExpunged: o.MaxExpunged, expungedAge: o.ExpungedAge,
		queueSig: make(chan struct{}, 1), done: make(chan struct{})}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxExpunged <= 0 {
		s.maxExpunged = DefaultMaxExpunged
	}
	if s.expungedAge <= 0 {
		s.expungedAge = DefaultExpungedAge
	}
	if s.maxSubs <= 0 {
		s.maxSubs = DefaultMaxSubscriptions
	}
	s.maxSubs = max(s.maxSubs, s.maxBoxes)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	s.pool = pool
	conn, err := pool.Acquire(ctx)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store: connecting: %w", err)
	}
	err = migrate(ctx, conn.Conn(), s.now())
	if err == nil {
		err = conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&s.schema)
	}
	conn.Release()
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	s.feedChan, s.queueChan = channel("yubin_feed_", s.schema), channel("yubin_queue_", s.schema)
	listening := make(chan error, 1)
	s.wg.Add(2)
	go s.listen(listening)
	go s.janitor()
	select {
	case err = <-listening:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("postgres store: listening for other nodes' changes: %w", err)
	}
	return s, nil
}

// Close stops following the feed and closes the pool.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.inflight.Lock() // the calls in flight end; later ones see closed
		defer s.inflight.Unlock()
		close(s.done)
		s.wg.Wait()
		s.feed.Close()
		s.closeDropLocks()
		s.pool.Close()
	})
	return nil
}

// Stats returns counters since Open.
func (s *Store) Stats() store.Stats {
	return store.Stats{Commits: s.commits.Load(), Deliveries: s.deliveries.Load()}
}

// wtx is a write transaction: the pgx transaction, and what to do once it
// is committed.
type wtx struct {
	pgx.Tx
	s      *Store
	events map[string][]store.Event // by account, in the order they happened
	order  []string                 // accounts in the order of their first event
	queued bool                     // the queue changed: wake the runners
	locked map[string]accountRow    // accounts locked by lockAccounts
	batch  *pgx.Batch               // writes queued by later (batch.go)
}

// event records a change to publish after the commit.
func (w *wtx) event(ev store.Event) {
	if _, ok := w.events[ev.Account]; !ok {
		w.order = append(w.order, ev.Account)
	}
	w.events[ev.Account] = append(w.events[ev.Account], ev)
}

// retryable reports whether a transaction failed in a way that running it
// again may cure: a deadlock or a serialization failure.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// write runs fn in a transaction and commits it, running it again when the
// database asks (deadlock, serialization failure): fn resets what it
// captures at its start, as bolt's writes do. After the commit the events
// are published and the queue runners woken.
func (s *Store) write(ctx context.Context, fn func(w *wtx) error) error {
	if !s.enter() {
		return store.ErrClosed
	}
	defer s.inflight.RUnlock()
	for attempt := 0; ; attempt++ {
		w, err := s.tryWrite(ctx, fn)
		if err != nil && retryable(err) && attempt < 10 {
			continue
		}
		if err != nil {
			return dbError(err)
		}
		s.commits.Add(1)
		for _, acct := range w.order {
			s.catchUp(ctx, acct)
		}
		if w.queued {
			s.signalQueue()
		}
		return nil
	}
}

func (s *Store) tryWrite(ctx context.Context, fn func(w *wtx) error) (*wtx, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, dbError(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	w := &wtx{Tx: tx, s: s, events: map[string][]store.Event{}, locked: map[string]accountRow{}}
	if err := fn(w); err != nil {
		return nil, err
	}
	if err := w.writeEvents(ctx); err != nil {
		return nil, err
	}
	if w.queued {
		w.later(`SELECT pg_notify($1, '')`, s.queueChan)
	}
	if err := w.flushLater(ctx); err != nil {
		return nil, err
	}
	// Once the commit is sent, its outcome is what the caller gets, even
	// if ctx ends meanwhile.
	if err := tx.Commit(context.WithoutCancel(ctx)); err != nil {
		return nil, dbError(err)
	}
	return w, nil
}

// read runs fn in a read-only transaction with one snapshot (repeatable
// read), so that what it reads is consistent.
func (s *Store) read(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if !s.enter() {
		return store.ErrClosed
	}
	defer s.inflight.RUnlock()
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return dbError(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := fn(tx); err != nil {
		return dbError(err)
	}
	return dbError(tx.Commit(ctx))
}

// readOne runs fn on the pool, outside a transaction: for reads of one
// statement, which see one snapshot anyway (a transaction would cost two
// more round trips).
func (s *Store) readOne(ctx context.Context, fn func(q querier) error) error {
	if !s.enter() {
		return store.ErrClosed
	}
	defer s.inflight.RUnlock()
	return dbError(fn(s.pool))
}

// enter starts a call that uses the pool, unless the store is closed;
// the caller then ends it with s.inflight.RUnlock().
func (s *Store) enter() bool {
	if s.closed.Load() {
		return false
	}
	s.inflight.RLock()
	if s.closed.Load() {
		s.inflight.RUnlock()
		return false
	}
	return true
}

// ErrUnavailable wraps the errors of a database that cannot be reached.
var ErrUnavailable = errors.New("the database is unavailable")

// dbError marks the errors of a database that cannot be reached (a
// connection refused or broken, the server shutting down) as
// ErrUnavailable, keeping the cause; other errors are returned as they are.
func dbError(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code[:2] {
		case "08", "57", "53": // connection exception, operator intervention, insufficient resources
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "conn closed") || strings.Contains(err.Error(), "closed pool") {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// lower is how accounts and domains are keyed.
func lower(s string) string { return strings.ToLower(s) }

// channel names a NOTIFY channel of a schema: channel names are at most 63
// bytes, so a long schema name is hashed.
func channel(prefix, schema string) string {
	if len(prefix)+len(schema) <= 63 {
		return prefix + schema
	}
	h := fnv.New64a()
	h.Write([]byte(schema))
	return fmt.Sprintf("%s%016x", prefix, h.Sum64())
}

func errClosed() error { return store.ErrClosed }

// isUnique reports whether err is a unique constraint's violation.
func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
