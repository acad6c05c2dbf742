package spool

import (
	"bytes"
	"testing"
)

// FuzzNormalizeCRLF checks that what CRLFWriter writes has no bare LF,
// differs from the input only by CRs inserted before bare LFs, and does
// not depend on how DATA was cut into writes (cuts: the length of each
// piece, the rest in one).
func FuzzNormalizeCRLF(f *testing.F) {
	for _, s := range []string{"", "a\nb", "a\r\nb\n", "\n\n\r\n", "\r", "x\r\r\n\n", "no newline"} {
		f.Add([]byte(s), []byte{1, 2})
	}
	f.Add([]byte("a\r\nb"), []byte{2})
	f.Fuzz(func(t *testing.T, body, cuts []byte) {
		var whole, pieces bytes.Buffer
		(&CRLFWriter{W: &whole}).Write(body)
		w := &CRLFWriter{W: &pieces}
		rest := body
		for _, c := range cuts {
			n := min(int(c), len(rest))
			w.Write(rest[:n])
			rest = rest[n:]
		}
		w.Write(rest)
		out := pieces.Bytes()
		if !bytes.Equal(out, whole.Bytes()) {
			t.Fatalf("%q cut %v: %q, in one write %q", body, cuts, out, whole.Bytes())
		}
		for i, c := range out {
			if c == '\n' && (i == 0 || out[i-1] != '\r') {
				t.Fatalf("bare LF at %d in %q", i, out)
			}
		}
		if !bytes.Equal(bytes.ReplaceAll(out, []byte("\r\n"), []byte("\n")), bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n"))) {
			t.Fatalf("content changed: %q -> %q", body, out)
		}
	})
}
