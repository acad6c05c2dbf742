package storetest

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"yubin/internal/testutil"
	"yubin/store"
)

// The outbound queue. QueueDue only reads: an entry stays due — returned by
// every QueueDue — until it is leased, SettleQueued moves its next attempt
// on or removes it, or RetryQueued or DropQueued change it. LeaseQueued is
// how a runner claims entries: a leased entry is handed to nobody else
// until the lease ends, is settled or released. SettleQueued applies its
// function to the entry as stored, in the transaction that stores its DSNs:
// a function that checks the entry can refuse a stale outcome, and then
// nothing of the call is stored; settling an entry that is gone fails with
// ErrNoSuchMessage and stores nothing either. RecordSent marks recipients
// sent and leaves the rest, the lease above all, as it is.
var queueTests = []test{
	{"enqueue", testEnqueue},
	{"enqueue errors", testEnqueueErrors},
	{"due is not a lease", testQueueDue},
	{"lease", testLease},
	{"lease concurrently", testLeaseConcurrent},
	{"renew leases", testRenewLeases},
	{"renew against a claim", testRenewAgainstClaim},
	{"record sent under another's lease", testRecordSent},
	{"settle", testSettle},
	{"settle twice", testSettleTwice},
	{"settle refused", testSettleRefused},
	{"settle concurrently", testSettleConcurrent},
	{"retry and drop", testRetryDrop},
	{"deliver and queue", testDeliverAndQueue},
	{"restart", testQueueRestart},
	{"stats", testQueueStats},
}

// outbound is a message from info to two remote domains.
func outbound() store.Outbound {
	return store.Outbound{QueueID: "Q1", From: info, ReturnPath: info, Origin: store.OriginSubmission,
		Recipients: []string{"a@remote.test", "B@Remote.TEST", "c@far.test", "a@remote.test"}, Message: []byte("Subject: hi\r\n\r\nbody\r\n")}
}

// enqueue queues outbound() and returns the ids (remote.test, far.test).
func (e *env) enqueue() []string {
	e.t.Helper()
	ids, err := e.s.Enqueue(e.t.Context(), outbound())
	testutil.Must(e.t, err)
	if len(ids) != 2 {
		e.t.Fatalf("queued %v, want one entry per domain", ids)
	}
	return ids
}

// due lists the ids of the entries due at now.
func (e *env) due(now time.Time) []string {
	e.t.Helper()
	es, err := e.s.QueueDue(e.t.Context(), now, 0)
	testutil.Must(e.t, err)
	var ids []string
	for _, x := range es {
		ids = append(ids, x.ID)
	}
	return ids
}

func (e *env) queueEntry(id string) store.QueueEntry {
	e.t.Helper()
	q, err := e.s.QueueEntry(e.t.Context(), id)
	testutil.Must(e.t, err)
	return q
}

// dsn is a bounce for info: a delivery to store with a settlement.
func dsn(i int) []store.Delivery {
	return []store.Delivery{{Recipients: []string{info}, Message: body(1000 + i)}}
}

// fail marks a recipient failed, refusing an entry where it is not
// pending any more: settling it twice does nothing the second time.
func fail(addr string) func(q *store.QueueEntry) error {
	return func(q *store.QueueEntry) error {
		for i := range q.Recipients {
			if r := &q.Recipients[i]; r.Addr == addr {
				if r.Status != store.RcptPending {
					return errSettled
				}
				r.Status, r.Error = store.RcptFailed, "550 no such user"
				q.Attempts++
				return nil
			}
		}
		return errors.New("no such recipient")
	}
}

var errSettled = errors.New("settled already")

// sameSet reports whether a and b hold the same ids.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func testEnqueue(t *testing.T, e *env) {
	ctx := t.Context()
	select { // drain a signal of earlier work
	case <-e.s.QueueChanged():
	default:
	}
	if _, ok, err := e.s.QueueNextAttempt(ctx); ok || err != nil {
		t.Fatalf("empty queue has a next attempt: %v %v", ok, err)
	}
	ids := e.enqueue()
	select {
	case <-e.s.QueueChanged():
	default:
		t.Error("QueueChanged not signalled")
	}
	all, err := e.s.QueueEntries(ctx)
	testutil.Must(t, err)
	if len(all) != 2 || !sameSet([]string{all[0].ID, all[1].ID}, ids) {
		t.Fatalf("entries %+v, want %v", all, ids)
	}
	o := outbound()
	for i, c := range []struct {
		domain string
		rcpts  []string
	}{{"remote.test", []string{"a@remote.test", "B@remote.test"}}, {"far.test", []string{"c@far.test"}}} {
		q := all[slices.IndexFunc(all, func(q store.QueueEntry) bool { return q.ID == ids[i] })]
		var rcpts []string
		for _, r := range q.Recipients {
			rcpts = append(rcpts, r.Addr)
			if r.Status != store.RcptPending || r.Error != "" {
				t.Errorf("new recipient %+v", r)
			}
		}
		if q.Domain != c.domain || !slices.Equal(rcpts, c.rcpts) || q.QueueID != o.QueueID || q.From != o.From || q.ReturnPath != o.ReturnPath ||
			q.Origin != o.Origin || q.Size != int64(len(o.Message)) || !q.Created.Equal(start) || !q.NextAttempt.Equal(start) || q.Attempts != 0 || q.LastError != "" {
			t.Errorf("entry %+v, want domain %s, recipients %v (domain lower-cased, duplicates dropped), created and due %v", q, c.domain, c.rcpts, start)
		}
		if got := e.queueEntry(q.ID); got.ID != q.ID || !slices.Equal(got.Recipients, q.Recipients) {
			t.Errorf("QueueEntry(%s) = %+v, QueueEntries says %+v", q.ID, got, q)
		}
		raw, qe, err := e.s.ReadQueued(ctx, q.ID)
		testutil.Must(t, err)
		if string(raw) != string(o.Message) || qe.ID != q.ID {
			t.Errorf("ReadQueued: %q %+v", raw, qe)
		}
		r, qe, err := e.s.OpenQueued(ctx, q.ID)
		testutil.Must(t, err)
		raw, err = io.ReadAll(r)
		testutil.Must(t, err)
		testutil.Must(t, r.Close())
		if string(raw) != string(o.Message) || qe.ID != q.ID {
			t.Errorf("OpenQueued: %q %+v", raw, qe)
		}
	}
	if next, ok, err := e.s.QueueNextAttempt(ctx); !ok || err != nil || !next.Equal(start) {
		t.Errorf("next attempt %v %v %v, want %v", next, ok, err, start)
	}
	// Several messages at once; a null sender.
	more, err := e.s.Enqueue(ctx, store.Outbound{Recipients: []string{"x@one.test"}, Origin: store.OriginDSN, Message: body(1)},
		store.Outbound{Recipients: []string{"y@two.test"}, Origin: store.OriginForward, Message: body(2)})
	testutil.Must(t, err)
	if len(more) != 2 || slices.Contains(ids, more[0]) || more[0] == more[1] {
		t.Fatalf("ids %v after %v", more, ids)
	}
	if q := e.queueEntry(more[0]); q.From != "" || q.Origin != store.OriginDSN {
		t.Errorf("null sender entry %+v", q)
	}
	if raw, _, _ := e.s.ReadQueued(ctx, more[1]); string(raw) != string(body(2)) {
		t.Errorf("second message of one Enqueue reads %q", raw)
	}
}

