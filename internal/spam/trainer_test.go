package spam_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"yubin/internal/spam"
	"yubin/internal/testutil"
	"yubin/internal/testutil/teststore"
	"yubin/store"
)

// batchCounter is a store that remembers the size of each batch trained.
type batchCounter struct {
	store.Store
	mu      sync.Mutex
	batches []int
}

func (c *batchCounter) TrainSpamBatch(ctx context.Context, ts []store.SpamTraining) ([]bool, error) {
	c.mu.Lock()
	c.batches = append(c.batches, len(ts))
	c.mu.Unlock()
	return c.Store.TrainSpamBatch(ctx, ts)
}

func (c *batchCounter) sizes() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.batches...)
}

// logBuffer is a log that tests read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newTrainerStore(t *testing.T) *batchCounter {
	return &batchCounter{Store: teststore.New(t, teststore.Options{NoSync: true, Accounts: []store.Account{{Address: bob}}})}
}

// deliverN delivers n distinct messages to bob's mailbox box, in one
// transaction each but concurrently, and returns their UIDs in order.
func deliverN(t *testing.T, st store.Store, box string, n int) []uint32 {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := st.Deliver(t.Context(), store.Delivery{Recipients: []string{bob}, Mailbox: box, Message: offer(i)})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		testutil.Must(t, err)
	}
	msgs, _, err := st.Messages(t.Context(), bob, box)
	testutil.Must(t, err)
	uids := make([]uint32, len(msgs))
	for i, m := range msgs {
		uids[i] = m.UID
	}
	return uids
}

func runTrainer(t *testing.T, tr *spam.Trainer) {
	stop := testutil.Go(t, func(ctx context.Context) error { tr.Run(ctx); return nil })
	t.Cleanup(func() { stop() })
}

func flush(t *testing.T, tr *spam.Trainer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	testutil.Must(t, tr.Flush(ctx))
}

func trainedAs(t *testing.T, st store.Store, box string, uids []uint32) map[store.SpamClass]int {
	t.Helper()
	out := map[store.SpamClass]int{}
	for _, uid := range uids {
		c, err := st.SpamTrained(t.Context(), store.MessageRef{Account: bob, Mailbox: box, UID: uid})
		testutil.Must(t, err)
		out[c]++
	}
	return out
}

// One command with more messages than a batch trains them all, in
// batches of at most spam.TrainBatch messages.
func TestTrainerBigCommand(t *testing.T) {
	st := newTrainerStore(t)
	n := 2*spam.TrainBatch + 1100 // more than the thousand once trained at most
	uids := deliverN(t, st, "Junk", n)
	tr := spam.NewTrainer(st, nil)
	runTrainer(t, tr)
	if !tr.Enqueue(bob, "Junk", uids, store.Spam) {
		t.Fatal("Enqueue refused one command")
	}
	flush(t, tr)
	if got := trainedAs(t, st, "Junk", uids); got[store.Spam] != n {
		t.Errorf("trained %v, want all %d as spam", got, n)
	}
	for _, owner := range spam.Owners(bob) {
		if tot, _ := st.SpamTotals(t.Context(), owner); tot.Spam != int64(n) {
			t.Errorf("%s's model counts %d spam, want %d", owner, tot.Spam, n)
		}
	}
	sizes := sum(st.sizes())
	if sizes.n != n || sizes.max > spam.TrainBatch || sizes.batches > (n+spam.TrainBatch-1)/spam.TrainBatch+1 {
		t.Errorf("batches %v: %d messages, want %d in batches of at most %d", st.sizes(), sizes.n, n, spam.TrainBatch)
	}
}

type batchSum struct{ n, max, batches int }

func sum(sizes []int) batchSum {
	var s batchSum
	for _, b := range sizes {
		s.n += b
		s.max = max(s.max, b)
		s.batches++
	}
	return s
}

// Commands queued while the worker is busy or away are trained together:
// many one-message commands (a user reading mail) go in a few batches.
func TestTrainerMergesCommands(t *testing.T) {
	st := newTrainerStore(t)
	uids := deliverN(t, st, "INBOX", 300)
	tr := spam.NewTrainer(st, nil)
	for _, uid := range uids {
		if !tr.Enqueue(bob, "INBOX", []uint32{uid}, store.Ham) {
			t.Fatal("Enqueue refused a message")
		}
	}
	runTrainer(t, tr)
	flush(t, tr)
	if got := trainedAs(t, st, "INBOX", uids); got[store.Ham] != len(uids) {
		t.Errorf("trained %v, want all %d as ham", got, len(uids))
	}
	if sizes := st.sizes(); len(sizes) != 2 || sizes[0] != spam.TrainBatch {
		t.Errorf("300 messages queued at once went in batches %v, want %d and the rest", sizes, spam.TrainBatch)
	}
}

