package bolt

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"yubin/internal/testutil"
	"yubin/store"

	bbolt "go.etcd.io/bbolt"
)

func (c *spamCache) loaded(owner string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	m := c.models[owner]
	return m != nil && m.state == modelLoaded
}

// loadModel has owner's model read into the cache.
func loadModel(t *testing.T, s *Store, owner string) {
	t.Helper()
	for range 1000 {
		if s.spam.loaded(owner) {
			return
		}
		_, _, err := s.SpamCounts(t.Context(), owner, []string{"x"})
		testutil.Must(t, err)
		s.spam.loads.Wait()
	}
	t.Fatalf("%s's model is not loaded", owner)
}

// checkCache compares what the cache holds of owner's model with bbolt:
// the totals, every token of the model, and others.
func checkCache(t *testing.T, s *Store, owner string, others ...string) {
	t.Helper()
	var tokens []string
	testutil.Must(t, s.viewFresh(func(tx *bbolt.Tx) error {
		if ob := spamOwner(tx, owner); ob != nil && ob.Bucket(bTokens) != nil {
			return ob.Bucket(bTokens).ForEach(func(k, _ []byte) error {
				tokens = append(tokens, string(k))
				return nil
			})
		}
		return nil
	}))
	n := len(tokens)
	tokens = append(tokens, others...)
	want := make([]store.SpamCount, len(tokens))
	wantTot, _, err := s.readSpamCounts(owner, tokens, want)
	testutil.Must(t, err)
	got := make([]store.SpamCount, len(tokens))
	gotTot, ok := s.spam.counts(owner, tokens, got)
	if !ok {
		t.Fatalf("%s's model is not loaded", owner)
	}
	if gotTot != wantTot {
		t.Errorf("%s: cached totals %+v, bbolt %+v", owner, gotTot, wantTot)
	}
	for i, tok := range tokens {
		if got[i] != want[i] {
			t.Errorf("%s: %q cached %+v, bbolt %+v", owner, tok, got[i], want[i])
		}
	}
	s.spam.mu.RLock()
	held := len(s.spam.models[owner].index)
	s.spam.mu.RUnlock()
	if held != n {
		t.Errorf("%s: the cache holds %d tokens, bbolt %d", owner, held, n)
	}
}

func train(t *testing.T, s *Store, tr store.SpamTraining) {
	t.Helper()
	_, err := s.TrainSpam(t.Context(), tr)
	testutil.Must(t, err)
}

// A loaded model follows what changes the model: training as spam and as
// ham, training a message again as the other class (its tokens counted
// down, some to nothing), pruning, and deleting the model's account.
func TestSpamCacheFollowsChanges(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := Open(filepath.Join(t.TempDir(), FileName), Options{Now: func() time.Time { return now }})
	testutil.Must(t, err)
	t.Cleanup(func() { s.Close() })
	setup(t, s)
	ctx := t.Context()
	const dom, acct = "example.com", "info@example.com"
	owners := []string{acct, dom}
	train(t, s, store.SpamTraining{Owners: owners, Tokens: []string{"a", "b", "c"}, Class: store.Spam})
	train(t, s, store.SpamTraining{Owners: owners, Tokens: []string{"b", "c", "d"}, Class: store.Ham})
	loadModel(t, s, dom)
	loadModel(t, s, acct)
	checkCache(t, s, dom, "zzz")

	train(t, s, store.SpamTraining{Owners: owners, Tokens: []string{"c", "e", "f", "e"}, Class: store.Spam})
	checkCache(t, s, dom, "zzz")
	checkCache(t, s, acct)

	// A batch: one transaction, several trainings of the same tokens.
	_, err = s.TrainSpamBatch(ctx, []store.SpamTraining{
		{Owners: owners, Tokens: []string{"b", "i", "j"}, Class: store.Spam},
		{Owners: []string{dom}, Tokens: []string{"b", "i", "k"}, Class: store.Ham},
		{Owners: owners, Tokens: []string{"i", "l"}, Class: store.Spam},
	})
	testutil.Must(t, err)
	checkCache(t, s, dom, "zzz")
	checkCache(t, s, acct)

	d, err := s.Deliver(ctx, store.Delivery{Recipients: []string{acct}, Message: []byte("Subject: hi\r\n\r\nhello\r\n")})
	testutil.Must(t, err)
	ref := store.MessageRef{Account: acct, Mailbox: "INBOX", UID: d[0].UID}
	train(t, s, store.SpamTraining{Owners: owners, Tokens: []string{"g", "h", "a"}, Class: store.Spam, Message: &ref})
	checkCache(t, s, dom)
	train(t, s, store.SpamTraining{Owners: owners, Tokens: []string{"g", "h", "a"}, Class: store.Ham, Message: &ref})
	checkCache(t, s, dom) // g and h no longer spam, a one less
	train(t, s, store.SpamTraining{Owners: owners, Tokens: []string{"g", "h", "a"}, Class: store.NotTrained, Message: &ref})
	checkCache(t, s, dom, "g", "h") // gone
	checkCache(t, s, acct, "g", "h")

	// Pruning drops the model from the cache; it is loaded again later.
	now = now.AddDate(0, 0, 10)
	train(t, s, store.SpamTraining{Owners: []string{dom}, Tokens: []string{"new"}, Class: store.Spam})
	checkCache(t, s, dom)
	if n, err := s.PruneSpamModels(ctx, now.AddDate(0, 0, -1)); err != nil || n == 0 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	if s.spam.loaded(dom) {
		t.Error("a pruned model is still cached")
	}
	loadModel(t, s, dom)
	checkCache(t, s, dom, "a", "b")

	loadModel(t, s, acct)
	testutil.Must(t, s.RemoveAccount(ctx, acct))
	if s.spam.loaded(acct) {
		t.Error("the model of a deleted account is still cached")
	}
	if tot, cs, err := s.SpamCounts(ctx, acct, []string{"a", "c"}); err != nil || tot != (store.SpamTotals{}) || cs[0] != (store.SpamCount{}) || cs[1] != (store.SpamCount{}) {
		t.Errorf("a deleted account's model: %+v %+v %v", tot, cs, err)
	}
}