func testEnqueueErrors(t *testing.T, e *env) {
	enqueue := func(rcpts ...string) func(e *env) error {
		return func(e *env) error {
			_, err := e.s.Enqueue(e.t.Context(), store.Outbound{Recipients: rcpts, Message: body(1)})
			return err
		}
	}
	lookup := func(fn func(ctx context.Context, id string) error) func(e *env) error {
		return func(e *env) error { return fn(e.t.Context(), "nope") }
	}
	runErrCases(t, e, []errCase{
		{"no recipients", enqueue(), store.ErrInvalid},
		{"no domain", enqueue("x@remote.test", "nobody"), store.ErrInvalid},
		{"empty domain", enqueue("x@"), store.ErrInvalid},
		{"empty local part", enqueue("@remote.test"), store.ErrInvalid},
		{"entry", lookup(func(ctx context.Context, id string) error { _, err := e.s.QueueEntry(ctx, id); return err }), store.ErrNoSuchMessage},
		{"read", lookup(func(ctx context.Context, id string) error { _, _, err := e.s.ReadQueued(ctx, id); return err }), store.ErrNoSuchMessage},
		{"open", lookup(func(ctx context.Context, id string) error { _, _, err := e.s.OpenQueued(ctx, id); return err }), store.ErrNoSuchMessage},
		{"settle", lookup(func(ctx context.Context, id string) error {
			return e.s.SettleQueued(ctx, id, func(*store.QueueEntry) error { return nil }, dsn(0), nil)
		}), store.ErrNoSuchMessage},
	})
	if all, _ := e.s.QueueEntries(t.Context()); len(all) != 0 {
		t.Errorf("refused messages were queued: %+v", all)
	}
	if got := e.uids(info, "INBOX"); len(got) != 0 {
		t.Errorf("settling an unknown entry delivered its DSN")
	}
}

// QueueDue hands the same entries out until they are settled: it is a
// query, not a lease.
func testQueueDue(t *testing.T, e *env) {
	ctx := t.Context()
	ids := e.enqueue()
	e.clock.Advance(time.Minute)
	third, err := e.s.Enqueue(ctx, store.Outbound{From: info, Recipients: []string{"z@third.test"}, Message: body(3)})
	testutil.Must(t, err)
	now := e.clock.Now()
	all := append(slices.Clone(ids), third...)
	for i := range 3 {
		if got := e.due(now); len(got) != 3 || !sameSet(got[:2], ids) || got[2] != third[0] {
			t.Fatalf("QueueDue #%d: %v, want %v, earliest first", i+1, got, all)
		}
	}
	if got := e.due(start.Add(-time.Second)); len(got) != 0 {
		t.Errorf("due before they were queued: %v", got)
	}
	if got := e.due(start); !sameSet(got, ids) {
		t.Errorf("due at the first enqueue: %v, want %v", got, ids)
	}
	got, err := e.s.QueueDue(ctx, now, 1)
	testutil.Must(t, err)
	if len(got) != 1 || !slices.Contains(ids, got[0].ID) {
		t.Errorf("QueueDue(max 1) = %+v, want one of the earliest %v", got, ids)
	}
	// A temporary failure moves the next attempt on: not due until then.
	later := now.Add(time.Hour)
	testutil.Must(t, e.s.SettleQueued(ctx, ids[0], func(q *store.QueueEntry) error {
		q.Attempts++
		q.NextAttempt = later
		q.LastError = "451 try later"
		q.Recipients[1].Error = "451 try later"
		return nil
	}, nil, nil))
	if got := e.due(now); !slices.Equal(got, all[1:]) {
		t.Errorf("due after a deferral: %v, want %v, earliest first", got, all[1:])
	}
	if got := e.due(later); !slices.Equal(got, []string{ids[1], third[0], ids[0]}) {
		t.Errorf("due at the retry time: %v", got)
	}
	if q := e.queueEntry(ids[0]); q.Attempts != 1 || !q.NextAttempt.Equal(later) || q.LastError != "451 try later" || len(q.Pending()) != 2 {
		t.Errorf("deferred entry %+v", q)
	}
	// One recipient done: the entry stays, with the other.
	testutil.Must(t, e.s.SettleQueued(ctx, ids[1], func(q *store.QueueEntry) error {
		q.Recipients[0].Status = store.RcptSent
		q.NextAttempt = later.Add(time.Hour)
		return nil
	}, nil, nil))
	testutil.Must(t, e.s.SettleQueued(ctx, third[0], func(q *store.QueueEntry) error {
		q.NextAttempt = later.Add(-time.Minute)
		return nil
	}, nil, nil))
	if next, ok, err := e.s.QueueNextAttempt(ctx); !ok || err != nil || !next.Equal(later.Add(-time.Minute)) {
		t.Errorf("next attempt %v %v %v, want %v", next, ok, err, later.Add(-time.Minute))
	}
	if got := e.due(now); len(got) != 0 {
		t.Errorf("due after everything was deferred: %v", got)
	}
	// A settlement must not change an entry's id.
	testutil.Must(t, e.s.SettleQueued(ctx, ids[0], func(q *store.QueueEntry) error { q.ID = "other"; return nil }, nil, nil))
	if q := e.queueEntry(ids[0]); q.ID != ids[0] {
		t.Errorf("settlement renamed the entry to %s", q.ID)
	}
}

