package storetest

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"yubin/internal/testutil"
	"yubin/store"
)

// Spam: the spam filter's policies and trainable models.
var spamTests = []test{
	{"policy", testSpamPolicy},
	{"train and count", testTrainCounts},
	{"count in any order", testCountsOrder},
	{"train a message", testTrainMessage},
	{"training follows the message", testTrainCopies},
	{"train refused", testTrainRefused},
	{"tokens alone", testTrainTokensOnly},
	{"a batch trains as one by one", testTrainBatchInOrder},
	{"a batch skips messages gone", testTrainBatchGone},
	{"a batch of several owners", testTrainBatchOwners},
	{"a batch refused", testTrainBatchRefused},
	{"a batch past the bound", testTrainBatchBounded},
	{"bounded", testSpamBounded},
	{"aged", testSpamAged},
	{"removed with their owner", testSpamRemoved},
	{"restart", testSpamRestart},
}

func testSpamPolicy(t *testing.T, e *env) {
	ctx := t.Context()
	if p := e.account(info).Spam; p != (store.SpamPolicy{}) {
		t.Errorf("a new account's policy %+v, want the zero value", p)
	}
	if p := (store.SpamPolicy{}).Effective(); p.Action != store.SpamJunk || p.Threshold != store.DefaultSpamThreshold || p.Tag {
		t.Errorf("defaults %+v", p)
	}
	want := store.SpamPolicy{Action: store.SpamQuarantine, Threshold: 0.7, Tag: true}
	testutil.Must(t, e.s.SetSpamPolicy(ctx, "INFO@example.com", want))
	if p := e.account(info).Spam; p != want {
		t.Errorf("policy %+v, want %+v", p, want)
	}
	set := func(p store.SpamPolicy) func(e *env) error {
		return func(e *env) error { return e.s.SetSpamPolicy(e.t.Context(), info, p) }
	}
	runErrCases(t, e, []errCase{
		{"bad action", set(store.SpamPolicy{Action: "delete"}), store.ErrInvalid},
		{"threshold over 1", set(store.SpamPolicy{Threshold: 1.5}), store.ErrInvalid},
		{"negative threshold", set(store.SpamPolicy{Threshold: -0.1}), store.ErrInvalid},
		{"NaN threshold", set(store.SpamPolicy{Threshold: math.NaN()}), store.ErrInvalid},
		{"unknown account", func(e *env) error { return e.s.SetSpamPolicy(e.t.Context(), "nobody@example.com", store.SpamPolicy{}) }, store.ErrNoSuchAccount},
		{"reject score over 1", func(e *env) error {
			return e.s.SetDomainSettings(e.t.Context(), "example.com", store.DomainSettings{SpamRejectScore: 2})
		}, store.ErrInvalid},
	})
	if p := e.account(info).Spam; p != want {
		t.Errorf("a refused change changed the policy: %+v", p)
	}
	ds := store.DomainSettings{SpamRejectScore: 0.99}
	testutil.Must(t, e.s.SetDomainSettings(ctx, "example.com", ds))
	if got, _ := e.s.DomainSettings(ctx, "example.com"); got != ds {
		t.Errorf("domain settings %+v, want %+v", got, ds)
	}
}

// counts returns owner's counts of tokens as "spam/ham" strings.
func (e *env) counts(owner string, tokens ...string) (store.SpamTotals, []string) {
	e.t.Helper()
	tot, cs, err := e.s.SpamCounts(e.t.Context(), owner, tokens)
	testutil.Must(e.t, err)
	if len(cs) != len(tokens) {
		e.t.Fatalf("%d counts for %d tokens", len(cs), len(tokens))
	}
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%d/%d", c.Spam, c.Ham))
	}
	return tot, out
}

func (e *env) train(tr store.SpamTraining) bool {
	e.t.Helper()
	changed, err := e.s.TrainSpam(e.t.Context(), tr)
	testutil.Must(e.t, err)
	return changed
}

