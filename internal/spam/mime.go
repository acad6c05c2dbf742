package spam

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// The tokenizer walks the MIME tree as go-message does (message.Read,
// message.New, Entity.MultipartReader), with two differences that change
// nothing of what it reads: a part's Content-Type is parsed once, and
// quoted-printable bodies are decoded by qpReader instead of
// mime/quotedprintable's Reader, which costs a write barrier per byte
// while the garbage collector runs.

// mimePart is a MIME entity: its header and its decoded body (as
// message.New decodes it).
type mimePart struct {
	header message.Header
	body   io.Reader
	// The parsed Content-Type (message.Header.ContentType).
	mediaType string
	params    map[string]string
	ctErr     error
	qp        *qpReader // to give back when done with the part
}

// errHeaderTooBig stops a header beyond MaxHeaderBytes, as go-message's
// ReadOptions.MaxHeaderBytes does.
var errHeaderTooBig = errors.New("message: header exceeds maximum size")

// headerLimit is go-message's limitedReader: it fails once N bytes are read.
type headerLimit struct {
	r io.Reader
	n int64
}

func (l *headerLimit) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errHeaderTooBig
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// readPart is message.ReadWithOptions with MaxHeaderBytes: nil when the
// header cannot be read.
func (t *tokenizer) readPart(r io.Reader) *mimePart {
	lr := &headerLimit{r: r, n: MaxHeaderBytes}
	br := bufio.NewReader(lr)
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return nil
	}
	lr.n = math.MaxInt64
	p, _ := t.newPart(message.Header{Header: h}, br)
	return p
}

// newPart is message.New: the body decoded from its transfer encoding and,
// for text, its charset; an error (with a part that can be read) for an
// unknown transfer encoding or charset.
func (t *tokenizer) newPart(h message.Header, body io.Reader) (*mimePart, error) {
	p := &mimePart{header: h, body: body}
	p.mediaType, p.params, p.ctErr = h.ContentType()
	if strings.HasPrefix(p.mediaType, "multipart/") {
		return p, nil // no transfer encoding (go-message ignores it), no charset
	}
	switch strings.ToLower(h.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		p.qp = t.getQP(body)
		p.body = p.qp
	case "7bit", "8bit", "binary", "":
	default:
		// base64, and the encodings go-message does not know (it leaves
		// the body as it is): as it does them, charset included.
		e, err := message.New(h, body)
		p.body = e.Body
		return p, err
	}
	if strings.HasPrefix(p.mediaType, "text/") {
		if cs, ok := p.params["charset"]; ok {
			r, err := charsetReader(cs, p.body)
			if err != nil {
				return p, err
			}
			p.body = r
		}
	}
	return p, nil
}

// charsetReader is go-message's: UTF-8 and US-ASCII as they are, other
// charsets through message.CharsetReader.
func charsetReader(charset string, input io.Reader) (io.Reader, error) {
	charset = strings.ToLower(charset)
	if charset == "utf-8" || charset == "us-ascii" {
		return input, nil
	}
	if message.CharsetReader != nil {
		return message.CharsetReader(charset, input)
	}
	return input, fmt.Errorf("message: unhandled charset %q", charset)
}

// multipart returns the reader of a multipart part's parts (nil if it is
// not multipart), as Entity.MultipartReader.
func (p *mimePart) multipart() *textproto.MultipartReader {
	if !strings.HasPrefix(p.mediaType, "multipart/") {
		return nil
	}
	return textproto.NewMultipartReader(p.body, p.params["boundary"])
}

// done gives back what the part borrowed.
func (t *tokenizer) done(p *mimePart) {
	if p.qp != nil {
		t.qpFree = append(t.qpFree, p.qp)
		p.qp = nil
	}
}

func (t *tokenizer) getQP(r io.Reader) *qpReader {
	var q *qpReader
	if n := len(t.qpFree); n > 0 {
		q, t.qpFree = t.qpFree[n-1], t.qpFree[:n-1]
		q.br.Reset(r)
		q.rerr, q.line = nil, nil
	} else {
		q = &qpReader{br: bufio.NewReader(r)}
	}
	return q
}

