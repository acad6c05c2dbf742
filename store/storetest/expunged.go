package storetest

import (
	"slices"
	"testing"
	"time"

	"yubin/internal/testutil"
	"yubin/store"
)

// Expunged (QRESYNC's VANISHED, RFC 7162 3.2.5.1): the UIDs expunged from
// a mailbox since a mod-sequence; exactly those while the mailbox
// remembers them, and when it no longer does, a superset that holds no UID
// still there. env.check also holds every subtest's Expunged(0) against
// the expunges its change feed told.
var expungedTests = []test{
	{"since", testExpungedSince},
	{"move", testExpungedMove},
	{"rename", testExpungedRename},
	{"delete mailbox", testExpungedDeleteMailbox},
	{"restart", testExpungedRestart},
	{"forgotten", testExpungedForgotten},
}

// expunged is Expunged, failing the test on an error.
func (e *env) expunged(account, box string, since uint64) []uint32 {
	e.t.Helper()
	uids, err := e.s.Expunged(e.t.Context(), account, box, since)
	testutil.Must(e.t, err)
	return uids
}

func testExpungedSince(t *testing.T, e *env) {
	ctx := t.Context()
	uids := e.deliverN(info, "", 7)
	m0 := e.mailbox(info, "INBOX").HighestModSeq
	_, err := e.s.Expunge(ctx, info, "INBOX", uids[1:2])
	testutil.Must(t, err)
	m1 := e.mailbox(info, "INBOX").HighestModSeq
	// Flag changes and deliveries between expunges are no expunges.
	_, err = e.s.SetFlags(ctx, info, "INBOX", uids[:1], store.FlagsAdd, []string{`\Seen`})
	testutil.Must(t, err)
	e.deliver(info, "", body(8))
	mc := e.mailbox(info, "INBOX").HighestModSeq
	_, err = e.s.Expunge(ctx, info, "INBOX", []uint32{uids[5], uids[3], 99})
	testutil.Must(t, err)
	m2 := e.mailbox(info, "INBOX").HighestModSeq
	_, err = e.s.Expunge(ctx, info, "INBOX", uids[6:7])
	testutil.Must(t, err)
	m3 := e.mailbox(info, "INBOX").HighestModSeq
	for _, c := range []struct {
		since uint64
		want  []uint32
	}{
		{0, []uint32{2, 4, 6, 7}},
		{m0, []uint32{2, 4, 6, 7}},
		{m1, []uint32{4, 6, 7}},
		{m1 + 1, []uint32{4, 6, 7}},
		{mc, []uint32{4, 6, 7}}, // before the call that expunged two
		{m2, []uint32{7}},
		{m3, nil},
		{m3 + 100, nil},
	} {
		if got := e.expunged(info, "INBOX", c.since); !slices.Equal(got, c.want) {
			t.Errorf("Expunged since %d (expunges at %d, %d, %d): %v, want %v", c.since, m1, m2, m3, got, c.want)
		}
	}
	if got := e.expunged(info, "Junk", 0); len(got) != 0 {
		t.Errorf("a mailbox that lost nothing: Expunged %v", got)
	}
	runErrCases(t, e, []errCase{
		{"unknown mailbox", func(e *env) error { _, err := e.s.Expunged(e.t.Context(), info, "Nope", 0); return err }, store.ErrNoSuchMailbox},
		{"unknown account", func(e *env) error {
			_, err := e.s.Expunged(e.t.Context(), "nobody@example.com", "INBOX", 0)
			return err
		}, store.ErrNoSuchAccount},
	})
}

// A move expunges from its source; a copy expunges nothing.
func testExpungedMove(t *testing.T, e *env) {
	ctx := t.Context()
	uids := e.deliverN(info, "", 4)
	since := e.mailbox(info, "INBOX").HighestModSeq
	_, err := e.s.CopyMessages(ctx, info, "INBOX", "Trash", uids)
	testutil.Must(t, err)
	if got := e.expunged(info, "INBOX", since); len(got) != 0 {
		t.Errorf("after a copy, INBOX has expunged %v", got)
	}
	_, err = e.s.MoveMessages(ctx, info, "INBOX", "Junk", []uint32{uids[3], uids[0]})
	testutil.Must(t, err)
	if got := e.expunged(info, "INBOX", since); !slices.Equal(got, []uint32{uids[0], uids[3]}) {
		t.Errorf("after a move, INBOX has expunged %v, want %v", got, []uint32{uids[0], uids[3]})
	}
	res, err := e.s.MoveMessages(ctx, info, "Trash", "INBOX", []uint32{2})
	testutil.Must(t, err)
	if got := e.expunged(info, "INBOX", since); !slices.Equal(got, []uint32{uids[0], uids[3]}) {
		t.Errorf("after a move in, INBOX has expunged %v", got)
	}
	if got := e.expunged(info, "Trash", 0); !slices.Equal(got, []uint32{2}) {
		t.Errorf("Trash has expunged %v, want [2]", got)
	}
	if got := e.expunged(info, "Junk", 0); len(got) != 0 {
		t.Errorf("Junk, moved into, has expunged %v", got)
	}
	// The moved message's new UID is in INBOX, so not expunged there.
	if got := e.expunged(info, "INBOX", 0); slices.Contains(got, res.Dest[0]) {
		t.Errorf("INBOX's Expunged %v names UID %d that was moved in", got, res.Dest[0])
	}
}

