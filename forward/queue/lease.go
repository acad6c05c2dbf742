package queue

import (
	"context"
	"sync"
	"time"

	"yubin/store"
)

// leases are the leases on one route's entries, claimed together and
// renewed together every Lease/3 from their claim until each entry's
// outcome is stored. An entry whose lease is not renewed (another node
// claimed it after it ended, or it was settled or dropped meanwhile) is
// lost: the runner stops working on it at once, cutting the connection if
// the entry is being sent. When renewing fails (the store is unreachable)
// the runner tries again at the next tick, and stops working on every
// entry of the route when the next tick would come after the leases end:
// another node may claim them then, and two nodes must not send one
// message at the same time.
type leases struct {
	r      *Runner
	cancel context.CancelFunc // the route's attempt
	done   chan struct{}      // closed by stop
	once   sync.Once

	mu      sync.Mutex
	held    map[string]bool // leased, outcome not stored yet
	lost    map[string]bool
	until   time.Time // when the leases end, as last claimed or renewed
	current string    // the entry being sent over cn
	cn      *conn
}

// keepLeases starts renewing the leases on entries, which end at until;
// cancel cancels the route's attempt.
func (r *Runner) keepLeases(entries []store.QueueEntry, until time.Time, cancel context.CancelFunc) *leases {
	ls := &leases{r: r, cancel: cancel, done: make(chan struct{}), held: map[string]bool{}, lost: map[string]bool{}, until: until}
	for _, e := range entries {
		ls.held[e.ID] = true
	}
	interval := r.cfg.Lease / 3
	tick, stopTick := r.ticker(interval)
	go func() {
		defer stopTick()
		for {
			select {
			case <-ls.done:
				return
			case <-tick:
			}
			ls.renew(interval)
		}
	}()
	return ls
}

// stop ends the renewals and the route's context.
func (ls *leases) stop() {
	ls.once.Do(func() {
		close(ls.done)
		ls.cancel()
	})
}

// renew renews the leases still held; see leases.
func (ls *leases) renew(interval time.Duration) {
	r := ls.r
	ls.mu.Lock()
	ids := make([]string, 0, len(ls.held))
	for id := range ls.held {
		ids = append(ids, id)
	}
	ls.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	now := r.now()
	until := now.Add(r.cfg.Lease)
	// A renewal that takes longer than a tick is as good as failed.
	ctx, cancel := context.WithTimeout(context.Background(), interval)
	kept, err := r.st.RenewLeases(ctx, ids, r.cfg.Node, until)
	cancel()
	if err != nil {
		ls.mu.Lock()
		left := ls.until.Sub(r.now())
		ls.mu.Unlock()
		if left > interval {
			r.log.Warn("renewing outbound queue leases failed; trying again", "entries", len(ids), "lease_left", left, "err", err)
			return
		}
		r.log.Error("cannot renew outbound queue leases before they end; stopping work on their entries", "entries", len(ids), "lease_left", left, "err", err)
		ls.mu.Lock()
		for id := range ls.held {
			ls.loseLocked(id)
		}
		ls.mu.Unlock()
		ls.cancel()
		return
	}
	ok := make(map[string]bool, len(kept))
	for _, id := range kept {
		ok[id] = true
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.until = until
	for _, id := range ids {
		if !ok[id] && ls.held[id] {
			r.log.Warn("outbound queue entry no longer ours (its lease ended and another node took it, or it was dropped); stopping work on it", "id", id)
			ls.loseLocked(id)
		}
	}
}

// loseLocked marks id lost and cuts its connection if it is being sent.
func (ls *leases) loseLocked(id string) {
	delete(ls.held, id)
	ls.lost[id] = true
	if ls.current == id && ls.cn != nil {
		ls.cn.close()
	}
}

func (ls *leases) isLost(id string) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.lost[id]
}

// sending records that id is being sent over cn ("" when the sending is
// over); false if id is lost, or its lease has ended by this node's clock
// (the renewals stalled): then it must not be sent.
func (ls *leases) sending(id string, cn *conn) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if id != "" && (ls.lost[id] || !ls.r.now().Before(ls.until)) {
		return false
	}
	ls.current, ls.cn = id, cn
	return true
}

// settled ends the renewal of id: its outcome is stored.
func (ls *leases) settled(id string) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	delete(ls.held, id)
}

// heldEntries returns those of entries still held: not settled, not lost.
func (ls *leases) heldEntries(entries []store.QueueEntry) []store.QueueEntry {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	var out []store.QueueEntry
	for _, e := range entries {
		if ls.held[e.ID] {
			out = append(out, e)
		}
	}
	return out
}
