package scan

import (
	"context"
	"io"
	"testing"

	"yubin/internal/testutil/scantest"
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

func b64lines(data []byte) string { return scantest.B64Lines(data) }

func toFiles(atts []att) []scantest.File {
	fs := make([]scantest.File, len(atts))
	for i, a := range atts {
		fs[i] = scantest.File{Name: a.name, Type: a.ctype, Data: a.data}
	}
	return fs
}

// mailWith builds a multipart/mixed message: a text body and base64
// attachments.
func mailWith(body string, atts ...att) []byte { return scantest.Mail(body, toFiles(atts)) }

func zipOf(t testing.TB, files ...att) []byte { return scantest.Zip(toFiles(files)...) }

func tarOf(t testing.TB, files ...att) []byte { return scantest.Tar(toFiles(files)...) }

func gzipOf(t testing.TB, data []byte) []byte { return scantest.Gzip(data) }

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
