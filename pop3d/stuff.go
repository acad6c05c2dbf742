package pop3d

import (
	"bufio"
	"errors"
)

var errTopDone = errors.New("top: enough lines")

// stuffer writes a message as a POP3 multi-line response body: CRLF line
// endings whatever is stored, a '.' doubled at the start of a line, and
// for TOP only the header section and the first limit lines of the body.
type stuffer struct {
	w          *bufio.Writer
	limit      int   // body lines to send; -1 = all (RETR)
	headerLeft int64 // bytes of the header section not yet passed
	bodyLines  int   // body lines sent so far
	bol        bool  // at the beginning of a line
	cr         bool  // the last byte written was a CR
}

func newStuffer(w *bufio.Writer, headerSize int64, limit int) *stuffer {
	return &stuffer{w: w, limit: limit, headerLeft: headerSize, bol: true}
}

func (s *stuffer) Write(p []byte) (int, error) {
	for i, c := range p {
		if s.limit >= 0 && s.headerLeft == 0 && s.bol && s.bodyLines >= s.limit {
			return i, errTopDone
		}
		inHeader := s.headerLeft > 0
		if inHeader {
			s.headerLeft--
		}
		if c == '\n' {
			if !s.cr {
				s.w.WriteByte('\r')
			}
			s.w.WriteByte('\n')
			s.cr, s.bol = false, true
			if !inHeader {
				s.bodyLines++
			}
			continue
		}
		if s.cr {
			// A bare CR inside a line: end the line properly.
			s.w.WriteByte('\n')
			s.bol = true
		}
		if s.bol && c == '.' {
			s.w.WriteByte('.')
		}
		s.w.WriteByte(c)
		s.bol, s.cr = false, c == '\r'
	}
	return len(p), nil
}

// finish ends the last line if needed and writes the terminating ".".
func (s *stuffer) finish() {
	if s.cr {
		s.w.WriteByte('\n')
	} else if !s.bol {
		s.w.WriteString("\r\n")
	}
	s.w.WriteString(".\r\n")
}
