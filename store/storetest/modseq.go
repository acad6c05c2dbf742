package storetest

import (
	"fmt"
	"slices"
	"testing"

	"yubin/internal/testutil"
	"yubin/store"
)

// Mod-sequences (RFC 7162 CONDSTORE): every change to a mailbox's messages
// takes one above every one before it, which the message, the mailbox's
// HighestModSeq and the change's event carry; and the conditional STORE
// (UNCHANGEDSINCE) built on them. env.check also replays every subtest's
// change feed, which fails on events whose mod-sequences do not ascend or
// differ from the messages'.
var modseqTests = []test{
	{"every change", testModSeqEveryChange},
	{"unchanged flags", testModSeqUnchangedFlags},
	{"events", testModSeqEvents},
	{"restart", testModSeqRestart},
	{"concurrent writers", testModSeqConcurrent},
	{"conditional store", testSetFlagsIf},
	{"conditional store is atomic", testSetFlagsIfAtomic},
}

// modseqs returns a mailbox's HighestModSeq and its messages' ModSeqs.
func (e *env) modseqs(account, box string) (uint64, map[uint32]uint64) {
	e.t.Helper()
	msgs, meta, err := e.s.Messages(e.t.Context(), account, box)
	testutil.Must(e.t, err)
	out := map[uint32]uint64{}
	for _, m := range msgs {
		out[m.UID] = m.ModSeq
	}
	return meta.HighestModSeq, out
}

