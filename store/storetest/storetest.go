// Package storetest is the conformance suite of the store: what every
// backend of store.Store must do, checked through the store's interfaces
// only. A backend runs it from a test of its own:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, o storetest.Options) (store.Store, storetest.Reopen) {
//			... open an empty store with clock o.Now; return it and how to open its data again
//		})
//	}
//
// Each behaviour is a subtest (go test -run 'TestConformance/queue/settle')
// on a store of its own — the subtests of an area run in parallel, so open
// is called concurrently — holding the domains example.com (with the child
// child.example.com) and other.test and the accounts info@example.com,
// bob@example.com and carol@other.test, 1 MiB of quota each.
//
// Besides what each subtest asserts, every subtest ends by checking the
// promises of package store on everything the store holds: Verify finds
// nothing; an account's usage is exactly the sum of the sizes of its
// messages, a mailbox's counters those of its messages; its HighestModSeq
// at least every message's ModSeq; the change feed of the fixture's
// accounts, replayed from the start, gives the mailboxes' messages, flags
// and ModSeqs — which holds only if its events came in commit order and no
// UID was handed out twice — with the mod-sequences of each mailbox's
// events ascending; and Expunged names every UID the feed saw expunged
// from a mailbox, and none that is still there.
//
// The suite relies on two things beyond the interfaces' documentation: the
// store uses Options.Now for every time it makes up, and a write's events
// are on the feed when the write returns.
package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"yubin/internal/testutil"
	"yubin/store"
)

// Options is what a backend must honour when the suite opens a store.
type Options struct {
	// Now is the store's clock, for every time the store makes up: the
	// internal date of a delivery without one, when domains, accounts and
	// queue entries were created, a new entry's first attempt, RetryQueued,
	// a stop without a time. The suite moves it by hand.
	Now func() time.Time
	// MaxMailboxes is the most mailboxes an account may have, INBOX and
	// the special mailboxes included (0: no limit): CreateMailbox and
	// RenameMailbox fail with store.ErrLimit rather than go over it. Only
	// the subtest of the limit sets it.
	MaxMailboxes int
	// MaxExpunged and ExpungedAge bound what a mailbox must remember of
	// its expunges for Expunged to name exactly those after a
	// mod-sequence: at least the latest MaxExpunged of those not older
	// than ExpungedAge (older ones it may forget, and then Expunged names
	// every UID the mailbox does not hold). Zero means the backend's
	// defaults, which must keep at least the latest 1,000 of the last 7
	// days. Only the subtest of forgetting sets them.
	MaxExpunged int
	ExpungedAge time.Duration
	// MaxSubscriptions is the most names an account may subscribe to
	// (0: the backend's default, at least 1,000), never fewer than
	// MaxMailboxes: SetSubscribed fails with store.ErrLimit rather than go
	// over it. Only the subtest of the limit sets it.
	MaxSubscriptions int
}

// Open opens a new, empty store for t, honouring o. It returns the store
// and how to open the same data again, or a nil Reopen when the backend
// cannot (the subtests of restarts are then skipped). The suite closes
// every store it is given.
type Open func(t *testing.T, o Options) (store.Store, Reopen)

// Reopen opens the data of a store that the suite closed, with the same
// Options, as a restarted server does.
type Reopen func(t *testing.T) store.Store

// test is one behaviour, run on a store of its own.
type test struct {
	name string
	run  func(t *testing.T, e *env)
}

// areas are the suite's parts, one file each.
var areas = []struct {
	name  string
	tests []test
}{
	{"directory", directoryTests},
	{"mailboxes", mailboxTests},
	{"subscriptions", subscriptionTests},
	{"delivery", deliveryTests},
	{"messages", messageTests},
	{"uids", uidTests},
	{"summaries", summaryTests},
	{"feed", feedTests},
	{"modseq", modseqTests},
	{"expunged", expungedTests},
	{"recent", recentTests},
	{"queue", queueTests},
	{"settings", settingsTests},
	{"stops", stopTests},
	{"spam", spamTests},
	{"quarantine", quarantineTests},
	{"import", importTests},
	{"lifecycle", lifecycleTests},
	{"maildrop", maildropLockTests},
	{"transfer", transferTests},
}

// Run runs the whole suite, each behaviour on a fresh store from open.
func Run(t *testing.T, open Open) {
	for _, a := range areas {
		t.Run(a.name, func(t *testing.T) {
			for _, tc := range a.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					e := newEnv(t, open)
					tc.run(t, e)
					e.check()
				})
			}
		})
	}
}

// The fixture's accounts.
const (
	info  = "info@example.com"
	bob   = "bob@example.com"
	carol = "carol@other.test"
)

