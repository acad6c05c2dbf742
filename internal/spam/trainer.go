package spam

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"yubin/store"
)

// TrainerStore is what training reads and writes.
type TrainerStore interface {
	OpenMessage(ctx context.Context, account, mailbox string, uid uint32) (io.ReadCloser, store.MessageInfo, error)
	SpamTrained(ctx context.Context, msg store.MessageRef) (store.SpamClass, error)
	SpamCounts(ctx context.Context, owner string, tokens []string) (store.SpamTotals, []store.SpamCount, error)
	TrainSpam(ctx context.Context, t store.SpamTraining) (bool, error)
	TrainSpamBatch(ctx context.Context, ts []store.SpamTraining) ([]bool, error)
	ReleaseQuarantined(ctx context.Context, id string) (store.Delivered, error)
}

// Bounds of the trainer.
const (
	// TrainQueue is how many messages may wait for the worker (1 MiB of
	// UIDs); the training of messages past it is dropped, with a log line
	// that says how many.
	TrainQueue = 256 << 10
	// TrainBatch is the most messages trained in one store transaction.
	TrainBatch = store.MaxSpamBatch
	// TrainBatchTokens ends a batch early once its messages have this
	// many tokens (100 messages of MaxTokens): one transaction stays a
	// bounded amount of work and memory.
	TrainBatchTokens = 200_000
	// MaxTrainBytes is how much of a message is read to train on it.
	MaxTrainBytes = 4 << 20
	// Confident is how sure the models must already be of a message for
	// the trainer to leave it out: a spam they score at least
	// 1-Confident, a ham at most Confident (see Trainer).
	Confident = 0.003
)

// Trainer trains the spam models from what users do (SPEC section 10): a
// message moved or copied into Junk, or flagged $Junk, is spam; one moved
// out of Junk, flagged $NotJunk, read and kept outside Junk, or released
// from the quarantine is ham. Each message trains its account's model and
// its domain's, and the store remembers what it was trained as, so a
// message read again changes nothing and one the user changes their mind
// about moves from one side to the other once.
//
// The models learn what they do not know yet ("thick threshold"
// training, as bogofilter's -u and SpamBayes' train-on-mistakes-and-
// unsures): a message both models of its account already score as what
// it is, within Confident, and that was never trained the other way, is
// left out and not remembered as trained. Counting every such message
// only makes the common ham and spam weigh more against the hard cases
// the filter gets wrong; on the SpamAssassin corpus it leaves 80 % of the
// training out and misfiles a sixth fewer ham at the same spam caught
// (README, Accuracy). A model still short of MinTraining spam and ham
// takes everything.
//
// Enqueue never blocks, so an IMAP command never waits for training: a
// single worker (Run, then Close at shutdown) does the work in the
// background, in batches of up to TrainBatch messages a store transaction
// (the messages of one command, and of the commands queued after it), and
// a failure is logged, never the user's problem.
type Trainer struct {
	st  TrainerStore
	log *slog.Logger

	work sync.Mutex // held while a batch is trained: one at a time, in order

	mu       sync.Mutex
	pending  []trainJob // oldest first
	queued   int        // messages in pending
	enqueued uint64     // messages ever queued
	finished uint64     // messages ever taken off the queue, trained or not
	closed   bool       // Close was called: nothing more is queued
	wake     chan struct{}
	progress chan struct{} // closed (and replaced) when finished grows
}

// trainJob is training asked for: messages of a mailbox, as one class.
// Consecutive commands of the same account, mailbox and class share a job.
type trainJob struct {
	account, mailbox string
	uids             []uint32
	class            store.SpamClass
}

// trainItem is one message to train.
type trainItem struct {
	ref   store.MessageRef
	class store.SpamClass
}

// NewTrainer returns a trainer over st; log may be nil.
func NewTrainer(st TrainerStore, log *slog.Logger) *Trainer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Trainer{st: st, log: log, wake: make(chan struct{}, 1), progress: make(chan struct{})}
}