// Each kind of change takes new mod-sequences in the mailboxes it changes,
// and only there; the messages it leaves alone keep theirs.
func testModSeqEveryChange(t *testing.T, e *env) {
	ctx := t.Context()
	boxes := []string{"INBOX", "Junk", "Trash"}
	type state struct {
		highest uint64
		msgs    map[uint32]uint64
	}
	before := map[string]state{}
	for _, b := range boxes {
		if h := e.mailbox(info, b).HighestModSeq; h == 0 {
			t.Fatalf("%s: a new mailbox has HighestModSeq 0", b)
		}
		h, msgs := e.modseqs(info, b)
		before[b] = state{h, msgs}
	}
	// step runs a change and checks that the mailboxes in changed got new
	// mod-sequences above all before (the messages in touched[box] too,
	// new ones included), and that nothing else moved.
	step := func(what string, changed map[string][]uint32, fn func() error) {
		t.Helper()
		testutil.Must(t, fn())
		for _, b := range boxes {
			was := before[b]
			h, msgs := e.modseqs(info, b)
			uids, ok := changed[b]
			switch {
			case ok && h <= was.highest:
				t.Errorf("%s: %s's HighestModSeq %d, was %d", what, b, h, was.highest)
			case !ok && h != was.highest:
				t.Errorf("%s: %s's HighestModSeq went from %d to %d, nothing changed there", what, b, was.highest, h)
			}
			for uid, ms := range msgs {
				if slices.Contains(uids, uid) {
					if ms <= was.highest || ms > h {
						t.Errorf("%s: %s UID %d has ModSeq %d, want above %d and at most %d", what, b, uid, ms, was.highest, h)
					}
				} else if ms != was.msgs[uid] {
					t.Errorf("%s: %s UID %d, not changed, has ModSeq %d, had %d", what, b, uid, ms, was.msgs[uid])
				}
			}
			before[b] = state{h, msgs}
		}
	}
	var uids []uint32
	step("deliver", map[string][]uint32{"INBOX": {1}}, func() error {
		uids = append(uids, e.deliver(info, "", body(1)).UID)
		return nil
	})
	step("deliver a batch", map[string][]uint32{"INBOX": {2, 3}, "Junk": {1}}, func() error {
		ds, err := e.s.DeliverBatch(ctx, []store.Delivery{
			{Recipients: []string{info}, Message: body(2)},
			{Recipients: []string{info}, Message: body(3)},
			{Recipients: []string{info}, Mailbox: "Junk", Message: body(4)},
		})
		for _, d := range ds[:2] {
			uids = append(uids, d.UID)
		}
		return err
	})
	step("append with flags", map[string][]uint32{"INBOX": {4}}, func() error {
		_, err := e.s.Deliver(ctx, store.Delivery{Recipients: []string{info}, Flags: []string{`\Seen`}, Message: body(5)})
		return err
	})
	step("set flags", map[string][]uint32{"INBOX": {1, 3}}, func() error {
		_, err := e.s.SetFlags(ctx, info, "INBOX", []uint32{1, 3}, store.FlagsAdd, []string{`\Flagged`})
		return err
	})
	step("remove flags", map[string][]uint32{"INBOX": {3}}, func() error {
		_, err := e.s.SetFlags(ctx, info, "INBOX", []uint32{3}, store.FlagsRemove, []string{`\Flagged`})
		return err
	})
	step("copy", map[string][]uint32{"Trash": {1, 2}}, func() error {
		_, err := e.s.CopyMessages(ctx, info, "INBOX", "Trash", []uint32{1, 2})
		return err
	})
	step("move", map[string][]uint32{"INBOX": nil, "Junk": {2}}, func() error {
		_, err := e.s.MoveMessages(ctx, info, "INBOX", "Junk", []uint32{2})
		return err
	})
	step("expunge", map[string][]uint32{"Trash": nil}, func() error {
		_, err := e.s.Expunge(ctx, info, "Trash", []uint32{1})
		return err
	})
	// What changes no message takes none.
	step("expunge of nothing", nil, func() error {
		_, err := e.s.Expunge(ctx, info, "Trash", []uint32{1, 99})
		return err
	})
	step("copy of nothing", nil, func() error {
		_, err := e.s.CopyMessages(ctx, info, "INBOX", "Trash", []uint32{99})
		return err
	})
	step("subscribe", nil, func() error { return e.s.SetSubscribed(ctx, info, "Junk", false) })
	step("claim recent", nil, func() error { _, _, err := e.s.ClaimRecent(ctx, info, "INBOX"); return err })
	step("create a mailbox", nil, func() error { _, err := e.s.CreateMailbox(ctx, info, "Work"); return err })
	step("refused copy", nil, func() error {
		testutil.Must(t, e.s.SetQuota(ctx, info, 1))
		if _, err := e.s.CopyMessages(ctx, info, "INBOX", "Trash", []uint32{1}); !is(err, errQuota) {
			return fmt.Errorf("copy over quota: %v", err)
		}
		return e.s.SetQuota(ctx, info, fixtureQuota)
	})
	// A message's ModSeq reads the same through every way of reading it.
	msgs, _, err := e.s.MessagesByUID(ctx, info, "INBOX", []uint32{3, 1})
	testutil.Must(t, err)
	opened, info3, err := e.s.OpenMessage(ctx, info, "INBOX", 3)
	testutil.Must(t, err)
	opened.Close()
	if len(msgs) != 2 || msgs[0].ModSeq != before["INBOX"].msgs[3] || msgs[1].ModSeq != before["INBOX"].msgs[1] || info3.ModSeq != msgs[0].ModSeq {
		t.Errorf("MessagesByUID gives %+v, OpenMessage %+v; Messages said %v", msgs, info3, before["INBOX"].msgs)
	}
}

