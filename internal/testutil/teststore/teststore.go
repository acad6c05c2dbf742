// Package teststore opens the stores that tests use, with their domains
// and accounts: the one place tests choose a store backend. It is apart
// from testutil because it imports the store and internal/auth, which
// testutil must not (their own tests use testutil).
package teststore

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"yubin/internal/auth"
	"yubin/internal/testutil"
	"yubin/store"
	"yubin/store/bolt"
)

// Options say how to open a store and what to put in it.
type Options struct {
	// Now is the store's clock (nil: time.Now).
	Now func() time.Time
	// NoSync leaves out fsync, for tests and benchmarks that need no
	// durability.
	NoSync bool
	// MaxMailboxes bounds the mailboxes of an account (0: no limit).
	MaxMailboxes int

	// Domains are added first, in order.
	Domains []Domain
	// Accounts are added next, in order. An account's domain that is not
	// in the store yet is added as a parent domain. An account without a
	// PasswordHash gets Password's.
	Accounts []store.Account
	// Password is the password of the accounts without a PasswordHash. If
	// it is empty, their hash is a placeholder that no password matches.
	Password string
}

// Domain is a domain to add, with its parent ("" for a parent domain).
type Domain struct{ Name, Parent string }

// New opens a new store in a temporary directory, with o's domains and
// accounts, and closes it at cleanup.
func New(t testing.TB, o Options) store.Store {
	t.Helper()
	return OpenDir(t, t.TempDir(), o)
}

// OpenDir opens (creating if needed) the store of a data directory, such
// as a server's or the CLI's, adds o's domains and accounts, and closes it
// at cleanup. Closing it sooner (to let another process or the CLI open
// the data directory) is fine.
func OpenDir(t testing.TB, dir string, o Options) store.Store {
	t.Helper()
	st, err := bolt.OpenDir(dir, bolt.Options{Now: o.Now, NoSync: o.NoSync, MaxMailboxes: o.MaxMailboxes})
	testutil.Must(t, err)
	t.Cleanup(func() { st.Close() })
	Add(t, st, o)
	return st
}

// Add adds o's domains and accounts to st.
func Add(t testing.TB, st store.Store, o Options) {
	t.Helper()
	ctx := t.Context()
	have := map[string]bool{}
	for _, d := range o.Domains {
		testutil.Must(t, st.AddDomain(ctx, d.Name, d.Parent))
		have[d.Name] = true
	}
	for _, a := range o.Accounts {
		if d := a.Domain(); !have[d] {
			if _, err := st.Domain(ctx, d); err != nil {
				testutil.Must(t, st.AddDomain(ctx, d, ""))
			}
			have[d] = true
		}
		if a.PasswordHash == "" {
			a.PasswordHash = "x"
			if o.Password != "" {
				a.PasswordHash = PasswordHash(t, o.Password)
			}
		}
		testutil.Must(t, st.AddAccount(ctx, a))
	}
}

// Copy copies the store of the data directory from, which must be closed,
// into the data directory to: two stores that start out the same.
func Copy(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(bolt.PathIn(from))
	testutil.Must(t, err)
	p := bolt.PathIn(to)
	testutil.Must(t, os.MkdirAll(filepath.Dir(p), 0o700))
	testutil.Must(t, os.WriteFile(p, b, 0o600))
}

// hashes are bcrypt hashes by password, made once a test binary: bcrypt
// is slow on purpose.
var hashes sync.Map // password -> func() (string, error)

// PasswordHash is password's hash as internal/auth stores it, made once a
// test binary for each password.
func PasswordHash(t testing.TB, password string) string {
	t.Helper()
	f, _ := hashes.LoadOrStore(password, sync.OnceValues(func() (string, error) { return auth.HashPassword(password) }))
	h, err := f.(func() (string, error))()
	testutil.Must(t, err)
	return h
}

// Fill delivers n messages to account's INBOX: header(i) and then lines of
// x up to about size bytes. It delivers from 32 goroutines, so that the
// store's group commit keeps set-up short.
func Fill(t testing.TB, st store.Store, account string, n, size int, header func(i int) string) {
	t.Helper()
	var wg sync.WaitGroup
	work := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range work {
				hdr := header(i)
				line := strings.Repeat("x", 74) + "\r\n"
				body := strings.Repeat(line, max(0, size-len(hdr))/len(line)+1)
				if _, err := st.Deliver(context.Background(), store.Delivery{Recipients: []string{account}, Message: []byte(hdr + body)}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
}
