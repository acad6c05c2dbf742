package pop3d

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

var errTopDone = errors.New("top: enough lines")

// messageWriter writes a message as the body of a POP3 multi-line
// response (RFC 1939 3), for RETR and TOP: CRLF line endings whatever is
// stored (a bare LF becomes CRLF; a CR inside a line is passed on as it
// is), a '.' doubled at the start of a line (byte-stuffing), and for TOP
// only the header section and the first limit lines of the body. finish
// writes the terminating ".".
type messageWriter struct {
	w          *bufio.Writer
	limit      int   // body lines to send; -1 = all (RETR)
	headerLeft int64 // bytes of the header section not yet passed
	bodyLines  int   // body lines sent so far
	bol        bool  // at the beginning of a line
	cr         bool  // the last byte written was a CR
}

func newMessageWriter(w *bufio.Writer, headerSize int64, limit int) *messageWriter {
	return &messageWriter{w: w, limit: limit, headerLeft: headerSize, bol: true}
}

func (s *messageWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if s.limit >= 0 && s.headerLeft == 0 && s.bol && s.bodyLines >= s.limit {
			return n, errTopDone
		}
		i := bytes.IndexByte(p, '\n')
		seg := p
		if i >= 0 {
			seg = p[:i]
		}
		if len(seg) > 0 {
			if s.bol && seg[0] == '.' {
				s.w.WriteByte('.')
			}
			s.w.Write(seg)
			s.bol, s.cr = false, seg[len(seg)-1] == '\r'
			s.headerLeft = max(0, s.headerLeft-int64(len(seg)))
		}
		if i < 0 {
			return n + len(p), nil
		}
		if !s.cr {
			s.w.WriteByte('\r')
		}
		s.w.WriteByte('\n')
		s.bol, s.cr = true, false
		if s.headerLeft > 0 {
			s.headerLeft--
		} else {
			s.bodyLines++
		}
		n += i + 1
		p = p[i+1:]
	}
	return n, nil
}

// finish ends the last line if needed and writes the terminating ".".
func (s *messageWriter) finish() {
	if s.cr {
		s.w.WriteByte('\n')
	} else if !s.bol {
		s.w.WriteString("\r\n")
	}
	s.w.WriteString(".\r\n")
}

func newBufWriter(w io.Writer) *bufio.Writer { return bufio.NewWriterSize(w, 32<<10) }
