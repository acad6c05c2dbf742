package bolt_test

import (
	"io"
	"path/filepath"
	"testing"

	"yubin/internal/testutil"
	"yubin/store"
	"yubin/store/bolt"
	"yubin/store/storetest"
)

// TestConformance runs the store's conformance suite on bbolt files.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storetest.Options) (store.Store, storetest.Reopen) {
		path := filepath.Join(t.TempDir(), bolt.FileName)
		open := func(t *testing.T) store.Store {
			s, err := bolt.Open(path, bolt.Options{Now: o.Now, MaxMailboxes: o.MaxMailboxes, MaxExpunged: o.MaxExpunged, ExpungedAge: o.ExpungedAge, MaxSubscriptions: o.MaxSubscriptions})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		return open(t), open
	})
}

// TestConformanceBackup runs the suite's backup tests: a snapshot is
// restored as "yubin restore" does (bolt.BeginRestore), then opened.
func TestConformanceBackup(t *testing.T) {
	open := func(t *testing.T, o storetest.Options) (store.Store, storetest.Reopen) {
		path := filepath.Join(t.TempDir(), bolt.FileName)
		open := func(t *testing.T) store.Store {
			s, err := bolt.Open(path, bolt.Options{Now: o.Now, MaxMailboxes: o.MaxMailboxes, MaxExpunged: o.MaxExpunged, ExpungedAge: o.ExpungedAge})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		return open(t), open
	}
	storetest.RunBackup(t, open, func(t *testing.T, snapshot io.Reader, o storetest.Options) store.Store {
		dir := t.TempDir()
		r, err := bolt.BeginRestore(dir)
		testutil.Must(t, err)
		_, err = io.Copy(r, snapshot)
		testutil.Must(t, err)
		testutil.Must(t, r.Commit())
		s, err := bolt.OpenDir(dir, bolt.Options{Now: o.Now})
		testutil.Must(t, err)
		return s
	})
}
