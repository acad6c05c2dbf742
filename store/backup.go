package store

import (
	"context"
	"io"
	"time"
)

// Backups is how a store is backed up while it is in use: a consistent
// snapshot of everything it holds, written out while deliveries and every
// other write go on, and a record of the last backup made.
type Backups interface {
	// Backup writes a snapshot of the whole store, as it was at one
	// instant, to w: a stream its backend can make a store of again (see
	// internal/storage). Writes are not held up while it runs, however
	// slowly w takes the bytes; a write that returned before Backup was
	// called is in the snapshot. Backup stops with ctx's error when ctx
	// ends. The info describes the snapshot.
	Backup(ctx context.Context, w io.Writer) (BackupInfo, error)
	// SetLastBackup records the latest backup made of the store.
	SetLastBackup(ctx context.Context, b LastBackup) error
	// LastBackup returns what SetLastBackup recorded last (the zero value
	// when nothing was).
	LastBackup(ctx context.Context) (LastBackup, error)
}

// Sizer is implemented by a backend whose size is not a file in the data
// dir (PostgreSQL): StoreBytes says how many bytes it takes where it keeps
// the store ("yubin status").
type Sizer interface {
	StoreBytes(ctx context.Context) (int64, error)
}

// BackupInfo describes a snapshot written by Backups.Backup.
type BackupInfo struct {
	// Backend names the backend that wrote the snapshot (and can read it
	// back): "bolt".
	Backend string `json:"backend"`
	// Size is the number of bytes written.
	Size int64 `json:"size"`
	// What the snapshot holds: domains (parents and children), accounts,
	// messages in all their mailboxes, and the sum of the accounts' usage.
	Domains   int   `json:"domains"`
	Accounts  int   `json:"accounts"`
	Messages  int64 `json:"messages"`
	MailBytes int64 `json:"mail_bytes"`
}

// LastBackup is what a store remembers of its latest backup.
type LastBackup struct {
	// Time is when the snapshot was taken.
	Time time.Time `json:"time"`
	// Size is the size of the backup file in bytes (compressed).
	Size int64 `json:"size"`
	// File is where it was written ("-" for standard output).
	File string `json:"file,omitempty"`
	// Messages is the number of messages in it.
	Messages int64 `json:"messages"`
	// Duration is how long taking it took.
	Duration time.Duration `json:"duration"`
}
