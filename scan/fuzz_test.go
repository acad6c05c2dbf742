package scan

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// fuzzLimits keep each input cheap while still exercising every limit.
var fuzzLimits = Limits{MaxFileSize: 1 << 20, MaxTotalSize: 4 << 20, MaxEntries: 200, MaxParts: 200, MaxMIMEDepth: 16, MaxDepth: 10, SpoolMemory: 1 << 20}

func checkBounded(t *testing.T, fn func()) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 256<<20 {
		t.Fatalf("allocated %d MiB for one input", d>>20)
	}
}

// FuzzWalk: any bytes as a message: no panic, bounded memory, and Strip
// of whatever was found works.
func FuzzWalk(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.eml")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add(mailWith("hi", att{name: "e.zip", data: zipOf(f, att{name: "e", data: []byte(EICAR)})}))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: message/rfc822\r\n\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n--a--\r\n"))
	b, _ := NewBuiltin("", nil)
	s, _ := New(Config{Engines: []Engine{b}, Limits: fuzzLimits})
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkBounded(t, func() {
			v, err := s.Scan(context.Background(), raw)
			if err != nil {
				t.Fatal(err)
			}
			_ = v.HeaderValue()
			d := v.Inbound(Policy{})
			if d.Action == DeliverStripped {
				if _, err := Strip(raw, d.Strip); err != nil {
					t.Fatalf("Strip: %v", err)
				}
			}
		})
	})
}

// FuzzArchive: any bytes as an attachment (archives are sniffed by
// content): no panic, bounded memory.
func FuzzArchive(f *testing.F) {
	z := zipOf(f, att{name: "a.txt", data: []byte("hello")}, att{name: "e.com", data: []byte(EICAR)})
	f.Add(z)
	f.Add(gzipOf(f, tarOf(f, att{name: "x", data: []byte("data")}, att{name: "in.zip", data: z})))
	f.Add(gzipOf(f, bytes.Repeat([]byte{0}, 1<<16)))
	f.Add(tarOf(f, att{name: "t", data: []byte(EICAR)}))
	f.Add(encryptedZip(f, "s"))
	f.Add(nestedZip(f, 11, []byte("x")))
	bz, _ := hex.DecodeString(bzip2Hex)
	f.Add(bz)
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "z", Method: zip.Deflate})
	w.Write(bytes.Repeat([]byte("z"), 1<<16))
	zw.Close()
	f.Add(zb.Bytes())
	b, _ := NewBuiltin("", nil)
	s, _ := New(Config{Engines: []Engine{b}, Limits: fuzzLimits})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		checkBounded(t, func() {
			st := &state{s: s, ctx: context.Background(), lim: s.limits, v: &Verdict{}}
			if err := st.top(bytes.NewReader(data), node{path: "a"}); err != nil {
				t.Fatal(err)
			}
		})
	})
}
