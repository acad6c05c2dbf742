package scan

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"testing"
)

func newTestScanner(t testing.TB, l Limits, engines ...Engine) *Scanner {
	t.Helper()
	if len(engines) == 0 {
		b, err := NewBuiltin("", nil)
		if err != nil {
			t.Fatal(err)
		}
		engines = []Engine{b}
	}
	s, err := New(Config{Engines: engines, Limits: l})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustScan(t testing.TB, s *Scanner, raw []byte) *Verdict {
	t.Helper()
	v, err := s.Scan(context.Background(), raw)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return v
}

type att struct {
	name, ctype string
	data        []byte
}

func b64lines(data []byte) string {
	enc := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	return b.String()
}

// mailWith builds a multipart/mixed message: a text body and base64
// attachments.
func mailWith(body string, atts ...att) []byte {
	var b strings.Builder
	b.WriteString("From: a@example.com\r\nTo: b@example.org\r\nSubject: test\r\nMIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: multipart/mixed; boundary=\"BOUNDARY\"\r\n\r\n")
	b.WriteString("This is a multi-part message in MIME format.\r\n")
	b.WriteString("--BOUNDARY\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n")
	for _, a := range atts {
		ct := a.ctype
		if ct == "" {
			ct = "application/octet-stream"
		}
		fmt.Fprintf(&b, "--BOUNDARY\r\nContent-Type: %s; name=\"%s\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"%s\"\r\n\r\n", ct, a.name, a.name)
		b.WriteString(b64lines(a.data))
	}
	b.WriteString("--BOUNDARY--\r\n")
	return []byte(b.String())
}

func zipOf(t testing.TB, files ...att) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		w, err := zw.Create(f.name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(f.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tarOf(t testing.TB, files ...att) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg})
		tw.Write(f.data)
	}
	tw.Close()
	return buf.Bytes()
}

func gzipOf(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	zw.Close()
	return buf.Bytes()
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func streamZeros(t testing.TB, w io.Writer, n int64) {
	t.Helper()
	if _, err := io.CopyN(w, zeros{}, n); err != nil {
		t.Fatal(err)
	}
}

func wantFinding(t *testing.T, v *Verdict, c Condition) Finding {
	t.Helper()
	for _, f := range v.Findings {
		if f.Condition == c {
			return f
		}
	}
	t.Fatalf("no %s finding in verdict:\n%s", c, v)
	return Finding{}
}
