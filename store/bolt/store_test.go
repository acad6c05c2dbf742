package bolt

import (
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"yubin/internal/testutil"
	"yubin/store"

	bbolt "go.etcd.io/bbolt"
)

// What a store does, through its interfaces, is checked by the conformance
// suite (bolt_test.go). The tests of this package check bbolt itself: the
// file, the lock, the group committer, records and the envelope cache.

func openTest(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), FileName), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// setup adds the account info@example.com.
func setup(t testing.TB, s *Store) {
	t.Helper()
	testutil.Must(t, s.AddDomain(t.Context(), "example.com", ""))
	testutil.Must(t, s.AddAccount(t.Context(), store.Account{Address: "info@example.com", PasswordHash: "x"}))
}

func TestFileLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, err := OpenDir(dir, Options{})
	testutil.Must(t, err)
	if s.Path() != PathIn(dir) || PathIn(dir) != filepath.Join(dir, "yubin.db") {
		t.Errorf("store at %s, PathIn says %s", s.Path(), PathIn(dir))
	}
	testutil.Must(t, s.Close())
	for path, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, PathIn(dir): 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode() != want {
			t.Errorf("%s: %v %v, want mode %v", path, fi.Mode(), err, want)
		}
	}
	// A file of another schema version is refused.
	db, err := bbolt.Open(PathIn(dir), 0o600, nil)
	testutil.Must(t, err)
	testutil.Must(t, db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bMeta).Put(kVersion, []byte("99")) }))
	testutil.Must(t, db.Close())
	if _, err := OpenDir(dir, Options{}); err == nil {
		t.Error("opened a store of schema version 99")
	}
}

// A second Open of the same file waits LockTimeout for the first to close,
// then fails with ErrInUse.
func TestLockTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(path, Options{})
	testutil.Must(t, err)
	if _, err := Open(path, Options{}); !errors.Is(err, store.ErrInUse) {
		t.Fatalf("second open: %v", err)
	}
	begin := time.Now() // bbolt gives up a retry interval (50ms) early
	if _, err := Open(path, Options{LockTimeout: 200 * time.Millisecond}); !errors.Is(err, store.ErrInUse) || time.Since(begin) < 100*time.Millisecond {
		t.Fatalf("second open with a timeout: %v after %v", err, time.Since(begin))
	}
	time.AfterFunc(50*time.Millisecond, func() { s.Close() })
	s2, err := Open(path, Options{LockTimeout: 10 * time.Second})
	testutil.Must(t, err)
	testutil.Must(t, s2.Close())
}

// The re-run rule of groupWrite: a member that fails after writing rolls
// its batch back, and every member runs again alone; the others still
// commit, once, and the failed one's writes are gone.
func TestGroupCommitPoisonedMember(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	bTest := []byte("test")
	testutil.Must(t, s.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket(bTest)
		if err != nil {
			return err
		}
		return b.Put([]byte("n"), []byte{0})
	}))

	// Hold the committer in a write while the members queue up, so that
	// they are committed as one batch.
	hold, held := make(chan struct{}), make(chan struct{})
	go s.groupWrite(ctx, func(tx *bbolt.Tx) error { close(held); <-hold; return nil }, nil)
	<-held

	errClean, errPoison := errors.New("refused before writing"), errors.New("failed after writing")
	type member struct {
		name          string
		fn            func(tx *bbolt.Tx) error
		want          error
		wantRuns      int32 // in the batch up to the poison, then alone
		runs, commits atomic.Int32
	}
	// add increments a counter in the file: applied twice, it would show.
	add := func(tx *bbolt.Tx) error {
		b := tx.Bucket(bTest)
		n := b.Get([]byte("n"))[0]
		return b.Put([]byte("n"), []byte{n + 1})
	}
	members := []*member{
		{name: "first", fn: add, wantRuns: 2},
		{name: "refuses", fn: func(tx *bbolt.Tx) error { return clean(errClean) }, want: errClean, wantRuns: 2},
		{name: "poisons", fn: func(tx *bbolt.Tx) error {
			if err := tx.Bucket(bTest).Put([]byte("poison"), []byte{1}); err != nil {
				return err
			}
			return errPoison
		}, want: errPoison, wantRuns: 2},
		{name: "last", fn: add, wantRuns: 1},
	}
	res := make([]chan error, len(members))
	for i, m := range members {
		res[i] = make(chan error, 1)
		go func() {
			res[i] <- s.groupWrite(ctx, func(tx *bbolt.Tx) error { m.runs.Add(1); return m.fn(tx) }, func() { m.commits.Add(1) })
		}()
		for len(s.queue) < i+1 {
			time.Sleep(time.Millisecond)
		}
	}
	close(hold)
	for i, m := range members {
		if err := <-res[i]; !errors.Is(err, m.want) {
			t.Errorf("%s: error %v, want %v", m.name, err, m.want)
		}
		wantCommits := int32(0)
		if m.want == nil {
			wantCommits = 1
		}
		if m.commits.Load() != wantCommits {
			t.Errorf("%s: after ran %d times, want %d", m.name, m.commits.Load(), wantCommits)
		}
		if m.runs.Load() != m.wantRuns {
			t.Errorf("%s: ran %d times, want %d", m.name, m.runs.Load(), m.wantRuns)
		}
	}
	testutil.Must(t, s.viewFresh(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bTest)
		if n := b.Get([]byte("n"))[0]; n != 2 {
			t.Errorf("counter %d after two increments: a re-run was applied twice, or not at all", n)
		}
		if b.Get([]byte("poison")) != nil {
			t.Error("the failed member's write was committed")
		}
		return nil
	}))
}
