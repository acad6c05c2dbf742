// Package testutil holds what the tests of many packages need: failing on
// an error, short temporary directories, skipping without an outside
// program, servers on loopback listeners and line-level client
// connections. It imports no package of this module, so that every
// package's own tests can use it; per-purpose helpers live in the packages
// under it (teststore for stores with domains and accounts, dnstest,
// acmetest, scantest, headertest, smtpsink).
package testutil

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
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

// DataDir is a data directory (with a short path: it may hold the control
// socket) with the configuration file yubin.toml that says config.
func DataDir(t testing.TB, config string) (dir, configFile string) {
	t.Helper()
	dir = ShortDir(t)
	configFile = filepath.Join(dir, "yubin.toml")
	Must(t, os.WriteFile(configFile, []byte(config), 0o600))
	return dir, configFile
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

// Go runs f in its own goroutine with a context that stop cancels. stop
// waits for f to return (5 seconds at most) and returns f's error; later
// calls return the same. At cleanup, stop runs if the test did not call it
// and an error fails the test.
func Go(t testing.TB, f func(ctx context.Context) error) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	stopped := false
	stop = sync.OnceValue(func() error {
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			return errors.New("did not return within 5s of its context's end")
		}
	})
	t.Cleanup(func() {
		if !stopped {
			if err := stop(); err != nil {
				t.Errorf("stopping at cleanup: %v", err)
			}
		}
	})
	return stop
}

// MessageText returns a message's body as text: each part of a multipart
// message, with its Content-Type, on the lines after it (quoted-printable
// decoded; base64 stays encoded).
func MessageText(t testing.TB, raw []byte) string {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	Must(t, err)
	mt, params, _ := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if !strings.HasPrefix(mt, "multipart/") {
		b, _ := io.ReadAll(m.Body)
		return string(b)
	}
	var out strings.Builder
	r := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := r.NextPart()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(p) // multipart decodes quoted-printable
		out.WriteString(p.Header.Get("Content-Type") + "\n" + string(b) + "\n")
	}
	return out.String()
}

// ReportCPU reports the process's CPU time since start (a ProcessCPU) per
// b.N as the metric unit ("cpu-ns/op"): what a benchmark costs with its
// background work (the garbage collector, other goroutines), and steadier
// than wall time on a shared machine. Nothing where ProcessCPU is zero.
func ReportCPU(b *testing.B, start time.Duration, unit string) {
	if now := ProcessCPU(); start > 0 && now > start {
		b.ReportMetric(float64(now-start)/float64(b.N), unit)
	}
}
