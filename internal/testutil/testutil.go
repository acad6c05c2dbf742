// Package testutil holds what the tests of many packages need: failing on
// an error, short temporary directories, skipping without an outside
// program, servers on loopback listeners and line-level client
// connections. It imports no package of this module, so that every
// package's own tests can use it; per-purpose helpers live in the packages
// under it (teststore for stores with domains and accounts, dnstest,
// acmetest, scantest, headertest, smtpsink).
package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// Must fails the test at once if err is not nil.
func Must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// ShortDir is a temporary directory with a short path, removed at cleanup:
// unix socket paths are limited to about 104 bytes, and t.TempDir() can be
// longer.
func ShortDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "yb")
	Must(t, err)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// NeedCommand skips the test when the program name is not installed, and
// returns its path.
func NeedCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("SKIP: %s is not installed (make test installs it with apt-get when it can)", name)
	}
	return p
}
