package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"yubin/internal/testutil"
	"yubin/store"
)

// Messages: flags, expunge, copy, move, and the stored bytes they share.
var messageTests = []test{
	{"flags", testFlags},
	{"expunge", testExpunge},
	{"messages by UID", testMessagesByUID},
	{"copy", testCopy},
	{"move", testMove},
	{"copy over quota", testCopyOverQuota},
	{"concurrent copies and moves", testCopyMoveConcurrent},
	{"shared copies", testSharedCopies},
}

func testFlags(t *testing.T, e *env) {
	ctx := t.Context()
	uids := e.deliverN(info, "", 3)
	for _, c := range []struct {
		op    store.FlagOp
		flags []string
		uids  []uint32
		want  [3]string // flags of the three messages after
	}{
		{store.FlagsAdd, []string{`\seen`, "$Work"}, []uint32{1, 99}, [3]string{`[$Work \Seen]`, `[]`, `[]`}},
		{store.FlagsAdd, []string{`\Flagged`, `\SEEN`}, []uint32{1, 2}, [3]string{`[$Work \Flagged \Seen]`, `[\Flagged \Seen]`, `[]`}},
		{store.FlagsRemove, []string{`\seen`, "$Nope"}, []uint32{1, 2, 3}, [3]string{`[$Work \Flagged]`, `[\Flagged]`, `[]`}},
		{store.FlagsReplace, []string{`\Draft`, `\Answered`, `\draft`}, []uint32{2, 3}, [3]string{`[$Work \Flagged]`, `[\Answered \Draft]`, `[\Answered \Draft]`}},
		{store.FlagsReplace, nil, []uint32{3}, [3]string{`[$Work \Flagged]`, `[\Answered \Draft]`, `[]`}},
		{store.FlagsAdd, []string{`\Deleted`}, nil, [3]string{`[$Work \Flagged]`, `[\Answered \Draft]`, `[]`}},
	} {
		got, err := e.s.SetFlags(ctx, info, "INBOX", c.uids, c.op, c.flags)
		testutil.Must(t, err)
		// The changed messages come back as changed; unknown UIDs are skipped.
		var known []uint32
		for _, u := range c.uids {
			if slices.Contains(uids, u) {
				known = append(known, u)
			}
		}
		if len(got) != len(known) {
			t.Errorf("SetFlags(%d %v on %v) returned %+v", c.op, c.flags, c.uids, got)
		}
		for _, m := range got {
			if want := c.want[m.UID-1]; fmt.Sprint(m.Flags) != want {
				t.Errorf("SetFlags(%d %v) returned UID %d with %v, want %s", c.op, c.flags, m.UID, m.Flags, want)
			}
		}
		msgs, _, err := e.s.Messages(ctx, info, "INBOX")
		testutil.Must(t, err)
		for i, m := range msgs {
			if fmt.Sprint(m.Flags) != c.want[i] {
				t.Errorf("after SetFlags(%d %v on %v): UID %d has %v, want %s", c.op, c.flags, c.uids, m.UID, m.Flags, c.want[i])
			}
		}
	}
	setFlags := func(box string, flags ...string) func(e *env) error {
		return func(e *env) error {
			_, err := e.s.SetFlags(e.t.Context(), info, box, []uint32{1}, store.FlagsAdd, flags)
			return err
		}
	}
	runErrCases(t, e, []errCase{
		{"bad flag", setFlags("INBOX", "a b"), store.ErrInvalid},
		{"unknown system flag", setFlags("INBOX", `\Recent`), store.ErrInvalid},
		{"too long", setFlags("INBOX", strings.Repeat("x", store.MaxFlagLen+1)), store.ErrInvalid},
		{"unknown mailbox", setFlags("Nope", `\Seen`), store.ErrNoSuchMailbox},
	})
	var many []string
	for i := range store.MaxFlags + 1 {
		many = append(many, fmt.Sprintf("$f%d", i))
	}
	if _, err := e.s.SetFlags(ctx, info, "INBOX", []uint32{1}, store.FlagsReplace, many); !is(err, store.ErrInvalid) {
		t.Errorf("%d flags: %v", len(many), err)
	}
}

