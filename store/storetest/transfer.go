package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"yubin/internal/testutil"
	"yubin/store"
)

// Transfer: the state no other interface lists, listed from one store and
// loaded into another (of the same backend here; store/postgres's TestCopy
// moves it from bolt to PostgreSQL) so that the second answers as the
// first: the spam models, what messages were trained as, import keys,
// DeliverOnce keys, remembered expunges, quota warnings.
var transferTests = []test{
	{"spam models", testTransferSpamModels},
	{"spam trained", testTransferSpamTrained},
	{"import keys", testTransferImportKeys},
	{"once keys", testTransferOnceKeys},
	{"remembered expunges", testTransferExpunges},
	{"quota warned", testTransferQuotaWarned},
}

// exportModel lists owner's model.
func (e *env) exportModel(owner string) (store.SpamTotals, []store.SpamToken) {
	e.t.Helper()
	var toks []store.SpamToken
	tot, err := e.s.SpamModel(e.t.Context(), owner, func(t store.SpamToken) error { toks = append(toks, t); return nil })
	testutil.Must(e.t, err)
	return tot, toks
}

func testTransferSpamModels(t *testing.T, e *env) {
	ctx := t.Context()
	owners, err := e.s.SpamOwners(ctx)
	testutil.Must(t, err)
	if len(owners) != 0 {
		t.Fatalf("owners of a store never trained: %v", owners)
	}
	e.train(store.SpamTraining{Owners: []string{info, "example.com"}, Tokens: []string{"cheap", "pills", "cheap"}, Class: store.Spam})
	e.clock.Advance(3 * 24 * time.Hour)
	e.train(store.SpamTraining{Owners: []string{info, "example.com"}, Tokens: []string{"meeting", "cheap"}, Class: store.Ham})
	e.train(store.SpamTraining{Owners: []string{"Carol@Other.test"}, Tokens: []string{"zebra", "apple"}, Class: store.Spam})
	owners, err = e.s.SpamOwners(ctx)
	testutil.Must(t, err)
	if want := []string{carol, "example.com", info}; !slices.Equal(owners, want) {
		t.Fatalf("SpamOwners = %v, want %v", owners, want)
	}
	tot, toks := e.exportModel("EXAMPLE.COM")
	today := start.Unix()/86400 + 3
	want := []store.SpamToken{{Token: "cheap", Spam: 1, Ham: 1, Day: today}, {Token: "meeting", Ham: 1, Day: today}, {Token: "pills", Spam: 1, Day: today - 3}}
	if tot != (store.SpamTotals{Spam: 1, Ham: 1, Tokens: 3}) || !slices.Equal(toks, want) {
		t.Fatalf("SpamModel(example.com) = %+v %+v, want %+v", tot, toks, want)
	}
	stop := errors.New("stop")
	n := 0
	if _, err := e.s.SpamModel(ctx, info, func(store.SpamToken) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("SpamModel with fn failing: %v after %d tokens", err, n)
	}
	if tot, toks := e.exportModel("nobody@example.com"); tot != (store.SpamTotals{}) || len(toks) != 0 {
		t.Errorf("a model never trained: %+v %v", tot, toks)
	}

	// Into another store: it answers as the first.
	b := openEnv(t, e.open, Options{})
	for _, o := range owners {
		tot, toks := e.exportModel(o)
		testutil.Must(t, b.s.LoadSpamModel(ctx, o, tot, toks))
		btot, btoks := b.exportModel(o)
		if btot != tot || !slices.Equal(btoks, toks) {
			t.Errorf("%s loaded: %+v %+v, want %+v %+v", o, btot, btoks, tot, toks)
		}
		names := []string{"cheap", "pills", "meeting", "zebra", "apple", "unknown"}
		at, ac := e.counts(o, names...)
		bt, bc := b.counts(o, names...)
		if at != bt || !slices.Equal(ac, bc) {
			t.Errorf("%s: SpamCounts %+v %v in the loaded store, %+v %v in the first", o, bt, bc, at, ac)
		}
	}
	// Training goes on from what was loaded.
	b.train(store.SpamTraining{Owners: []string{"example.com"}, Tokens: []string{"cheap"}, Class: store.Spam})
	if tot, cs := b.counts("example.com", "cheap"); tot.Spam != 2 || tot.Tokens != 3 || cs[0] != "2/1" {
		t.Errorf("trained after loading: %+v %v", tot, cs)
	}
	// A load replaces the model.
	testutil.Must(t, b.s.LoadSpamModel(ctx, "example.com", store.SpamTotals{Spam: 7, Tokens: 1}, []store.SpamToken{{Token: "only", Spam: 7, Day: today}}))
	if tot, cs := b.counts("example.com", "only", "cheap"); tot != (store.SpamTotals{Spam: 7, Tokens: 1}) || !slices.Equal(cs, []string{"7/0", "0/0"}) {
		t.Errorf("after a replacing load: %+v %v", tot, cs)
	}
	// Bad models change nothing.
	for _, c := range []struct {
		tot  store.SpamTotals
		toks []store.SpamToken
	}{
		{store.SpamTotals{Tokens: 2}, []store.SpamToken{{Token: "a"}}},
		{store.SpamTotals{Tokens: 2}, []store.SpamToken{{Token: "a"}, {Token: "a"}}},
		{store.SpamTotals{Tokens: 1}, []store.SpamToken{{Token: ""}}},
		{store.SpamTotals{Spam: -1}, nil},
	} {
		if err := b.s.LoadSpamModel(ctx, "example.com", c.tot, c.toks); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("LoadSpamModel(%+v, %+v) = %v, want ErrInvalid", c.tot, c.toks, err)
		}
	}
	if err := b.s.LoadSpamModel(ctx, "", store.SpamTotals{}, nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("LoadSpamModel without an owner: %v", err)
	}
	if tot, _ := b.counts("example.com"); tot != (store.SpamTotals{Spam: 7, Tokens: 1}) {
		t.Errorf("bad loads changed the model: %+v", tot)
	}
	b.check()
}