// The same message several times in the queue, either way, ends as the
// last command said, counted once; a message expunged before the worker
// got to it is skipped without a word, and the others train.
func TestTrainerInOrder(t *testing.T) {
	st := newTrainerStore(t)
	uids := deliverN(t, st, "INBOX", 4)
	_, err := st.Expunge(t.Context(), bob, "INBOX", uids[3:])
	testutil.Must(t, err)
	var log logBuffer
	tr := spam.NewTrainer(st, slog.New(slog.NewTextHandler(&log, nil)))
	tr.Enqueue(bob, "INBOX", uids[:2], store.Spam)
	tr.Enqueue(bob, "INBOX", uids[:1], store.Spam) // again
	tr.Enqueue(bob, "INBOX", uids[1:2], store.Ham) // a change of mind
	tr.Enqueue(bob, "INBOX", uids[2:], store.Ham)  // and one gone
	tr.Enqueue(bob, "INBOX", uids[1:2], store.Spam)
	tr.Enqueue(bob, "INBOX", uids[2:3], store.Spam)
	runTrainer(t, tr)
	flush(t, tr)
	if got := trainedAs(t, st, "INBOX", uids[:3]); got[store.Spam] != 3 {
		t.Errorf("trained %v, want 3 spam", got)
	}
	for _, owner := range spam.Owners(bob) {
		if tot, _ := st.SpamTotals(t.Context(), owner); tot.Spam != 3 || tot.Ham != 0 {
			t.Errorf("%s's model %+v, want 3 spam and no ham", owner, tot)
		}
	}
	if sizes := st.sizes(); len(sizes) != 1 {
		t.Errorf("batches %v, want one", sizes)
	}
	if s := log.String(); s != "" {
		t.Errorf("logged: %s", s)
	}
}

// Close trains what is queued: the server's shutdown loses nothing that
// time allows.
func TestTrainerCloseDrains(t *testing.T) {
	st := newTrainerStore(t)
	uids := deliverN(t, st, "Junk", 450)
	var log logBuffer
	tr := spam.NewTrainer(st, slog.New(slog.NewTextHandler(&log, nil)))
	tr.Enqueue(bob, "Junk", uids[:200], store.Spam) // no worker: all of it waits
	tr.Enqueue(bob, "Junk", uids[200:], store.Spam)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if left := tr.Close(ctx); left != 0 {
		t.Errorf("Close left %d untrained", left)
	}
	if got := trainedAs(t, st, "Junk", uids); got[store.Spam] != len(uids) {
		t.Errorf("trained %v, want all %d as spam", got, len(uids))
	}
	if s := log.String(); s != "" {
		t.Errorf("logged: %s", s)
	}
	// Closed: nothing more is taken, and it says so.
	if tr.Enqueue(bob, "Junk", uids[:3], store.Ham) {
		t.Error("Enqueue after Close took the training")
	}
	if s := log.String(); !strings.Contains(s, "spam trainer stopped: training dropped") || !strings.Contains(s, "dropped=3") {
		t.Errorf("Enqueue after Close logged %q", s)
	}
}

// What Close has no time for is logged, with how many messages.
func TestTrainerCloseOutOfTime(t *testing.T) {
	st := newTrainerStore(t)
	var log logBuffer
	tr := spam.NewTrainer(st, slog.New(slog.NewTextHandler(&log, nil)))
	tr.Enqueue(bob, "Junk", []uint32{1, 2, 3}, store.Spam)
	tr.Enqueue(bob, "INBOX", []uint32{4, 5}, store.Ham)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if left := tr.Close(ctx); left != 5 {
		t.Errorf("Close with no time left %d untrained, want 5", left)
	}
	if s := log.String(); !strings.Contains(s, "spam trainer stopped with trainings left undone") || !strings.Contains(s, "messages=5") {
		t.Errorf("logged %q", s)
	}
	if len(st.sizes()) != 0 {
		t.Errorf("trained with no time: %v", st.sizes())
	}
}