func testTrainCounts(t *testing.T, e *env) {
	if tot, cs := e.counts("example.com", "a", "b"); tot != (store.SpamTotals{}) || !slices.Equal(cs, []string{"0/0", "0/0"}) {
		t.Errorf("a model never trained: %+v %v", tot, cs)
	}
	owners := []string{info, "example.com"}
	e.train(store.SpamTraining{Owners: owners, Tokens: []string{"cheap", "pills", "cheap"}, Class: store.Spam})
	e.train(store.SpamTraining{Owners: owners, Tokens: []string{"cheap", "meeting"}, Class: store.Spam})
	e.train(store.SpamTraining{Owners: []string{"EXAMPLE.COM"}, Tokens: []string{"meeting", "agenda"}, Class: store.Ham})
	tot, cs := e.counts("example.com", "pills", "cheap", "unknown", "meeting", "agenda")
	if want := (store.SpamTotals{Spam: 2, Ham: 1, Tokens: 4}); tot != want {
		t.Errorf("domain totals %+v, want %+v", tot, want)
	}
	if want := []string{"1/0", "2/0", "0/0", "1/1", "0/1"}; !slices.Equal(cs, want) {
		t.Errorf("domain counts %v, want %v", cs, want)
	}
	tot, cs = e.counts("Info@Example.com", "cheap", "agenda")
	if want := (store.SpamTotals{Spam: 2, Tokens: 3}); tot != want || !slices.Equal(cs, []string{"2/0", "0/0"}) {
		t.Errorf("account model %+v %v", tot, cs)
	}
	if tot, err := e.s.SpamTotals(t.Context(), "example.com"); err != nil || tot.Spam != 2 || tot.Ham != 1 {
		t.Errorf("SpamTotals %+v, %v", tot, err)
	}
	if tot, _ := e.s.SpamTotals(t.Context(), bob); tot != (store.SpamTotals{}) {
		t.Errorf("bob's model was trained: %+v", tot)
	}
}

// Counts come in the order of the tokens asked for, whatever it is:
// sorted (as spam.Tokenize gives them), unsorted, with repeats, before the
// model's first token and after its last, between two of its tokens.
func testCountsOrder(t *testing.T, e *env) {
	var trained []string
	for i := range 300 {
		trained = append(trained, fmt.Sprintf("t%03d", 2*i)) // t000, t002, ... t598
	}
	e.train(store.SpamTraining{Owners: []string{"example.com"}, Tokens: trained, Class: store.Spam})
	e.train(store.SpamTraining{Owners: []string{"example.com"}, Tokens: trained[100:], Class: store.Ham})
	counted := map[string]string{}
	for i, tok := range trained {
		counted[tok] = "1/0"
		if i >= 100 {
			counted[tok] = "1/1"
		}
	}
	want := func(tok string) string {
		if c, ok := counted[tok]; ok {
			return c
		}
		return "0/0"
	}
	sorted := []string{"a", "t", "t000", "t0000", "t001", "t002", "t003", "t004", "t198", "t199", "t200", "t201", "t202",
		"t203", "t204", "t205", "t500", "t596", "t597", "t598", "t599", "t600", "u", "zzz"}
	for name, tokens := range map[string][]string{
		"sorted":   sorted,
		"reversed": reversed(sorted),
		"repeats":  {"t002", "t002", "t001", "t002", "t598", "t002", "zzz", "a", "t004", "t004"},
		"unsorted": {"t300", "t100", "t101", "t102", "t000", "t599", "t598", "t200", "t201", "t202"},
		"all":      trained,
	} {
		_, got := e.counts("example.com", tokens...)
		for i, tok := range tokens {
			if got[i] != want(tok) {
				t.Errorf("%s: %q counted %s, want %s", name, tok, got[i], want(tok))
			}
		}
	}
}

func reversed(s []string) []string {
	r := slices.Clone(s)
	slices.Reverse(r)
	return r
}

