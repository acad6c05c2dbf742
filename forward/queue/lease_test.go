package queue

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/foxcpp/go-mockdns"

	"yubin/internal/testutil"
	"yubin/internal/testutil/smtpsink"
	"yubin/store"
)

// Two runners on one store: an entry another node holds is not delivered
// until its lease ends; a runner that starts again ends its own leases at
// once (it crashed holding them) instead of waiting for them to expire.
func TestLeasesAcrossRunners(t *testing.T) {
	e := newEnv(t)
	sk := newSink(t, false)
	e.route("remote.test", sk)
	id := e.enqueue(store.Outbound{QueueID: "L1", From: "info@example.com", ReturnPath: "info@example.com",
		Recipients: []string{"bob@remote.test"}, Message: testMsg})
	now := e.clock.Now()
	_, err := e.st.LeaseQueued(ctx, []string{id}, "other-node", now, now.Add(time.Hour))
	testutil.Must(t, err)

	r := e.runner(Config{Node: "this-node"})
	r.RunDue(ctx)
	sk.None()
	if q, err := e.st.QueueEntry(ctx, id); err != nil || q.LeaseHolder != "other-node" || q.Attempts != 0 {
		t.Fatalf("entry held by another node: %+v %v", q, err)
	}

	// The other node died: once its lease is over, this one delivers.
	e.clock.Add(time.Hour + time.Second)
	r.RunDue(ctx)
	if m := sk.Next(); m.From != "info@example.com" {
		t.Fatalf("received %+v", m)
	}
	if e.queueLen() != 0 {
		t.Fatal("entry still queued")
	}

	// A lease this node held when it stopped ends when it runs again.
	id = e.enqueue(store.Outbound{QueueID: "L2", From: "info@example.com", ReturnPath: "info@example.com",
		Recipients: []string{"carol@remote.test"}, Message: testMsg})
	now = e.clock.Now()
	_, err = e.st.LeaseQueued(ctx, []string{id}, "this-node", now, now.Add(time.Hour))
	testutil.Must(t, err)
	r.releaseOwnLeases(ctx)
	r.RunDue(ctx)
	if m := sk.Next(); len(m.To) != 1 || m.To[0] != "carol@remote.test" {
		t.Fatalf("received %+v", m)
	}
	e.verify()
}

// renewals wraps a store: each RenewLeases reports its outcome on a
// channel, and fails with failing when set.
type renewals struct {
	Store
	done    chan renewal
	failing error
}

type renewal struct {
	kept []string
	err  error
}

func (s *renewals) RenewLeases(ctx context.Context, ids []string, holder string, until time.Time) ([]string, error) {
	kept, err := s.Store.RenewLeases(ctx, ids, holder, until)
	if s.failing != nil {
		kept, err = nil, s.failing
	}
	s.done <- renewal{kept, err}
	return kept, err
}

// leaseRig is one runner, node "node-a", with a lease of a minute renewed
// when the test ticks, a spy on its renewals, and a sink that holds
// every RCPT until released: an attempt that lasts as long as the test
// wants. Its entry goes to rcpts (bob@remote.test when none).
type leaseRig struct {
	*env
	sk      *smtpsink.Sink
	spy     *renewals
	r       *Runner
	tick    chan time.Time
	rcpt    chan string   // an RCPT reached the sink
	release chan struct{} // closed by answer: the sink answers the RCPTs
	once    sync.Once
	done    chan struct{} // RunDue returned
	id      string
}