// Trainings while a model is being loaded and while it is read from the
// cache leave the cache as bbolt is.
func TestSpamCacheConcurrent(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	ctx := t.Context()
	const dom = "example.com"
	tok := func(rng *rand.Rand) string { return fmt.Sprintf("t%d", rng.IntN(400)) }
	train(t, s, store.SpamTraining{Owners: []string{dom}, Tokens: []string{"t1"}, Class: store.Spam})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range 60 {
				if w%2 == 0 {
					var tokens []string
					for range 1 + rng.IntN(50) {
						tokens = append(tokens, tok(rng))
					}
					_, err := s.TrainSpam(ctx, store.SpamTraining{Owners: []string{dom}, Tokens: tokens, Class: store.SpamClass(1 + rng.IntN(2))})
					if err != nil {
						t.Error(err)
						return
					}
					continue
				}
				tokens := []string{tok(rng), tok(rng), tok(rng)}
				slices.Sort(tokens)
				if _, _, err := s.SpamCounts(ctx, dom, tokens); err != nil {
					t.Error(err)
					return
				}
				if rng.IntN(10) == 0 {
					// Evicted now and then, to be loaded again.
					s.spam.mu.Lock()
					if m := s.spam.models[dom]; m != nil && m.state == modelLoaded {
						s.spam.unload(dom, m)
					}
					s.spam.mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	s.spam.loads.Wait()
	loadModel(t, s, dom)
	checkCache(t, s, dom, "t400", "zzz")
}

// Loaded models hold at most the cache's budget of tokens together: the
// least recently used goes first.
func TestSpamCacheEvicts(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	s.spam.budget = 250
	tokens := func(prefix string, n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprint(prefix, i))
		}
		return out
	}
	train(t, s, store.SpamTraining{Owners: []string{"a.test"}, Tokens: tokens("a", 100), Class: store.Spam})
	train(t, s, store.SpamTraining{Owners: []string{"b.test"}, Tokens: tokens("b", 100), Class: store.Spam})
	train(t, s, store.SpamTraining{Owners: []string{"c.test"}, Tokens: tokens("c", 100), Class: store.Spam})
	train(t, s, store.SpamTraining{Owners: []string{"big.test"}, Tokens: tokens("x", 300), Class: store.Spam})
	loadModel(t, s, "a.test")
	loadModel(t, s, "b.test")
	s.SpamCounts(t.Context(), "a.test", []string{"a1"}) // b is now the least recently used
	loadModel(t, s, "c.test")
	if !s.spam.loaded("a.test") || s.spam.loaded("b.test") || !s.spam.loaded("c.test") {
		t.Errorf("loaded: a %v, b %v, c %v; want a and c", s.spam.loaded("a.test"), s.spam.loaded("b.test"), s.spam.loaded("c.test"))
	}
	if s.spam.held != 200 {
		t.Errorf("%d tokens held, want 200", s.spam.held)
	}
	for range 20 {
		s.SpamCounts(t.Context(), "big.test", []string{"x1"})
		s.spam.loads.Wait()
	}
	if s.spam.loaded("big.test") {
		t.Error("a model bigger than the budget was loaded")
	}
	checkCache(t, s, "a.test")
	checkCache(t, s, "c.test")
}