func testSettle(t *testing.T, e *env) {
	ctx := t.Context()
	ids := e.enqueue()
	used := e.account(info).Used
	// The last recipient fails: its DSN is delivered, a DSN to a remote
	// sender queued, and the entry removed, all in one.
	ret := store.Outbound{Origin: store.OriginDSN, Recipients: []string{"sender@remote.test"}, Message: body(7)}
	testutil.Must(t, e.s.SettleQueued(ctx, ids[1], fail("c@far.test"), dsn(1), []store.Outbound{ret}))
	if _, err := e.s.QueueEntry(ctx, ids[1]); !is(err, store.ErrNoSuchMessage) {
		t.Errorf("settled entry: %v", err)
	}
	if got := e.uids(info, "INBOX"); len(got) != 1 {
		t.Errorf("%d DSNs delivered, want 1", len(got))
	}
	if u := e.account(info).Used; u != used+int64(len(body(1001))) {
		t.Errorf("usage %d after a DSN, want %d", u, used+int64(len(body(1001))))
	}
	all, err := e.s.QueueEntries(ctx)
	testutil.Must(t, err)
	if len(all) != 2 || !slices.ContainsFunc(all, func(q store.QueueEntry) bool { return q.ID == ids[0] }) ||
		!slices.ContainsFunc(all, func(q store.QueueEntry) bool { return q.Origin == store.OriginDSN && q.Domain == "remote.test" }) {
		t.Errorf("queue after settling with a DSN: %+v, want %s and the DSN", all, ids[0])
	}
	// The sent and the failed recipient together end the entry.
	testutil.Must(t, e.s.SettleQueued(ctx, ids[0], func(q *store.QueueEntry) error {
		q.Recipients[0].Status = store.RcptSent
		q.Recipients[1].Status = store.RcptFailed
		return nil
	}, nil, nil))
	if _, err := e.s.QueueEntry(ctx, ids[0]); !is(err, store.ErrNoSuchMessage) {
		t.Errorf("entry with nothing pending: %v", err)
	}
	for _, id := range ids {
		if _, _, err := e.s.ReadQueued(ctx, id); !is(err, store.ErrNoSuchMessage) {
			t.Errorf("message of a settled entry: %v", err)
		}
	}
}

// Settling the same outcome twice stores it once: the entry is gone, or
// the settlement's function refuses.
func testSettleTwice(t *testing.T, e *env) {
	ctx := t.Context()
	ids := e.enqueue()
	// The last recipient of far.test: the entry goes; again, ErrNoSuchMessage.
	testutil.Must(t, e.s.SettleQueued(ctx, ids[1], fail("c@far.test"), dsn(1), nil))
	if err := e.s.SettleQueued(ctx, ids[1], fail("c@far.test"), dsn(1), nil); !is(err, store.ErrNoSuchMessage) {
		t.Errorf("settling a removed entry again: %v", err)
	}
	// One of two recipients of remote.test: the entry stays, and the
	// function sees the first settlement and refuses the second.
	testutil.Must(t, e.s.SettleQueued(ctx, ids[0], fail("a@remote.test"), dsn(2), nil))
	if err := e.s.SettleQueued(ctx, ids[0], fail("a@remote.test"), dsn(2), nil); !errors.Is(err, errSettled) {
		t.Errorf("settling twice: %v, want the function's refusal", err)
	}
	if got := e.uids(info, "INBOX"); len(got) != 2 {
		t.Errorf("%d DSNs delivered for 2 failures settled twice each", len(got))
	}
	if q := e.queueEntry(ids[0]); q.Attempts != 1 || len(q.Pending()) != 1 {
		t.Errorf("entry settled twice: %+v", q)
	}
}