func testTrainMessage(t *testing.T, e *env) {
	ctx := t.Context()
	d := e.deliver(info, "INBOX", body(1))
	ref := store.MessageRef{Account: info, Mailbox: "INBOX", UID: d.UID}
	if c, err := e.s.SpamTrained(ctx, ref); err != nil || c != store.NotTrained {
		t.Fatalf("a new message: %v, %v", c, err)
	}
	owners := []string{info, "example.com"}
	tokens := []string{"cheap", "pills"}
	tr := store.SpamTraining{Owners: owners, Tokens: tokens, Class: store.Spam, Message: &ref}
	if !e.train(tr) {
		t.Error("first training changed nothing")
	}
	if e.train(tr) {
		t.Error("training the same message the same way again changed something")
	}
	for _, o := range owners {
		if tot, cs := e.counts(o, tokens...); tot.Spam != 1 || tot.Ham != 0 || !slices.Equal(cs, []string{"1/0", "1/0"}) {
			t.Errorf("%s after spam: %+v %v", o, tot, cs)
		}
	}
	if c, _ := e.s.SpamTrained(ctx, ref); c != store.Spam {
		t.Errorf("trained as %v", c)
	}
	// The user changes their mind: spam is taken back, ham learned.
	tr.Class = store.Ham
	if !e.train(tr) {
		t.Error("training as ham changed nothing")
	}
	for _, o := range owners {
		if tot, cs := e.counts(o, tokens...); tot.Spam != 0 || tot.Ham != 1 || !slices.Equal(cs, []string{"0/1", "0/1"}) {
			t.Errorf("%s after ham: %+v %v", o, tot, cs)
		}
	}
	// Forgetting takes it back altogether; tokens counted nowhere go.
	tr.Class = store.NotTrained
	e.train(tr)
	if tot, cs := e.counts("example.com", tokens...); tot != (store.SpamTotals{}) || !slices.Equal(cs, []string{"0/0", "0/0"}) {
		t.Errorf("after forgetting: %+v %v", tot, cs)
	}
	if c, _ := e.s.SpamTrained(ctx, ref); c != store.NotTrained {
		t.Errorf("forgotten message trained as %v", c)
	}
}

func testTrainCopies(t *testing.T, e *env) {
	ctx := t.Context()
	d := e.deliver(info, "INBOX", body(1))
	ref := store.MessageRef{Account: info, Mailbox: "INBOX", UID: d.UID}
	e.train(store.SpamTraining{Owners: []string{info}, Tokens: []string{"x"}, Class: store.Ham, Message: &ref})
	// A copy is the same message: trained already.
	res, err := e.s.CopyMessages(ctx, info, "INBOX", "Trash", []uint32{d.UID})
	testutil.Must(t, err)
	copyRef := store.MessageRef{Account: info, Mailbox: "Trash", UID: res.Dest[0]}
	if c, _ := e.s.SpamTrained(ctx, copyRef); c != store.Ham {
		t.Errorf("copy trained as %v, want ham", c)
	}
	// Moving it to Junk and training it there switches it, once.
	res, err = e.s.MoveMessages(ctx, info, "INBOX", "Junk", []uint32{d.UID})
	testutil.Must(t, err)
	junkRef := store.MessageRef{Account: info, Mailbox: "Junk", UID: res.Dest[0]}
	if !e.train(store.SpamTraining{Owners: []string{info}, Tokens: []string{"x"}, Class: store.Spam, Message: &junkRef}) {
		t.Error("moved to Junk: nothing changed")
	}
	if tot, cs := e.counts(info, "x"); tot.Spam != 1 || tot.Ham != 0 || cs[0] != "1/0" {
		t.Errorf("after the switch: %+v %v", tot, cs)
	}
	// Another account's copy of the same delivery has its own state.
	ds, err := e.s.Deliver(ctx, store.Delivery{Recipients: []string{info, bob}, Message: body(2)})
	testutil.Must(t, err)
	e.train(store.SpamTraining{Owners: []string{info}, Tokens: []string{"y"}, Class: store.Spam, Message: &store.MessageRef{Account: info, Mailbox: "INBOX", UID: ds[0].UID}})
	if c, _ := e.s.SpamTrained(ctx, store.MessageRef{Account: bob, Mailbox: "INBOX", UID: ds[1].UID}); c != store.NotTrained {
		t.Errorf("bob's copy trained as %v", c)
	}
	// Gone with the message: a new message is never trained.
	_, err = e.s.Expunge(ctx, info, "Junk", []uint32{junkRef.UID})
	testutil.Must(t, err)
	_, err = e.s.Expunge(ctx, info, "Trash", []uint32{copyRef.UID})
	testutil.Must(t, err)
	if _, err := e.s.SpamTrained(ctx, junkRef); !is(err, store.ErrNoSuchMessage) {
		t.Errorf("trained state of an expunged message: %v", err)
	}
	for i := 3; i < 6; i++ {
		d := e.deliver(info, "INBOX", body(i))
		if c, _ := e.s.SpamTrained(ctx, store.MessageRef{Account: info, Mailbox: "INBOX", UID: d.UID}); c != store.NotTrained {
			t.Errorf("a new message is trained as %v", c)
		}
	}
}

