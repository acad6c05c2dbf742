// Package storage opens the store backend a data directory or a
// configuration names. It is the one place that picks a backend: the
// server, the admin CLI and the tests go through it.
package storage

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"yubin/store"
	"yubin/store/bolt"
	"yubin/store/postgres"
)

// Options tune Open.
type Options struct {
	// Wait is how long to wait for another process to release an
	// embedded store before failing with store.ErrInUse (0: fail at once).
	Wait time.Duration
	// MaxMailboxes bounds the mailboxes of one account (0 = no limit).
	MaxMailboxes int
	// Backend is "bolt" (or "": the embedded store in the data dir) or
	// "postgres" (the database at PostgresURL, which several nodes may
	// share; the data dir then holds only what is the node's own).
	Backend     string
	PostgresURL string
}

// OpenDir opens (creating it if needed) the store of a data directory: the
// embedded one, or with Backend "postgres" the database, and then a lock
// file in the data directory says that a process uses it (two nodes must
// not share a data directory: its control socket and spool are a node's).
func OpenDir(dataDir string, o Options) (store.Store, error) {
	if o.Backend != "postgres" {
		return bolt.OpenDir(dataDir, bolt.Options{LockTimeout: o.Wait, MaxMailboxes: o.MaxMailboxes})
	}
	unlock, err := lockDir(dataDir, o.Wait)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := postgres.Open(ctx, o.PostgresURL, postgres.Options{MaxMailboxes: o.MaxMailboxes})
	if err != nil {
		unlock()
		return nil, err
	}
	return &nodeStore{Store: st, unlock: unlock}, nil
}

// nodeStore is a shared store with the lock of this node's data dir,
// released when it is closed.
type nodeStore struct {
	*postgres.Store
	unlock func()
	once   sync.Once
}

func (s *nodeStore) Close() error {
	err := s.Store.Close()
	s.once.Do(s.unlock)
	return err
}

// lockFile is the lock of a data dir whose store is not in it.
const lockFile = "node.lock"

// lockDir takes the lock of a data dir, waiting up to wait for another
// process to release it (store.ErrInUse after that).
func lockDir(dataDir string, wait time.Duration) (func(), error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dataDir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data dir lock: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if err != syscall.EWOULDBLOCK || time.Now().After(deadline) {
			f.Close()
			if err == syscall.EWOULDBLOCK {
				return nil, fmt.Errorf("data dir %s: %w", dataDir, store.ErrInUse)
			}
			return nil, fmt.Errorf("data dir lock: %w", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
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
