package spool

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func open(t *testing.T, budget int64, memory int) (*Spool, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "spool")
	sp, err := Open(dir, budget, memory)
	if err != nil {
		t.Fatal(err)
	}
	return sp, dir
}

func files(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// write writes data in pieces of n bytes, as DATA arrives.
func write(t *testing.T, m *Message, data []byte, n int) {
	t.Helper()
	for len(data) > 0 {
		k := min(n, len(data))
		if _, err := m.Write(data[:k]); err != nil {
			t.Fatal(err)
		}
		data = data[k:]
	}
}

func TestSmallStaysInMemory(t *testing.T) {
	sp, dir := open(t, 0, 1024)
	m := sp.New()
	msg := []byte("Subject: s\r\n\r\nbody\r\n")
	write(t, m, msg, 3)
	head, tail, err := m.Finish()
	if err != nil || tail != nil || !bytes.Equal(head, msg) || m.Spooled() {
		t.Fatalf("head %q, tail %v, spooled %v, %v", head, tail, m.Spooled(), err)
	}
	if f := files(t, dir); len(f) != 0 {
		t.Fatalf("files %v for a small message", f)
	}
	if sp.InFlight() != int64(len(msg)) {
		t.Fatalf("in flight %d, want %d", sp.InFlight(), len(msg))
	}
	m.Close()
	if sp.InFlight() != 0 {
		t.Fatalf("in flight %d after Close", sp.InFlight())
	}
}

func TestBigGoesToAFile(t *testing.T) {
	sp, dir := open(t, 0, 1024)
	hdr := "Received: x\r\nSubject: big\r\n\r\n"
	body := strings.Repeat("0123456789abcdef\r\n", 1000) // 18,000 bytes
	m := sp.New()
	write(t, m, []byte(hdr+body), 700)
	if !m.Spooled() || sp.Files() != 1 || len(files(t, dir)) != 1 {
		t.Fatalf("spooled %v, files %d %v", m.Spooled(), sp.Files(), files(t, dir))
	}
	if cap(m.buf) > 1024 {
		t.Fatalf("buffer of %d bytes, want at most 1024", cap(m.buf))
	}
	head, tail, err := m.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if string(head) != hdr || tail == nil || tail.Size() != int64(len(body)) {
		t.Fatalf("head %q, tail %v", head, tail)
	}
	got, _ := io.ReadAll(tail)
	if string(got) != body {
		t.Fatal("tail differs from the body written")
	}
	if m.Size() != int64(len(hdr+body)) || sp.InFlight() != m.Size() {
		t.Fatalf("size %d, in flight %d", m.Size(), sp.InFlight())
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if f := files(t, dir); len(f) != 0 || sp.Files() != 0 || sp.InFlight() != 0 {
		t.Fatalf("after Close: files %v (%d), in flight %d", f, sp.Files(), sp.InFlight())
	}
	m.Close() // twice is fine
	if sp.InFlight() != 0 {
		t.Fatal("second Close released again")
	}
}

// A header section with no end in the first MaxHeader bytes: the whole
// message comes back in memory.
func TestNoHeaderEnd(t *testing.T) {
	sp, _ := open(t, 0, 1024)
	m := sp.New()
	defer m.Close()
	msg := []byte(strings.Repeat("X-Long: 0123456789012345678901234567890123456789\r\n", MaxHeader/50+10))
	write(t, m, msg, 4096)
	head, tail, err := m.Finish()
	if err != nil || tail != nil || !bytes.Equal(head, msg) {
		t.Fatalf("head of %d bytes, tail %v, %v", len(head), tail, err)
	}
}

func TestBudget(t *testing.T) {
	sp, dir := open(t, 3000, 1024)
	a, b := sp.New(), sp.New()
	write(t, a, bytes.Repeat([]byte("a"), 2000), 500)
	if _, err := b.Write(bytes.Repeat([]byte("b"), 800)); err != nil {
		t.Fatal(err)
	}
	if sp.Fits(201) || !sp.Fits(200) {
		t.Fatalf("Fits wrong at %d of 3000", sp.InFlight())
	}
	if _, err := b.Write(bytes.Repeat([]byte("b"), 201)); !errors.Is(err, ErrBudget) {
		t.Fatalf("over the budget: %v", err)
	}
	if _, err := b.Write([]byte("b")); !errors.Is(err, ErrBudget) {
		t.Fatalf("after the refusal: %v", err)
	}
	if _, _, err := b.Finish(); !errors.Is(err, ErrBudget) {
		t.Fatalf("Finish after the refusal: %v", err)
	}
	b.Close()
	a.Close()
	if sp.InFlight() != 0 || len(files(t, dir)) != 0 {
		t.Fatalf("in flight %d, files %v", sp.InFlight(), files(t, dir))
	}
	c := sp.New()
	defer c.Close()
	write(t, c, bytes.Repeat([]byte("c"), 3000), 1000)
}

func TestOpenSweepsLeftovers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, filePrefix+"123"), []byte("left by a crash"), 0o600)
	os.WriteFile(filepath.Join(dir, "README"), []byte("not ours"), 0o600)
	if _, err := Open(dir, 0, 0); err != nil {
		t.Fatal(err)
	}
	if f := files(t, dir); len(f) != 1 || f[0] != "README" {
		t.Fatalf("files after Open: %v", f)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v, %v", fi.Mode(), err)
	}
}
