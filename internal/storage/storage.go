// Package storage opens the store backend a data directory or a
// configuration names. It is the one place that picks a backend: the
// server, the admin CLI and the tests go through it.
package storage

import (
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
