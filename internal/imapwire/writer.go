package imapwire

import (
	"bufio"
	"io"
	"strconv"
)

// Writer writes IMAP responses. It keeps the first write error (Err);
// writes after it do nothing.
type Writer struct {
	bw  *bufio.Writer
	err error
	// UTF8 lets quoted strings carry UTF-8 (after ENABLE UTF8=ACCEPT, RFC
	// 6855); otherwise a string with 8-bit bytes is sent as a literal.
	UTF8 bool
}

// NewWriter returns a Writer over bw.
func NewWriter(bw *bufio.Writer) *Writer { return &Writer{bw: bw} }

// Err is the first write error.
func (w *Writer) Err() error { return w.err }

// Raw writes s as it is: protocol text the caller made.
func (w *Writer) Raw(s string) *Writer {
	if w.err == nil {
		_, w.err = w.bw.WriteString(s)
	}
	return w
}

// Bytes writes b as it is.
func (w *Writer) Bytes(b []byte) *Writer {
	if w.err == nil {
		_, w.err = w.bw.Write(b)
	}
	return w
}

func (w *Writer) byte1(c byte) *Writer {
	if w.err == nil {
		w.err = w.bw.WriteByte(c)
	}
	return w
}

// SP writes a space.
func (w *Writer) SP() *Writer { return w.byte1(' ') }

// Open and Close write '(' and ')'.
func (w *Writer) Open() *Writer  { return w.byte1('(') }
func (w *Writer) Close() *Writer { return w.byte1(')') }

// CRLF ends a response line.
func (w *Writer) CRLF() *Writer { return w.Raw("\r\n") }

// Num writes a number.
func (w *Writer) Num(n uint32) *Writer { return w.Num64(uint64(n)) }

// Num64 writes a 64-bit number.
func (w *Writer) Num64(n uint64) *Writer {
	if w.err == nil {
		var buf [20]byte
		_, w.err = w.bw.Write(strconv.AppendUint(buf[:0], n, 10))
	}
	return w
}

// NIL writes NIL.
func (w *Writer) NIL() *Writer { return w.Raw("NIL") }

// MaxQuoted is the longest string sent quoted; longer ones are literals.
const MaxQuoted = 4096

// Quotable reports whether s can be sent as a quoted string: no CR, LF or
// NUL, 8-bit bytes only with utf8, not too long.
func Quotable(s string, utf8 bool) bool {
	if len(s) > MaxQuoted {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' || c == 0 || c >= 0x80 && !utf8 {
			return false
		}
	}
	return true
}

// String writes s as a quoted string when it can be one, else as a
// literal.
func (w *Writer) String(s string) *Writer {
	if !Quotable(s, w.UTF8) {
		return w.Literal([]byte(s))
	}
	w.byte1('"')
	start := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			w.Raw(s[start:i]).byte1('\\')
			start = i
		}
	}
	return w.Raw(s[start:]).byte1('"')
}

// NString writes s, or NIL when s is empty and nilIfEmpty.
func (w *Writer) NString(s string, nilIfEmpty bool) *Writer {
	if s == "" && nilIfEmpty {
		return w.NIL()
	}
	return w.String(s)
}

// Literal writes b as a literal: {n} CRLF and the bytes.
func (w *Writer) Literal(b []byte) *Writer {
	w.byte1('{').Num(uint32(len(b))).Raw("}\r\n")
	return w.Bytes(b)
}

// LiteralFrom writes a literal of n bytes read from r (literal8, "~{n}",
// when binary). A short read is an error: the response cannot be made
// right any more.
func (w *Writer) LiteralFrom(n int64, r io.Reader, binary bool) *Writer {
	if binary {
		w.byte1('~')
	}
	w.byte1('{').Num64(uint64(n)).Raw("}\r\n")
	if w.err == nil {
		var m int64
		m, w.err = io.CopyN(w.bw, r, n)
		if w.err == io.EOF && m < n {
			w.err = io.ErrUnexpectedEOF
		}
	}
	return w
}

// Flush sends what was written.
func (w *Writer) Flush() error {
	if w.err == nil {
		w.err = w.bw.Flush()
	}
	return w.err
}

// Buffered is how many bytes wait for Flush.
func (w *Writer) Buffered() int { return w.bw.Buffered() }