// A flag change that leaves a message's flags as they were gives it no new
// mod-sequence, and no event.
func testModSeqUnchangedFlags(t *testing.T, e *env) {
	ctx := t.Context()
	e.deliverN(info, "", 2)
	_, err := e.s.SetFlags(ctx, info, "INBOX", []uint32{1}, store.FlagsAdd, []string{`\Seen`, "$Work"})
	testutil.Must(t, err)
	highest, was := e.modseqs(info, "INBOX")
	sub := e.s.Subscribe(ctx, info, 64)
	defer sub.Close()
	for _, c := range []struct {
		op    store.FlagOp
		flags []string
	}{
		{store.FlagsAdd, []string{`\seen`}},
		{store.FlagsAdd, nil},
		{store.FlagsRemove, []string{`\Deleted`}},
		{store.FlagsReplace, []string{"$Work", `\Seen`}},
	} {
		got, err := e.s.SetFlags(ctx, info, "INBOX", []uint32{1, 1}, c.op, c.flags)
		testutil.Must(t, err)
		if len(got) != 1 || got[0].ModSeq != was[1] {
			t.Errorf("SetFlags(%d %v) changing nothing returned %+v, want UID 1 once with ModSeq %d", c.op, c.flags, got, was[1])
		}
	}
	// Replacing 2's no flags with none changes nothing either.
	_, err = e.s.SetFlags(ctx, info, "INBOX", []uint32{2}, store.FlagsReplace, nil)
	testutil.Must(t, err)
	if h, now := e.modseqs(info, "INBOX"); h != highest || now[1] != was[1] || now[2] != was[2] {
		t.Errorf("after flag changes that changed nothing: HighestModSeq %d (was %d), ModSeqs %v (were %v)", h, highest, now, was)
	}
	if evs := drain(sub); len(evs) != 0 {
		t.Errorf("flag changes that changed nothing made events %v", show(evs))
	}
}

// Each event carries its change's mod-sequence: that of the message it
// made or changed, and for the latest change the mailbox's HighestModSeq.
func testModSeqEvents(t *testing.T, e *env) {
	ctx := t.Context()
	sub := e.s.Subscribe(ctx, info, 64)
	defer sub.Close()
	e.deliverN(info, "", 3)
	check := func(what string, box string, kind store.EventKind, uids ...uint32) {
		t.Helper()
		evs := drain(sub)
		highest, msgs := e.modseqs(info, box)
		var got []uint32
		for _, ev := range evs {
			if ev.Mailbox != box || ev.Kind != kind {
				continue
			}
			got = append(got, ev.UID)
			if kind != store.EventExpunge && ev.ModSeq != msgs[ev.UID] {
				t.Errorf("%s: event %s of UID %d has ModSeq %d, the message %d", what, ev.Kind, ev.UID, ev.ModSeq, msgs[ev.UID])
			}
			if ev.ModSeq == 0 || ev.ModSeq > highest {
				t.Errorf("%s: event %s of UID %d has ModSeq %d, the mailbox's highest is %d", what, ev.Kind, ev.UID, ev.ModSeq, highest)
			}
		}
		if !slices.Equal(got, uids) {
			t.Errorf("%s: %s events of %s for UIDs %v, want %v", what, kind, box, got, uids)
		}
		if n := len(evs); n > 0 && evs[n-1].Mailbox == box && evs[n-1].ModSeq != highest {
			t.Errorf("%s: the last event has ModSeq %d, %s's HighestModSeq is %d", what, evs[n-1].ModSeq, box, highest)
		}
	}
	check("deliver", "INBOX", store.EventNew, 1, 2, 3)
	_, err := e.s.SetFlags(ctx, info, "INBOX", []uint32{3, 1}, store.FlagsAdd, []string{`\Answered`})
	testutil.Must(t, err)
	check("set flags", "INBOX", store.EventFlags, 3, 1)
	_, err = e.s.CopyMessages(ctx, info, "INBOX", "Drafts", []uint32{2, 3})
	testutil.Must(t, err)
	check("copy", "Drafts", store.EventNew, 1, 2)
	_, err = e.s.Expunge(ctx, info, "INBOX", []uint32{2})
	testutil.Must(t, err)
	check("expunge", "INBOX", store.EventExpunge, 2)
	_, err = e.s.MoveMessages(ctx, info, "Drafts", "INBOX", []uint32{1})
	testutil.Must(t, err)
	check("move", "INBOX", store.EventNew, 4)
}