func testTrainRefused(t *testing.T, e *env) {
	d := e.deliver(info, "INBOX", body(1))
	train := func(tr store.SpamTraining) func(e *env) error {
		return func(e *env) error { _, err := e.s.TrainSpam(e.t.Context(), tr); return err }
	}
	runErrCases(t, e, []errCase{
		{"no owner", train(store.SpamTraining{Tokens: []string{"a"}, Class: store.Spam}), store.ErrInvalid},
		{"no class", train(store.SpamTraining{Owners: []string{info}, Tokens: []string{"a"}}), store.ErrInvalid},
		{"bad class", train(store.SpamTraining{Owners: []string{info}, Tokens: []string{"a"}, Class: 7}), store.ErrInvalid},
		{"no such message", train(store.SpamTraining{Owners: []string{info}, Tokens: []string{"a"}, Class: store.Spam,
			Message: &store.MessageRef{Account: info, Mailbox: "INBOX", UID: d.UID + 1}}), store.ErrNoSuchMessage},
		{"no such mailbox", train(store.SpamTraining{Owners: []string{info}, Tokens: []string{"a"}, Class: store.Spam,
			Message: &store.MessageRef{Account: info, Mailbox: "Nope", UID: d.UID}}), store.ErrNoSuchMailbox},
		{"trained state of nothing", func(e *env) error {
			_, err := e.s.SpamTrained(e.t.Context(), store.MessageRef{Account: "nobody@example.com", Mailbox: "INBOX", UID: 1})
			return err
		}, store.ErrNoSuchAccount},
	})
	if tot, _ := e.counts(info); tot != (store.SpamTotals{}) {
		t.Errorf("a refused training counted: %+v", tot)
	}
}

// TokensOnly counts tokens without a message in the totals, alone and in
// a batch, and is refused with a stored message.
func testTrainTokensOnly(t *testing.T, e *env) {
	owners := []string{info, "example.com"}
	e.train(store.SpamTraining{Owners: owners, Tokens: []string{"cheap", "from:addr:a@example.org"}, Class: store.Ham})
	if !e.train(store.SpamTraining{Owners: owners, Tokens: []string{"from:addr:a@example.org", "from:dom:example.org"}, Class: store.Ham, TokensOnly: true}) {
		t.Errorf("counting tokens alone changed nothing")
	}
	e.trainBatch([]store.SpamTraining{
		{Owners: owners, Tokens: []string{"from:addr:a@example.org"}, Class: store.Ham, TokensOnly: true},
		{Owners: owners, Tokens: []string{"pills"}, Class: store.Spam},
		{Owners: owners, Tokens: []string{"from:addr:s@example.net"}, Class: store.Spam, TokensOnly: true},
	})
	for _, owner := range owners {
		tot, cs := e.counts(owner, "cheap", "from:addr:a@example.org", "from:dom:example.org", "pills", "from:addr:s@example.net")
		if want := (store.SpamTotals{Spam: 1, Ham: 1, Tokens: 5}); tot != want {
			t.Errorf("%s: totals %+v, want %+v (tokens alone count no message)", owner, tot, want)
		}
		if want := []string{"0/1", "0/3", "0/1", "1/0", "1/0"}; !slices.Equal(cs, want) {
			t.Errorf("%s: counts %v, want %v", owner, cs, want)
		}
	}
	d := e.deliver(info, "INBOX", body(1))
	runErrCases(t, e, []errCase{
		{"with a message", func(e *env) error {
			_, err := e.s.TrainSpam(e.t.Context(), store.SpamTraining{Owners: owners, Tokens: []string{"x"}, Class: store.Ham, TokensOnly: true,
				Message: &store.MessageRef{Account: info, Mailbox: "INBOX", UID: d.UID}})
			return err
		}, store.ErrInvalid},
		{"no class", func(e *env) error {
			_, err := e.s.TrainSpamBatch(e.t.Context(), []store.SpamTraining{{Owners: owners, Tokens: []string{"x"}, TokensOnly: true}})
			return err
		}, store.ErrInvalid},
	})
	if c, _ := e.s.SpamTrained(t.Context(), store.MessageRef{Account: info, Mailbox: "INBOX", UID: d.UID}); c != store.NotTrained {
		t.Errorf("a refused training remembered the message as %v", c)
	}
}