// fixtureQuota is the fixture accounts' quota.
const fixtureQuota = 1 << 20

// start is the suite clock's time when a store is opened.
var start = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// clock is the store's clock: it stands still until moved.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is one subtest's store with its clock.
type env struct {
	t      *testing.T
	s      store.Store // the open store; restart replaces it
	clock  *clock
	reopen Reopen
	feed   *model
	open   Open
}

func newEnv(t *testing.T, open Open) *env {
	t.Helper()
	return openEnv(t, open, Options{})
}

// openEnv is newEnv with a store opened with o (the env's clock as
// o.Now), for a subtest that needs other Options than the suite's.
func openEnv(t *testing.T, open Open, o Options) *env {
	t.Helper()
	e := &env{t: t, clock: &clock{now: start}, open: open}
	o.Now = e.clock.Now
	e.s, e.reopen = open(t, o)
	t.Cleanup(func() {
		if e.s != nil {
			e.s.Close()
		}
	})
	e.feed = newModel()
	e.feed.watch(t, e.s)
	ctx := t.Context()
	testutil.Must(t, e.s.AddDomain(ctx, "example.com", ""))
	testutil.Must(t, e.s.AddDomain(ctx, "child.example.com", "example.com"))
	testutil.Must(t, e.s.AddDomain(ctx, "other.test", ""))
	for _, a := range []string{info, bob, carol} {
		testutil.Must(t, e.s.AddAccount(ctx, store.Account{Address: a, PasswordHash: "x", Quota: fixtureQuota}))
	}
	return e
}

// restart closes the store and opens its data again; it skips the test
// if the backend cannot.
func (e *env) restart() {
	e.t.Helper()
	if e.reopen == nil {
		e.t.Skip("the backend cannot reopen a store")
	}
	s := e.s
	e.s = nil
	testutil.Must(e.t, s.Close())
	e.feed.drain(e.t) // what the writes that Close waited for published
	e.s = e.reopen(e.t)
	e.feed.watch(e.t, e.s)
}

// check asserts the store-wide promises (see the package comment).
func (e *env) check() {
	t := e.t
	t.Helper()
	if e.s == nil || t.Failed() {
		return
	}
	ctx := t.Context()
	problems, err := e.s.Verify(ctx)
	testutil.Must(t, err)
	if len(problems) > 0 {
		t.Fatalf("Verify:\n%s", strings.Join(problems, "\n"))
	}
	e.feed.drain(t)
	accts, err := e.s.Accounts(ctx, "")
	testutil.Must(t, err)
	for _, a := range accts {
		boxes, err := e.s.Mailboxes(ctx, a.Address)
		testutil.Must(t, err)
		var used int64
		for _, b := range boxes {
			msgs, meta, err := e.s.Messages(ctx, a.Address, b.Name)
			testutil.Must(t, err)
			var size int64
			for i, m := range msgs {
				size += m.Size
				if m.UID == 0 || m.UID >= meta.UIDNext || i > 0 && m.UID <= msgs[i-1].UID {
					t.Errorf("%s/%s: UID %d out of order or not below UIDNEXT %d", a.Address, b.Name, m.UID, meta.UIDNext)
				}
				if m.ModSeq == 0 || m.ModSeq > meta.HighestModSeq {
					t.Errorf("%s/%s: UID %d has ModSeq %d, the mailbox's highest is %d", a.Address, b.Name, m.UID, m.ModSeq, meta.HighestModSeq)
				}
			}
			if len(msgs) != meta.Messages || size != meta.Size {
				t.Errorf("%s/%s: counters say %d messages of %d bytes, it holds %d of %d", a.Address, b.Name, meta.Messages, meta.Size, len(msgs), size)
			}
			if meta.HighestModSeq == 0 || meta.FirstRecent == 0 || meta.FirstRecent > meta.UIDNext {
				t.Errorf("%s/%s: HighestModSeq %d, FirstRecent %d, UIDNEXT %d", a.Address, b.Name, meta.HighestModSeq, meta.FirstRecent, meta.UIDNext)
			}
			e.feed.compare(t, a.Address, meta, msgs)
			e.checkExpunged(a.Address, meta, msgs)
			used += size
		}
		if used != a.Used {
			t.Errorf("%s: usage %d, its messages add up to %d", a.Address, a.Used, used)
		}
	}
}