func testExpunge(t *testing.T, e *env) {
	ctx := t.Context()
	uids := e.deliverN(info, "", 4)
	size := e.mailbox(info, "INBOX").Size / 4
	got, err := e.s.Expunge(ctx, info, "inbox", []uint32{uids[3], 99, uids[1], uids[1]})
	testutil.Must(t, err)
	slices.Sort(got)
	if !slices.Equal(got, []uint32{uids[1], uids[3]}) {
		t.Errorf("expunged %v, want %v", got, []uint32{uids[1], uids[3]})
	}
	if got := e.uids(info, "INBOX"); !slices.Equal(got, []uint32{uids[0], uids[2]}) {
		t.Errorf("left %v", got)
	}
	if a := e.account(info); a.Used != 2*size {
		t.Errorf("usage %d after expunge, want %d", a.Used, 2*size)
	}
	if _, err := e.s.ReadMessage(ctx, info, "INBOX", uids[1]); !is(err, store.ErrNoSuchMessage) {
		t.Errorf("read expunged: %v", err)
	}
	if got, err := e.s.Expunge(ctx, info, "INBOX", []uint32{uids[1]}); err != nil || len(got) != 0 {
		t.Errorf("expunge twice: %v, %v", got, err)
	}
	if _, err := e.s.Expunge(ctx, info, "Nope", uids); !is(err, store.ErrNoSuchMailbox) {
		t.Errorf("expunge in unknown mailbox: %v", err)
	}
	if _, err := e.s.Expunge(ctx, "nobody@example.com", "INBOX", uids); !is(err, store.ErrNoSuchAccount) {
		t.Errorf("expunge of unknown account: %v", err)
	}
	if m := e.mailbox(info, "INBOX"); m.UIDNext != uids[3]+1 {
		t.Errorf("UIDNEXT %d after expunge, want %d", m.UIDNext, uids[3]+1)
	}
}

func testMessagesByUID(t *testing.T, e *env) {
	uids := e.deliverN(bob, "", 5)
	msgs, meta, err := e.s.MessagesByUID(t.Context(), bob, "INBOX", []uint32{uids[4], 77, uids[1]})
	testutil.Must(t, err)
	if len(msgs) != 2 || msgs[0].UID != uids[4] || msgs[1].UID != uids[1] || meta.Messages != 5 || meta.Name != "INBOX" {
		t.Errorf("by UID: %+v %+v", msgs, meta)
	}
	all, _, err := e.s.Messages(t.Context(), bob, "INBOX")
	testutil.Must(t, err)
	if !msgs[0].Date.Equal(all[4].Date) || msgs[0].Size != all[4].Size || msgs[0].HeaderSize != all[4].HeaderSize {
		t.Errorf("MessagesByUID says %+v, Messages %+v", msgs[0], all[4])
	}
	if _, _, err := e.s.MessagesByUID(t.Context(), bob, "Nope", uids); !is(err, store.ErrNoSuchMailbox) {
		t.Errorf("unknown mailbox: %v", err)
	}
}