// qpReader decodes quoted-printable exactly as mime/quotedprintable's
// Reader does, with its deviations from RFC 2045 ("=\n" is a soft line
// break too, a CR or LF not after "=" is kept, "=" at the very end is
// ignored, "=" not followed by two hex digits is taken literally except
// at the end of a line) and its errors at the same points, reading its
// input through a bufio.Reader of the same (default) size so that a line
// too long for it fails the same way. It only keeps its place in a local
// variable while decoding.
type qpReader struct {
	br   *bufio.Reader
	rerr error  // last read error
	line []byte // to be consumed before more of br
}

// qpLiteral says which bytes of a line stand for themselves.
var qpLiteral = func() (t [256]bool) {
	for b := range t {
		t[b] = b == '\t' || b == '\r' || b == '\n' || b >= 0x80 || ' ' <= b && b <= '~' && b != '='
	}
	return t
}()

func isQPDiscardWhitespace(r rune) bool {
	switch r {
	case '\n', '\r', ' ', '\t':
		return true
	}
	return false
}

// nextLine reads the next line from br and makes it what Read consumes.
func (r *qpReader) nextLine() []byte {
	var whole []byte
	whole, r.rerr = r.br.ReadSlice('\n')
	hasLF := bytes.HasSuffix(whole, []byte("\n"))
	hasCR := bytes.HasSuffix(whole, []byte("\r\n"))
	line := bytes.TrimRightFunc(whole, isQPDiscardWhitespace)
	if bytes.HasSuffix(line, []byte("=")) {
		rightStripped := bytes.TrimLeft(whole[len(line):], " \t")
		line = line[:len(line)-1]
		if !bytes.HasPrefix(rightStripped, []byte("\n")) && !bytes.HasPrefix(rightStripped, []byte("\r\n")) &&
			!(len(rightStripped) == 0 && len(line) > 0 && r.rerr == io.EOF) {
			r.rerr = fmt.Errorf("quotedprintable: invalid bytes after =: %q", rightStripped)
		}
	} else if hasLF {
		// Within whole's memory, over what was trimmed.
		if hasCR {
			line = append(line, '\r', '\n')
		} else {
			line = append(line, '\n')
		}
	}
	return line
}

func fromHex(b byte) (byte, bool) {
	switch {
	case '0' <= b && b <= '9':
		return b - '0', true
	case 'A' <= b && b <= 'F':
		return b - 'A' + 10, true
	case 'a' <= b && b <= 'f':
		return b - 'a' + 10, true
	}
	return 0, false
}

// Read implements io.Reader.
func (r *qpReader) Read(p []byte) (n int, err error) {
	line := r.line
	defer func() { r.line = line }()
	for len(p) > 0 {
		if len(line) == 0 {
			if r.rerr != nil {
				return n, r.rerr
			}
			line = r.nextLine()
			continue
		}
		i := 0
		for i < len(line) && i < len(p) && qpLiteral[line[i]] {
			i++
		}
		if i > 0 {
			copy(p, line[:i])
			p, line, n = p[i:], line[i:], n+i
			continue
		}
		b := line[0]
		if b != '=' {
			return n, fmt.Errorf("quotedprintable: invalid unescaped byte 0x%02x in body", b)
		}
		if len(line) >= 3 {
			if hi, ok := fromHex(line[1]); ok {
				if lo, ok := fromHex(line[2]); ok {
					p[0] = hi<<4 | lo
					p, line, n = p[1:], line[3:], n+1
					continue
				}
			}
		}
		// Not an escape: a literal "=", or an error at the end of a line.
		if len(line) < 2 || line[1] == '\r' || line[1] == '\n' {
			if len(line) < 3 {
				return n, io.ErrUnexpectedEOF
			}
			return n, fmt.Errorf("quotedprintable: invalid hex byte 0x%02x", line[1])
		}
		p[0] = b
		p, line, n = p[1:], line[1:], n+1
	}
	return n, nil
}
