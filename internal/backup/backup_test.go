package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"yubin/store"
)

var created = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// snapshot is store-like bytes: text that compresses, and noise that does not.
func snapshot(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	for b.Len() < n {
		if r.IntN(3) == 0 {
			for range 64 {
				b.WriteByte(byte(r.Uint32()))
			}
		} else {
			fmt.Fprintf(&b, "Subject: message %d\r\n\r\nline of text\r\n", r.IntN(1000))
		}
	}
	return b.Bytes()[:n]
}

// file writes a backup file of payload in chunks of chunk bytes.
func file(t testing.TB, payload []byte, chunk int) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := NewWriter(&out, Header{Yubin: "test", Created: created, Host: "mx.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	for p := payload; len(p) > 0; {
		n := min(chunk, len(p))
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	info := store.BackupInfo{Backend: "bolt", Size: int64(len(payload)), Domains: 2, Accounts: 3, Messages: 40, MailBytes: 5000}
	tr, err := w.Close(info)
	if err != nil {
		t.Fatal(err)
	}
	if w.Written() != int64(out.Len()) {
		t.Errorf("Written says %d, %d written", w.Written(), out.Len())
	}
	if tr.BackupInfo != info || tr.SHA256 != fmt.Sprintf("%x", sha256.Sum256(payload)) {
		t.Errorf("trailer %+v", tr)
	}
	return out.Bytes()
}

// read reads a backup file whole.
func read(data []byte) (Header, Trailer, []byte, error) {
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		return Header{}, Trailer{}, nil, err
	}
	payload, err := io.ReadAll(r)
	return r.Header(), r.Trailer(), payload, err
}

func TestRoundTrip(t *testing.T) {
	for _, size := range []int{0, 1, 4096, 300 << 10} {
		payload := snapshot(size)
		data := file(t, payload, 32<<10)
		h, tr, got, err := read(data)
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		if !bytes.Equal(got, payload) {
			t.Errorf("%d bytes: the snapshot read back differs", size)
		}
		if h.Version != Version || h.Yubin != "test" || !h.Created.Equal(created) || h.Host != "mx.example.com" || h.Compression != "gzip" {
			t.Errorf("header %+v", h)
		}
		if tr.Size != int64(size) || tr.Backend != "bolt" || tr.Messages != 40 {
			t.Errorf("trailer %+v", tr)
		}
		first, _, _ := strings.Cut(string(data), "\n")
		if !strings.HasPrefix(first, "yubin-backup 1 {") {
			t.Errorf("first line %q", first)
		}
		if size == 300<<10 {
			t.Logf("%d bytes of snapshot in a file of %d", size, len(data))
		}
	}
}

// A file cut anywhere is refused as truncated, never read as whole.
func TestTruncated(t *testing.T) {
	t.Parallel()
	data := file(t, snapshot(4<<10), 1000)
	for n := range len(data) {
		_, _, _, err := read(data[:n])
		switch {
		case n == 0 && errors.Is(err, ErrNotBackup):
		case errors.Is(err, ErrTruncated):
		default:
			t.Fatalf("cut after %d of %d bytes: %v", n, len(data), err)
		}
	}
}

// A file with any byte changed is refused, or reads as the same snapshot
// and header (a byte gzip does not check, like its header's time, may
// change freely; so may a count in the trailer, which restore checks
// against the store it makes).
func TestEveryByteChanged(t *testing.T) {
	t.Parallel()
	payload := snapshot(3 << 10)
	data := file(t, payload, 1000)
	h0, _, _, _ := read(data)
	accepted := 0
	for i := range data {
		for _, x := range []byte{0x01, 0x80} {
			bad := bytes.Clone(data)
			bad[i] ^= x
			h, _, got, err := read(bad)
			if err == nil {
				accepted++
				if !bytes.Equal(got, payload) || h != h0 {
					t.Fatalf("byte %d ^ %#x: accepted with another snapshot or header", i, x)
				}
				continue
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrNotBackup) && !errors.Is(err, ErrVersion) {
				t.Fatalf("byte %d ^ %#x: %v", i, x, err)
			}
		}
	}
	t.Logf("%d of %d changes accepted, all with the same snapshot and header", accepted, 2*len(data))
}

func TestRefused(t *testing.T) {
	good := file(t, snapshot(1000), 1000)
	header, rest, _ := bytes.Cut(good, []byte("\n"))
	for _, c := range []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{"empty", nil, ErrNotBackup, "empty"},
		{"text", []byte("hello\n"), ErrNotBackup, `does not start with "yubin-backup"`},
		{"a store file", bytes.Repeat([]byte{0}, 8192), ErrNotBackup, ""},
		{"newer version", bytes.Replace(good, []byte("yubin-backup 1 "), []byte("yubin-backup 2 "), 1), ErrVersion, "version 2: this yubin reads version 1"},
		{"version 01", bytes.Replace(good, []byte("yubin-backup 1 "), []byte("yubin-backup 01 "), 1), ErrCorrupt, "format version"},
		{"unknown header field", append(append(bytes.Replace(header, []byte(`{`), []byte(`{"x":1,`), 1), '\n'), rest...), ErrCorrupt, "header"},
		{"other compression", append(append(bytes.Replace(header, []byte(`"gzip"`), []byte(`"zstd"`), 1), '\n'), rest...), ErrCorrupt, "zstd"},
		{"long header", append([]byte("yubin-backup 1 "), bytes.Repeat([]byte("x"), 70<<10)...), ErrCorrupt, "longer than"},
		{"data after the trailer", append(bytes.Clone(good), 'x'), ErrCorrupt, "after the trailer"},
		{"two trailers", append(bytes.Clone(good), good[bytes.LastIndexByte(good[:len(good)-1], '\n')+1:]...), ErrCorrupt, "after the trailer"},
		{"no trailer newline", good[:len(good)-1], ErrTruncated, "ends in its trailer"},
	} {
		_, _, _, err := read(c.data)
		if !errors.Is(err, c.want) || !strings.Contains(fmt.Sprint(err), c.msg) {
			t.Errorf("%s: %v, want %v (%q)", c.name, err, c.want, c.msg)
		}
	}
}

func TestWriterChecksSize(t *testing.T) {
	w, err := NewWriter(io.Discard, Header{Created: created})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("abc"))
	if _, err := w.Close(store.BackupInfo{Backend: "bolt", Size: 4}); err == nil {
		t.Error("Close accepted a size other than what was written")
	}
}

// FuzzReader reads any bytes as a backup file: it never panics, and what
// it accepts is a snapshot whose size and checksum are the trailer's.
func FuzzReader(f *testing.F) {
	good := file(f, snapshot(3000), 500)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte("yubin-backup 1 {}\n"))
	f.Add(append(bytes.Clone(good), good...))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, tr, payload, err := read(data)
		if err != nil {
			return
		}
		sum := sha256.Sum256(payload)
		if tr.Size != int64(len(payload)) || tr.SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("accepted %d bytes with trailer %+v", len(payload), tr)
		}
	})
}
