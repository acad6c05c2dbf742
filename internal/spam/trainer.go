package spam

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"yubin/store"
)

// TrainerStore is what training reads and writes.
type TrainerStore interface {
	OpenMessage(ctx context.Context, account, mailbox string, uid uint32) (io.ReadCloser, store.MessageInfo, error)
	SpamTrained(ctx context.Context, msg store.MessageRef) (store.SpamClass, error)
	TrainSpam(ctx context.Context, t store.SpamTraining) (bool, error)
	ReleaseQuarantined(ctx context.Context, id string) (store.Delivered, error)
}

// Bounds of the trainer.
const (
	// TrainQueue is how many pending trainings (one a command) wait for
	// the worker; beyond it new ones are dropped, with a log line.
	TrainQueue = 1024
	// MaxTrainUIDs is how many messages of one command are trained.
	MaxTrainUIDs = 1000
	// MaxTrainBytes is how much of a message is read to train on it.
	MaxTrainBytes = 4 << 20
)

// Trainer trains the spam models from what users do (SPEC section 10): a
// message moved or copied into Junk, or flagged $Junk, is spam; one moved
// out of Junk, flagged $NotJunk, read and kept outside Junk, or released
// from the quarantine is ham. Each message trains its account's model and
// its domain's, and the store remembers what it was trained as, so a
// message read again changes nothing and one the user changes their mind
// about moves from one side to the other once.
//
// Enqueue never blocks, so an IMAP command never waits for training: a
// single worker (Run) does the work in the background, and a failure is
// logged, never the user's problem.
type Trainer struct {
	st    TrainerStore
	log   *slog.Logger
	queue chan trainJob
}

// trainJob is the training one command asked for, or (done != nil) a
// barrier for Flush.
type trainJob struct {
	account, mailbox string
	uids             []uint32
	class            store.SpamClass
	done             chan struct{}
}

// NewTrainer returns a trainer over st; log may be nil.
func NewTrainer(st TrainerStore, log *slog.Logger) *Trainer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Trainer{st: st, log: log, queue: make(chan trainJob, TrainQueue)}
}

// Enqueue asks for the messages uids of a mailbox to be trained as class,
// in the background. It reports false when the queue is full (the training
// is dropped and logged).
func (t *Trainer) Enqueue(account, mailbox string, uids []uint32, class store.SpamClass) bool {
	if len(uids) == 0 {
		return true
	}
	if len(uids) > MaxTrainUIDs {
		uids = uids[:MaxTrainUIDs]
	}
	select {
	case t.queue <- trainJob{account: account, mailbox: mailbox, uids: uids, class: class}:
		return true
	default:
		t.log.Warn("spam training queue full: training dropped", "account", account, "mailbox", mailbox, "messages", len(uids), "as", class.String())
		return false
	}
}

// Run trains what is queued until ctx ends.
func (t *Trainer) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-t.queue:
			if j.done != nil {
				close(j.done)
				continue
			}
			for _, uid := range j.uids {
				ref := store.MessageRef{Account: j.account, Mailbox: j.mailbox, UID: uid}
				if _, err := t.Train(ctx, ref, j.class); err != nil && !errors.Is(err, store.ErrNoSuchMessage) && ctx.Err() == nil {
					t.log.Error("spam training", "account", j.account, "mailbox", j.mailbox, "uid", uid, "as", j.class.String(), "err", err)
				}
			}
		}
	}
}

// Flush waits until everything queued before it has been trained (for
// tests and shutdown), or ctx ends.
func (t *Trainer) Flush(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case t.queue <- trainJob{done: done}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Train trains one stored message as class, now, into its account's model
// and its domain's, and reports whether anything changed (not when it was
// trained so before). A message that cannot be parsed still trains on
// what its tokenizer found; nothing panics.
func (t *Trainer) Train(ctx context.Context, ref store.MessageRef, class store.SpamClass) (changed bool, err error) {
	prev, err := t.st.SpamTrained(ctx, ref)
	if err != nil || prev == class {
		return false, err
	}
	r, _, err := t.st.OpenMessage(ctx, ref.Account, ref.Mailbox, ref.UID)
	if err != nil {
		return false, err
	}
	raw, err := io.ReadAll(io.LimitReader(r, MaxTrainBytes))
	r.Close()
	if err != nil {
		return false, err
	}
	defer func() {
		if p := recover(); p != nil {
			changed, err = false, fmt.Errorf("spam: training on %s/%s uid %d: %v", ref.Account, ref.Mailbox, ref.UID, p)
		}
	}()
	return t.st.TrainSpam(ctx, store.SpamTraining{
		Owners:  Owners(ref.Account),
		Tokens:  Tokenize(raw),
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