// A full queue takes what fits and logs how much of the command it
// dropped.
func TestTrainerQueueFull(t *testing.T) {
	st := newTrainerStore(t)
	var log logBuffer
	tr := spam.NewTrainer(st, slog.New(slog.NewTextHandler(&log, nil)))
	uids := make([]uint32, spam.TrainQueue+5)
	for i := range uids {
		uids[i] = uint32(i + 1)
	}
	if tr.Enqueue(bob, "Junk", uids, store.Spam) {
		t.Error("Enqueue past the queue's bound reported everything queued")
	}
	want := fmt.Sprintf("dropped=5 of=%d", len(uids))
	if s := log.String(); !strings.Contains(s, "spam training queue full") || !strings.Contains(s, want) {
		t.Errorf("logged %q, want a line with %q", s, want)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if left := tr.Close(ctx); left != spam.TrainQueue {
		t.Errorf("queued %d, want %d", left, spam.TrainQueue)
	}
}

// deliverMsgs delivers messages to bob's mailbox box, one by one, and
// returns their UIDs in order.
func deliverMsgs(t *testing.T, st store.Store, box string, msgs ...[]byte) []uint32 {
	t.Helper()
	var uids []uint32
	for _, m := range msgs {
		d, err := st.Deliver(t.Context(), store.Delivery{Recipients: []string{bob}, Mailbox: box, Message: m})
		testutil.Must(t, err)
		uids = append(uids, d[0].UID)
	}
	return uids
}

// Once the models are ready, a message they already score as what the
// user says it is teaches nothing and is left out; one they get wrong is
// trained, and so is one trained the other way before (the user changed
// their mind), however sure the models are.
func TestTrainerSkipsWhatTheModelsKnow(t *testing.T) {
	st := newTrainerStore(t)
	tr := spam.NewTrainer(st, nil)
	runTrainer(t, tr)
	var spams, hams [][]byte
	for i := range 2 * spam.MinTraining {
		spams, hams = append(spams, offer(i)), append(hams, note(i))
	}
	junk := deliverMsgs(t, st, "Junk", spams...)
	inbox := deliverMsgs(t, st, "INBOX", hams...)
	// While the models are short of MinTraining ham, every spam is
	// trained, however alike.
	tr.Enqueue(bob, "Junk", junk, store.Spam)
	tr.Enqueue(bob, "INBOX", inbox, store.Ham)
	flush(t, tr)
	if got := trainedAs(t, st, "Junk", junk); got[store.Spam] != len(junk) {
		t.Fatalf("spam trained %v, want all %d before the models are ready", got, len(junk))
	}
	before := totals(t, st)

	// A new offer: the models are sure it is spam, and it is.
	known := deliverMsgs(t, st, "Junk", offer(100))
	tr.Enqueue(bob, "Junk", known, store.Spam)
	flush(t, tr)
	if got := trainedAs(t, st, "Junk", known); got[store.NotTrained] != 1 {
		t.Errorf("a spam the models know was trained: %v", got)
	}
	got := totals(t, st)
	for i := range got {
		if got[i].Spam != before[i].Spam || got[i].Ham != before[i].Ham {
			t.Errorf("totals %v after a spam the models know, want %v", got, before)
		}
	}
	// Its sender still counts, as spam: a reputation grows with every
	// message, trained or left out.
	for _, o := range spam.Owners(bob) {
		_, cs, err := st.SpamCounts(t.Context(), o, []string{"from:addr:deals100@promo.test", "from:dom:promo.test", "offer"})
		testutil.Must(t, err)
		if cs[0] != (store.SpamCount{Spam: 1}) || cs[1].Spam != 2*spam.MinTraining+1 {
			t.Errorf("%s: the left-out spam's sender counted %+v, its domain %+v", o, cs[0], cs[1])
		}
	}

	// The same offer is ham to this user: the models were wrong, so it
	// is trained, as ham.
	tr.Enqueue(bob, "Junk", known, store.Ham)
	flush(t, tr)
	if got := trainedAs(t, st, "Junk", known); got[store.Ham] != 1 {
		t.Errorf("a ham the models score as spam was not trained: %v", got)
	}

	// An offer trained as spam before, now ham: taken back and trained
	// as ham, though the models are sure it is spam.
	tr.Enqueue(bob, "Junk", junk[:1], store.Ham)
	flush(t, tr)
	if got := trainedAs(t, st, "Junk", junk[:1]); got[store.Ham] != 1 {
		t.Errorf("a message trained as spam, now ham: %v", got)
	}
	after := totals(t, st)
	for i, o := range spam.Owners(bob) {
		if after[i].Spam != before[i].Spam-1 || after[i].Ham != before[i].Ham+2 {
			t.Errorf("%s's totals %+v, want %d spam and %d ham", o, after[i], before[i].Spam-1, before[i].Ham+2)
		}
	}
}

// totals returns the totals of bob's models, his own and his domain's.
func totals(t *testing.T, st store.Store) [2]store.SpamTotals {
	t.Helper()
	var out [2]store.SpamTotals
	for i, o := range spam.Owners(bob) {
		tot, err := st.SpamTotals(t.Context(), o)
		testutil.Must(t, err)
		out[i] = tot
	}
	return out
}
