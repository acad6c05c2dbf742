package spam

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime/quotedprintable"
	"strings"
	"testing"
	"testing/iotest"
)

// readCalls reads r to its end (or 1000 calls) with reads of size bytes
// and says what each call returned.
func readCalls(r io.Reader, size int) string {
	var out strings.Builder
	p := make([]byte, size)
	for range 1000 {
		n, err := r.Read(p)
		fmt.Fprintf(&out, "%q %v\n", p[:n], err)
		if err != nil {
			break
		}
	}
	return out.String()
}

// qpSame checks that qpReader returns what mime/quotedprintable's Reader
// does, call by call, for in read in reads of size bytes, over a reader
// wrap makes.
func qpSame(t *testing.T, in []byte, size int, wrap func(io.Reader) io.Reader) {
	t.Helper()
	want := readCalls(quotedprintable.NewReader(wrap(bytes.NewReader(in))), size)
	got := readCalls(&qpReader{br: bufio.NewReader(wrap(bytes.NewReader(in)))}, size)
	if got != want {
		t.Fatalf("%q read by %d:\ngot  %s\nwant %s", in, size, got, want)
	}
}

var qpCases = []string{
	"",
	"plain text\r\nsecond line\r\n",
	"caf=C3=A9 =3D soft=\r\nbreak, lf soft=\nbreak\n",
	"trailing spaces   \r\ntabs\t\t\r\n= \r\n=\t\r\n",
	"lower hex =c3=a9=ff=Fa, bad =ZZ =g0 =0g, short =4\r\n",
	"ends with =",
	"ends with =4",
	"x=\r\ny=",
	"=\r\n",
	"a=\rb\r\n",
	"control \x01 byte\r\n",
	"del \x7f byte\r\n",
	"8bit \xe3\x81\x82 \xff\r\n",
	"soft then junk= x\r\nmore\r\n",
	"no final newline",
	"bare\rcr\r\n\r\n\n",
	strings.Repeat("long line ", 500) + "\r\nafter\r\n",
	strings.Repeat("x", 4095) + "\nafter\n",
	strings.Repeat("x", 4096) + "\nafter\n",
	strings.Repeat("=41", 2000) + "=\r\n" + strings.Repeat("y", 5000),
}

// qpReader decodes as mime/quotedprintable does, errors and all, whatever
// the size of the reads and however the input comes.
func TestQPReaderSame(t *testing.T) {
	wraps := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"data+err": iotest.DataErrReader,
		"timeout":  iotest.TimeoutReader,
	}
	for _, in := range qpCases {
		for name, wrap := range wraps {
			for _, size := range []int{1, 2, 3, 7, 64, 4096, 10000} {
				t.Run(name, func(t *testing.T) { qpSame(t, []byte(in), size, wrap) })
			}
		}
	}
}

func FuzzQPReader(f *testing.F) {
	for _, in := range qpCases {
		f.Add([]byte(in), uint16(64), false)
	}
	f.Fuzz(func(t *testing.T, in []byte, size uint16, oneByte bool) {
		wrap := func(r io.Reader) io.Reader { return r }
		if oneByte {
			wrap = iotest.OneByteReader
		}
		qpSame(t, in, 1+int(size)%5000, wrap)
	})
}
