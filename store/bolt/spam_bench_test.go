package bolt

import (
	"sync"
	"testing"

	"yubin/internal/spam"
	"yubin/internal/testutil"
	"yubin/internal/testutil/mailgen"
	"yubin/store"
)

// BenchmarkSpamCounts looks up the tokens of a realistic 10 KiB message
// (mailgen) in a domain model trained with 300 spam and 300 ham messages
// of the same kind, as the spam stage does for each message from port 25:
// in bbolt, and in the model cache (spamcache.go).
func BenchmarkSpamCounts(b *testing.B) {
	s := openTest(b)
	setup(b, s)
	g := mailgen.New(2)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range 600 {
		class := store.SpamClass(store.Ham)
		if i%2 == 0 {
			class = store.Spam
		}
		tokens := spam.Tokenize(g.Message(class == store.Spam, 2<<10+g.IntN(8<<10)))
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			_, err := s.TrainSpam(b.Context(), store.SpamTraining{Owners: []string{"example.com"}, Tokens: tokens, Class: class})
			testutil.Must(b, err)
		}()
	}
	wg.Wait()
	tokens := spam.Tokenize(mailgen.New(1).Message(false, 10<<10))
	tot, counts, err := s.SpamCounts(b.Context(), "example.com", tokens)
	testutil.Must(b, err)
	known := 0
	for _, c := range counts {
		if c.Spam+c.Ham > 0 {
			known++
		}
	}
	b.Logf("model %+v; %d tokens looked up, %d known", tot, len(tokens), known)
	// From bbolt, as a model read rarely is, and from the cache.
	b.Run("from=bbolt", func(b *testing.B) {
		b.ReportAllocs()
		cpu := testutil.ProcessCPU()
		for b.Loop() {
			if _, _, err := s.readSpamCounts("example.com", tokens, make([]store.SpamCount, len(tokens))); err != nil {
				b.Fatal(err)
			}
		}
		testutil.ReportCPU(b, cpu, "cpu-ns/op")
	})
	b.Run("from=cache", func(b *testing.B) {
		for !s.spam.loaded("example.com") {
			s.SpamCounts(b.Context(), "example.com", tokens)
			s.spam.loads.Wait()
		}
		b.ReportAllocs()
		cpu := testutil.ProcessCPU()
		for b.Loop() {
			if _, _, err := s.SpamCounts(b.Context(), "example.com", tokens); err != nil {
				b.Fatal(err)
			}
		}
		testutil.ReportCPU(b, cpu, "cpu-ns/op")
	})
}