// A rename keeps what a mailbox remembers; renaming INBOX expunges its
// messages from it.
func testExpungedRename(t *testing.T, e *env) {
	ctx := t.Context()
	_, err := e.s.CreateMailbox(ctx, info, "Work")
	testutil.Must(t, err)
	e.deliverN(info, "Work", 3)
	_, err = e.s.Expunge(ctx, info, "Work", []uint32{2})
	testutil.Must(t, err)
	testutil.Must(t, e.s.RenameMailbox(ctx, info, "Work", "Play"))
	if got := e.expunged(info, "Play", 0); !slices.Equal(got, []uint32{2}) {
		t.Errorf("renamed mailbox: Expunged %v, want [2]", got)
	}
	e.deliverN(info, "", 3)
	since := e.mailbox(info, "INBOX").HighestModSeq
	testutil.Must(t, e.s.RenameMailbox(ctx, info, "INBOX", "Old"))
	if got := e.expunged(info, "INBOX", since); !slices.Equal(got, []uint32{1, 2, 3}) {
		t.Errorf("INBOX renamed away: Expunged %v, want [1 2 3]", got)
	}
	if got := e.expunged(info, "Old", 0); len(got) != 0 {
		t.Errorf("the mailbox INBOX became: Expunged %v", got)
	}
}

// A mailbox deleted forgets its expunges; one created under its name has
// none.
func testExpungedDeleteMailbox(t *testing.T, e *env) {
	ctx := t.Context()
	_, err := e.s.CreateMailbox(ctx, info, "Work")
	testutil.Must(t, err)
	e.deliverN(info, "Work", 3)
	_, err = e.s.Expunge(ctx, info, "Work", []uint32{1, 3})
	testutil.Must(t, err)
	testutil.Must(t, e.s.DeleteMailbox(ctx, info, "Work"))
	if _, err := e.s.Expunged(ctx, info, "Work", 0); !is(err, store.ErrNoSuchMailbox) {
		t.Errorf("Expunged of a deleted mailbox: %v", err)
	}
	m := e.create(store.Mailbox{})
	if got := e.expunged(info, "Work", 0); len(got) != 0 {
		t.Errorf("a mailbox created again: Expunged %v (HighestModSeq %d)", got, m.HighestModSeq)
	}
	e.deliverN(info, "Work", 2)
	_, err = e.s.Expunge(ctx, info, "Work", []uint32{2})
	testutil.Must(t, err)
	if got := e.expunged(info, "Work", 0); !slices.Equal(got, []uint32{2}) {
		t.Errorf("a mailbox created again: Expunged %v after expunging 2", got)
	}
}

func testExpungedRestart(t *testing.T, e *env) {
	ctx := t.Context()
	e.deliverN(info, "", 4)
	_, err := e.s.Expunge(ctx, info, "INBOX", []uint32{3})
	testutil.Must(t, err)
	since := e.mailbox(info, "INBOX").HighestModSeq
	_, err = e.s.Expunge(ctx, info, "INBOX", []uint32{1})
	testutil.Must(t, err)
	e.restart()
	if got := e.expunged(info, "INBOX", 0); !slices.Equal(got, []uint32{1, 3}) {
		t.Errorf("after a restart: Expunged %v, want [1 3]", got)
	}
	if got := e.expunged(info, "INBOX", since); !slices.Equal(got, []uint32{1}) {
		t.Errorf("after a restart: Expunged since %d %v, want [1]", since, got)
	}
}

// A mailbox that remembers at least 3 expunges of the last hour: asked
// about those, Expunged is exact; asked about older ones, it names every
// UID below UIDNEXT that the mailbox does not hold, or some of them, but
// at least those expunged.
func testExpungedForgotten(t *testing.T, e *env) {
	e = openEnv(t, e.open, Options{MaxExpunged: 3, ExpungedAge: time.Hour})
	ctx := t.Context()
	e.deliverN(info, "", 12)
	// Expunge 1 to 8 one by one, with the mod-sequence before each.
	var before []uint64
	for uid := uint32(1); uid <= 8; uid++ {
		before = append(before, e.mailbox(info, "INBOX").HighestModSeq)
		_, err := e.s.Expunge(ctx, info, "INBOX", []uint32{uid})
		testutil.Must(t, err)
	}
	superset := func(what string, since uint64, must []uint32) {
		t.Helper()
		got := e.expunged(info, "INBOX", since)
		for _, uid := range must {
			if !slices.Contains(got, uid) {
				t.Errorf("%s: Expunged since %d is %v, without UID %d", what, since, got, uid)
			}
		}
		there, next := e.uids(info, "INBOX"), e.mailbox(info, "INBOX").UIDNext
		for _, uid := range got {
			if slices.Contains(there, uid) || uid == 0 || uid >= next {
				t.Errorf("%s: Expunged since %d is %v: UID %d is there or was never handed out", what, since, got, uid)
			}
		}
	}
	if got := e.expunged(info, "INBOX", before[5]); !slices.Equal(got, []uint32{6, 7, 8}) {
		t.Errorf("the latest 3 expunges: %v, want [6 7 8]", got)
	}
	superset("all", 0, []uint32{1, 2, 3, 4, 5, 6, 7, 8})
	superset("the latest 4", before[4], []uint32{5, 6, 7, 8})
	// Two hours on, even the latest three may be forgotten; the next one is
	// remembered.
	e.clock.Advance(2 * time.Hour)
	since := e.mailbox(info, "INBOX").HighestModSeq
	_, err := e.s.Expunge(ctx, info, "INBOX", []uint32{11})
	testutil.Must(t, err)
	if got := e.expunged(info, "INBOX", since); !slices.Equal(got, []uint32{11}) {
		t.Errorf("the expunge of this hour: %v, want [11]", got)
	}
	superset("after two hours", before[5], []uint32{6, 7, 8, 11})
	superset("after two hours, all", 0, []uint32{1, 2, 3, 4, 5, 6, 7, 8, 11})
	e.check()
}