// A settlement whose function fails, or whose DSN does not fit, stores
// nothing at all.
func testSettleRefused(t *testing.T, e *env) {
	ctx := t.Context()
	ids := e.enqueue()
	before := e.queueEntry(ids[0])
	ret := []store.Outbound{{Recipients: []string{"x@back.test"}, Message: body(1)}}
	boom := errors.New("boom")
	err := e.s.SettleQueued(ctx, ids[0], func(q *store.QueueEntry) error {
		q.Recipients[0].Status = store.RcptSent
		q.Attempts = 99
		return boom
	}, dsn(1), ret)
	if !errors.Is(err, boom) {
		t.Errorf("settle with a failing function: %v", err)
	}
	testutil.Must(t, e.s.SetQuota(ctx, info, 1))
	if err := e.s.SettleQueued(ctx, ids[0], fail("a@remote.test"), dsn(1), ret); !is(err, errQuota) {
		t.Errorf("settle with a DSN over quota: %v", err)
	}
	if err := e.s.SettleQueued(ctx, ids[0], fail("a@remote.test"), []store.Delivery{{Recipients: []string{"nobody@example.com"}, Message: body(1)}}, nil); !is(err, store.ErrNoSuchAccount) {
		t.Errorf("settle with a DSN to nobody: %v", err)
	}
	if _, err := e.s.Enqueue(ctx); !is(err, store.ErrInvalid) {
		t.Errorf("enqueue of nothing: %v", err)
	}
	if q := e.queueEntry(ids[0]); q.Attempts != before.Attempts || !slices.Equal(q.Recipients, before.Recipients) {
		t.Errorf("refused settlements changed %+v to %+v", before, q)
	}
	if all, _ := e.s.QueueEntries(ctx); len(all) != 2 {
		t.Errorf("refused settlements queued: %+v", all)
	}
	if got := e.uids(info, "INBOX"); len(got) != 0 {
		t.Errorf("refused settlements delivered %d DSNs", len(got))
	}
}

// Settlements racing on one entry, each outcome twice: every recipient
// fails once, with one DSN each, and the entry goes with the last.
func testSettleConcurrent(t *testing.T, e *env) {
	ctx := t.Context()
	var rcpts []string
	for _, c := range "abcdefgh" {
		rcpts = append(rcpts, string(c)+"@remote.test")
	}
	ids, err := e.s.Enqueue(ctx, store.Outbound{From: info, ReturnPath: info, Recipients: rcpts, Message: body(0)})
	testutil.Must(t, err)
	// Other writes race along, to share commits with the settlements.
	errs := parallel(3*len(rcpts), func(i int) error {
		switch i / len(rcpts) {
		case 0, 1:
			err := e.s.SettleQueued(ctx, ids[0], fail(rcpts[i%len(rcpts)]), dsn(i%len(rcpts)), nil)
			if errors.Is(err, errSettled) || is(err, store.ErrNoSuchMessage) {
				return nil
			}
			return err
		default:
			_, err := e.s.Deliver(ctx, store.Delivery{Recipients: []string{bob}, Message: body(i)})
			return err
		}
	})
	for _, err := range errs {
		testutil.Must(t, err)
	}
	if _, err := e.s.QueueEntry(ctx, ids[0]); !is(err, store.ErrNoSuchMessage) {
		t.Errorf("entry with every recipient failed: %v", err)
	}
	msgs, _, err := e.s.Messages(ctx, info, "INBOX")
	testutil.Must(t, err)
	if len(msgs) != len(rcpts) {
		t.Errorf("%d DSNs delivered, want %d", len(msgs), len(rcpts))
	}
	if got := e.uids(bob, "INBOX"); len(got) != len(rcpts) {
		t.Errorf("%d of the racing deliveries stored, want %d", len(got), len(rcpts))
	}
}

func testRetryDrop(t *testing.T, e *env) {
	ctx := t.Context()
	ids := e.enqueue()
	defer1 := func(id string) {
		t.Helper()
		testutil.Must(t, e.s.SettleQueued(ctx, id, func(q *store.QueueEntry) error { q.NextAttempt = start.Add(time.Hour); return nil }, nil, nil))
	}
	defer1(ids[0])
	defer1(ids[1])
	e.clock.Advance(time.Minute)
	now := e.clock.Now()
	if got := e.due(now); len(got) != 0 {
		t.Fatalf("due: %v", got)
	}
	// Retry makes an entry due now (the store's clock).
	if n, err := e.s.RetryQueued(ctx, ids[1:]); n != 1 || err != nil {
		t.Fatalf("retry one: %d %v", n, err)
	}
	if got := e.due(now); !slices.Equal(got, ids[1:]) {
		t.Errorf("due after retry: %v", got)
	}
	if q := e.queueEntry(ids[1]); !q.NextAttempt.Equal(now) {
		t.Errorf("retried entry's next attempt %v, want %v", q.NextAttempt, now)
	}
	// Unknown ids: refused, nothing changed.
	defer1(ids[1])
	if _, err := e.s.RetryQueued(ctx, []string{ids[0], "nope"}); !is(err, store.ErrNoSuchMessage) {
		t.Errorf("retry with an unknown id: %v", err)
	}
	if _, err := e.s.DropQueued(ctx, []string{ids[0], "nope"}); !is(err, store.ErrNoSuchMessage) {
		t.Errorf("drop with an unknown id: %v", err)
	}
	if got := e.due(now); len(got) != 0 {
		t.Errorf("a refused retry made %v due", got)
	}
	if all, _ := e.s.QueueEntries(ctx); len(all) != 2 {
		t.Errorf("a refused drop dropped: %+v", all)
	}
	// Every entry, when no ids are given.
	if n, err := e.s.RetryQueued(ctx, nil); n != 2 || err != nil {
		t.Errorf("retry all: %d %v", n, err)
	}
	if got := e.due(now); len(got) != 2 {
		t.Errorf("due after retrying all: %v", got)
	}
	// An id named twice is one entry: the other entry, which shares the
	// message, stays whole.
	if n, err := e.s.DropQueued(ctx, []string{ids[0], ids[0]}); n != 1 || err != nil {
		t.Errorf("drop one entry named twice: %d %v", n, err)
	}
	e.check()
	if raw, _, err := e.s.ReadQueued(ctx, ids[1]); err != nil || string(raw) != string(outbound().Message) {
		t.Errorf("the other entry of the message after a drop: %q %v", raw, err)
	}
	if n, err := e.s.RetryQueued(ctx, []string{ids[1], ids[1]}); n != 1 || err != nil {
		t.Errorf("retry one entry named twice: %d %v", n, err)
	}
	e.enqueue()
	if n, err := e.s.DropQueued(ctx, nil); n != 3 || err != nil {
		t.Errorf("drop all: %d %v", n, err)
	}
	if all, _ := e.s.QueueEntries(ctx); len(all) != 0 {
		t.Errorf("left after dropping all: %+v", all)
	}
	if _, ok, _ := e.s.QueueNextAttempt(ctx); ok {
		t.Error("an empty queue has a next attempt")
	}
	if err := e.s.SettleQueued(ctx, ids[1], func(*store.QueueEntry) error { return nil }, dsn(0), nil); !is(err, store.ErrNoSuchMessage) {
		t.Errorf("settle a dropped entry: %v", err)
	}
}