func testTransferSpamTrained(t *testing.T, e *env) {
	ctx := t.Context()
	b := openEnv(t, e.open, Options{})
	// The same mail in both stores: the same UIDs.
	for _, x := range []*env{e, b} {
		x.deliverN(info, "INBOX", 3)
		_, err := x.s.CreateMailbox(ctx, info, "Archive")
		testutil.Must(t, err)
		_, err = x.s.CopyMessages(ctx, info, "INBOX", "Archive", []uint32{2})
		testutil.Must(t, err)
		x.deliverN(bob, "INBOX", 1)
	}
	ref := func(box string, uid uint32) *store.MessageRef {
		return &store.MessageRef{Account: info, Mailbox: box, UID: uid}
	}
	e.train(store.SpamTraining{Owners: []string{info}, Tokens: []string{"x"}, Class: store.Spam, Message: ref("INBOX", 2)})
	e.train(store.SpamTraining{Owners: []string{info}, Tokens: []string{"y"}, Class: store.Ham, Message: ref("INBOX", 3)})
	e.train(store.SpamTraining{Owners: []string{info}, Tokens: []string{"z"}, Class: store.Spam, Message: ref("INBOX", 1)})
	e.train(store.SpamTraining{Owners: []string{info}, Tokens: []string{"z"}, Class: store.NotTrained, Message: ref("INBOX", 1)}) // taken back
	got, err := e.s.SpamTrainedMessages(ctx, info)
	testutil.Must(t, err)
	want := []store.SpamTrainedMessage{{Mailbox: "Archive", UID: 1, Class: store.Spam}, {Mailbox: "INBOX", UID: 2, Class: store.Spam}, {Mailbox: "INBOX", UID: 3, Class: store.Ham}}
	if !slices.Equal(got, want) {
		t.Fatalf("SpamTrainedMessages = %+v, want %+v (the copy in Archive too)", got, want)
	}
	if got, err := e.s.SpamTrainedMessages(ctx, bob); err != nil || len(got) != 0 {
		t.Errorf("SpamTrainedMessages(bob) = %v %v", got, err)
	}
	if _, err := e.s.SpamTrainedMessages(ctx, "nobody@example.com"); !errors.Is(err, store.ErrNoSuchAccount) {
		t.Errorf("SpamTrainedMessages of no account: %v", err)
	}

	testutil.Must(t, b.s.LoadSpamTrained(ctx, info, got))
	for _, m := range append(want, store.SpamTrainedMessage{Mailbox: "INBOX", UID: 1, Class: store.NotTrained}) {
		if c, err := b.s.SpamTrained(ctx, *ref(m.Mailbox, m.UID)); err != nil || c != m.Class {
			t.Errorf("loaded: %s UID %d trained as %v (%v), want %v", m.Mailbox, m.UID, c, err, m.Class)
		}
	}
	if got, _ := b.s.SpamTrainedMessages(ctx, info); !slices.Equal(got, want) {
		t.Errorf("loaded store lists %+v, want %+v", got, want)
	}
	// Retraining the other way takes the loaded training back (with the
	// model loaded too).
	tot, toks := e.exportModel(info)
	testutil.Must(t, b.s.LoadSpamModel(ctx, info, tot, toks))
	b.train(store.SpamTraining{Owners: []string{info}, Tokens: []string{"x"}, Class: store.Ham, Message: ref("INBOX", 2)})
	if c, _ := b.s.SpamTrained(ctx, *ref("INBOX", 2)); c != store.Ham {
		t.Errorf("retrained after the load: %v", c)
	}
	if tot, cs := b.counts(info, "x"); tot.Spam != 0 || tot.Ham != 2 || cs[0] != "0/1" {
		t.Errorf("retraining after the load did not take the loaded training back: %+v %v", tot, cs)
	}
	// A message not there: nothing of the load is stored.
	err = b.s.LoadSpamTrained(ctx, bob, []store.SpamTrainedMessage{{Mailbox: "INBOX", UID: 1, Class: store.Spam}, {Mailbox: "INBOX", UID: 9, Class: store.Spam}})
	if !errors.Is(err, store.ErrNoSuchMessage) {
		t.Errorf("LoadSpamTrained of a UID not there: %v", err)
	}
	if c, _ := b.s.SpamTrained(ctx, store.MessageRef{Account: bob, Mailbox: "INBOX", UID: 1}); c != store.NotTrained {
		t.Errorf("a failed load stored part of itself: %v", c)
	}
	if err := b.s.LoadSpamTrained(ctx, bob, []store.SpamTrainedMessage{{Mailbox: "INBOX", UID: 1, Class: store.NotTrained}}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("LoadSpamTrained of NotTrained: %v", err)
	}
	b.check()
}

