package store

import (
	"context"
	"strings"
	"sync"
)

// EventKind says what changed in a mailbox.
type EventKind int

const (
	EventNew     EventKind = iota + 1 // a message was added
	EventFlags                        // a message's flags changed
	EventExpunge                      // a message was removed
)

func (k EventKind) String() string {
	switch k {
	case EventNew:
		return "new"
	case EventFlags:
		return "flags"
	case EventExpunge:
		return "expunge"
	}
	return "unknown"
}

// Event is one committed change to a mailbox.
type Event struct {
	Kind        EventKind
	Account     string
	Mailbox     string
	UIDValidity uint32
	UID         uint32
	Flags       []string // for EventNew and EventFlags
}

// Subscription receives the events of one account, in commit order.
type Subscription struct {
	// C delivers events. If the subscriber falls more than its buffer
	// behind, events are dropped and Overflowed reports true: the
	// subscriber must then re-read the mailbox from the store.
	C <-chan Event

	c        chan Event
	account  string
	f        *feed
	mu       sync.Mutex
	overflow bool
	closed   bool
}

// Overflowed reports (and clears) whether events were dropped.
func (s *Subscription) Overflowed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.overflow
	s.overflow = false
	return o
}

// Close stops the subscription and closes C.
func (s *Subscription) Close() {
	s.f.remove(s)
}

type feed struct {
	mu   sync.Mutex
	subs map[string]map[*Subscription]struct{}
}

func (f *feed) init() { f.subs = make(map[string]map[*Subscription]struct{}) }

// Subscribe returns a subscription to the changes of an account's
// mailboxes. buffer is how many events may queue (at least 1).
func (s *Store) Subscribe(ctx context.Context, account string, buffer int) *Subscription {
	if buffer < 1 {
		buffer = 1
	}
	c := make(chan Event, buffer)
	sub := &Subscription{C: c, c: c, account: strings.ToLower(account), f: &s.feed}
	s.feed.mu.Lock()
	defer s.feed.mu.Unlock()
	m := s.feed.subs[sub.account]
	if m == nil {
		m = make(map[*Subscription]struct{})
		s.feed.subs[sub.account] = m
	}
	m[sub] = struct{}{}
	return sub
}

func (f *feed) remove(sub *Subscription) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m := f.subs[sub.account]; m != nil {
		delete(m, sub)
		if len(m) == 0 {
			delete(f.subs, sub.account)
		}
	}
	sub.mu.Lock()
	if !sub.closed {
		sub.closed = true
		close(sub.c)
	}
	sub.mu.Unlock()
}

// publish never blocks: the committer must not wait for slow readers.
func (f *feed) publish(events []Event) {
	if len(events) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ev := range events {
		for sub := range f.subs[ev.Account] {
			select {
			case sub.c <- ev:
			default:
				sub.mu.Lock()
				sub.overflow = true
				sub.mu.Unlock()
			}
		}
	}
}

func (f *feed) closeAll() {
	f.mu.Lock()
	var all []*Subscription
	for _, m := range f.subs {
		for sub := range m {
			all = append(all, sub)
		}
	}
	f.mu.Unlock()
	for _, sub := range all {
		f.remove(sub)
	}
}