// tokens returns n distinct tokens starting with prefix.
func tokens(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%06d", prefix, i)
	}
	return out
}

func testSpamBounded(t *testing.T, e *env) {
	old := tokens("old", store.MaxSpamTokens*6/10)
	e.train(store.SpamTraining{Owners: []string{"example.com"}, Tokens: old, Class: store.Ham})
	e.train(store.SpamTraining{Owners: []string{"example.com"}, Tokens: old[:10], Class: store.Ham}) // seen twice
	e.clock.Advance(48 * time.Hour)
	e.train(store.SpamTraining{Owners: []string{"example.com"}, Tokens: tokens("new", store.MaxSpamTokens*6/10), Class: store.Spam})
	tot, cs := e.counts("example.com", old[0], old[10], "new000000")
	if tot.Tokens > store.MaxSpamTokens || tot.Spam != 1 || tot.Ham != 2 {
		t.Errorf("totals %+v: want at most %d tokens", tot, store.MaxSpamTokens)
	}
	// Seen in the fewest messages, longest ago, go first.
	if want := []string{"0/2", "0/0", "1/0"}; !slices.Equal(cs, want) {
		t.Errorf("counts %v, want %v", cs, want)
	}
}

func testSpamAged(t *testing.T, e *env) {
	ctx := t.Context()
	e.train(store.SpamTraining{Owners: []string{"example.com", info}, Tokens: []string{"a", "b"}, Class: store.Spam})
	e.clock.Advance(100 * 24 * time.Hour)
	e.train(store.SpamTraining{Owners: []string{"example.com"}, Tokens: []string{"b", "c"}, Class: store.Ham})
	n, err := e.s.PruneSpamModels(ctx, e.clock.Now().Add(-50*24*time.Hour))
	testutil.Must(t, err)
	if n != 3 { // a of the domain, a and b of the account
		t.Errorf("pruned %d tokens, want 3", n)
	}
	if tot, cs := e.counts("example.com", "a", "b", "c"); tot.Tokens != 2 || !slices.Equal(cs, []string{"0/0", "1/1", "0/1"}) {
		t.Errorf("domain after pruning: %+v %v", tot, cs)
	}
	if tot, _ := e.counts(info); tot.Tokens != 0 || tot.Spam != 1 {
		t.Errorf("account after pruning: %+v (the message count stays)", tot)
	}
}

func testSpamRemoved(t *testing.T, e *env) {
	ctx := t.Context()
	e.train(store.SpamTraining{Owners: []string{carol, "other.test"}, Tokens: []string{"a"}, Class: store.Spam})
	testutil.Must(t, e.s.RemoveAccount(ctx, carol))
	testutil.Must(t, e.s.RemoveDomain(ctx, "other.test"))
	testutil.Must(t, e.s.AddDomain(ctx, "other.test", ""))
	testutil.Must(t, e.s.AddAccount(ctx, store.Account{Address: carol, PasswordHash: "x"}))
	for _, o := range []string{carol, "other.test"} {
		if tot, _ := e.counts(o, "a"); tot != (store.SpamTotals{}) {
			t.Errorf("%s: the model of a removed owner came back: %+v", o, tot)
		}
	}
}

func testSpamRestart(t *testing.T, e *env) {
	d := e.deliver(info, "INBOX", body(1))
	ref := store.MessageRef{Account: info, Mailbox: "INBOX", UID: d.UID}
	e.train(store.SpamTraining{Owners: []string{info}, Tokens: []string{"a"}, Class: store.Spam, Message: &ref})
	e.restart()
	if tot, cs := e.counts(info, "a"); tot.Spam != 1 || cs[0] != "1/0" {
		t.Errorf("after restart: %+v %v", tot, cs)
	}
	if c, _ := e.s.SpamTrained(t.Context(), ref); c != store.Spam {
		t.Errorf("after restart trained as %v", c)
	}
}