// checkExpunged checks what Expunged says of a mailbox against its
// messages and the expunges its change feed told.
func (e *env) checkExpunged(account string, meta store.Mailbox, msgs []store.MessageInfo) {
	t := e.t
	t.Helper()
	ctx := t.Context()
	gone, err := e.s.Expunged(ctx, account, meta.Name, 0)
	testutil.Must(t, err)
	there := map[uint32]bool{}
	for _, m := range msgs {
		there[m.UID] = true
	}
	for i, uid := range gone {
		if uid == 0 || uid >= meta.UIDNext || there[uid] || i > 0 && uid <= gone[i-1] {
			t.Errorf("%s/%s: Expunged names %v, holding %d messages below UIDNEXT %d: not ascending, or one still there or never handed out", account, meta.Name, gone, len(msgs), meta.UIDNext)
			break
		}
	}
	if !e.feed.lost {
		for _, uid := range e.feed.gone[boxID{account, meta.UIDValidity}] {
			if _, ok := slices.BinarySearch(gone, uid); !ok {
				t.Errorf("%s/%s: the feed told UID %d expunged, Expunged(0) leaves it out: %v", account, meta.Name, uid, gone)
			}
		}
	}
	if gone, err := e.s.Expunged(ctx, account, meta.Name, meta.HighestModSeq); err != nil || len(gone) != 0 {
		t.Errorf("%s/%s: Expunged since the HighestModSeq %d: %v, %v", account, meta.Name, meta.HighestModSeq, gone, err)
	}
}

// boxID names a mailbox for as long as it keeps its UIDVALIDITY (a rename
// does not change it).
type boxID struct {
	account     string
	uidValidity uint32
}

// model replays the change feed of the fixture's accounts: the messages
// (UID -> flags and ModSeq) of every mailbox that had any event.
type model struct {
	subs    []*store.Subscription
	boxes   map[boxID]map[uint32]modelMsg
	highest map[boxID]uint32   // highest UID handed out in the mailbox
	modseq  map[boxID]uint64   // the mod-sequence of its latest event
	gone    map[boxID][]uint32 // the UIDs expunged from it
	lost    bool               // the feed overflowed: the model is incomplete
}

// modelMsg is a message as its events tell.
type modelMsg struct {
	flags  []string
	modseq uint64
}

func newModel() *model {
	return &model{boxes: map[boxID]map[uint32]modelMsg{}, highest: map[boxID]uint32{}, modseq: map[boxID]uint64{}, gone: map[boxID][]uint32{}}
}

func (m *model) watch(t *testing.T, s store.Store) {
	m.subs = m.subs[:0]
	for _, a := range []string{info, bob, carol} {
		m.subs = append(m.subs, s.Subscribe(t.Context(), a, 1<<14))
	}
}

// drain applies the events that arrived.
func (m *model) drain(t *testing.T) {
	t.Helper()
	for _, sub := range m.subs {
		if sub.Overflowed() {
			m.lost = true
		}
	more:
		for {
			select {
			case ev, ok := <-sub.C:
				if !ok {
					break more
				}
				m.apply(t, ev)
			default:
				break more
			}
		}
	}
}

func (m *model) apply(t *testing.T, ev store.Event) {
	t.Helper()
	id := boxID{ev.Account, ev.UIDValidity}
	box := m.boxes[id]
	if box == nil {
		box = map[uint32]modelMsg{}
		m.boxes[id] = box
	}
	_, live := box[ev.UID]
	if ev.ModSeq <= m.modseq[id] {
		t.Errorf("feed: %s of UID %d in %s/%s has ModSeq %d, after an event of %d: mod-sequences not ascending", ev.Kind, ev.UID, ev.Account, ev.Mailbox, ev.ModSeq, m.modseq[id])
	}
	m.modseq[id] = max(m.modseq[id], ev.ModSeq)
	switch ev.Kind {
	case store.EventNew:
		if ev.UID <= m.highest[id] {
			t.Errorf("feed: new message UID %d in %s/%s after UID %d: a UID reused or events out of commit order", ev.UID, ev.Account, ev.Mailbox, m.highest[id])
		}
		m.highest[id] = max(m.highest[id], ev.UID)
		box[ev.UID] = modelMsg{slices.Clone(ev.Flags), ev.ModSeq}
	case store.EventFlags:
		if !live && !m.lost {
			t.Errorf("feed: flags of UID %d in %s/%s, not a message there", ev.UID, ev.Account, ev.Mailbox)
		}
		box[ev.UID] = modelMsg{slices.Clone(ev.Flags), ev.ModSeq}
	case store.EventExpunge:
		if !live && !m.lost {
			t.Errorf("feed: expunge of UID %d in %s/%s, not a message there", ev.UID, ev.Account, ev.Mailbox)
		}
		delete(box, ev.UID)
		m.gone[id] = append(m.gone[id], ev.UID)
	default:
		t.Errorf("feed: event of unknown kind %+v", ev)
	}
}

