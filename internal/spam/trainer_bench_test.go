package spam_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"yubin/internal/spam"
	"yubin/internal/testutil"
	"yubin/internal/testutil/teststore"
	"yubin/store"
)

// benchMail makes messages of prose over a vocabulary, its words drawn
// with Zipf's law as words are: most of a message's tokens are known to a
// model trained on earlier mail, some are new.
type benchMail struct {
	vocab []string
	zipf  *rand.Zipf
	n     int
}

func newBenchMail(words int) *benchMail {
	r := rand.New(rand.NewPCG(1, 2))
	vocab := make([]string, words)
	for i := range vocab {
		b := make([]byte, 4+r.IntN(7))
		for j := range b {
			b[j] = byte('a' + r.IntN(26))
		}
		vocab[i] = string(b)
	}
	return &benchMail{vocab: vocab, zipf: rand.NewZipf(r, 1.1, 1, uint64(words-1))}
}

// next returns a message of about 250 words of body.
func (m *benchMail) next() []byte {
	m.n++
	var b strings.Builder
	fmt.Fprintf(&b, "From: Sender %d <s%d@sender%d.test>\r\nTo: %s\r\nSubject: %s %s %s\r\nMessage-ID: <%d@bench.test>\r\n"+
		"Date: Mon, 2 Jan 2006 15:04:05 -0700\r\n\r\n", m.n, m.n, m.n%50, bob, m.word(), m.word(), m.word(), m.n)
	for i := range 250 {
		b.WriteString(m.word())
		if i%12 == 11 {
			b.WriteString("\r\n")
		} else {
			b.WriteByte(' ')
		}
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

func (m *benchMail) word() string { return m.vocab[m.zipf.Uint64()] }

// BenchmarkTrainMoveToJunk trains what one IMAP command asks for: 500
// messages moved into Junk, on a bolt store in a temporary directory
// (fsync'd, as a server's is) whose account and domain models already keep
// well over 100,000 tokens. It reports messages trained a second.
func BenchmarkTrainMoveToJunk(b *testing.B) {
	const perCommand = 500
	ctx := b.Context()
	st := teststore.New(b, teststore.Options{Accounts: []store.Account{{Address: bob}}})
	mail := newBenchMail(200_000)

	// The models as earlier mail left them: the tokens of a few thousand
	// messages, in one training.
	seen := map[string]bool{}
	for len(seen) < 150_000 {
		for _, tok := range spam.Tokenize(mail.next()) {
			seen[tok] = true
		}
	}
	seed := make([]string, 0, len(seen))
	for tok := range seen {
		seed = append(seed, tok)
	}
	_, err := st.TrainSpam(ctx, store.SpamTraining{Owners: spam.Owners(bob), Tokens: seed, Class: store.Ham})
	testutil.Must(b, err)

	tr := spam.NewTrainer(st, nil)
	stop := testutil.Go(b, func(ctx context.Context) error { tr.Run(ctx); return nil })
	b.Cleanup(func() { stop() })

	trained, written := 0, int64(0)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		// Mail arrives (concurrently: the store groups the commits), and
		// the user moves all of it into Junk in one command.
		var wg sync.WaitGroup
		errs := make(chan error, perCommand)
		for range perCommand {
			msg := mail.next()
			wg.Go(func() {
				_, err := st.Deliver(ctx, store.Delivery{Recipients: []string{bob}, Message: msg})
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			testutil.Must(b, err)
		}
		msgs, _, err := st.Messages(ctx, bob, "INBOX")
		testutil.Must(b, err)
		uids := make([]uint32, len(msgs))
		for j, m := range msgs {
			uids[j] = m.UID
		}
		res, err := st.MoveMessages(ctx, bob, "INBOX", "Junk", uids)
		testutil.Must(b, err)
		b.StartTimer()
		w0 := writtenBytes()

		tr.Enqueue(bob, "Junk", res.Dest, store.Spam)
		fctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		testutil.Must(b, tr.Flush(fctx))
		cancel()
		if w1 := writtenBytes(); w0 >= 0 && w1 >= 0 {
			written += w1 - w0
		} else {
			written = -1 << 62 // not known
		}
		trained += len(res.Dest)
	}
	b.StopTimer()
	tot, err := st.SpamTotals(ctx, bob)
	testutil.Must(b, err)
	if tot.Spam != int64(trained) {
		b.Fatalf("the account's model counts %d spam, want %d", tot.Spam, trained)
	}
	b.ReportMetric(float64(trained)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(tot.Tokens), "model-tokens")
	if written >= 0 {
		b.ReportMetric(float64(written)/float64(trained)/1e6, "MB-written/msg")
	}
}

// writtenBytes is how much this process has written to storage so far
// (Linux's /proc/self/io), or -1 where that is not known.
func writtenBytes() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}
