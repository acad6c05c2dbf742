package store

import (
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
	// ModSeq is the mod-sequence the change took in its mailbox: the
	// message's new ModSeq for EventNew and EventFlags, the expunge's for
	// EventExpunge (what Expunged compares). The events of a mailbox (of
	// one UIDValidity) come with their ModSeqs ascending.
	ModSeq uint64
}

// Subscription receives the events of one account, in commit order.
type Subscription struct {
	// C delivers events. If the subscriber falls more than its buffer
	// behind, events are dropped and Overflowed reports true: the
	// subscriber must then re-read the mailbox from the store.
	C <-chan Event

	c        chan Event
	account  string
	f        *Feed
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

// Feed is the change feed of one process: a backend publishes each
// committed change, in commit order, to the subscriptions of its account.
// A backend shared by several processes also publishes the changes the
// others made. The zero Feed is ready to use.
type Feed struct {
	mu   sync.Mutex
	subs map[string]map[*Subscription]struct{}
}

// Subscribe returns a subscription to the changes of an account's
// mailboxes. buffer is how many events may queue (at least 1).
func (f *Feed) Subscribe(account string, buffer int) *Subscription {
	if buffer < 1 {
		buffer = 1
	}
	c := make(chan Event, buffer)
	sub := &Subscription{C: c, c: c, account: strings.ToLower(account), f: f}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs == nil {
		f.subs = make(map[string]map[*Subscription]struct{})
	}
	m := f.subs[sub.account]
	if m == nil {
		m = make(map[*Subscription]struct{})
		f.subs[sub.account] = m
	}
	m[sub] = struct{}{}
	return sub
}

func (f *Feed) remove(sub *Subscription) {
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

// Publish hands events to the subscriptions of their accounts. It never
// blocks (a committer must not wait for slow readers): a subscription that
// is full loses the event and is marked Overflowed.
func (f *Feed) Publish(events []Event) {
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

// Lost marks every subscription of an account Overflowed, as if it had
// fallen behind: a backend shared by several processes calls it when it
// may have missed changes others made (its connection to them was away),
// so that the subscribers re-read the mailboxes from the store.
func (f *Feed) Lost(account string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for sub := range f.subs[strings.ToLower(account)] {
		sub.mu.Lock()
		sub.overflow = true
		sub.mu.Unlock()
	}
}

// Close ends every subscription (their channels are closed).
func (f *Feed) Close() {
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
