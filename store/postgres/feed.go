package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"yubin/store"
)

// cursor is how far this node has published an account's events: the
// seq of the last events row it handed to its subscribers.
type cursor struct {
	mu    sync.Mutex
	seq   int64
	fresh bool // seq is known (false: it could not be read yet)
}

// feedEvent is an event as kept in the events table (one row holds the
// events of one transaction for one account, in order).
type feedEvent struct {
	K store.EventKind `json:"k"`
	M string          `json:"m"`
	V uint32          `json:"v"`
	U uint32          `json:"u"`
	F []string        `json:"f,omitempty"`
	S uint64          `json:"s"`
}

// writeEvents stores the transaction's events, one row per account
// numbered from events_seq while the account is locked (so in commit
// order), and notifies the other nodes.
func (w *wtx) writeEvents(ctx context.Context) error {
	for _, acct := range w.order {
		if _, err := w.lockAccount(ctx, acct); err != nil {
			return err
		}
		evs := w.events[acct]
		rows := make([]feedEvent, len(evs))
		for i, ev := range evs {
			rows[i] = feedEvent{ev.Kind, ev.Mailbox, ev.UIDValidity, ev.UID, ev.Flags, ev.ModSeq}
		}
		payload, err := json.Marshal(rows)
		if err != nil {
			return err
		}
		w.later(`WITH e AS (INSERT INTO events (seq, account, payload) VALUES (nextval('events_seq'), $1, $2) RETURNING account)
			SELECT pg_notify($3, account) FROM e`, acct, payload, w.s.feedChan)
	}
	return nil
}

// Subscribe returns a subscription to the changes of an account's
// mailboxes, made on this node or any other.
func (s *Store) Subscribe(ctx context.Context, account string, buffer int) *store.Subscription {
	acct := lower(account)
	v, _ := s.cursors.LoadOrStore(acct, &cursor{})
	c := v.(*cursor)
	c.mu.Lock()
	defer c.mu.Unlock()
	// Hand what is pending to those subscribed before, so that the new
	// subscription starts with what comes after now.
	s.catchUpLocked(ctx, acct, c)
	return s.feed.Subscribe(acct, buffer)
}

// catchUp publishes the events of an account committed since its cursor,
// if anyone on this node subscribes to it.
func (s *Store) catchUp(ctx context.Context, acct string) {
	v, ok := s.cursors.Load(acct)
	if !ok {
		return
	}
	c := v.(*cursor)
	c.mu.Lock()
	defer c.mu.Unlock()
	s.catchUpLocked(ctx, acct, c)
}

func (s *Store) catchUpLocked(ctx context.Context, acct string, c *cursor) {
	ctx = context.WithoutCancel(ctx)
	if !c.fresh {
		err := s.pool.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM events WHERE account = $1`, acct).Scan(&c.seq)
		if err != nil {
			s.feed.Lost(acct)
			return
		}
		c.fresh = true
		return
	}
	rows, err := s.pool.Query(ctx, `SELECT seq, payload FROM events WHERE account = $1 AND seq > $2 ORDER BY seq`, acct, c.seq)
	if err != nil {
		// The subscribers are told to re-read; the cursor is read again.
		s.feed.Lost(acct)
		c.fresh = false
		return
	}
	var seq int64
	var payload []byte
	_, err = pgx.ForEachRow(rows, []any{&seq, &payload}, func() error {
		var evs []feedEvent
		if err := json.Unmarshal(payload, &evs); err != nil {
			return fmt.Errorf("events row %d: %w", seq, err)
		}
		out := make([]store.Event, len(evs))
		for i, e := range evs {
			out[i] = store.Event{Kind: e.K, Account: acct, Mailbox: e.M, UIDValidity: e.V, UID: e.U, Flags: e.F, ModSeq: e.S}
		}
		s.feed.Publish(out)
		c.seq = seq
		return nil
	})
	if err != nil {
		s.feed.Lost(acct)
		c.fresh = false
	}
}

// catchUpAll catches up every account this node follows, after its
// notifications may have been missed: an account whose events were pruned
// meanwhile has its subscribers told to re-read.
func (s *Store) catchUpAll(ctx context.Context) {
	var pruned int64
	if err := s.pool.QueryRow(ctx, `SELECT pruned FROM events_pruned`).Scan(&pruned); err != nil {
		pruned = 0
	}
	s.cursors.Range(func(k, v any) bool {
		acct, c := k.(string), v.(*cursor)
		c.mu.Lock()
		if c.fresh && c.seq < pruned {
			s.feed.Lost(acct)
			c.fresh = false
		}
		s.catchUpLocked(ctx, acct, c)
		c.mu.Unlock()
		return true
	})
}

// listen follows the other nodes' notifications on a connection of its
// own, reconnecting when it breaks; ready gets the outcome of the first
// LISTEN.
func (s *Store) listen(ready chan<- error) {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	first := true
	for {
		err := s.listenOnce(ctx, func() {
			if first {
				first = false
				ready <- nil
			} else {
				// Notifications may have been missed while away.
				s.catchUpAll(ctx)
				s.signalQueue()
			}
		})
		if ctx.Err() != nil {
			if first {
				ready <- ctx.Err()
			}
			return
		}
		if first {
			ready <- err
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (s *Store) listenOnce(ctx context.Context, listening func()) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, ch := range []string{s.feedChan, s.queueChan} {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return err
		}
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		switch n.Channel {
		case s.feedChan:
			s.catchUp(ctx, strings.ToLower(n.Payload))
		case s.queueChan:
			s.signalQueue()
		}
	}
}

// janitor prunes the events table: every node's subscribers have read
// what is older than EventAge, or are told to re-read.
func (s *Store) janitor() {
	defer s.wg.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		s.pruneEvents(ctx)
		cancel()
	}
}

func (s *Store) pruneEvents(ctx context.Context) error {
	return s.write(ctx, func(w *wtx) error {
		var last *int64
		err := w.QueryRow(ctx, `WITH d AS (DELETE FROM events WHERE at < now() - $1::interval RETURNING seq) SELECT max(seq) FROM d`,
			fmt.Sprintf("%d seconds", int(EventAge.Seconds()))).Scan(&last)
		if err != nil || last == nil {
			return err
		}
		_, err = w.Exec(ctx, `UPDATE events_pruned SET pruned = greatest(pruned, $1)`, *last)
		return err
	})
}

// QueueChanged is signalled when entries may have become due, on this
// node or another.
func (s *Store) QueueChanged() <-chan struct{} { return s.queueSig }

func (s *Store) signalQueue() {
	select {
	case s.queueSig <- struct{}{}:
	default:
	}
}