func newLeaseRig(t *testing.T, rcpts ...string) *leaseRig {
	if len(rcpts) == 0 {
		rcpts = []string{"bob@remote.test"}
	}
	e := newEnv(t)
	x := &leaseRig{env: e, sk: newSink(t, false), tick: make(chan time.Time), rcpt: make(chan string, 10),
		release: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(x.answer)
	x.sk.Rcpt = func(to string) error {
		x.rcpt <- to
		<-x.release
		return nil
	}
	e.route("remote.test", x.sk)
	x.id = e.enqueue(store.Outbound{QueueID: "R1", From: "info@example.com", ReturnPath: "info@example.com",
		Recipients: rcpts, Message: testMsg})
	x.spy = &renewals{Store: e.st, done: make(chan renewal, 10)}
	x.r = New(x.spy, Config{Hostname: "mail.example.com", Node: "node-a", Lease: time.Minute, CommandTimeout: time.Hour},
		Options{Resolver: &mockdns.Resolver{Zones: e.zones}, Dial: e.dial, Now: e.clock.Now})
	x.r.ticker = func(d time.Duration) (<-chan time.Time, func()) {
		if d != 20*time.Second {
			t.Errorf("renewals every %v, want a third of the lease", d)
		}
		return x.tick, func() {}
	}
	return x
}

// answer lets the sink answer the RCPTs held and those to come.
func (x *leaseRig) answer() { x.once.Do(func() { close(x.release) }) }

// start runs the queue and waits until the attempt is at the sink.
func (x *leaseRig) start() {
	x.t.Helper()
	go func() {
		defer close(x.done)
		x.r.RunDue(ctx)
	}()
	select {
	case <-x.rcpt:
	case <-time.After(10 * time.Second):
		x.t.Fatal("no attempt reached the sink")
	}
}

// renew ticks the renewal clock and returns what the renewal got.
func (x *leaseRig) renew() renewal {
	x.t.Helper()
	select {
	case x.tick <- time.Now():
	case <-time.After(10 * time.Second):
		x.t.Fatal("the runner does not renew")
	}
	select {
	case got := <-x.spy.done:
		return got
	case <-time.After(10 * time.Second):
		x.t.Fatal("no renewal")
	}
	return renewal{}
}

// finished waits for the attempt to end.
func (x *leaseRig) finished(why string) {
	x.t.Helper()
	select {
	case <-x.done:
	case <-time.After(10 * time.Second):
		x.t.Fatalf("the attempt goes on: %s", why)
	}
}

func (x *leaseRig) running() bool {
	select {
	case <-x.done:
		return false
	default:
		return true
	}
}

// An attempt that outlasts the lease keeps the entry: the runner renews
// the lease every third of it, so another node finds the entry taken after
// the first lease would have ended, and the message goes once.
func TestLeaseRenewedDuringAttempt(t *testing.T) {
	x := newLeaseRig(t)
	claimed := x.clock.Now()
	x.start()
	if q := x.queueEntryOf(x.id); q.LeaseHolder != "node-a" || !q.LeaseUntil.Equal(claimed.Add(time.Minute)) {
		t.Fatalf("claimed entry: held by %q until %v", q.LeaseHolder, q.LeaseUntil)
	}
	for i := 1; i <= 4; i++ {
		x.clock.Add(20 * time.Second)
		got := x.renew()
		if got.err != nil || len(got.kept) != 1 || got.kept[0] != x.id {
			t.Fatalf("renewal %d: %+v", i, got)
		}
		if q := x.queueEntryOf(x.id); q.LeaseHolder != "node-a" || !q.LeaseUntil.Equal(x.clock.Now().Add(time.Minute)) {
			t.Fatalf("after renewal %d: held by %q until %v", i, q.LeaseHolder, q.LeaseUntil)
		}
	}
	// 80 s after the claim, past the first lease's end: still ours.
	now := x.clock.Now()
	if got, err := x.st.LeaseQueued(ctx, []string{x.id}, "node-b", now, now.Add(time.Minute)); err != nil || len(got) != 0 {
		t.Fatalf("node-b claimed an entry being delivered: %+v %v", got, err)
	}
	if !x.running() {
		t.Fatal("the attempt ended while its lease was renewed")
	}
	x.answer()
	x.finished("the sink accepted")
	if m := x.sk.Next(); len(m.To) != 1 || m.To[0] != "bob@remote.test" {
		t.Fatalf("received %+v", m)
	}
	x.sk.None()
	if x.queueLen() != 0 {
		t.Fatal("delivered entry still queued")
	}
	x.verify()
}

// The runner's lease ended (it could not renew in time: a slow node) and
// another node claimed the entry: the next renewal finds it gone, the
// runner cuts its attempt at once and records nothing over the other
// node's lease.
func TestLeaseLostStopsAttempt(t *testing.T) {
	x := newLeaseRig(t)
	x.start()
	x.clock.Add(time.Minute + time.Second)
	now := x.clock.Now()
	if got, err := x.st.LeaseQueued(ctx, []string{x.id}, "node-b", now, now.Add(time.Minute)); err != nil || len(got) != 1 {
		t.Fatalf("node-b claiming the ended lease: %+v %v", got, err)
	}
	if got := x.renew(); got.err != nil || len(got.kept) != 0 {
		t.Fatalf("renewal of a lease node-b holds: %+v", got)
	}
	x.finished("its lease is node-b's")
	q := x.queueEntryOf(x.id)
	if q.LeaseHolder != "node-b" || !q.LeaseUntil.Equal(now.Add(time.Minute)) || q.Attempts != 0 || q.LastError != "" {
		t.Errorf("node-b's entry after node-a's cut attempt: %+v", q)
	}
	x.answer() // the sink's RCPT answers a connection already closed
	x.sk.None()
	if n := x.sk.Mails.Load(); n != 1 {
		t.Errorf("%d MAIL commands at the sink, want 1", n)
	}
	x.verify()
}

// heldReads wraps a store: ReadQueued says on reached that it was called,
// and reads once resume is closed.
type heldReads struct {
	*renewals
	reached chan string
	resume  chan struct{}
}

func (s *heldReads) ReadQueued(ctx context.Context, id string) ([]byte, store.QueueEntry, error) {
	s.reached <- id
	<-s.resume
	return s.renewals.ReadQueued(ctx, id)
}

// Node A's lease ran out while it was stalled mid-attempt (no renewal
// came), and node B claimed the entry; then the remote accepted the first
// of A's two recipients and the message (the second refused with a 550).
// A records the recipient accepted, so that it is not sent again, and
// nothing else: no failure, no DSN, and B's lease untouched — B's next
// renewal keeps it, and B delivers the second recipient. Each recipient
// gets the message once.
func TestLeaseLostRecordsOnlySent(t *testing.T) {
	x := newLeaseRig(t, "bob@remote.test", "carol@remote.test")
	var carols atomic.Int32
	x.sk.Rcpt = func(to string) error {
		switch {
		case to == "bob@remote.test":
			x.rcpt <- to
			<-x.release
		case carols.Add(1) == 1: // node A's attempt
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user (test)"}
		}
		return nil
	}
	x.start() // node A's RCPT of bob is held at the remote

	// Node A stalls past its lease; node B claims the entry and is about
	// to read it.
	x.clock.Add(time.Minute + time.Second)
	claimed := x.clock.Now()
	bst := &heldReads{renewals: &renewals{Store: x.st, done: make(chan renewal, 10)}, reached: make(chan string, 1), resume: make(chan struct{})}
	var resumeOnce sync.Once
	resume := func() { resumeOnce.Do(func() { close(bst.resume) }) }
	t.Cleanup(resume)
	b := New(bst, Config{Hostname: "mail.example.com", Node: "node-b", Lease: time.Minute, CommandTimeout: time.Hour},
		Options{Resolver: &mockdns.Resolver{Zones: x.zones}, Dial: x.dial, Now: x.clock.Now})
	bTick := make(chan time.Time)
	b.ticker = func(time.Duration) (<-chan time.Time, func()) { return bTick, func() {} }
	bDone := make(chan struct{})
	go func() {
		defer close(bDone)
		b.RunDue(ctx)
	}()
	select {
	case <-bst.reached:
	case <-time.After(10 * time.Second):
		t.Fatal("node B did not take the entry")
	}
	if q := x.queueEntryOf(x.id); q.LeaseHolder != "node-b" || !q.LeaseUntil.Equal(claimed.Add(time.Minute)) {
		t.Fatalf("entry claimed by node B: held by %q until %v", q.LeaseHolder, q.LeaseUntil)
	}

	// The remote answers node A: bob accepted, carol refused, the message
	// accepted for bob.
	x.answer()
	x.finished("the remote answered")
	if m := x.sk.Next(); len(m.To) != 1 || m.To[0] != "bob@remote.test" {
		t.Fatalf("node A's message reached %v, want bob", m.To)
	}
	q := x.queueEntryOf(x.id)
	if q.LeaseHolder != "node-b" || !q.LeaseUntil.Equal(claimed.Add(time.Minute)) {
		t.Errorf("node A's record changed node B's lease: held by %q until %v, want node-b until %v", q.LeaseHolder, q.LeaseUntil, claimed.Add(time.Minute))
	}
	want := []store.QueueRecipient{{Addr: "bob@remote.test", Status: store.RcptSent}, {Addr: "carol@remote.test"}}
	if !slices.Equal(q.Recipients, want) || q.Attempts != 0 || q.LastError != "" {
		t.Errorf("entry after node A's attempt: %+v, want bob sent, carol pending, no attempt or error recorded", q)
	}
	if n := x.queueLen(); n != 1 {
		t.Errorf("%d queue entries, want 1 (no DSN queued)", n)
	}
	if dsn := x.inbox("info@example.com"); len(dsn) != 0 {
		t.Errorf("%d DSNs to the sender", len(dsn))
	}

	// Node B's renewal keeps its lease, and B delivers carol.
	select {
	case bTick <- time.Now():
	case <-time.After(10 * time.Second):
		t.Fatal("node B does not renew")
	}
	select {
	case got := <-bst.done:
		if got.err != nil || !slices.Equal(got.kept, []string{x.id}) {
			t.Errorf("node B's renewal after node A's record: %+v, want its lease kept", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no renewal")
	}
	resume()
	select {
	case <-bDone:
	case <-time.After(10 * time.Second):
		t.Fatal("node B's attempt goes on")
	}
	if m := x.sk.Next(); len(m.To) != 1 || m.To[0] != "carol@remote.test" {
		t.Fatalf("node B's message reached %v, want carol", m.To)
	}
	x.sk.None()
	if n := x.sk.Mails.Load(); n != 2 {
		t.Errorf("%d MAIL commands at the remote, want 2 (one per node)", n)
	}
	if n := x.queueLen(); n != 0 {
		t.Errorf("%d queue entries left", n)
	}
	if dsn := x.inbox("info@example.com"); len(dsn) != 0 {
		t.Errorf("%d DSNs to the sender", len(dsn))
	}
	x.verify()
}

// Renewing fails (the store is unreachable): the runner goes on while a
// later renewal can still come before the lease ends, and cuts the attempt
// when it cannot. Nobody took the entry: the cut attempt is recorded as a
// temporary failure, to be retried.
func TestLeaseRenewalFailing(t *testing.T) {
	x := newLeaseRig(t)
	claimed := x.clock.Now()
	x.start()
	x.spy.failing = errors.New("database unreachable (test)")
	x.clock.Add(20 * time.Second) // 40 s left, the next tick in 20: go on
	if got := x.renew(); got.err == nil {
		t.Fatalf("renewal: %+v", got)
	}
	if !x.running() {
		t.Fatal("the attempt was cut with 40 s of its lease left")
	}
	x.clock.Add(20 * time.Second) // 20 s left: the next tick would be too late
	x.renew()
	x.finished("its lease ends before the next renewal")
	q := x.queueEntryOf(x.id)
	if q.LeaseHolder != "" || q.Attempts != 1 || !q.NextAttempt.After(claimed.Add(time.Minute)) || q.LastError == "" {
		t.Errorf("entry after the cut attempt: %+v", q)
	}
	x.answer()
	x.sk.None()
	x.verify()
}

func (e *env) queueEntryOf(id string) store.QueueEntry {
	e.t.Helper()
	q, err := e.st.QueueEntry(ctx, id)
	testutil.Must(e.t, err)
	return q
}

// Entries claimed and waiting for their turn (every connection busy) are
// renewed too: they are not left to run out while another route is slow.
func TestLeaseRenewedWhileWaiting(t *testing.T) {
	x := newLeaseRig(t)
	x.route("other.test", x.sk) // held the same way
	second := x.enqueue(store.Outbound{QueueID: "R2", From: "info@example.com", ReturnPath: "info@example.com",
		Recipients: []string{"carol@other.test"}, Message: testMsg})
	x.r.cfg.Concurrency = 1
	x.r.sem = make(chan struct{}, 1)
	x.start() // one route at the sink, the other waiting for it
	x.clock.Add(20 * time.Second)
	renewed := map[string]bool{}
	for i := 0; len(renewed) < 2; i++ { // one renewal per route; a tick goes to either
		if i == 10 {
			t.Fatalf("renewed %v in %d renewals, want %s and %s", renewed, i, x.id, second)
		}
		got := x.renew()
		if got.err != nil || len(got.kept) != 1 {
			t.Fatalf("renewal: %+v", got)
		}
		renewed[got.kept[0]] = true
	}
	for _, id := range []string{x.id, second} {
		if q := x.queueEntryOf(id); q.LeaseHolder != "node-a" || !q.LeaseUntil.Equal(x.clock.Now().Add(time.Minute)) {
			t.Errorf("%s: held by %q until %v", id, q.LeaseHolder, q.LeaseUntil)
		}
	}
	if n := x.sk.Conns.Load(); n != 1 {
		t.Errorf("%d connections at once, want 1 (the other route waits)", n)
	}
	x.answer()
	x.finished("the sink accepted")
	x.sk.Next()
	x.sk.Next()
	if x.queueLen() != 0 {
		t.Fatal("entries still queued")
	}
}

// A node whose renewals stalled (no tick came: the process was starved)
// starts no message once its lease has ended by its clock: the message
// being sent finishes, the next one of the route is left unsent, due
// again for whichever node comes first.
func TestLeaseEndedStartsNothing(t *testing.T) {
	x := newLeaseRig(t)
	second := x.enqueue(store.Outbound{QueueID: "R2", From: "info@example.com", ReturnPath: "info@example.com",
		Recipients: []string{"carol@remote.test"}, Message: testMsg})
	x.start() // the first message is at the sink, the second waits its turn on the connection
	x.clock.Add(time.Minute)
	x.answer()
	x.finished("the first message was accepted")
	if m := x.sk.Next(); len(m.To) != 1 || m.To[0] != "bob@remote.test" {
		t.Fatalf("received %+v", m)
	}
	x.sk.None()
	q := x.queueEntryOf(second)
	if q.Attempts != 0 || q.LeaseUntil.After(x.clock.Now()) {
		t.Errorf("the message not started: %+v, want unattempted, its lease over", q)
	}
	if d, err := x.st.QueueDue(ctx, x.clock.Now(), 0); err != nil || len(d) != 1 || d[0].ID != second {
		t.Errorf("due: %+v %v, want %s", d, err, second)
	}
}

// A server stopping finishes the message being sent and releases the
// leases of the messages it did not get to: another node takes them now,
// not when the leases would have ended.
func TestLeaseReleasedOnStop(t *testing.T) {
	x := newLeaseRig(t)
	second := x.enqueue(store.Outbound{QueueID: "R2", From: "info@example.com", ReturnPath: "info@example.com",
		Recipients: []string{"carol@remote.test"}, Message: testMsg})
	run, stop := context.WithCancel(ctx)
	go func() {
		defer close(x.done)
		x.r.Run(run)
	}()
	select {
	case <-x.rcpt:
	case <-time.After(10 * time.Second):
		t.Fatal("no attempt reached the sink")
	}
	stop()
	x.answer()
	x.finished("the server stopped")
	if m := x.sk.Next(); len(m.To) != 1 || m.To[0] != "bob@remote.test" {
		t.Fatalf("received %+v", m)
	}
	x.sk.None()
	if q := x.queueEntryOf(second); q.LeaseHolder != "" || q.Attempts != 0 {
		t.Errorf("the message not attempted: %+v, want released", q)
	}
}
