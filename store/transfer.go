package store

import (
	"context"
	"fmt"
	"time"
)

// Transfer lists, and loads, what a store keeps that no other interface
// lists: the spam models and what each stored message was trained as, the
// import keys, the DeliverOnce keys, the expunges a mailbox remembers and
// the quota warnings given. With the other interfaces (domains, accounts,
// settings, mailboxes, messages, the queue, the quarantine, the stops),
// it is the whole state of a store, so that "yubin store copy" moves a
// store from one backend to another with nothing left behind.
//
// Each Load replaces what it names (it is meant for a store being filled
// by a copy, before anyone uses it) and checks its input first: a load
// that does not fit the store (an unknown account or mailbox, an expunge
// of a UID the mailbox holds, totals that do not match the tokens) fails
// with ErrInvalid (or the not-found error) and changes nothing.
type Transfer interface {
	// SpamOwners returns the owners of every spam model, sorted.
	SpamOwners(ctx context.Context) ([]string, error)
	// SpamModel calls fn with each token of owner's model, in byte order
	// of the tokens, and returns the model's totals (zero for a model
	// never trained). An error from fn stops it and is returned.
	SpamModel(ctx context.Context, owner string, fn func(SpamToken) error) (SpamTotals, error)
	// LoadSpamModel replaces owner's model; totals.Tokens must be
	// len(tokens), at most MaxSpamTokens, the tokens distinct.
	LoadSpamModel(ctx context.Context, owner string, totals SpamTotals, tokens []SpamToken) error
	// SpamTrainedMessages returns the stored messages of account whose
	// training is recorded (SpamTrained is not NotTrained), every copy of
	// them, by mailbox name and UID.
	SpamTrainedMessages(ctx context.Context, account string) ([]SpamTrainedMessage, error)
	// LoadSpamTrained records what each of the messages of account was
	// trained as (every message must be there), as SpamTrained will say.
	LoadSpamTrained(ctx context.Context, account string, ms []SpamTrainedMessage) error
	// ImportKeys returns the keys Import recorded for account, sorted.
	ImportKeys(ctx context.Context, account string) ([]string, error)
	// LoadImportKeys records keys for account as if imported under them.
	LoadImportKeys(ctx context.Context, account string, keys []string) error
	// OnceKeys returns the keys DeliverOnce recorded, sorted, with when.
	OnceKeys(ctx context.Context) ([]OnceKey, error)
	// LoadOnceKeys records keys as if delivered under them.
	LoadOnceKeys(ctx context.Context, keys []OnceKey) error
	// RememberedExpunges returns what a mailbox remembers of its expunges
	// (what Expunged answers from).
	RememberedExpunges(ctx context.Context, account, mailbox string) (RememberedExpunges, error)
	// LoadRememberedExpunges replaces what a mailbox remembers of its
	// expunges: each above r.Floor and at most the mailbox's
	// HighestModSeq, of a UID below UIDNEXT that the mailbox does not
	// hold, each mod-sequence and UID once.
	LoadRememberedExpunges(ctx context.Context, account, mailbox string, r RememberedExpunges) error
	// QuotaWarned reports whether CheckQuotaWarning reported account's
	// crossing and its usage has not gone below since.
	QuotaWarned(ctx context.Context, account string) (bool, error)
	// SetQuotaWarned sets what QuotaWarned reports.
	SetQuotaWarned(ctx context.Context, account string, warned bool) error
}

// SpamToken is one token of a spam model: how many trained spam and ham
// messages had it, and the day (since the Unix epoch) it was last trained.
type SpamToken struct {
	Token     string
	Spam, Ham uint64
	Day       int64
}

// SpamTrainedMessage is a stored message and what it was trained as.
type SpamTrainedMessage struct {
	Mailbox string
	UID     uint32
	Class   SpamClass
}

// OnceKey is a DeliverOnce key and when it was delivered under.
type OnceKey struct {
	Key string
	At  time.Time
}

// RememberedExpunges is what a mailbox remembers of its expunges: each
// with a mod-sequence above Floor (Expunged asked about what is at or
// below it names every UID the mailbox does not hold), ascending by
// mod-sequence.
type RememberedExpunges struct {
	Floor    uint64
	Expunges []Expunge
}

// Expunge is one remembered expunge: the UID, the mod-sequence it took,
// and when (to the second).
type Expunge struct {
	UID    uint32
	ModSeq uint64
	At     time.Time
}

// CheckSpamModel checks a model before LoadSpamModel stores it: as many
// tokens as the totals say, at most MaxSpamTokens, each once and not empty,
// no negative totals.
func CheckSpamModel(owner string, totals SpamTotals, tokens []SpamToken) error {
	switch {
	case owner == "":
		return fmt.Errorf("%w: a spam model without an owner", ErrInvalid)
	case totals.Spam < 0 || totals.Ham < 0:
		return fmt.Errorf("%w: spam model of %s: negative totals %+v", ErrInvalid, owner, totals)
	case totals.Tokens != int64(len(tokens)):
		return fmt.Errorf("%w: spam model of %s: totals say %d tokens, %d given", ErrInvalid, owner, totals.Tokens, len(tokens))
	case len(tokens) > MaxSpamTokens:
		return fmt.Errorf("%w: spam model of %s: %d tokens, at most %d", ErrInvalid, owner, len(tokens), MaxSpamTokens)
	}
	seen := make(map[string]bool, len(tokens))
	for _, t := range tokens {
		if t.Token == "" || seen[t.Token] {
			return fmt.Errorf("%w: spam model of %s: token %q empty or given twice", ErrInvalid, owner, t.Token)
		}
		seen[t.Token] = true
	}
	return nil
}

// Check checks remembered expunges before LoadRememberedExpunges stores
// them in mailbox meta, which holds the UIDs for which holds is true.
func (r RememberedExpunges) Check(meta Mailbox, holds func(uid uint32) bool) error {
	uids := map[uint32]bool{}
	var last uint64
	for _, e := range r.Expunges {
		switch {
		case e.ModSeq <= r.Floor || e.ModSeq > meta.HighestModSeq:
			return fmt.Errorf("%w: %s: UID %d expunged at mod-sequence %d, outside (%d, %d]", ErrInvalid, meta.Name, e.UID, e.ModSeq, r.Floor, meta.HighestModSeq)
		case e.ModSeq <= last:
			return fmt.Errorf("%w: %s: expunges not ascending by mod-sequence at %d", ErrInvalid, meta.Name, e.ModSeq)
		case e.UID == 0 || e.UID >= meta.UIDNext:
			return fmt.Errorf("%w: %s: UID %d expunged, UIDNEXT is %d", ErrInvalid, meta.Name, e.UID, meta.UIDNext)
		case uids[e.UID]:
			return fmt.Errorf("%w: %s: UID %d expunged twice", ErrInvalid, meta.Name, e.UID)
		case holds(e.UID):
			return fmt.Errorf("%w: %s: UID %d expunged but there", ErrInvalid, meta.Name, e.UID)
		}
		uids[e.UID] = true
		last = e.ModSeq
	}
	if r.Floor > meta.HighestModSeq {
		return fmt.Errorf("%w: %s: floor %d above HIGHESTMODSEQ %d", ErrInvalid, meta.Name, r.Floor, meta.HighestModSeq)
	}
	return nil
}