// compare checks a mailbox's messages against the replayed feed.
func (m *model) compare(t *testing.T, account string, meta store.Mailbox, msgs []store.MessageInfo) {
	t.Helper()
	if m.lost || !slices.Contains([]string{info, bob, carol}, account) {
		return
	}
	id := boxID{account, meta.UIDValidity}
	var want []string
	for uid, msg := range m.boxes[id] {
		want = append(want, fmt.Sprintf("%d%v@%d", uid, msg.flags, msg.modseq))
	}
	var got []string
	for _, msg := range msgs {
		got = append(got, fmt.Sprintf("%d%v@%d", msg.UID, msg.Flags, msg.ModSeq))
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("%s/%s holds %v; its change feed says %v (UID[flags]@ModSeq)", account, meta.Name, got, want)
	}
	if meta.HighestModSeq < m.modseq[id] {
		t.Errorf("%s/%s: HighestModSeq %d, its change feed told of a change at %d", account, meta.Name, meta.HighestModSeq, m.modseq[id])
	}
}

// errQuota stands for any *store.QuotaError in the want of a case.
var errQuota = errors.New("quota error")

// is reports whether err is what a case wants: nil, errQuota, or an error
// that errors.Is finds.
func is(err, want error) bool {
	if want == errQuota {
		var qe *store.QuotaError
		return errors.As(err, &qe)
	}
	if want == nil {
		return err == nil
	}
	return errors.Is(err, want)
}

// errCase is a call and the error it must give.
type errCase struct {
	name string
	call func(e *env) error
	want error
}

func runErrCases(t *testing.T, e *env, cases []errCase) {
	t.Helper()
	for _, c := range cases {
		if err := c.call(e); !is(err, c.want) {
			t.Errorf("%s: got error %v, want %v", c.name, err, c.want)
		}
	}
}

// body is a small distinct message.
func body(i int) []byte {
	return fmt.Appendf(nil, "Subject: %d\r\n\r\nbody %d\r\n", i, i)
}

// deliver stores msg in a mailbox of one account and returns where.
func (e *env) deliver(to, box string, msg []byte) store.Delivered {
	e.t.Helper()
	d, err := e.s.Deliver(e.t.Context(), store.Delivery{Recipients: []string{to}, Mailbox: box, Message: msg})
	testutil.Must(e.t, err)
	if len(d) != 1 {
		e.t.Fatalf("one recipient, delivered %+v", d)
	}
	return d[0]
}

// deliverN delivers n distinct messages and returns their UIDs.
func (e *env) deliverN(to, box string, n int) []uint32 {
	e.t.Helper()
	var uids []uint32
	for i := range n {
		uids = append(uids, e.deliver(to, box, body(i)).UID)
	}
	return uids
}

func (e *env) account(addr string) store.Account {
	e.t.Helper()
	a, err := e.s.Account(e.t.Context(), addr)
	testutil.Must(e.t, err)
	return a
}

func (e *env) mailbox(account, name string) store.Mailbox {
	e.t.Helper()
	m, err := e.s.Mailbox(e.t.Context(), account, name)
	testutil.Must(e.t, err)
	return m
}

// uids lists the UIDs of a mailbox.
func (e *env) uids(account, box string) []uint32 {
	e.t.Helper()
	msgs, _, err := e.s.Messages(e.t.Context(), account, box)
	testutil.Must(e.t, err)
	var out []uint32
	for _, m := range msgs {
		out = append(out, m.UID)
	}
	return out
}

// names lists an account's mailboxes in the store's order.
func (e *env) names(account string) []string {
	e.t.Helper()
	boxes, err := e.s.Mailboxes(e.t.Context(), account)
	testutil.Must(e.t, err)
	var out []string
	for _, b := range boxes {
		out = append(out, b.Name)
	}
	return out
}

// read returns a message's bytes, failing the test if it cannot be read.
func (e *env) read(account, box string, uid uint32) []byte {
	e.t.Helper()
	b, err := e.s.ReadMessage(e.t.Context(), account, box, uid)
	testutil.Must(e.t, err)
	return b
}

// drain returns the events queued on a subscription, without waiting.
func drain(sub *store.Subscription) []store.Event {
	var out []store.Event
	for {
		select {
		case ev, ok := <-sub.C:
			if !ok {
				return out
			}
			out = append(out, ev)
		default:
			return out
		}
	}
}

// show formats events for comparison: "kind mailbox uid".
func show(evs []store.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, fmt.Sprintf("%s %s %d", ev.Kind, ev.Mailbox, ev.UID))
	}
	return out
}

// parallel runs fn(0..n-1) at once and returns their errors by index.
func parallel(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = fn(i) })
	}
	wg.Wait()
	return errs
}