// Mod-sequences survive a restart and go on from where they were.
func testModSeqRestart(t *testing.T, e *env) {
	ctx := t.Context()
	e.deliverN(info, "", 3)
	_, err := e.s.SetFlags(ctx, info, "INBOX", []uint32{2}, store.FlagsAdd, []string{`\Seen`})
	testutil.Must(t, err)
	_, err = e.s.Expunge(ctx, info, "INBOX", []uint32{3})
	testutil.Must(t, err)
	highest, msgs := e.modseqs(info, "INBOX")
	e.restart()
	h, got := e.modseqs(info, "INBOX")
	if h != highest || fmt.Sprint(got) != fmt.Sprint(msgs) {
		t.Fatalf("after a restart: HighestModSeq %d and ModSeqs %v, before %d and %v", h, got, highest, msgs)
	}
	res, err := e.s.SetFlags(ctx, info, "INBOX", []uint32{1}, store.FlagsAdd, []string{`\Seen`})
	testutil.Must(t, err)
	if res[0].ModSeq <= highest {
		t.Errorf("the first change after a restart took ModSeq %d, the highest before was %d", res[0].ModSeq, highest)
	}
}

// Writers racing on one mailbox take distinct mod-sequences; env.check's
// replay of the feed finds them ascending in commit order.
func testModSeqConcurrent(t *testing.T, e *env) {
	ctx := t.Context()
	testutil.Must(t, e.s.SetQuota(ctx, info, 0))
	uids := e.deliverN(info, "", 8)
	got := make([][]uint64, 8)
	errs := parallel(8, func(w int) error {
		for r := range 5 {
			res, err := e.s.SetFlags(ctx, info, "INBOX", uids, store.FlagsAdd, []string{fmt.Sprintf("$w%dr%d", w, r)})
			if err != nil {
				return err
			}
			for _, m := range res {
				got[w] = append(got[w], m.ModSeq)
			}
			d, err := e.s.Deliver(ctx, store.Delivery{Recipients: []string{info}, Message: body(w)})
			if err != nil {
				return err
			}
			if _, err := e.s.Expunge(ctx, info, "INBOX", []uint32{d[0].UID}); err != nil {
				return err
			}
		}
		return nil
	})
	var all []uint64
	for w, err := range errs {
		testutil.Must(t, err)
		all = append(all, got[w]...)
	}
	slices.Sort(all)
	if n := len(slices.Compact(slices.Clone(all))); n != len(all) || n != 8*5*len(uids) {
		t.Errorf("%d flag changes took %d distinct mod-sequences", len(all), n)
	}
	if h := e.mailbox(info, "INBOX").HighestModSeq; h < all[len(all)-1] {
		t.Errorf("HighestModSeq %d below a message's %d", h, all[len(all)-1])
	}
}

