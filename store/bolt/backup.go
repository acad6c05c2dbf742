package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"yubin/store"

	bbolt "go.etcd.io/bbolt"
)

// Backend is the name a snapshot of this backend carries (BackupInfo).
const Backend = "bolt"

var kLastBackup = []byte("lastbackup")

// Backup writes a consistent snapshot of the store to w: the bbolt file as
// of one read transaction (bbolt's Tx.WriteTo), which is itself a store
// file that Open reads. The transaction is held while w takes the bytes;
// writers go on meanwhile (bbolt never blocks a writer on a reader, except
// to grow its memory map, which mmapSize makes rare: see Open), but the
// pages they free cannot be reused until it ends, so the file grows by
// about what is written during a backup.
func (s *Store) Backup(ctx context.Context, w io.Writer) (store.BackupInfo, error) {
	info := store.BackupInfo{Backend: Backend}
	if s.closed.Load() {
		return info, store.ErrClosed
	}
	s.waitApplied()
	tx, err := s.db.Begin(false)
	if err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	defer tx.Rollback()
	if err := countAll(tx, &info); err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	n, err := tx.WriteTo(&ctxWriter{ctx: ctx, w: w})
	info.Size = n
	if err != nil {
		if ctx.Err() != nil {
			return info, ctx.Err()
		}
		return info, fmt.Errorf("backup: %w", err)
	}
	if n != tx.Size() {
		return info, fmt.Errorf("backup: wrote %d bytes of %d", n, tx.Size())
	}
	return info, nil
}

// countAll counts what a snapshot holds, in its transaction.
func countAll(tx *bbolt.Tx, info *store.BackupInfo) error {
	err := tx.Bucket(bDomains).ForEach(func(_, _ []byte) error {
		info.Domains++
		return nil
	})
	if err != nil {
		return err
	}
	accts := tx.Bucket(bAccounts)
	return accts.ForEach(func(k, _ []byte) error {
		var a store.Account
		getJSON(accts, string(k), &a)
		info.Accounts++
		info.MailBytes += a.Used
		mb := tx.Bucket(bMail).Bucket(k)
		if mb == nil {
			return nil
		}
		return mb.Bucket(bBoxes).ForEach(func(_, id []byte) error {
			var meta store.Mailbox
			if box := mb.Bucket(boxKey(id)); box != nil && getJSON(box, string(kMeta), &meta) {
				info.Messages += int64(meta.Messages)
			}
			return nil
		})
	})
}

// ctxWriter stops writing when its context ends.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// SetLastBackup records the latest backup made of the store.
func (s *Store) SetLastBackup(ctx context.Context, b store.LastBackup) error {
	if b.Time.IsZero() || b.Size < 0 || b.Messages < 0 || b.Duration < 0 {
		return fmt.Errorf("%w: last backup %+v", store.ErrInvalid, b)
	}
	data, err := json.Marshal(b)
	if err != nil {
		return err
	}
	return s.update(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket(bMeta).Put(kLastBackup, data)
	})
}

// LastBackup returns the latest backup recorded (zero: none).
func (s *Store) LastBackup(ctx context.Context) (store.LastBackup, error) {
	var b store.LastBackup
	err := s.viewFresh(func(tx *bbolt.Tx) error {
		if data := tx.Bucket(bMeta).Get(kLastBackup); data != nil {
			return json.Unmarshal(data, &b)
		}
		return nil
	})
	return b, err
}

// Exists reports whether a data directory holds a store file.
func Exists(dataDir string) (bool, error) {
	_, err := os.Lstat(PathIn(dataDir))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Restore is a store file being made from a snapshot (Backup) for a data
// directory that has none: written to a temporary file beside where it
// goes, opened to be checked, then put in place — all or nothing.
type Restore struct {
	f      *os.File
	tmp    string // the temporary file
	final  string // the store's file
	madeIn string // the data directory, if BeginRestore made it
}

// BeginRestore starts restoring the store of dataDir, which must have
// none (store.ErrExists otherwise). Write the snapshot to it, then Open
// it to check, then Commit or Abort.
func BeginRestore(dataDir string) (*Restore, error) {
	final := PathIn(dataDir)
	if ok, err := Exists(dataDir); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	} else if ok {
		return nil, fmt.Errorf("%s: %w", final, store.ErrExists)
	}
	madeIn := ""
	if _, err := os.Stat(dataDir); errors.Is(err, os.ErrNotExist) {
		madeIn = dataDir
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	f, err := os.CreateTemp(dataDir, "."+FileName+".restore-*")
	if err == nil {
		err = f.Chmod(0o600)
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}
	if err != nil {
		if madeIn != "" {
			os.Remove(madeIn)
		}
		return nil, fmt.Errorf("restore: %w", err)
	}
	return &Restore{f: f, tmp: f.Name(), final: final, madeIn: madeIn}, nil
}

// Write writes the next bytes of the snapshot.
func (r *Restore) Write(p []byte) (int, error) {
	if r.f == nil {
		return 0, errors.New("restore: write after the file was closed")
	}
	return r.f.Write(p)
}

// Open makes the snapshot written so far durable and opens it as a store
// (upgrading an older schema as Open does), for checking. Close the store
// before Commit.
func (r *Restore) Open(opts Options) (*Store, error) {
	if err := r.closeFile(); err != nil {
		return nil, err
	}
	return Open(r.tmp, opts)
}

func (r *Restore) closeFile() error {
	if r.f == nil {
		return nil
	}
	f := r.f
	r.f = nil
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("restore: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}

// Commit puts the restored file in place as the store of the data
// directory — unless a store appeared there meanwhile (store.ErrExists):
// a hard link never replaces a file — and makes that durable.
func (r *Restore) Commit() error {
	if err := r.closeFile(); err != nil {
		return err
	}
	// A write-ahead log left without its store is not this one's: the
	// restored store starts without one.
	if ok, err := Exists(filepath.Dir(r.final)); err != nil || ok {
		return fmt.Errorf("%s: %w", r.final, store.ErrExists)
	}
	if err := os.Remove(r.final + WALSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("restore: %w", err)
	}
	err := os.Link(r.tmp, r.final)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s: %w", r.final, store.ErrExists)
	}
	if err != nil && (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EXDEV)) {
		// A file system without hard links: check, then rename.
		if ok, e := Exists(filepath.Dir(r.final)); e != nil || ok {
			return fmt.Errorf("%s: %w", r.final, store.ErrExists)
		}
		err = os.Rename(r.tmp, r.final)
	}
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	os.Remove(r.tmp)
	os.Remove(r.tmp + WALSuffix) // the check's; everything in it is committed
	if d, err := os.Open(filepath.Dir(r.final)); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	return nil
}

// Abort removes the temporary file, and the data directory if
// BeginRestore made it (and it is empty): nothing is left of the restore.
func (r *Restore) Abort() error {
	r.closeFile()
	err := os.Remove(r.tmp)
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	os.Remove(r.tmp + WALSuffix)
	if r.madeIn != "" {
		os.Remove(r.madeIn) // only if empty
	}
	return err
}