func (e *env) trainBatch(ts []store.SpamTraining) []bool {
	e.t.Helper()
	changed, err := e.s.TrainSpamBatch(e.t.Context(), ts)
	testutil.Must(e.t, err)
	if len(changed) != len(ts) {
		e.t.Fatalf("%d results for a batch of %d", len(changed), len(ts))
	}
	return changed
}

// testTrainBatchInOrder trains the same copies of messages the same way,
// one by one for info and in one batch for bob: repeats, changes of mind
// within the batch, a message forgotten and trained again, a training
// without a message. Both must end where the trainings, done in order,
// lead.
func testTrainBatchInOrder(t *testing.T, e *env) {
	ctx := t.Context()
	refs := map[string][]store.MessageRef{}
	for i := range 4 {
		ds, err := e.s.Deliver(ctx, store.Delivery{Recipients: []string{info, bob}, Message: body(i)})
		testutil.Must(t, err)
		for _, d := range ds {
			refs[d.Account] = append(refs[d.Account], store.MessageRef{Account: d.Account, Mailbox: d.Mailbox, UID: d.UID})
		}
	}
	// A message's tokens are the same whenever it is trained.
	toks := [][]string{{"cheap", "pills"}, {"meeting", "agenda"}, {"cheap", "meeting"}, {"agenda", "budget"}}
	script := func(account string) []store.SpamTraining {
		r := refs[account]
		tr := func(i int, c store.SpamClass) store.SpamTraining {
			return store.SpamTraining{Owners: []string{account}, Tokens: toks[i], Class: c, Message: &r[i]}
		}
		return []store.SpamTraining{
			tr(0, store.Spam),
			tr(0, store.Spam), // again: nothing
			tr(1, store.Ham),
			tr(2, store.Ham), // was spam before the batch
			tr(0, store.Ham), // a change of mind within the batch
			{Owners: []string{account}, Tokens: []string{"casino"}, Class: store.Spam},
			tr(3, store.NotTrained), // was ham before the batch: forgotten
			tr(1, store.Ham),        // again: nothing
			tr(3, store.Spam),       // forgotten, then spam
		}
	}
	for _, a := range []string{info, bob} {
		r := refs[a]
		e.train(store.SpamTraining{Owners: []string{a}, Tokens: toks[2], Class: store.Spam, Message: &r[2]})
		e.train(store.SpamTraining{Owners: []string{a}, Tokens: toks[3], Class: store.Ham, Message: &r[3]})
	}
	var oneByOne []bool
	for _, tr := range script(info) {
		oneByOne = append(oneByOne, e.train(tr))
	}
	batch := e.trainBatch(script(bob))
	wantChanged := []bool{true, false, true, true, true, true, true, false, true}
	if !slices.Equal(oneByOne, wantChanged) {
		t.Errorf("one by one changed %v, want %v", oneByOne, wantChanged)
	}
	if !slices.Equal(batch, wantChanged) {
		t.Errorf("the batch changed %v, want %v", batch, wantChanged)
	}
	all := []string{"cheap", "pills", "meeting", "agenda", "budget", "casino"}
	wantCounts := []string{"0/2", "0/1", "0/2", "1/1", "1/0", "1/0"}
	wantTot := store.SpamTotals{Spam: 2, Ham: 3, Tokens: 6}
	wantClass := []store.SpamClass{store.Ham, store.Ham, store.Ham, store.Spam}
	for _, a := range []string{info, bob} {
		if tot, cs := e.counts(a, all...); tot != wantTot || !slices.Equal(cs, wantCounts) {
			t.Errorf("%s's model %+v %v, want %+v %v", a, tot, cs, wantTot, wantCounts)
		}
		for i, ref := range refs[a] {
			if c, err := e.s.SpamTrained(ctx, ref); err != nil || c != wantClass[i] {
				t.Errorf("%s's message %d trained as %v, %v; want %v", a, i, c, err, wantClass[i])
			}
		}
	}
	// The same batch again: message 0 goes to spam and back, 3 is
	// forgotten and trained again, the others are trained so already.
	again := e.trainBatch(script(bob))
	if want := []bool{true, false, false, false, true, true, true, false, true}; !slices.Equal(again, want) {
		t.Errorf("the batch again changed %v, want %v", again, want)
	}
}

