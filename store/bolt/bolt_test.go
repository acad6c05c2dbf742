package bolt_test

import (
	"path/filepath"
	"testing"

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