func testTransferImportKeys(t *testing.T, e *env) {
	ctx := t.Context()
	_, err := e.s.Import(ctx, info, []store.ImportMessage{importMsg("maildir/cur/2", ""), importMsg("maildir/cur/1", ""), importMsg("mbox/Z", "")})
	testutil.Must(t, err)
	_, err = e.s.Import(ctx, bob, []store.ImportMessage{importMsg("other", "")})
	testutil.Must(t, err)
	// Keys stay after their messages go.
	_, err = e.s.Expunge(ctx, info, "INBOX", []uint32{1})
	testutil.Must(t, err)
	keys, err := e.s.ImportKeys(ctx, info)
	testutil.Must(t, err)
	if want := []string{"maildir/cur/1", "maildir/cur/2", "mbox/Z"}; !slices.Equal(keys, want) {
		t.Fatalf("ImportKeys = %q, want %q", keys, want)
	}
	if k, err := e.s.ImportKeys(ctx, carol); err != nil || len(k) != 0 {
		t.Errorf("ImportKeys of an account without imports: %q %v", k, err)
	}
	if _, err := e.s.ImportKeys(ctx, "nobody@example.com"); !errors.Is(err, store.ErrNoSuchAccount) {
		t.Errorf("ImportKeys of no account: %v", err)
	}

	b := openEnv(t, e.open, Options{})
	testutil.Must(t, b.s.LoadImportKeys(ctx, info, keys))
	if got := b.imported(info, "maildir/cur/1", "maildir/cur/2", "mbox/Z", "other"); !slices.Equal(got, []bool{true, true, true, false}) {
		t.Errorf("Imported after the load: %v", got)
	}
	res, err := b.s.Import(ctx, info, []store.ImportMessage{importMsg("maildir/cur/1", ""), importMsg("new", "")})
	testutil.Must(t, err)
	if res.Imported != 1 || res.Skipped != 1 {
		t.Errorf("an import after the load: %+v (the loaded key is skipped)", res)
	}
	if k, _ := b.s.ImportKeys(ctx, info); len(k) != 4 {
		t.Errorf("keys after: %q", k)
	}
	if err := b.s.LoadImportKeys(ctx, "nobody@example.com", keys); !errors.Is(err, store.ErrNoSuchAccount) {
		t.Errorf("LoadImportKeys into no account: %v", err)
	}
	if err := b.s.LoadImportKeys(ctx, bob, []string{"ok", ""}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("LoadImportKeys of an empty key: %v", err)
	}
	if k, _ := b.s.ImportKeys(ctx, bob); len(k) != 0 {
		t.Errorf("a failed load stored %q", k)
	}
	b.check()
}

