package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// SpamAction is what happens to an account's mail that the spam filter
// calls spam.
type SpamAction string

const (
	SpamOff        SpamAction = "off"        // deliver as usual (the header still says what the filter found)
	SpamJunk       SpamAction = "junk"       // deliver to the Junk mailbox
	SpamQuarantine SpamAction = "quarantine" // hold in the quarantine, outside the mailbox
)

// DefaultSpamThreshold is the score from which mail is spam, unless an
// account sets its own: the middle of the classifier's range (see the
// README, "Spam filter and quarantine").
const DefaultSpamThreshold = 0.5

// SpamPolicy is an account's spam filter policy. The zero value is the
// default: junk at DefaultSpamThreshold, no subject tag.
type SpamPolicy struct {
	Action    SpamAction `json:"action,omitempty"`    // "" = junk
	Threshold float64    `json:"threshold,omitempty"` // 0 = DefaultSpamThreshold
	Tag       bool       `json:"tag,omitempty"`       // tag the Subject of spam delivered to Junk
}

// Effective returns p with the defaults filled in.
func (p SpamPolicy) Effective() SpamPolicy {
	if p.Action == "" {
		p.Action = SpamJunk
	}
	if p.Threshold == 0 {
		p.Threshold = DefaultSpamThreshold
	}
	return p
}

// Validate checks every field.
func (p SpamPolicy) Validate() error {
	switch p.Action {
	case "", SpamOff, SpamJunk, SpamQuarantine:
	default:
		return fmt.Errorf("%w: spam action must be off, junk or quarantine, not %q", ErrInvalid, p.Action)
	}
	if math.IsNaN(p.Threshold) || p.Threshold < 0 || p.Threshold > 1 {
		return fmt.Errorf("%w: spam threshold must be between 0 and 1, not %v", ErrInvalid, p.Threshold)
	}
	return nil
}

// SpamClass is how a message was trained: as spam, as ham, or not at all.
type SpamClass uint8

const (
	NotTrained SpamClass = iota
	Spam
	Ham
)

func (c SpamClass) String() string {
	switch c {
	case Spam:
		return "spam"
	case Ham:
		return "ham"
	}
	return "not-trained"
}

// SpamTotals describe one spam model: how many spam and ham messages it
// was trained with, and how many distinct tokens it keeps.
type SpamTotals struct {
	Spam   int64 `json:"spam"`
	Ham    int64 `json:"ham"`
	Tokens int64 `json:"tokens"`
}

// SpamCount is how many trained spam and ham messages had one token.
type SpamCount struct {
	Spam, Ham uint32
}

// MaxSpamTokens is the most tokens a backend keeps per model: past it, the
// least useful tokens go (seen in the fewest messages, the longest ago
// first) until the model is well below it again.
const MaxSpamTokens = 200_000

// MaxSpamBatch is the most trainings of one TrainSpamBatch: one
// transaction stays a bounded amount of work (at most MaxSpamBatch times
// what a message's tokens change).
const MaxSpamBatch = 200

// MessageRef names one stored message.
type MessageRef struct {
	Account string
	Mailbox string
	UID     uint32
}

// SpamTraining is one change to spam models.
type SpamTraining struct {
	// Owners are the models to change: an account's (its address) and
	// its domain's (the domain name).
	Owners []string
	// Tokens of the message (spam.Tokenize).
	Tokens []string
	// Class is what the message is: Spam or Ham; NotTrained with Message
	// takes back what the message was trained as.
	Class SpamClass
	// Message, if set, is the stored message trained. The store then
	// remembers, per account and message (its copies in other mailboxes
	// alike), what it was trained as: training it the same way again
	// changes nothing, and training it the other way takes the old
	// training back in the same transaction (a user who changes their
	// mind). Without Message, the counts simply grow (seeding a model
	// from files).
	Message *MessageRef
	// TokensOnly counts Tokens in Class without counting a message in
	// the totals: what the model should keep of a message it is not
	// trained with (the sender of a ham the trainer leaves out because
	// the model already knows it as ham, so that the sender's reputation
	// still grows). Never with Message: nothing is remembered, and the
	// counts are never taken back.
	TokensOnly bool
}

// SpamModel is the spam filter's trainable models: token counts per owner
// (an account address, or a domain name), aged and bounded in size.
type SpamModel interface {
	// SpamTotals returns owner's totals (zero for a model never trained).
	SpamTotals(ctx context.Context, owner string) (SpamTotals, error)
	// SpamCounts returns owner's totals and the counts of tokens, in the
	// order asked (zero for a token the model does not know).
	SpamCounts(ctx context.Context, owner string, tokens []string) (SpamTotals, []SpamCount, error)
	// SpamTrained says what a stored message was trained as.
	SpamTrained(ctx context.Context, msg MessageRef) (SpamClass, error)
	// TrainSpam changes the models in one transaction and reports
	// whether anything changed.
	TrainSpam(ctx context.Context, t SpamTraining) (bool, error)
	// TrainSpamBatch does trainings in one transaction, in order, as
	// that many consecutive TrainSpam calls would (a message twice in
	// the batch is trained twice, the second time over the first), and
	// reports for each whether it changed anything. A training whose
	// message is gone (expunged, or its mailbox or account removed)
	// changes nothing and reports false, and the others still go. A
	// batch holding an invalid training, or more than MaxSpamBatch,
	// changes nothing (ErrInvalid).
	TrainSpamBatch(ctx context.Context, ts []SpamTraining) ([]bool, error)
	// PruneSpamModels drops the tokens no training has seen since
	// notSeenSince, and returns how many.
	PruneSpamModels(ctx context.Context, notSeenSince time.Time) (int, error)
}