func testCopy(t *testing.T, e *env) {
	ctx := t.Context()
	uids := e.deliverN(info, "", 4)
	_, err := e.s.SetFlags(ctx, info, "INBOX", uids[2:3], store.FlagsAdd, []string{`\Seen`})
	testutil.Must(t, err)
	used := e.account(info).Used
	one := used / 4
	// In UID order; missing UIDs and repeats are skipped.
	res, err := e.s.CopyMessages(ctx, info, "INBOX", "Trash", []uint32{uids[2], uids[0], 999, uids[0]})
	testutil.Must(t, err)
	trash := e.mailbox(info, "Trash")
	if !slices.Equal(res.Source, []uint32{uids[0], uids[2]}) || !slices.Equal(res.Dest, []uint32{1, 2}) || res.UIDValidity != trash.UIDValidity {
		t.Fatalf("copy result %+v (Trash %+v)", res, trash)
	}
	if trash.Messages != 2 || trash.UIDNext != 3 {
		t.Errorf("Trash after copy: %+v", trash)
	}
	if u := e.account(info).Used; u != used+2*one {
		t.Errorf("usage after copy %d, want %d", u, used+2*one)
	}
	// Copies keep flags, internal date and bytes.
	src, _, err := e.s.MessagesByUID(ctx, info, "INBOX", res.Source)
	testutil.Must(t, err)
	dst, _, err := e.s.MessagesByUID(ctx, info, "Trash", res.Dest)
	testutil.Must(t, err)
	for i := range src {
		if !slices.Equal(src[i].Flags, dst[i].Flags) || !src[i].Date.Equal(dst[i].Date) || src[i].Size != dst[i].Size {
			t.Errorf("copy of %+v is %+v", src[i], dst[i])
		}
		if !bytes.Equal(e.read(info, "INBOX", res.Source[i]), e.read(info, "Trash", res.Dest[i])) {
			t.Errorf("copy of UID %d reads differently", res.Source[i])
		}
	}
	// The source is unchanged.
	if got := e.uids(info, "INBOX"); !slices.Equal(got, uids) {
		t.Errorf("INBOX after copy: %v", got)
	}
	// Into the same mailbox, a copy is a new message.
	res, err = e.s.CopyMessages(ctx, info, "Trash", "Trash", []uint32{1})
	testutil.Must(t, err)
	if !slices.Equal(res.Dest, []uint32{3}) {
		t.Errorf("copy into the same mailbox: %+v", res)
	}
	// Nothing to copy is no error.
	if res, err := e.s.CopyMessages(ctx, info, "INBOX", "Junk", []uint32{999}); err != nil || len(res.Dest) != 0 {
		t.Errorf("copy of nothing: %+v, %v", res, err)
	}
	copyTo := func(src, dst string) func(e *env) error {
		return func(e *env) error { _, err := e.s.CopyMessages(e.t.Context(), info, src, dst, uids); return err }
	}
	runErrCases(t, e, []errCase{
		{"to unknown mailbox", copyTo("INBOX", "Nope"), store.ErrNoSuchMailbox},
		{"from unknown mailbox", copyTo("Nope", "INBOX"), store.ErrNoSuchMailbox},
	})
}

func testMove(t *testing.T, e *env) {
	ctx := t.Context()
	uids := e.deliverN(info, "", 4)
	_, err := e.s.SetFlags(ctx, info, "INBOX", uids[1:2], store.FlagsAdd, []string{"$Moved"})
	testutil.Must(t, err)
	used := e.account(info).Used
	sub := e.s.Subscribe(ctx, info, 64)
	defer sub.Close()
	res, err := e.s.MoveMessages(ctx, info, "INBOX", "Junk", []uint32{uids[3], uids[1]})
	testutil.Must(t, err)
	junk := e.mailbox(info, "Junk")
	if !slices.Equal(res.Source, []uint32{uids[1], uids[3]}) || !slices.Equal(res.Dest, []uint32{1, 2}) || res.UIDValidity != junk.UIDValidity {
		t.Fatalf("move result %+v", res)
	}
	if u := e.account(info).Used; u != used {
		t.Errorf("usage %d after a move, was %d", u, used)
	}
	if got := e.uids(info, "INBOX"); !slices.Equal(got, []uint32{uids[0], uids[2]}) {
		t.Errorf("INBOX after move: %v", got)
	}
	moved, _, err := e.s.MessagesByUID(ctx, info, "Junk", []uint32{1})
	testutil.Must(t, err)
	if len(moved) != 1 || !slices.Equal(moved[0].Flags, []string{"$Moved"}) {
		t.Errorf("moved message %+v lost its flags", moved)
	}
	if got := e.read(info, "Junk", 1); !bytes.Equal(got, body(1)) {
		t.Errorf("moved message reads %q", got)
	}
	// One event each: expunged from the source, new in the destination.
	got := show(drain(sub))
	slices.Sort(got)
	if want := []string{"expunge INBOX 2", "expunge INBOX 4", "new Junk 1", "new Junk 2"}; !slices.Equal(got, want) {
		t.Errorf("events of a move: %v, want %v", got, want)
	}
	move := func(src, dst string) func(e *env) error {
		return func(e *env) error { _, err := e.s.MoveMessages(e.t.Context(), info, src, dst, []uint32{1}); return err }
	}
	runErrCases(t, e, []errCase{
		{"into itself", move("Junk", "Junk"), store.ErrInvalid},
		{"INBOX into itself", move("INBOX", "inbox"), store.ErrInvalid},
		{"to unknown mailbox", move("Junk", "Nope"), store.ErrNoSuchMailbox},
		{"from unknown mailbox", move("Nope", "Junk"), store.ErrNoSuchMailbox},
	})
	if got := e.uids(info, "Junk"); !slices.Equal(got, []uint32{1, 2}) {
		t.Errorf("refused moves changed Junk: %v", got)
	}
}