func testTransferOnceKeys(t *testing.T, e *env) {
	ctx := t.Context()
	d := store.Delivery{Recipients: []string{info}, Message: body(1)}
	for _, k := range []string{"report/example.com/2026-11-24", "digest/bob@example.com/2026-11-24"} {
		if ok, err := e.s.DeliverOnce(ctx, k, d); err != nil || !ok {
			t.Fatalf("DeliverOnce(%s) = %v %v", k, ok, err)
		}
		e.clock.Advance(90 * time.Minute)
	}
	keys, err := e.s.OnceKeys(ctx)
	testutil.Must(t, err)
	want := []store.OnceKey{{Key: "digest/bob@example.com/2026-11-24", At: start.Add(90 * time.Minute)}, {Key: "report/example.com/2026-11-24", At: start}}
	if len(keys) != 2 || keys[0].Key != want[0].Key || keys[1].Key != want[1].Key || !keys[0].At.Equal(want[0].At) || !keys[1].At.Equal(want[1].At) {
		t.Fatalf("OnceKeys = %+v, want %+v", keys, want)
	}

	b := openEnv(t, e.open, Options{})
	testutil.Must(t, b.s.LoadOnceKeys(ctx, keys))
	if ok, err := b.s.DeliverOnce(ctx, "report/example.com/2026-11-24", d); err != nil || ok {
		t.Errorf("DeliverOnce of a loaded key delivered: %v %v", ok, err)
	}
	if last, err := b.s.LastOnceKey(ctx, "report/example.com/"); err != nil || last != "report/example.com/2026-11-24" {
		t.Errorf("LastOnceKey after the load: %q %v", last, err)
	}
	if got, _ := b.s.OnceKeys(ctx); len(got) != 2 || !got[1].At.Equal(start) {
		t.Errorf("OnceKeys of the loaded store: %+v", got)
	}
	if err := b.s.LoadOnceKeys(ctx, []store.OnceKey{{Key: "", At: start}}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("LoadOnceKeys of an empty key: %v", err)
	}
	b.check()
}