// Local copies and outbound ones in one transaction: all or nothing.
func testDeliverAndQueue(t *testing.T, e *env) {
	ctx := t.Context()
	msg := []byte("Subject: both\r\n\r\nx\r\n")
	d, ids, err := e.s.DeliverAndQueue(ctx, []store.Delivery{{Recipients: []string{info}, Message: msg}},
		[]store.Outbound{{From: info, Recipients: []string{"a@remote.test", "b@far.test"}, Message: msg}})
	testutil.Must(t, err)
	if len(d) != 1 || len(ids) != 2 {
		t.Fatalf("delivered %+v, queued %v", d, ids)
	}
	// Over quota: nothing queued either.
	big := make([]byte, fixtureQuota+1)
	_, _, err = e.s.DeliverAndQueue(ctx, []store.Delivery{{Recipients: []string{bob}, Message: big}},
		[]store.Outbound{{From: bob, Recipients: []string{"x@remote.test"}, Message: big}})
	if !is(err, errQuota) {
		t.Fatalf("deliver and queue over quota: %v", err)
	}
	// A bad outbound recipient: nothing delivered either.
	_, _, err = e.s.DeliverAndQueue(ctx, []store.Delivery{{Recipients: []string{bob}, Message: msg}},
		[]store.Outbound{{From: bob, Recipients: []string{"nodomain"}, Message: msg}})
	if !is(err, store.ErrInvalid) {
		t.Fatalf("deliver and queue to a bad address: %v", err)
	}
	if all, _ := e.s.QueueEntries(ctx); len(all) != 2 {
		t.Errorf("queue holds %+v", all)
	}
	if a := e.account(bob); a.Used != 0 {
		t.Errorf("bob got %d bytes of failed transactions", a.Used)
	}
	// Only local, only remote.
	if d, ids, err := e.s.DeliverAndQueue(ctx, []store.Delivery{{Recipients: []string{bob}, Message: msg}}, nil); len(d) != 1 || len(ids) != 0 || err != nil {
		t.Errorf("local only: %v %v %v", d, ids, err)
	}
	if d, ids, err := e.s.DeliverAndQueue(ctx, nil, []store.Outbound{{Recipients: []string{"q@remote.test"}, Message: msg}}); len(d) != 0 || len(ids) != 1 || err != nil {
		t.Errorf("remote only: %v %v %v", d, ids, err)
	}
	if _, _, err := e.s.DeliverAndQueue(ctx, nil, nil); !is(err, store.ErrInvalid) {
		t.Errorf("nothing: %v", err)
	}
}

func testQueueRestart(t *testing.T, e *env) {
	ctx := t.Context()
	ids := e.enqueue()
	later := start.Add(time.Hour)
	testutil.Must(t, e.s.SettleQueued(ctx, ids[0], func(q *store.QueueEntry) error {
		q.Recipients[0].Status = store.RcptSent
		q.Recipients[1].Error = "451 later"
		q.Attempts++
		q.NextAttempt = later
		return nil
	}, nil, nil))
	before, err := e.s.QueueEntries(ctx)
	testutil.Must(t, err)
	e.restart()
	after, err := e.s.QueueEntries(ctx)
	testutil.Must(t, err)
	if len(after) != len(before) {
		t.Fatalf("after restart %+v, before %+v", after, before)
	}
	for i := range before {
		b, a := before[i], after[i]
		if a.ID != b.ID || !slices.Equal(a.Recipients, b.Recipients) || a.Attempts != b.Attempts || !a.NextAttempt.Equal(b.NextAttempt) || !a.Created.Equal(b.Created) {
			t.Errorf("entry after restart %+v, before %+v", a, b)
		}
	}
	if got := e.due(start); !slices.Equal(got, ids[1:]) {
		t.Errorf("due after restart: %v", got)
	}
	if raw, _, err := e.s.ReadQueued(ctx, ids[0]); err != nil || string(raw) != string(outbound().Message) {
		t.Errorf("message after restart: %q %v", raw, err)
	}
	if q := e.queueEntry(ids[0]); q.Pending()[0] != "B@remote.test" {
		t.Errorf("pending after restart: %v", q.Pending())
	}
}