// Enqueue asks for the messages uids of a mailbox to be trained as class,
// in the background, all of them. It reports false when some could not be
// queued: the queue holds TrainQueue messages, and after Close it takes
// none (what is dropped is logged, with how many).
func (t *Trainer) Enqueue(account, mailbox string, uids []uint32, class store.SpamClass) bool {
	if len(uids) == 0 {
		return true
	}
	t.mu.Lock()
	take := min(len(uids), TrainQueue-t.queued)
	if t.closed {
		take = 0
	}
	if take > 0 {
		if n := len(t.pending); n > 0 && t.pending[n-1].account == account && t.pending[n-1].mailbox == mailbox && t.pending[n-1].class == class {
			t.pending[n-1].uids = append(t.pending[n-1].uids, uids[:take]...)
		} else {
			t.pending = append(t.pending, trainJob{account: account, mailbox: mailbox, uids: slices.Clone(uids[:take]), class: class})
		}
		t.queued += take
		t.enqueued += uint64(take)
	}
	closed := t.closed
	t.mu.Unlock()
	if take > 0 {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
	if dropped := len(uids) - take; dropped > 0 {
		msg := fmt.Sprintf("spam training queue full (%d messages): training dropped", TrainQueue)
		if closed {
			msg = "spam trainer stopped: training dropped"
		}
		t.log.Warn(msg, "account", account, "mailbox", mailbox, "as", class.String(), "dropped", dropped, "of", len(uids))
		return false
	}
	return true
}

// Run trains what is queued until ctx ends; what is still queued then
// stays for Close.
func (t *Trainer) Run(ctx context.Context) {
	for {
		for t.step(ctx) {
		}
		select {
		case <-ctx.Done():
			return
		case <-t.wake:
		}
	}
}

// Close stops taking trainings and trains what is queued, until it is all
// done or ctx ends (with Run stopped or not); it logs how many messages
// were left untrained, and returns that count.
func (t *Trainer) Close(ctx context.Context) int {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	for t.step(ctx) {
	}
	t.mu.Lock()
	left, jobs := t.queued, len(t.pending)
	t.mu.Unlock()
	if left > 0 {
		t.log.Warn("spam trainer stopped with trainings left undone", "messages", left, "commands", jobs, "err", context.Cause(ctx))
	}
	return left
}

// Flush waits until everything queued before it has been trained (for
// tests), or ctx ends.
func (t *Trainer) Flush(ctx context.Context) error {
	t.mu.Lock()
	target := t.enqueued
	t.mu.Unlock()
	for {
		t.mu.Lock()
		done, progress := t.finished >= target, t.progress
		t.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-progress:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// step trains one batch from the front of the queue and reports whether
// it got anywhere (false: the queue is empty, or ctx ended).
func (t *Trainer) step(ctx context.Context) bool {
	if ctx.Err() != nil {
		return false
	}
	t.work.Lock()
	defer t.work.Unlock()
	items := t.peek(TrainBatch)
	if len(items) == 0 {
		return false
	}
	n := t.trainBatch(ctx, items)
	if n == 0 {
		return false
	}
	t.pop(n)
	return true
}

// peek returns up to n messages from the front of the queue, which stay
// there until pop.
func (t *Trainer) peek(n int) []trainItem {
	t.mu.Lock()
	defer t.mu.Unlock()
	var items []trainItem
	for _, j := range t.pending {
		for _, uid := range j.uids {
			if len(items) == n {
				return items
			}
			items = append(items, trainItem{store.MessageRef{Account: j.account, Mailbox: j.mailbox, UID: uid}, j.class})
		}
	}
	return items
}

// pop takes n messages off the front of the queue, done.
func (t *Trainer) pop(n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.queued -= n
	t.finished += uint64(n)
	for n > 0 {
		j := &t.pending[0]
		k := min(n, len(j.uids))
		j.uids, n = j.uids[k:], n-k
		if len(j.uids) == 0 {
			t.pending[0] = trainJob{}
			t.pending = t.pending[1:]
		}
	}
	if len(t.pending) == 0 {
		t.pending = nil
	}
	close(t.progress)
	t.progress = make(chan struct{})
}

// trainBatch trains items from the first on, in one store transaction,
// up to TrainBatchTokens tokens, and returns how many it is done with
// (trained, trained so already, gone, or failed and logged); 0 when ctx
// ended first, and then nothing was trained.
func (t *Trainer) trainBatch(ctx context.Context, items []trainItem) int {
	var (
		batch  []store.SpamTraining
		ntoks  int
		done   = len(items)
		class  = map[store.MessageRef]store.SpamClass{} // what the batch trains a message as so far
		tokens = map[store.MessageRef][]string{}
	)
	for i, it := range items {
		prev, seen := class[it.ref]
		if !seen {
			var err error
			if prev, err = t.st.SpamTrained(ctx, it.ref); err != nil {
				t.failed(ctx, it, err)
				continue
			}
		}
		if prev == it.class {
			continue
		}
		toks, ok := tokens[it.ref]
		if !ok {
			var err error
			if toks, err = t.tokens(ctx, it.ref); err != nil {
				t.failed(ctx, it, err)
				continue
			}
			tokens[it.ref] = toks
		}
		owners := Owners(it.ref.Account)
		if prev == store.NotTrained {
			known, err := t.known(ctx, owners, toks, it.class)
			if err != nil {
				t.failed(ctx, it, err)
				continue
			}
			if known {
				// Left out; its sender still counts, so that the
				// sender's reputation grows with every message.
				if from := SenderTokens(toks); len(from) > 0 {
					batch = append(batch, store.SpamTraining{Owners: owners, Tokens: from, Class: it.class, TokensOnly: true})
				}
				continue
			}
		}
		class[it.ref] = it.class
		batch = append(batch, store.SpamTraining{Owners: owners, Tokens: toks, Class: it.class, Message: &it.ref})
		if ntoks += len(toks); ntoks >= TrainBatchTokens {
			done = i + 1
			break
		}
	}
	if ctx.Err() != nil {
		return 0
	}
	if len(batch) == 0 {
		return done
	}
	if _, err := t.st.TrainSpamBatch(ctx, batch); err != nil {
		if ctx.Err() != nil {
			return 0
		}
		first := batch[0].Message
		t.log.Error("spam training of a batch failed", "messages", len(batch), "first_account", first.Account, "first_mailbox", first.Mailbox, "err", err)
	}
	return done
}

// SenderTokens returns the tokens of toks (Tokenize's) that name the
// sender — the From address, its domain and registered domain — which
// Reputation reads.
func SenderTokens(toks []string) []string {
	var out []string
	for _, t := range toks {
		if strings.HasPrefix(t, "from:addr:") || strings.HasPrefix(t, "from:dom:") || strings.HasPrefix(t, "from:org:") {
			out = append(out, t)
		}
	}
	return out
}

// known reports whether every model of owners already scores a message
// of tokens toks as class, within Confident, so that training it would
// teach them nothing; a model short of MinTraining spam and ham knows
// nothing yet.
func (t *Trainer) known(ctx context.Context, owners, toks []string, class store.SpamClass) (bool, error) {
	for _, o := range owners {
		tot, counts, err := t.st.SpamCounts(ctx, o, toks)
		if err != nil {
			return false, err
		}
		if !DomainModelReady(tot) {
			return false, nil
		}
		p, _ := Classify(tot, toks, counts)
		if class == store.Spam && p < 1-Confident || class == store.Ham && p > Confident {
			return false, nil
		}
	}
	return true, nil
}

// failed logs a message that could not be trained, unless it is gone
// (expunged, or its mailbox or account removed since) or ctx ended.
func (t *Trainer) failed(ctx context.Context, it trainItem, err error) {
	if ctx.Err() != nil || store.Gone(err) {
		return
	}
	t.log.Error("spam training", "account", it.ref.Account, "mailbox", it.ref.Mailbox, "uid", it.ref.UID, "as", it.class.String(), "err", err)
}

// tokens reads a stored message (at most MaxTrainBytes) and tokenizes it.
// A message that cannot be parsed gives what its tokenizer found; nothing
// panics.
func (t *Trainer) tokens(ctx context.Context, ref store.MessageRef) (toks []string, err error) {
	r, _, err := t.st.OpenMessage(ctx, ref.Account, ref.Mailbox, ref.UID)
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(io.LimitReader(r, MaxTrainBytes))
	r.Close()
	if err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			toks, err = nil, fmt.Errorf("spam: tokenizing %s/%s uid %d: %v", ref.Account, ref.Mailbox, ref.UID, p)
		}
	}()
	return Tokenize(raw), nil
}

// Train trains one stored message as class, now, into its account's model
// and its domain's, and reports whether anything changed (not when it was
// trained so before). A message that cannot be parsed still trains on
// what its tokenizer found; nothing panics.
func (t *Trainer) Train(ctx context.Context, ref store.MessageRef, class store.SpamClass) (bool, error) {
	prev, err := t.st.SpamTrained(ctx, ref)
	if err != nil || prev == class {
		return false, err
	}
	toks, err := t.tokens(ctx, ref)
	if err != nil {
		return false, err
	}
	return t.st.TrainSpam(ctx, store.SpamTraining{
		Owners:  Owners(ref.Account),
		Tokens:  toks,
		Class:   class,
		Message: &ref,
	})
}

// Release delivers a quarantined message to its account's INBOX and
// trains it as ham (a failure to train is logged: the message is out).
func (t *Trainer) Release(ctx context.Context, id string) (store.Delivered, error) {
	d, err := t.st.ReleaseQuarantined(ctx, id)
	if err != nil {
		return d, err
	}
	ref := store.MessageRef{Account: d.Account, Mailbox: d.Mailbox, UID: d.UID}
	if _, err := t.Train(ctx, ref, store.Ham); err != nil {
		t.log.Error("spam training of a released message", "account", d.Account, "id", id, "err", err)
	}
	return d, nil
}

// Owners are the models a message of account trains: the account's own
// and its domain's.
func Owners(account string) []string {
	account = strings.ToLower(account)
	return []string{account, account[strings.LastIndexByte(account, '@')+1:]}
}
