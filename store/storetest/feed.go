package storetest

import (
	"fmt"
	"slices"
	"testing"

	"yubin/internal/testutil"
	"yubin/store"
)

// The change feed: every committed change to an account's mailboxes, in
// commit order, on the feed by the time the write returns (IMAP answers
// its own STORE from it).
var feedTests = []test{
	{"events", testFeedEvents},
	{"per account", testFeedPerAccount},
	{"commit order", testFeedCommitOrder},
	{"overflow", testFeedOverflow},
	{"close", testFeedClose},
}

func testFeedEvents(t *testing.T, e *env) {
	ctx := t.Context()
	sub := e.s.Subscribe(ctx, "INFO@example.com", 64)
	defer sub.Close()
	inbox := e.mailbox(info, "INBOX")
	_, err := e.s.Deliver(ctx, store.Delivery{Recipients: []string{info}, Flags: []string{`\Draft`}, Message: body(1)})
	testutil.Must(t, err)
	e.deliver(info, "", body(2))
	_, err = e.s.SetFlags(ctx, info, "INBOX", []uint32{1, 2}, store.FlagsAdd, []string{`\Seen`})
	testutil.Must(t, err)
	_, err = e.s.Expunge(ctx, info, "INBOX", []uint32{2})
	testutil.Must(t, err)
	_, err = e.s.CreateMailbox(ctx, info, "Work")
	testutil.Must(t, err)
	work := e.deliver(info, "Work", body(3))
	testutil.Must(t, e.s.DeleteMailbox(ctx, info, "Work"))
	want := []store.Event{
		{Kind: store.EventNew, Account: info, Mailbox: "INBOX", UIDValidity: inbox.UIDValidity, UID: 1, Flags: []string{`\Draft`}},
		{Kind: store.EventNew, Account: info, Mailbox: "INBOX", UIDValidity: inbox.UIDValidity, UID: 2},
		{Kind: store.EventFlags, Account: info, Mailbox: "INBOX", UIDValidity: inbox.UIDValidity, UID: 1, Flags: []string{`\Draft`, `\Seen`}},
		{Kind: store.EventFlags, Account: info, Mailbox: "INBOX", UIDValidity: inbox.UIDValidity, UID: 2, Flags: []string{`\Seen`}},
		{Kind: store.EventExpunge, Account: info, Mailbox: "INBOX", UIDValidity: inbox.UIDValidity, UID: 2},
		{Kind: store.EventNew, Account: info, Mailbox: "Work", UIDValidity: work.UIDValidity, UID: 1},
		{Kind: store.EventExpunge, Account: info, Mailbox: "Work", UIDValidity: work.UIDValidity, UID: 1},
	}
	got := drain(sub)
	if len(got) != len(want) {
		t.Fatalf("events %v, want %v", show(got), show(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Kind != w.Kind || g.Account != w.Account || g.Mailbox != w.Mailbox || g.UIDValidity != w.UIDValidity || g.UID != w.UID ||
			w.Kind != store.EventExpunge && fmt.Sprint(g.Flags) != fmt.Sprint(w.Flags) {
			t.Errorf("event %d: %+v, want %+v", i, g, w)
		}
	}
}

func testFeedPerAccount(t *testing.T, e *env) {
	ctx := t.Context()
	subs := map[string]*store.Subscription{}
	for _, a := range []string{info, bob, carol} {
		subs[a] = e.s.Subscribe(ctx, a, 64)
		defer subs[a].Close()
	}
	twice := e.s.Subscribe(ctx, bob, 64)
	defer twice.Close()
	_, err := e.s.Deliver(ctx, store.Delivery{Recipients: []string{info, bob}, Message: body(1)})
	testutil.Must(t, err)
	e.deliver(bob, "Junk", body(2))
	for a, want := range map[string][]string{info: {"new INBOX 1"}, bob: {"new INBOX 1", "new Junk 1"}, carol: nil} {
		if got := show(drain(subs[a])); !slices.Equal(got, want) {
			t.Errorf("%s's events: %v, want %v", a, got, want)
		}
	}
	if got := show(drain(twice)); len(got) != 2 {
		t.Errorf("a second subscription to bob got %v", got)
	}
}

// Writers racing on one account: replaying the feed gives the mailboxes
// as they are, which holds only if the events came in commit order.
func testFeedCommitOrder(t *testing.T, e *env) {
	ctx := t.Context()
	testutil.Must(t, e.s.SetQuota(ctx, info, 0))
	sub := e.s.Subscribe(ctx, info, 1<<12)
	defer sub.Close()
	const writers, rounds = 8, 12
	errs := parallel(writers, func(w int) error {
		for r := range rounds {
			box := []string{"INBOX", "Junk"}[r%2]
			d, err := e.s.Deliver(ctx, store.Delivery{Recipients: []string{info}, Mailbox: box, Message: body(w*rounds + r)})
			if err != nil {
				return err
			}
			uid := []uint32{d[0].UID}
			if _, err := e.s.SetFlags(ctx, info, box, uid, store.FlagsAdd, []string{fmt.Sprintf("$w%d", w)}); err != nil {
				return err
			}
			switch r % 4 {
			case 1:
				_, err = e.s.Expunge(ctx, info, box, uid)
			case 2:
				_, err = e.s.MoveMessages(ctx, info, box, "Trash", uid)
			case 3:
				_, err = e.s.SetFlags(ctx, info, box, uid, store.FlagsReplace, []string{`\Seen`})
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	for _, err := range errs {
		testutil.Must(t, err)
	}
	if sub.Overflowed() {
		t.Fatal("a feed with room for every event overflowed")
	}
	m := newModel()
	m.subs = []*store.Subscription{sub}
	m.drain(t)
	boxes, err := e.s.Mailboxes(ctx, info)
	testutil.Must(t, err)
	for _, b := range boxes {
		msgs, meta, err := e.s.Messages(ctx, info, b.Name)
		testutil.Must(t, err)
		m.compare(t, info, meta, msgs)
	}
}

func testFeedOverflow(t *testing.T, e *env) {
	ctx := t.Context()
	sub := e.s.Subscribe(ctx, info, 2)
	defer sub.Close()
	if sub.Overflowed() {
		t.Fatal("overflowed before any event")
	}
	e.deliverN(info, "", 5)
	if got := show(drain(sub)); !slices.Equal(got, []string{"new INBOX 1", "new INBOX 2"}) {
		t.Errorf("a full subscription holds %v, want the first 2 events", got)
	}
	if !sub.Overflowed() {
		t.Error("dropped events, but Overflowed is false")
	}
	if sub.Overflowed() {
		t.Error("Overflowed did not clear")
	}
	e.deliver(info, "", body(6))
	if got := show(drain(sub)); !slices.Equal(got, []string{"new INBOX 6"}) {
		t.Errorf("after an overflow: %v", got)
	}
	if sub.Overflowed() {
		t.Error("overflowed again without dropping")
	}
}

func testFeedClose(t *testing.T, e *env) {
	ctx := t.Context()
	sub := e.s.Subscribe(ctx, info, 8)
	e.deliver(info, "", body(1))
	sub.Close()
	e.deliver(info, "", body(2))
	for range 2 {
		if _, ok := <-sub.C; !ok {
			return
		}
	}
	t.Error("a closed subscription's channel is not closed")
}