// QuarantineHold, on a Delivery, holds the message in the quarantine of
// each recipient instead of delivering it to a mailbox. An account whose
// quarantine is full (Limit) gets the message in its Junk mailbox instead
// (INBOX if it has no Junk): held mail is never dropped.
type QuarantineHold struct {
	QueueID string
	Sender  string   // envelope sender ("" = <>)
	From    string   // the From header field, decoded
	Subject string   // decoded
	Score   float64  // the spam score
	Signals []string // what the filter found
	Limit   QuarantineLimit
}

// QuarantineLimit bounds an account's quarantine. Zero fields take
// DefaultQuarantineLimit's.
type QuarantineLimit struct {
	Messages int   `json:"messages"`
	Bytes    int64 `json:"bytes"`
}

// DefaultQuarantineLimit bounds a quarantine by default.
var DefaultQuarantineLimit = QuarantineLimit{Messages: 1000, Bytes: 100 << 20}

// Effective returns l with the defaults filled in.
func (l QuarantineLimit) Effective() QuarantineLimit {
	if l.Messages <= 0 {
		l.Messages = DefaultQuarantineLimit.Messages
	}
	if l.Bytes <= 0 {
		l.Bytes = DefaultQuarantineLimit.Bytes
	}
	return l
}

// QuarantineRetention is how long held mail is kept before it is deleted.
const QuarantineRetention = 14 * 24 * time.Hour

// QuarantineEntry is one message held in an account's quarantine. The
// message is kept as it would have been delivered; its size does not count
// against the account's quota.
type QuarantineEntry struct {
	ID      string    `json:"id"`
	Account string    `json:"account"`
	Arrived time.Time `json:"arrived"`
	QueueID string    `json:"queue_id,omitempty"`
	Sender  string    `json:"sender"`
	From    string    `json:"from"`
	Subject string    `json:"subject"`
	Score   float64   `json:"score"`
	Signals []string  `json:"signals,omitempty"`
	Size    int64     `json:"size"`
}

// QuarantineFilter chooses entries: those of one account, or of every
// account of a domain.
type QuarantineFilter struct {
	Account string
	Domain  string
}

// Quarantine is the mail held for accounts by the spam filter. Deciding
// who may see or release an entry (a user their own, a domain admin their
// domain's) is the caller's job; the store only keeps them.
type Quarantine interface {
	// Quarantined lists entries, oldest first.
	Quarantined(ctx context.Context, f QuarantineFilter) ([]QuarantineEntry, error)
	QuarantineEntry(ctx context.Context, id string) (QuarantineEntry, error)
	// OpenQuarantined reads the held message.
	OpenQuarantined(ctx context.Context, id string) (io.ReadCloser, QuarantineEntry, error)
	// ReleaseQuarantined delivers the held message to the account's
	// INBOX, byte for byte, and removes the entry, in one transaction: a
	// second release finds nothing (ErrNoSuchMessage) and delivers
	// nothing. The quota applies (*QuotaError; the entry stays).
	ReleaseQuarantined(ctx context.Context, id string) (Delivered, error)
	// DeleteQuarantined deletes entries (unknown ids are skipped) and
	// returns how many.
	DeleteQuarantined(ctx context.Context, ids []string) (int, error)
	// PruneQuarantine deletes the entries that arrived before before.
	PruneQuarantine(ctx context.Context, before time.Time) (int, error)
}

// Validate checks a training before any of it is done: it names a model
// and a class (NotTrained only to take a stored message's training back).
func (t SpamTraining) Validate() error {
	switch {
	case len(t.Owners) == 0:
		return fmt.Errorf("%w: no model to train", ErrInvalid)
	case t.Class > Ham, t.Class == NotTrained && t.Message == nil:
		return fmt.Errorf("%w: train as spam or ham", ErrInvalid)
	case t.TokensOnly && (t.Message != nil || t.Class == NotTrained):
		return fmt.Errorf("%w: tokens alone are counted as spam or ham, for no stored message", ErrInvalid)
	}
	return nil
}

// DistinctTokens returns the training's tokens, each once, sorted.
func (t SpamTraining) DistinctTokens() []string {
	tokens := slices.Clone(t.Tokens)
	slices.Sort(tokens)
	return slices.Compact(tokens)
}

// Gone reports whether err says a message is not there (any more): it was
// expunged, or its mailbox or account removed.
func Gone(err error) bool {
	return errors.Is(err, ErrNoSuchMessage) || errors.Is(err, ErrNoSuchMailbox) || errors.Is(err, ErrNoSuchAccount)
}