// A lease hands an entry to one holder: not due for anyone else until it
// ends (the holder died), the attempt is settled, or the holder releases it.
func testLease(t *testing.T, e *env) {
	ctx := t.Context()
	ids := e.enqueue()
	now := e.clock.Now()
	until := now.Add(10 * time.Minute)
	got, err := e.s.LeaseQueued(ctx, append(ids, ids[0], "no-such-id"), "node-a", now, until)
	testutil.Must(t, err)
	if len(got) != 2 || !sameSet([]string{got[0].ID, got[1].ID}, ids) {
		t.Fatalf("leased %+v, want %v once each", got, ids)
	}
	if q := e.queueEntry(ids[0]); q.LeaseHolder != "node-a" || !q.LeaseUntil.Equal(until) {
		t.Errorf("entry after lease: holder %q until %v", q.LeaseHolder, q.LeaseUntil)
	}
	if d := e.due(now); len(d) != 0 {
		t.Errorf("leased entries still due: %v", d)
	}
	if other, err := e.s.LeaseQueued(ctx, ids, "node-b", now, until); err != nil || len(other) != 0 {
		t.Errorf("another node leased %+v (%v)", other, err)
	}
	// The holder may renew its own lease.
	if again, err := e.s.LeaseQueued(ctx, ids[:1], "node-a", now, until.Add(time.Minute)); err != nil || len(again) != 1 {
		t.Errorf("renewing: %+v %v", again, err)
	}
	// Settling ends the lease: the entry is due at its next attempt.
	next := now.Add(5 * time.Minute)
	testutil.Must(t, e.s.SettleQueued(ctx, ids[0], func(q *store.QueueEntry) error {
		q.Attempts++
		q.NextAttempt = next
		return nil
	}, nil, nil))
	if q := e.queueEntry(ids[0]); q.LeaseHolder != "" || !q.LeaseUntil.IsZero() {
		t.Errorf("settled entry still leased: %q %v", q.LeaseHolder, q.LeaseUntil)
	}
	if d := e.due(next); len(d) != 1 || d[0] != ids[0] {
		t.Errorf("due at the next attempt: %v, want [%s] (the other is still leased)", d, ids[0])
	}
	// Releasing by another holder does nothing; by the holder ends it.
	testutil.Must(t, e.s.ReleaseQueued(ctx, ids[1:], "node-b"))
	if d := e.due(now); len(d) != 0 {
		t.Errorf("released by a stranger: due %v", d)
	}
	testutil.Must(t, e.s.ReleaseQueued(ctx, ids[1:], "node-a"))
	if d := e.due(now); len(d) != 1 || d[0] != ids[1] {
		t.Errorf("after release: due %v, want [%s]", d, ids[1])
	}
	// A lease that ended (its holder died) lets another node claim it.
	_, err = e.s.LeaseQueued(ctx, ids[1:], "node-a", now, now.Add(time.Minute))
	testutil.Must(t, err)
	e.clock.Advance(2 * time.Minute)
	if got, err := e.s.LeaseQueued(ctx, ids[1:], "node-b", e.clock.Now(), e.clock.Now().Add(time.Minute)); err != nil || len(got) != 1 {
		t.Errorf("claiming an expired lease: %+v %v", got, err)
	}
	// A lease needs a holder and a future end.
	if _, err := e.s.LeaseQueued(ctx, ids, "", now, until); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("lease without a holder: %v", err)
	}
	if _, err := e.s.LeaseQueued(ctx, ids, "x", now, now); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("lease ending now: %v", err)
	}
}

// RenewLeases extends the leases the holder still holds and names them;
// a lease another holder claimed after it ended, one ended by settling or
// releasing, and one on an entry that is gone are not renewed.
func testRenewLeases(t *testing.T, e *env) {
	ctx := t.Context()
	var ids []string
	for range 3 {
		ids = append(ids, e.enqueue()...)
	}
	now := e.clock.Now()
	_, err := e.s.LeaseQueued(ctx, ids, "node-a", now, now.Add(time.Minute))
	testutil.Must(t, err)
	holder := func(id string) (string, time.Time) {
		q := e.queueEntry(id)
		return q.LeaseHolder, q.LeaseUntil
	}

	// Renewing extends every lease still held, and says which.
	later := now.Add(3 * time.Minute)
	kept, err := e.s.RenewLeases(ctx, append(ids, ids[0], "no-such-id"), "node-a", later)
	testutil.Must(t, err)
	if !slices.Equal(kept, ids) {
		t.Fatalf("renewed %v, want %v in order, once each", kept, ids)
	}
	for _, id := range ids {
		if h, u := holder(id); h != "node-a" || !u.Equal(later) {
			t.Errorf("%s after renewal: held by %q until %v, want node-a until %v", id, h, u, later)
		}
	}
	// Renewed, the lease outlasts its first end: nobody else claims it then.
	e.clock.Advance(2 * time.Minute)
	if got, err := e.s.LeaseQueued(ctx, ids, "node-b", e.clock.Now(), e.clock.Now().Add(time.Minute)); err != nil || len(got) != 0 {
		t.Errorf("node-b claimed renewed leases: %+v %v", got, err)
	}
	if d := e.due(e.clock.Now()); len(d) != 0 {
		t.Errorf("renewed leases due: %v", d)
	}

	// Another holder renews nothing, and changes nothing.
	if kept, err := e.s.RenewLeases(ctx, ids, "node-b", later.Add(time.Hour)); err != nil || len(kept) != 0 {
		t.Errorf("node-b renewed node-a's leases: %v %v", kept, err)
	}
	if h, u := holder(ids[0]); h != "node-a" || !u.Equal(later) {
		t.Errorf("after a stranger's renewal: held by %q until %v", h, u)
	}

	// The lease of ids[0] ends and node-b claims the entry: node-a's
	// renewal does not take it back. ids[1] ended too, but nobody claimed
	// it: it is still node-a's, and renewed (nobody else delivered it).
	e.clock.Advance(2 * time.Minute) // past later
	now = e.clock.Now()
	if got, err := e.s.LeaseQueued(ctx, ids[:1], "node-b", now, now.Add(time.Minute)); err != nil || len(got) != 1 {
		t.Fatalf("node-b claiming an ended lease: %+v %v", got, err)
	}
	// ids[2] is settled with a recipient left (the lease ends with the
	// attempt); ids[3] is settled with none left (the entry is gone);
	// ids[4] is released; ids[5] is dropped.
	testutil.Must(t, e.s.SettleQueued(ctx, ids[2], func(q *store.QueueEntry) error {
		q.Attempts++
		q.NextAttempt = now.Add(time.Hour)
		return nil
	}, nil, nil))
	testutil.Must(t, e.s.SettleQueued(ctx, ids[3], func(q *store.QueueEntry) error {
		for i := range q.Recipients {
			q.Recipients[i].Status = store.RcptSent
		}
		return nil
	}, nil, nil))
	testutil.Must(t, e.s.ReleaseQueued(ctx, ids[4:5], "node-a"))
	if _, err := e.s.DropQueued(ctx, ids[5:6]); err != nil {
		t.Fatal(err)
	}
	end := now.Add(2 * time.Minute)
	kept, err = e.s.RenewLeases(ctx, ids, "node-a", end)
	testutil.Must(t, err)
	if !slices.Equal(kept, ids[1:2]) {
		t.Errorf("renewed %v, want only %s (the others reclaimed, settled, gone, released, dropped)", kept, ids[1])
	}
	if h, u := holder(ids[0]); h != "node-b" || !u.Equal(now.Add(time.Minute)) {
		t.Errorf("reclaimed entry after node-a's renewal: held by %q until %v, want node-b's lease", h, u)
	}
	if h, u := holder(ids[1]); h != "node-a" || !u.Equal(end) {
		t.Errorf("unclaimed ended lease after renewal: held by %q until %v, want node-a until %v", h, u, end)
	}
	for _, id := range []string{ids[2], ids[4]} {
		if h, u := holder(id); h != "" || !u.IsZero() {
			t.Errorf("%s: an ended lease was renewed: held by %q until %v", id, h, u)
		}
	}
	if _, err := e.s.QueueEntry(ctx, ids[3]); !errors.Is(err, store.ErrNoSuchMessage) {
		t.Errorf("delivered entry: %v", err)
	}
	// ids[4] is due for anyone, as released; node-a's renewal did not
	// hide it.
	if d := e.due(now); !slices.Contains(d, ids[4]) || slices.Contains(d, ids[1]) {
		t.Errorf("due after renewal: %v, want %s and not %s", d, ids[4], ids[1])
	}
	// A renewal needs a holder and an end.
	if _, err := e.s.RenewLeases(ctx, ids, "", end); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("renewal without a holder: %v", err)
	}
	if _, err := e.s.RenewLeases(ctx, ids, "node-a", time.Time{}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("renewal without an end: %v", err)
	}
}

