package store

import (
	"context"
	"time"
)

// Importer is what "yubin import" writes: mail brought over from another
// mail system, each message under a key that names it there (its source
// and its place in it), stored at most once per key and account. An
// account's keys stay recorded after its messages are moved or expunged
// (running an import again never brings back what the user deleted), and
// go with the account when it is removed.
type Importer interface {
	// Imported reports, for each of keys, whether a message was imported
	// into account under it.
	Imported(ctx context.Context, account string, keys []string) ([]bool, error)
	// Import stores msgs in account's mailboxes, in order and in one
	// transaction, each under its key: a message whose key was imported
	// before, or comes earlier in msgs, is skipped. Every mailbox must
	// exist (ErrNoSuchMailbox otherwise, and nothing is stored). It stops
	// at the first message that does not fit the account's quota: the
	// result counts those before it, which are stored, and the error is a
	// *QuotaError.
	Import(ctx context.Context, account string, msgs []ImportMessage) (ImportResult, error)
}

// ImportMessage is one message of an import.
type ImportMessage struct {
	Key     string    // at most MaxImportKeyLen bytes, not empty
	Mailbox string    // "" means INBOX
	Flags   []string  // as in Delivery.Flags
	Date    time.Time // internal date; zero means now
	Message []byte    // the raw message, CRLF line endings
}

// ImportResult counts what Import did with its messages.
type ImportResult struct {
	Imported int   // stored
	Skipped  int   // their key was imported before
	Bytes    int64 // the size of those stored
}

// MaxImportKeyLen bounds an import key.
const MaxImportKeyLen = 256