func testTrainBatchGone(t *testing.T, e *env) {
	ctx := t.Context()
	uids := e.deliverN(info, "INBOX", 3)
	_, err := e.s.Expunge(ctx, info, "INBOX", uids[1:2])
	testutil.Must(t, err)
	spamOf := func(ref store.MessageRef) store.SpamTraining {
		return store.SpamTraining{Owners: []string{info}, Tokens: []string{"a"}, Class: store.Spam, Message: &ref}
	}
	goneOnes := []store.SpamTraining{
		spamOf(store.MessageRef{Account: info, Mailbox: "INBOX", UID: uids[1]}),                 // expunged
		spamOf(store.MessageRef{Account: info, Mailbox: "Nope", UID: uids[0]}),                  // no such mailbox
		spamOf(store.MessageRef{Account: "nobody@example.com", Mailbox: "INBOX", UID: uids[0]}), // no such account
	}
	if got := e.trainBatch(goneOnes); slices.Contains(got, true) {
		t.Errorf("a batch of messages gone changed %v", got)
	}
	if tot, _ := e.counts(info); tot != (store.SpamTotals{}) {
		t.Errorf("a batch of messages gone counted: %+v", tot)
	}
	batch := append([]store.SpamTraining{spamOf(store.MessageRef{Account: info, Mailbox: "INBOX", UID: uids[0]})}, goneOnes...)
	batch = append(batch, spamOf(store.MessageRef{Account: info, Mailbox: "INBOX", UID: uids[2]}))
	if got, want := e.trainBatch(batch), []bool{true, false, false, false, true}; !slices.Equal(got, want) {
		t.Errorf("changed %v, want %v", got, want)
	}
	if tot, cs := e.counts(info, "a"); tot.Spam != 2 || cs[0] != "2/0" {
		t.Errorf("the two messages there: %+v %v", tot, cs)
	}
}

func testTrainBatchOwners(t *testing.T, e *env) {
	ctx := t.Context()
	ds, err := e.s.Deliver(ctx, store.Delivery{Recipients: []string{info, bob, carol}, Message: body(1)})
	testutil.Must(t, err)
	var ts []store.SpamTraining
	for i, d := range ds {
		ref := store.MessageRef{Account: d.Account, Mailbox: d.Mailbox, UID: d.UID}
		domain := d.Account[strings.IndexByte(d.Account, '@')+1:]
		class := store.Spam
		if i == 1 {
			class = store.Ham
		}
		ts = append(ts, store.SpamTraining{Owners: []string{d.Account, domain}, Tokens: []string{"t"}, Class: class, Message: &ref})
	}
	if got := e.trainBatch(ts); !slices.Equal(got, []bool{true, true, true}) {
		t.Errorf("changed %v", got)
	}
	for owner, want := range map[string]string{info: "1/0", bob: "0/1", carol: "1/0", "example.com": "1/1", "other.test": "1/0"} {
		if _, cs := e.counts(owner, "t"); cs[0] != want {
			t.Errorf("%s's model counts %s, want %s", owner, cs[0], want)
		}
	}
	for i, d := range ds {
		if c, _ := e.s.SpamTrained(ctx, store.MessageRef{Account: d.Account, Mailbox: d.Mailbox, UID: d.UID}); c != ts[i].Class {
			t.Errorf("%s's copy trained as %v, want %v", d.Account, c, ts[i].Class)
		}
	}
}

