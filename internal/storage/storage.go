// Package storage opens the store backend a data directory or a
// configuration names. It is the one place that picks a backend: the
// server, the admin CLI and the tests go through it.
package storage

import (
	"fmt"
	"io"
	"os"
	"time"

	"yubin/store"
	"yubin/store/bolt"
)

// Options tune Open.
type Options struct {
	// Wait is how long to wait for another process to release an
	// embedded store before failing with store.ErrInUse (0: fail at once).
	Wait time.Duration
	// MaxMailboxes bounds the mailboxes of one account (0 = no limit).
	MaxMailboxes int
}

// OpenDir opens (creating it if needed) the embedded store of a data
// directory.
func OpenDir(dataDir string, o Options) (store.Store, error) {
	return bolt.OpenDir(dataDir, bolt.Options{LockTimeout: o.Wait, MaxMailboxes: o.MaxMailboxes})
}

// Describe says where the store of a data directory lives, for logs.
func Describe(dataDir string) string { return bolt.PathIn(dataDir) }

// SizeOnDisk returns the bytes the store of a data directory takes on
// disk (the embedded store's file, which holds free pages too: it does
// not shrink when mail is deleted).
func SizeOnDisk(dataDir string) (int64, error) {
	fi, err := os.Stat(bolt.PathIn(dataDir))
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Exists reports whether a data directory holds a store.
func Exists(dataDir string) (bool, error) { return bolt.Exists(dataDir) }

// Restore is a store being made from a snapshot (store.Backups.Backup) for
// a data directory that has none: write the snapshot to it, Open it to
// check, Close that store, then Commit (all or nothing) or Abort.
type Restore interface {
	io.Writer
	// Open opens what was written as a store of backend (the snapshot's
	// BackupInfo.Backend), for checking.
	Open(backend string) (store.Store, error)
	// Commit puts the store in place; it fails with store.ErrExists if a
	// store appeared in the data directory meanwhile.
	Commit() error
	// Abort removes what was written.
	Abort() error
}

// BeginRestore starts restoring the store of dataDir from a snapshot. A
// data directory that holds a store already is refused with
// store.ErrExists.
func BeginRestore(dataDir string) (Restore, error) {
	r, err := bolt.BeginRestore(dataDir)
	if err != nil {
		return nil, err
	}
	return boltRestore{r}, nil
}

type boltRestore struct{ *bolt.Restore }

func (r boltRestore) Open(backend string) (store.Store, error) {
	if backend != bolt.Backend {
		return nil, fmt.Errorf("%w: a snapshot of the %q store backend; this yubin has %q", store.ErrInvalid, backend, bolt.Backend)
	}
	return r.Restore.Open(bolt.Options{})
}