// SetFlagsIf changes the messages not changed since a mod-sequence, and
// names the others.
func testSetFlagsIf(t *testing.T, e *env) {
	ctx := t.Context()
	uids := e.deliverN(info, "", 4)
	since := e.mailbox(info, "INBOX").HighestModSeq
	_, err := e.s.SetFlags(ctx, info, "INBOX", []uint32{uids[1], uids[3]}, store.FlagsAdd, []string{"$Other"})
	testutil.Must(t, err)
	_, was := e.modseqs(info, "INBOX")
	changed, failed, err := e.s.SetFlagsIf(ctx, info, "INBOX", []uint32{uids[3], uids[0], 99, uids[1], uids[2], uids[0]}, store.FlagsAdd, []string{`\Seen`}, since)
	testutil.Must(t, err)
	var got []uint32
	for _, m := range changed {
		got = append(got, m.UID)
		if !slices.Equal(m.Flags, []string{`\Seen`}) || m.ModSeq <= was[uids[3]] {
			t.Errorf("changed %+v, want \\Seen and a ModSeq above %d", m, was[uids[3]])
		}
	}
	if !slices.Equal(got, []uint32{uids[0], uids[2]}) || !slices.Equal(failed, []uint32{uids[3], uids[1]}) {
		t.Fatalf("SetFlagsIf changed %v and failed %v, want %v and %v", got, failed, []uint32{uids[0], uids[2]}, []uint32{uids[3], uids[1]})
	}
	msgs, _, err := e.s.Messages(ctx, info, "INBOX")
	testutil.Must(t, err)
	for _, m := range msgs {
		passed := m.UID == uids[0] || m.UID == uids[2]
		if passed != slices.Contains(m.Flags, `\Seen`) || !passed && m.ModSeq != was[m.UID] {
			t.Errorf("after SetFlagsIf: %+v (ModSeq was %d)", m, was[m.UID])
		}
	}
	// A message that passes but already has the flags keeps its ModSeq.
	_, now := e.modseqs(info, "INBOX")
	changed, failed, err = e.s.SetFlagsIf(ctx, info, "INBOX", uids[:1], store.FlagsAdd, []string{`\Seen`}, now[uids[0]])
	testutil.Must(t, err)
	if len(changed) != 1 || changed[0].ModSeq != now[uids[0]] || len(failed) != 0 {
		t.Errorf("SetFlagsIf changing nothing: changed %+v, failed %v", changed, failed)
	}
	// At exactly its ModSeq a message passes; since 0, every one fails.
	changed, failed, err = e.s.SetFlagsIf(ctx, info, "INBOX", uids[1:2], store.FlagsReplace, nil, now[uids[1]])
	testutil.Must(t, err)
	if len(changed) != 1 || len(changed[0].Flags) != 0 || len(failed) != 0 {
		t.Errorf("SetFlagsIf at the message's ModSeq: changed %+v, failed %v", changed, failed)
	}
	changed, failed, err = e.s.SetFlagsIf(ctx, info, "INBOX", uids, store.FlagsAdd, []string{`\Deleted`}, 0)
	testutil.Must(t, err)
	if len(changed) != 0 || !slices.Equal(failed, uids) {
		t.Errorf("SetFlagsIf since 0: changed %+v, failed %v", changed, failed)
	}
	setIf := func(box string, flags ...string) func(e *env) error {
		return func(e *env) error {
			_, _, err := e.s.SetFlagsIf(e.t.Context(), info, box, uids, store.FlagsAdd, flags, 1<<62)
			return err
		}
	}
	runErrCases(t, e, []errCase{
		{"bad flag", setIf("INBOX", "a b"), store.ErrInvalid},
		{"unknown mailbox", setIf("Nope", `\Seen`), store.ErrNoSuchMailbox},
		{"unknown account", func(e *env) error {
			_, _, err := e.s.SetFlagsIf(e.t.Context(), "nobody@example.com", "INBOX", uids, store.FlagsAdd, nil, 1)
			return err
		}, store.ErrNoSuchAccount},
	})
}

// Conditional stores racing on the same messages with the same condition:
// each message is changed by exactly one of them, the others fail it.
func testSetFlagsIfAtomic(t *testing.T, e *env) {
	ctx := t.Context()
	uids := e.deliverN(info, "", 5)
	since := e.mailbox(info, "INBOX").HighestModSeq
	changed := make([][]store.MessageInfo, 8)
	failed := make([][]uint32, 8)
	errs := parallel(8, func(w int) error {
		order := slices.Clone(uids)
		if w%2 == 1 {
			slices.Reverse(order)
		}
		var err error
		changed[w], failed[w], err = e.s.SetFlagsIf(ctx, info, "INBOX", order, store.FlagsAdd, []string{fmt.Sprintf("$w%d", w)}, since)
		return err
	})
	winners := map[uint32]int{}
	for w, err := range errs {
		testutil.Must(t, err)
		if len(changed[w])+len(failed[w]) != len(uids) {
			t.Errorf("writer %d: changed %+v, failed %v: not every message once", w, changed[w], failed[w])
		}
		for _, m := range changed[w] {
			winners[m.UID]++
			if !slices.Equal(m.Flags, []string{fmt.Sprintf("$w%d", w)}) {
				t.Errorf("writer %d changed UID %d to %v", w, m.UID, m.Flags)
			}
		}
	}
	for _, uid := range uids {
		if winners[uid] != 1 {
			t.Errorf("UID %d was changed by %d of the racing conditional stores, want 1", uid, winners[uid])
		}
	}
	msgs, _, err := e.s.Messages(ctx, info, "INBOX")
	testutil.Must(t, err)
	for _, m := range msgs {
		if len(m.Flags) != 1 {
			t.Errorf("UID %d has flags %v, want those of one writer", m.UID, m.Flags)
		}
	}
}