// RecordSent marks recipients sent and changes nothing else: a node whose
// lease ended mid-attempt records what the remote accepted without ending
// the lease of the node that claimed the entry after it.
func testRecordSent(t *testing.T, e *env) {
	ctx := t.Context()
	ids, err := e.s.Enqueue(ctx, store.Outbound{QueueID: "Q2", From: info, ReturnPath: info, Origin: store.OriginSubmission,
		Recipients: []string{"x@remote.test", "y@remote.test", "z@remote.test"}, Message: []byte("Subject: hi\r\n\r\nbody\r\n")})
	testutil.Must(t, err)
	id := ids[0]
	testutil.Must(t, e.s.SettleQueued(ctx, id, fail("z@remote.test"), nil, nil))
	e.clock.Advance(time.Hour) // the failure's next attempt is whatever it was: due now
	now := e.clock.Now()
	until := now.Add(time.Minute)
	if got, err := e.s.LeaseQueued(ctx, []string{id}, "node-b", now, until); err != nil || len(got) != 1 {
		t.Fatalf("node-b claiming: %+v %v", got, err)
	}
	before := e.queueEntry(id)

	// node-a's record: x accepted (z, failed already, stays failed; an
	// address not on the entry changes nothing).
	testutil.Must(t, e.s.RecordSent(ctx, id, []string{"x@remote.test", "z@remote.test", "w@remote.test"}))
	q := e.queueEntry(id)
	want := []store.QueueRecipient{{Addr: "x@remote.test", Status: store.RcptSent}, {Addr: "y@remote.test"},
		{Addr: "z@remote.test", Status: store.RcptFailed, Error: "550 no such user"}}
	if !slices.Equal(q.Recipients, want) {
		t.Errorf("recipients after RecordSent: %+v, want %+v", q.Recipients, want)
	}
	if q.LeaseHolder != "node-b" || !q.LeaseUntil.Equal(until) {
		t.Errorf("node-b's lease after RecordSent: held by %q until %v, want node-b until %v", q.LeaseHolder, q.LeaseUntil, until)
	}
	if !q.NextAttempt.Equal(before.NextAttempt) || q.Attempts != before.Attempts || q.LastError != before.LastError {
		t.Errorf("RecordSent changed the schedule: %+v, was %+v", q, before)
	}
	// The lease holds as before: not due, nobody else claims it, node-b
	// renews it.
	if d := e.due(now); slices.Contains(d, id) {
		t.Errorf("leased entry due after RecordSent: %v", d)
	}
	if got, err := e.s.LeaseQueued(ctx, []string{id}, "node-c", now, until); err != nil || len(got) != 0 {
		t.Errorf("node-c claimed node-b's entry after RecordSent: %+v %v", got, err)
	}
	if kept, err := e.s.RenewLeases(ctx, []string{id}, "node-b", until.Add(time.Minute)); err != nil || !slices.Equal(kept, []string{id}) {
		t.Errorf("node-b's renewal after RecordSent: %v %v", kept, err)
	}

	// The last pending recipient recorded: the entry is gone, and with it
	// the message; again, ErrNoSuchMessage.
	testutil.Must(t, e.s.RecordSent(ctx, id, []string{"y@remote.test"}))
	if _, err := e.s.QueueEntry(ctx, id); !is(err, store.ErrNoSuchMessage) {
		t.Errorf("entry with nothing pending: %v", err)
	}
	if _, _, err := e.s.ReadQueued(ctx, id); !is(err, store.ErrNoSuchMessage) {
		t.Errorf("message of a finished entry: %v", err)
	}
	if err := e.s.RecordSent(ctx, id, []string{"y@remote.test"}); !is(err, store.ErrNoSuchMessage) {
		t.Errorf("RecordSent on a removed entry: %v", err)
	}
}