// A copy that does not fit copies nothing; a move always fits.
func testCopyOverQuota(t *testing.T, e *env) {
	ctx := t.Context()
	e.deliverN(info, "", 2)
	used := e.account(info).Used
	testutil.Must(t, e.s.SetQuota(ctx, info, used+used/2))
	_, err := e.s.CopyMessages(ctx, info, "INBOX", "Drafts", []uint32{1, 2})
	var qe *store.QuotaError
	if !errors.As(err, &qe) || qe.Account != info || qe.Used != used || qe.Need != used {
		t.Fatalf("copy over quota: %v", err)
	}
	if d := e.mailbox(info, "Drafts"); d.Messages != 0 {
		t.Fatal("part of a copy over quota was made")
	}
	if u := e.account(info).Used; u != used {
		t.Fatalf("usage %d after a refused copy, was %d", u, used)
	}
	_, err = e.s.CopyMessages(ctx, info, "INBOX", "Drafts", []uint32{1})
	testutil.Must(t, err)
	testutil.Must(t, e.s.SetQuota(ctx, info, 1))
	_, err = e.s.MoveMessages(ctx, info, "INBOX", "Drafts", []uint32{1, 2})
	testutil.Must(t, err)
	if got := e.uids(info, "Drafts"); len(got) != 3 {
		t.Errorf("Drafts has %v after a move over quota", got)
	}
}

// Concurrent copies and moves between the same mailboxes keep every
// message exactly once in one place (plus its copies).
func testCopyMoveConcurrent(t *testing.T, e *env) {
	ctx := t.Context()
	testutil.Must(t, e.s.SetQuota(ctx, info, 0))
	uids := e.deliverN(info, "", 40)
	_, err := e.s.CreateMailbox(ctx, info, "A")
	testutil.Must(t, err)
	errs := parallel(20, func(i int) error {
		var err error
		if i%2 == 0 {
			_, err = e.s.CopyMessages(ctx, info, "INBOX", "A", uids[i:i+2])
		} else {
			_, err = e.s.MoveMessages(ctx, info, "INBOX", "Trash", uids[20+i:21+i])
		}
		return err
	})
	for _, err := range errs {
		testutil.Must(t, err)
	}
	if n := len(e.uids(info, "A")); n != 20 {
		t.Errorf("A has %d copies, want 20", n)
	}
	if n := len(e.uids(info, "Trash")); n != 10 {
		t.Errorf("Trash has %d moved, want 10", n)
	}
	if n := len(e.uids(info, "INBOX")); n != 30 {
		t.Errorf("INBOX has %d left, want 30", n)
	}
}