func testTrainBatchRefused(t *testing.T, e *env) {
	d := e.deliver(info, "INBOX", body(1))
	ref := store.MessageRef{Account: info, Mailbox: "INBOX", UID: d.UID}
	good := store.SpamTraining{Owners: []string{info}, Tokens: []string{"a"}, Class: store.Spam, Message: &ref}
	batch := func(ts ...store.SpamTraining) func(e *env) error {
		return func(e *env) error { _, err := e.s.TrainSpamBatch(e.t.Context(), ts); return err }
	}
	var tooMany []store.SpamTraining
	for i := range store.MaxSpamBatch + 1 {
		tooMany = append(tooMany, store.SpamTraining{Owners: []string{info}, Tokens: []string{fmt.Sprint(i)}, Class: store.Spam})
	}
	runErrCases(t, e, []errCase{
		{"no owner", batch(good, store.SpamTraining{Tokens: []string{"a"}, Class: store.Spam}), store.ErrInvalid},
		{"no class", batch(good, store.SpamTraining{Owners: []string{info}, Tokens: []string{"a"}}), store.ErrInvalid},
		{"bad class", batch(good, store.SpamTraining{Owners: []string{info}, Class: 7, Message: &ref}), store.ErrInvalid},
		{"too many", batch(tooMany...), store.ErrInvalid},
	})
	if tot, _ := e.counts(info); tot != (store.SpamTotals{}) {
		t.Errorf("a refused batch counted: %+v", tot)
	}
	if c, _ := e.s.SpamTrained(t.Context(), ref); c != store.NotTrained {
		t.Errorf("a refused batch trained the message as %v", c)
	}
	if got := e.trainBatch(nil); len(got) != 0 {
		t.Errorf("an empty batch: %v", got)
	}
	if got := e.trainBatch(tooMany[:store.MaxSpamBatch]); slices.Contains(got, false) {
		t.Errorf("a full batch: %v", got)
	}
	if tot, _ := e.counts(info); tot.Spam != store.MaxSpamBatch || tot.Tokens != store.MaxSpamBatch {
		t.Errorf("after a full batch: %+v", tot)
	}
}

// testTrainBatchBounded takes a model past its bound in the middle of a
// batch, and another model by the same trainings one by one: the tokens
// that go, and the counts of those that stay, are the same.
func testTrainBatchBounded(t *testing.T, e *env) {
	// Tokens the model keeps already (even numbers) and new ones (odd)
	// interleave, as words do: 120,000 of each, 240,000 in all.
	var kept, fresh []string
	for i := range 2 * 120_000 {
		if tok := fmt.Sprintf("t%07d", i); i%2 == 0 {
			kept = append(kept, tok)
		} else {
			fresh = append(fresh, tok)
		}
	}
	half := len(fresh) / 2
	script := func(owner string) []store.SpamTraining {
		o := []string{owner}
		return []store.SpamTraining{
			{Owners: o, Tokens: kept[:10], Class: store.Spam},
			{Owners: o, Tokens: fresh[:half], Class: store.Spam},
			{Owners: o, Tokens: fresh[half:], Class: store.Spam}, // past the bound: the model shrinks
			{Owners: o, Tokens: append(slices.Clone(fresh[:5]), kept[10:15]...), Class: store.Ham},
		}
	}
	for _, owner := range []string{"example.com", "other.test"} {
		e.train(store.SpamTraining{Owners: []string{owner}, Tokens: kept, Class: store.Ham})
	}
	e.clock.Advance(48 * time.Hour) // the tokens kept are older
	for _, tr := range script("example.com") {
		e.train(tr)
	}
	if got := e.trainBatch(script("other.test")); slices.Contains(got, false) {
		t.Errorf("changed %v", got)
	}
	sample := []string{kept[0], kept[9], kept[10], kept[12], kept[20], kept[len(kept)-1],
		fresh[0], fresh[3], fresh[7], fresh[half], fresh[len(fresh)-1]}
	wantTot, want := e.counts("example.com", sample...)
	if wantTot.Tokens > store.MaxSpamTokens || wantTot.Spam != 3 || wantTot.Ham != 2 {
		t.Errorf("one by one: totals %+v, want 3 spam, 2 ham, at most %d tokens", wantTot, store.MaxSpamTokens)
	}
	// The older tokens seen once went first, in key order, until 180,000
	// were left; the last training counted some of them anew.
	if wantCounts := []string{"1/1", "1/1", "0/1", "0/1", "0/0", "0/1", "1/1", "1/1", "1/0", "1/0", "1/0"}; !slices.Equal(want, wantCounts) {
		t.Errorf("one by one: counts %v, want %v", want, wantCounts)
	}
	if tot, got := e.counts("other.test", sample...); tot != wantTot || !slices.Equal(got, want) {
		t.Errorf("in a batch: %+v %v; one by one: %+v %v", tot, got, wantTot, want)
	}
}