// A renewal racing with another node's claim of the ended lease: the
// entry ends up with one holder, and the renewal says so truthfully.
func testRenewAgainstClaim(t *testing.T, e *env) {
	ctx := context.WithoutCancel(t.Context())
	var ids []string
	for range 10 {
		ids = append(ids, e.enqueue()...)
	}
	now := e.clock.Now()
	_, err := e.s.LeaseQueued(ctx, ids, "node-a", now, now.Add(time.Minute))
	testutil.Must(t, err)
	e.clock.Advance(2 * time.Minute)
	now = e.clock.Now()
	var kept []string
	var claimed []store.QueueEntry
	var errA, errB error
	done := make(chan struct{})
	go func() {
		defer func() { done <- struct{}{} }()
		kept, errA = e.s.RenewLeases(ctx, ids, "node-a", now.Add(time.Minute))
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		claimed, errB = e.s.LeaseQueued(ctx, ids, "node-b", now, now.Add(time.Minute))
	}()
	<-done
	<-done
	testutil.Must(t, errA)
	testutil.Must(t, errB)
	for _, id := range ids {
		a := slices.Contains(kept, id)
		b := slices.ContainsFunc(claimed, func(q store.QueueEntry) bool { return q.ID == id })
		h := e.queueEntry(id).LeaseHolder
		switch {
		case a && b:
			t.Errorf("%s renewed by node-a and claimed by node-b", id)
		case a && h != "node-a", b && h != "node-b":
			t.Errorf("%s: renewed %v, claimed %v, but held by %q", id, a, b, h)
		case !a && !b:
			// node-b skips a row node-a's renewal holds, and node-a's
			// renewal renews every row node-b did not take.
			t.Errorf("%s: neither renewed nor claimed (held by %q)", id, h)
		}
	}
}

// Many nodes claiming the same entries at once: each entry goes to one.
func testLeaseConcurrent(t *testing.T, e *env) {
	ctx := t.Context()
	var ids []string
	for range 5 {
		ids = append(ids, e.enqueue()...)
	}
	now := e.clock.Now()
	const nodes = 8
	got := make([][]store.QueueEntry, nodes)
	errs := make([]error, nodes)
	done := make(chan struct{})
	for i := range nodes {
		go func() {
			defer func() { done <- struct{}{} }()
			got[i], errs[i] = e.s.LeaseQueued(context.WithoutCancel(ctx), ids, string(rune('a'+i)), now, now.Add(time.Hour))
		}()
	}
	for range nodes {
		<-done
	}
	owner := map[string]int{}
	for i := range nodes {
		testutil.Must(t, errs[i])
		for _, q := range got[i] {
			if prev, ok := owner[q.ID]; ok {
				t.Errorf("entry %s leased to %d and %d", q.ID, prev, i)
			}
			owner[q.ID] = i
		}
	}
	if len(owner) != len(ids) {
		t.Errorf("%d of %d entries leased", len(owner), len(ids))
	}
}

// QueueStats counts the entries and names the oldest one's creation,
// whatever order they were queued, settled and dropped in.
func testQueueStats(t *testing.T, e *env) {
	ctx := t.Context()
	stats := func(wantN int, wantOldest time.Time) {
		t.Helper()
		n, oldest, err := e.s.QueueStats(ctx)
		testutil.Must(t, err)
		if n != wantN || !oldest.Equal(wantOldest) {
			t.Errorf("QueueStats = %d, %v; want %d, %v", n, oldest, wantN, wantOldest)
		}
		if all, _ := e.s.QueueEntries(ctx); len(all) != n {
			t.Errorf("QueueStats counts %d entries, QueueEntries lists %d", n, len(all))
		}
	}
	stats(0, time.Time{})
	first := e.enqueue() // at start, two domains
	stats(2, start)
	e.clock.Advance(time.Hour)
	later, err := e.s.Enqueue(ctx, store.Outbound{QueueID: "Q0", From: info, ReturnPath: info, Origin: store.OriginSubmission,
		Recipients: []string{"z@late.test"}, Message: []byte("Subject: later\r\n\r\nbody\r\n")})
	testutil.Must(t, err)
	stats(3, start) // "Q0" sorts before "Q1": the oldest is not the first key
	// An attempt that defers changes nothing; one that sends removes.
	testutil.Must(t, e.s.SettleQueued(ctx, first[0], func(q *store.QueueEntry) error {
		q.Attempts++
		q.NextAttempt = start.Add(2 * time.Hour)
		return nil
	}, nil, nil))
	stats(3, start)
	if n, err := e.s.DropQueued(ctx, first); n != 2 || err != nil {
		t.Fatalf("DropQueued = %d, %v", n, err)
	}
	stats(1, start.Add(time.Hour))
	e.restart()
	stats(1, start.Add(time.Hour))
	if n, err := e.s.DropQueued(ctx, later); n != 1 || err != nil {
		t.Fatalf("DropQueued = %d, %v", n, err)
	}
	stats(0, time.Time{})
}