func testTransferExpunges(t *testing.T, e *env) {
	ctx := t.Context()
	e.deliverN(info, "INBOX", 5)
	e.clock.Advance(time.Hour)
	_, err := e.s.Expunge(ctx, info, "INBOX", []uint32{2})
	testutil.Must(t, err)
	e.clock.Advance(time.Hour)
	_, err = e.s.Expunge(ctx, info, "INBOX", []uint32{4, 5})
	testutil.Must(t, err)
	r, err := e.s.RememberedExpunges(ctx, info, "INBOX")
	testutil.Must(t, err)
	if len(r.Expunges) != 3 || r.Floor >= r.Expunges[0].ModSeq {
		t.Fatalf("RememberedExpunges = %+v", r)
	}
	var uids []uint32
	for i, x := range r.Expunges {
		uids = append(uids, x.UID)
		if i > 0 && x.ModSeq <= r.Expunges[i-1].ModSeq {
			t.Errorf("not ascending: %+v", r.Expunges)
		}
	}
	slices.Sort(uids)
	if !slices.Equal(uids, []uint32{2, 4, 5}) || !r.Expunges[0].At.Equal(start.Add(time.Hour)) || !r.Expunges[2].At.Equal(start.Add(2*time.Hour)) {
		t.Errorf("RememberedExpunges = %+v", r)
	}
	if _, err := e.s.RememberedExpunges(ctx, info, "Nope"); !errors.Is(err, store.ErrNoSuchMailbox) {
		t.Errorf("RememberedExpunges of no mailbox: %v", err)
	}

	// Forget the first: Expunged since before it names every UID not
	// there; since after it, the later ones exactly.
	first := r.Expunges[0].ModSeq
	less := store.RememberedExpunges{Floor: first, Expunges: r.Expunges[1:]}
	testutil.Must(t, e.s.LoadRememberedExpunges(ctx, info, "INBOX", less))
	if got, _ := e.s.RememberedExpunges(ctx, info, "INBOX"); got.Floor != first || !slices.Equal(got.Expunges, less.Expunges) {
		t.Errorf("after loading %+v: %+v", less, got)
	}
	if got := e.expunged(info, "INBOX", first); !slices.Equal(got, []uint32{4, 5}) {
		t.Errorf("Expunged(%d) = %v, want [4 5]", first, got)
	}
	if got := e.expunged(info, "INBOX", first-1); !slices.Equal(got, []uint32{2, 4, 5}) {
		t.Errorf("Expunged(%d) below the floor = %v, want every UID not there", first-1, got)
	}
	// Back as it was.
	testutil.Must(t, e.s.LoadRememberedExpunges(ctx, info, "INBOX", r))
	if got := e.expunged(info, "INBOX", first-1); !slices.Equal(got, []uint32{2, 4, 5}) {
		t.Errorf("Expunged(%d) = %v", first-1, got)
	}
	if got := e.expunged(info, "INBOX", first); !slices.Equal(got, []uint32{4, 5}) {
		t.Errorf("Expunged(%d) = %v", first, got)
	}
	after, _ := e.s.RememberedExpunges(ctx, info, "INBOX")
	if fmt.Sprint(after) != fmt.Sprint(r) {
		t.Errorf("loaded back %+v, have %+v", r, after)
	}

	// What does not fit the mailbox changes nothing.
	meta := e.mailbox(info, "INBOX")
	at := start
	for name, bad := range map[string]store.RememberedExpunges{
		"a UID still there":             {Floor: 0, Expunges: []store.Expunge{{UID: 3, ModSeq: 2, At: at}}},
		"a UID not below UIDNEXT":       {Floor: 0, Expunges: []store.Expunge{{UID: meta.UIDNext, ModSeq: 2, At: at}}},
		"a modseq above HIGHESTMODSEQ":  {Floor: 0, Expunges: []store.Expunge{{UID: 2, ModSeq: meta.HighestModSeq + 1, At: at}}},
		"a modseq at the floor":         {Floor: 3, Expunges: []store.Expunge{{UID: 2, ModSeq: 3, At: at}}},
		"a UID twice":                   {Floor: 0, Expunges: []store.Expunge{{UID: 2, ModSeq: 2, At: at}, {UID: 2, ModSeq: 3, At: at}}},
		"the floor above HIGHESTMODSEQ": {Floor: meta.HighestModSeq + 1},
	} {
		if err := e.s.LoadRememberedExpunges(ctx, info, "INBOX", bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if err := e.s.LoadRememberedExpunges(ctx, info, "Nope", r); !errors.Is(err, store.ErrNoSuchMailbox) {
		t.Errorf("into no mailbox: %v", err)
	}
	if got, _ := e.s.RememberedExpunges(ctx, info, "INBOX"); fmt.Sprint(got) != fmt.Sprint(r) {
		t.Errorf("failed loads changed %+v into %+v", r, got)
	}
}

func testTransferQuotaWarned(t *testing.T, e *env) {
	ctx := t.Context()
	warned := func(a string) bool {
		t.Helper()
		w, err := e.s.QuotaWarned(ctx, a)
		testutil.Must(t, err)
		return w
	}
	check := func() bool {
		t.Helper()
		c, _, err := e.s.CheckQuotaWarning(ctx, info, 80)
		testutil.Must(t, err)
		return c
	}
	if warned(info) {
		t.Fatal("warned before anything")
	}
	e.deliver(info, "INBOX", append([]byte("Subject: big\r\n\r\n"), make([]byte, fixtureQuota*9/10)...))
	if !check() || !warned(info) || warned(bob) {
		t.Fatalf("after crossing: warned %v, bob %v", warned(info), warned(bob))
	}
	testutil.Must(t, e.s.SetQuotaWarned(ctx, info, false))
	if warned(info) || !check() {
		t.Error("SetQuotaWarned(false): the crossing is not reported again")
	}
	testutil.Must(t, e.s.SetQuotaWarned(ctx, bob, true))
	if !warned(bob) {
		t.Error("SetQuotaWarned(true) not kept")
	}
	testutil.Must(t, e.s.SetQuotaWarned(ctx, info, true))
	if check() {
		t.Error("SetQuotaWarned(true): the crossing is reported again")
	}
	if _, err := e.s.QuotaWarned(ctx, "nobody@example.com"); !errors.Is(err, store.ErrNoSuchAccount) {
		t.Errorf("QuotaWarned of no account: %v", err)
	}
	if err := e.s.SetQuotaWarned(ctx, "nobody@example.com", true); !errors.Is(err, store.ErrNoSuchAccount) {
		t.Errorf("SetQuotaWarned of no account: %v", err)
	}
}