// One message delivered to several accounts, copied and queued is stored
// once or many times, as the backend likes; but every copy stays readable
// until it is expunged itself, and nothing is left behind (Verify, after
// every step).
func testSharedCopies(t *testing.T, e *env) {
	ctx := t.Context()
	msg := append([]byte("Subject: shared\r\n\r\n"), bytes.Repeat([]byte("s"), 100000)...)
	type place struct {
		acct, box string
		uid       uint32
	}
	var places []place
	ds, ids, err := e.s.DeliverAndQueue(ctx, []store.Delivery{{Recipients: []string{info, bob, carol}, Message: msg}},
		[]store.Outbound{{From: info, Recipients: []string{"a@one.test", "b@two.test"}, Message: msg}})
	testutil.Must(t, err)
	for _, d := range ds {
		places = append(places, place{d.Account, d.Mailbox, d.UID})
	}
	res, err := e.s.CopyMessages(ctx, info, "INBOX", "Sent", []uint32{ds[0].UID})
	testutil.Must(t, err)
	places = append(places, place{info, "Sent", res.Dest[0]})
	res, err = e.s.MoveMessages(ctx, bob, "INBOX", "Junk", []uint32{ds[1].UID})
	testutil.Must(t, err)
	places[1] = place{bob, "Junk", res.Dest[0]}
	_, err = e.s.CreateMailbox(ctx, carol, "Keep")
	testutil.Must(t, err)
	res, err = e.s.CopyMessages(ctx, carol, "INBOX", "Keep", []uint32{ds[2].UID})
	testutil.Must(t, err)
	places = append(places, place{carol, "Keep", res.Dest[0]})

	queued := ids
	readAll := func(when string) {
		t.Helper()
		for _, p := range places {
			if got := e.read(p.acct, p.box, p.uid); !bytes.Equal(got, msg) {
				t.Fatalf("%s: %s/%s %d reads %d bytes", when, p.acct, p.box, p.uid, len(got))
			}
		}
		for _, id := range queued {
			raw, _, err := e.s.ReadQueued(ctx, id)
			testutil.Must(t, err)
			if !bytes.Equal(raw, msg) {
				t.Fatalf("%s: queue entry %s reads %d bytes", when, id, len(raw))
			}
		}
		e.check()
	}
	readAll("before")
	// Take the copies away one by one, in all the ways there are.
	first := places[0]
	for _, s := range []struct {
		what   string
		fn     func() error
		gone   func(p place) bool // the places it takes away
		queued []string           // the queue entries left
	}{
		{"expunge info's INBOX copy", func() error { _, err := e.s.Expunge(ctx, info, "INBOX", []uint32{first.uid}); return err },
			func(p place) bool { return p == first }, ids},
		{"drop a queue entry", func() error { _, err := e.s.DropQueued(ctx, ids[:1]); return err },
			nil, ids[1:]},
		{"delete carol's Keep", func() error { return e.s.DeleteMailbox(ctx, carol, "Keep") },
			func(p place) bool { return p.box == "Keep" }, ids[1:]},
		{"settle the other queue entry", func() error {
			return e.s.SettleQueued(ctx, ids[1], func(q *store.QueueEntry) error { q.Recipients[0].Status = store.RcptSent; return nil }, nil, nil)
		}, nil, nil},
		{"remove bob", func() error { return e.s.RemoveAccount(ctx, bob) },
			func(p place) bool { return p.acct == bob }, nil},
		{"expunge carol's INBOX copy", func() error { _, err := e.s.Expunge(ctx, carol, "INBOX", []uint32{ds[2].UID}); return err },
			func(p place) bool { return p.acct == carol }, nil},
	} {
		testutil.Must(t, s.fn())
		if s.gone != nil {
			places = slices.DeleteFunc(places, s.gone)
		}
		queued = s.queued
		readAll("after " + s.what)
	}
	if len(places) != 1 || places[0].box != "Sent" {
		t.Fatalf("left %+v", places)
	}
	_, err = e.s.Expunge(ctx, info, "Sent", []uint32{places[0].uid})
	testutil.Must(t, err)
	if _, err := e.s.ReadMessage(ctx, info, "Sent", places[0].uid); !is(err, store.ErrNoSuchMessage) {
		t.Errorf("last copy after expunge: %v", err)
	}
}
