package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"yubin/store"
)

// Moving mail in ("yubin import"). The CLI reads the source itself — mail
// files or the old provider's IMAP server — and hands the messages over in
// batches, each message under a key naming it in its source: ImportStart
// once (the account, its mailboxes made), ImportCheck for which keys are in
// already (so that a second run reads nothing twice), ImportBatch to store
// the rest. Through the control socket when the server runs, so its IMAP
// sessions see the new mail at once.

// MaxImportMessage is the largest message an import hands over (its batch
// holds it alone): what fits a control socket request with room to spare.
const MaxImportMessage = 64 << 20

// MaxImportBatch is the most messages (or keys) one request carries.
const MaxImportBatch = 5000

// ImportStart is the request of OpImportStart.
type ImportStart struct {
	Address string `json:"address"`
	// Mailboxes are those the import fills; those missing are made.
	Mailboxes []string `json:"mailboxes,omitempty"`
}

// ImportTarget is the answer of OpImportStart.
type ImportTarget struct {
	Account Account  `json:"account"`
	Created []string `json:"created,omitempty"` // the mailboxes made now
}

// ImportKeys is the request of OpImportCheck.
type ImportKeys struct {
	Address string   `json:"address"`
	Keys    []string `json:"keys"`
}

// ImportBatch is the request of OpImportBatch.
type ImportBatch struct {
	Address  string          `json:"address"`
	Messages []ImportMessage `json:"messages"`
}

// ImportMessage is one message of an import.
type ImportMessage struct {
	Key     string    `json:"key"`
	Mailbox string    `json:"mailbox"`
	Flags   []string  `json:"flags,omitempty"`
	Date    time.Time `json:"date"`
	Message []byte    `json:"message"` // CRLF line endings
}

// ImportDone is the answer of OpImportBatch.
type ImportDone struct {
	Imported int   `json:"imported"`
	Skipped  int   `json:"skipped"` // imported before
	Bytes    int64 `json:"bytes"`   // of those imported
	// Full is set when the account's quota stopped the batch: the
	// messages after those counted were not imported.
	Full *ImportFull `json:"full,omitempty"`
}

// ImportFull says how full the account was when its quota stopped an
// import.
type ImportFull struct {
	Quota int64 `json:"quota"`
	Used  int64 `json:"used"`
	Need  int64 `json:"need"` // the size of the message that did not fit
}

// ImportStart looks the account up and makes the mailboxes an import
// fills that it does not have yet.
func (s *Service) ImportStart(ctx context.Context, r ImportStart) (ImportTarget, error) {
	a, err := s.lookup(ctx, r.Address)
	if err != nil {
		return ImportTarget{}, err
	}
	for _, name := range r.Mailboxes {
		if err := store.CheckMailboxName(name); err != nil {
			return ImportTarget{}, translate(err)
		}
	}
	t := ImportTarget{Account: a}
	for _, name := range r.Mailboxes {
		if _, err := s.st.Mailbox(ctx, a.Address, name); err == nil {
			continue
		} else if !errors.Is(err, store.ErrNoSuchMailbox) {
			return t, translate(err)
		}
		_, err := s.st.CreateMailbox(ctx, a.Address, name)
		switch {
		case errors.Is(err, store.ErrExists):
		case errors.Is(err, store.ErrLimit):
			return t, errorf(store.ErrInvalid, "cannot make mailbox %s: %v", name, err)
		case err != nil:
			return t, translate(err)
		default:
			t.Created = append(t.Created, store.CanonicalMailbox(name))
			// Mailboxes brought in are subscribed, so clients that show
			// only subscribed folders show them (CREATE does not subscribe).
			if err := s.st.SetSubscribed(ctx, a.Address, name, true); err != nil && !errors.Is(err, store.ErrLimit) {
				return t, translate(err)
			}
		}
	}
	return t, nil
}

// ImportCheck reports which keys were imported into the account before.
func (s *Service) ImportCheck(ctx context.Context, r ImportKeys) ([]bool, error) {
	if len(r.Keys) > MaxImportBatch {
		return nil, errorf(store.ErrInvalid, "import: %d keys in one request (at most %d)", len(r.Keys), MaxImportBatch)
	}
	a, err := s.lookup(ctx, r.Address)
	if err != nil {
		return nil, err
	}
	got, err := s.st.Imported(ctx, a.Address, r.Keys)
	return got, s.notFound(a.Address, err)
}

// ImportBatch stores a batch of messages, each unless its key was
// imported before; see store.Importer.
func (s *Service) ImportBatch(ctx context.Context, r ImportBatch) (ImportDone, error) {
	if len(r.Messages) > MaxImportBatch {
		return ImportDone{}, errorf(store.ErrInvalid, "import: %d messages in one request (at most %d)", len(r.Messages), MaxImportBatch)
	}
	a, err := s.lookup(ctx, r.Address)
	if err != nil {
		return ImportDone{}, err
	}
	msgs := make([]store.ImportMessage, len(r.Messages))
	for i, m := range r.Messages {
		if len(m.Message) > MaxImportMessage {
			return ImportDone{}, errorf(store.ErrInvalid, "import: a message of %d bytes (at most %d)", len(m.Message), MaxImportMessage)
		}
		msgs[i] = store.ImportMessage{Key: m.Key, Mailbox: m.Mailbox, Flags: m.Flags, Date: m.Date, Message: m.Message}
	}
	res, err := s.st.Import(ctx, a.Address, msgs)
	done := ImportDone{Imported: res.Imported, Skipped: res.Skipped, Bytes: res.Bytes}
	var qe *store.QuotaError
	switch {
	case errors.As(err, &qe):
		done.Full = &ImportFull{Quota: qe.Quota, Used: qe.Used, Need: qe.Need}
	case errors.Is(err, store.ErrNoSuchMailbox):
		return done, errorf(store.ErrInvalid, "import: %v (ImportStart makes the mailboxes)", err)
	case err != nil:
		return done, s.notFound(a.Address, err)
	}
	return done, nil
}

func (f *ImportFull) String() string {
	return fmt.Sprintf("%d of %d bytes used, the next message needs %d", f.Used, f.Quota, f.Need)
}
