package pop3d

import (
	"bufio"
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

func writeMessage(msg string, limit int, oneByte bool) string {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	s := newMessageWriter(w, int64(len(msg[:headerSizeOf(msg)])), limit)
	var r io.Reader = bytes.NewReader([]byte(msg))
	if oneByte {
		r = iotest.OneByteReader(r)
	}
	if _, err := io.Copy(s, r); err != nil && err != errTopDone {
		panic(err)
	}
	s.finish()
	w.Flush()
	return buf.String()
}

func headerSizeOf(m string) int {
	if i := bytes.Index([]byte(m), []byte("\r\n\r\n")); i >= 0 {
		return i + 4
	}
	return len(m)
}

func TestMessageWriter(t *testing.T) {
	for _, c := range []struct {
		msg   string
		limit int
		want  string
	}{
		{"A: b\r\n\r\n.x\r\nok\r\n", -1, "A: b\r\n\r\n..x\r\nok\r\n.\r\n"},
		{"A: b\n\n.\nbare lf", -1, "A: b\r\n\r\n..\r\nbare lf\r\n.\r\n"},
		{"A: b\r\n\r\n1\r\n2\r\n3\r\n", 2, "A: b\r\n\r\n1\r\n2\r\n.\r\n"},
		{"A: b\r\n\r\n1\r\n2\r\n3\r\n", 0, "A: b\r\n\r\n.\r\n"},
		{"A: b\r\n\r\n1\r\n2", 5, "A: b\r\n\r\n1\r\n2\r\n.\r\n"},
		{"A: b\r\n\r\n", -1, "A: b\r\n\r\n.\r\n"},
		{"A: b\r\n\r\nx\r", -1, "A: b\r\n\r\nx\r\n.\r\n"},
	} {
		for _, one := range []bool{false, true} {
			if got := writeMessage(c.msg, c.limit, one); got != c.want {
				t.Errorf("writeMessage(%q, %d, oneByte=%v) = %q, want %q", c.msg, c.limit, one, got, c.want)
			}
		}
	}
}
