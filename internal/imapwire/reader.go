// Package imapwire reads IMAP commands and writes IMAP responses (RFC 3501,
// RFC 9051): the syntax of the protocol — lines, atoms, quoted strings,
// literals (synchronizing, LITERAL+'s non-synchronizing and BINARY's
// literal8), lists, numbers and sequence sets — and nothing of what the
// commands mean.
//
// A Reader parses one command at a time from the client's stream, lazily:
// the caller asks for the next element ("a tag", "an astring", "a space")
// and the Reader reads a line at a time, fetching a literal only when the
// parse reaches it. A command handler can thus refuse a command before its
// client sends a synchronizing literal, or stream a large literal (APPEND)
// instead of holding it in memory. Every read is bounded (Limits).
package imapwire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Limits bound what one command may make the Reader hold.
type Limits struct {
	// MaxLine is the longest line (without its CRLF).
	MaxLine int
	// MaxLiteral is the largest literal read into memory (Literal,
	// String); larger ones can only be streamed (LiteralReader).
	MaxLiteral int64
	// MaxCommand bounds the bytes of one command held in memory: its lines
	// and in-memory literals together.
	MaxCommand int
}

// DefaultLimits are generous for every command clients send: 64 KiB lines
// (a UID set of thousands of ranges), 1 MiB literals and commands.
var DefaultLimits = Limits{MaxLine: 64 << 10, MaxLiteral: 1 << 20, MaxCommand: 1 << 20}

// SyntaxError is a command that does not parse: the server answers BAD
// with its text.
type SyntaxError struct{ Msg string }

func (e *SyntaxError) Error() string { return e.Msg }

func syntaxf(format string, args ...any) error {
	return &SyntaxError{Msg: fmt.Sprintf(format, args...)}
}

// ErrTooLong is a line or command beyond the Reader's Limits. The rest of
// the command has been read and dropped (see Discard); Dropped gives its
// first bytes.
var ErrTooLong = errors.New("command too long")

// ErrEndless is a line that goes on past MaxSkip without its end: the
// stream cannot be followed any more.
var ErrEndless = errors.New("line never ends")

// MaxSkip bounds how much of a too-long line is read and dropped before
// the Reader gives up on the stream.
const MaxSkip = 4 << 20

// Literal is the announcement of a literal at the end of a line: {n}
// (synchronizing: the client waits for a continuation), {n+} (LITERAL+,
// RFC 7888: it does not), with a leading '~' for BINARY's literal8.
type Literal struct {
	Size   int64
	Sync   bool
	Binary bool
}

// Reader parses commands from a client's stream.
type Reader struct {
	br     *bufio.Reader
	limits Limits
	// Continue is called before the Reader reads a synchronizing literal:
	// it must send the client a continuation ("+ ...") and flush.
	Continue func() error

	line  []byte   // the current line, without CRLF and literal announcement
	pos   int      // parse position in line
	lit   *Literal // the literal announced at the end of line, if any
	total int      // bytes of the command held so far
	// stream is the literal being streamed (LiteralReader), to drain
	// before the command's next line.
	stream *io.LimitedReader
	err    error // a read error: the connection is unusable
	// dropped is the start of the last line dropped for being too long.
	dropped []byte
}

// Dropped returns the first bytes of the last line dropped for being too
// long (for the tag of the reply).
func (r *Reader) Dropped() []byte { return r.dropped }

// NewReader returns a Reader over br with limits (zero fields take
// DefaultLimits').
func NewReader(br *bufio.Reader, limits Limits) *Reader {
	if limits.MaxLine <= 0 {
		limits.MaxLine = DefaultLimits.MaxLine
	}
	if limits.MaxLiteral <= 0 {
		limits.MaxLiteral = DefaultLimits.MaxLiteral
	}
	if limits.MaxCommand <= 0 {
		limits.MaxCommand = DefaultLimits.MaxCommand
	}
	return &Reader{br: br, limits: limits}
}

// Begin reads the first line of the next command. An empty line is
// skipped. It returns ErrTooLong for a line over MaxLine (dropped, with
// its literals when they are non-synchronizing), and the stream's error
// (io.EOF at a clean end) when the client is gone.
func (r *Reader) Begin() error {
	if r.err != nil {
		return r.err
	}
	r.total = 0
	for {
		if err := r.readLine(); err != nil {
			return err
		}
		if len(r.line) > 0 || r.lit != nil {
			return nil
		}
	}
}

// readLine reads one line into r.line, splitting off a trailing literal
// announcement into r.lit.
func (r *Reader) readLine() error {
	r.line, r.pos, r.lit = r.line[:0], 0, nil
	for {
		chunk, err := r.br.ReadSlice('\n')
		if len(r.line)+len(chunk) > r.limits.MaxLine+2 {
			tail := append([]byte(nil), r.line...)
			tail = append(tail, chunk...)
			r.dropped = append(r.dropped[:0], tail[:min(len(tail), 128)]...)
			if err == bufio.ErrBufferFull || err == nil && !bytes.HasSuffix(chunk, []byte("\n")) {
				if tail, err = r.skipLine(tail); err != nil {
					return r.fail(err)
				}
			} else if err != nil {
				return r.fail(err)
			}
			r.line = r.line[:0]
			r.dropAnnounced(tail)
			if r.err != nil {
				return r.err
			}
			return ErrTooLong
		}
		r.line = append(r.line, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(r.line) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return r.fail(err)
		}
		break
	}
	r.line = bytes.TrimSuffix(r.line, []byte("\n"))
	r.line = bytes.TrimSuffix(r.line, []byte("\r"))
	r.total += len(r.line)
	if r.total > r.limits.MaxCommand {
		r.dropAnnounced(r.line)
		r.line = r.line[:0]
		if r.err != nil {
			return r.err
		}
		return ErrTooLong
	}
	if l, n, ok := announced(r.line); ok {
		r.lit = &l
		r.line = r.line[:len(r.line)-n]
	}
	return nil
}

// skipLine reads and drops the rest of a line, keeping its last bytes
// (where a literal announcement would be).
func (r *Reader) skipLine(tail []byte) ([]byte, error) {
	skipped := len(tail)
	for {
		chunk, err := r.br.ReadSlice('\n')
		if skipped += len(chunk); skipped > MaxSkip && err == bufio.ErrBufferFull {
			return tail, ErrEndless
		}
		tail = append(tail, chunk...)
		if len(tail) > 64 {
			tail = append(tail[:0], tail[len(tail)-64:]...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return tail, err
	}
}

// dropAnnounced drops a command whose line (or its end, tail) was refused:
// a non-synchronizing literal at its end is read and dropped with the lines
// that follow it, as long as they announce more. A synchronizing one is
// never sent without our continuation, so the command ends there.
func (r *Reader) dropAnnounced(tail []byte) {
	tail = bytes.TrimSuffix(bytes.TrimSuffix(tail, []byte("\n")), []byte("\r"))
	for {
		l, _, ok := announced(tail)
		if !ok || l.Sync {
			return
		}
		if _, err := io.CopyN(io.Discard, r.br, l.Size); err != nil {
			r.fail(err)
			return
		}
		var err error
		if tail, err = r.skipLine(nil); err != nil {
			r.fail(err)
			return
		}
		tail = bytes.TrimSuffix(bytes.TrimSuffix(tail, []byte("\n")), []byte("\r"))
	}
}

func (r *Reader) fail(err error) error {
	if r.err == nil {
		r.err = err
	}
	return r.err
}

// announced parses a literal announcement at the end of line: "{12}",
// "{12+}", "~{12}". n is its length in line.
func announced(line []byte) (l Literal, n int, ok bool) {
	if len(line) < 3 || line[len(line)-1] != '}' {
		return l, 0, false
	}
	open := bytes.LastIndexByte(line, '{')
	if open < 0 {
		return l, 0, false
	}
	digits := line[open+1 : len(line)-1]
	l.Sync = true
	if len(digits) > 0 && digits[len(digits)-1] == '+' {
		l.Sync = false
		digits = digits[:len(digits)-1]
	}
	if len(digits) == 0 || len(digits) > 19 {
		return l, 0, false
	}
	size, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil || size < 0 || digits[0] == '+' || digits[0] == '-' {
		return l, 0, false
	}
	l.Size = size
	n = len(line) - open
	if open > 0 && line[open-1] == '~' {
		l.Binary = true
		n++
	}
	return l, n, true
}

// Discard drops what is left of the command after an error, so that the
// next Begin starts at the next command: the rest of the line, and any
// non-synchronizing literals it and the lines after it announce.
func (r *Reader) Discard() {
	if r.err != nil {
		return
	}
	if r.stream != nil {
		if _, err := io.Copy(io.Discard, r.stream); err != nil {
			r.fail(err)
			return
		}
		r.stream = nil
		if err := r.readLine(); err != nil {
			return
		}
	}
	for r.lit != nil && !r.lit.Sync {
		if _, err := io.CopyN(io.Discard, r.br, r.lit.Size); err != nil {
			r.fail(err)
			return
		}
		if err := r.readLine(); err != nil {
			return
		}
	}
	r.line, r.pos, r.lit = r.line[:0], 0, nil
}

// Err is the stream's error, once reading failed: the connection is over.
func (r *Reader) Err() error { return r.err }

// Pending is the literal announced at the end of the current line, when
// the parse has reached it (nil otherwise): a handler can refuse it
// before asking for it.
func (r *Reader) Pending() *Literal {
	if r.pos < len(r.line) {
		return nil
	}
	return r.lit
}

// Peek returns the next byte of the current line without consuming it,
// or 0 at its end (where a literal may be announced).
func (r *Reader) Peek() byte {
	if r.pos < len(r.line) {
		return r.line[r.pos]
	}
	return 0
}

// AtLiteral reports whether the parse has reached an announced literal.
func (r *Reader) AtLiteral() bool { return r.pos >= len(r.line) && r.lit != nil }

// Byte consumes the byte c, or fails with a syntax error naming what.
func (r *Reader) Byte(c byte, what string) error {
	if r.Peek() != c || r.pos >= len(r.line) {
		return r.expected(what)
	}
	r.pos++
	return nil
}

// Maybe consumes c if it is next, and reports whether it was.
func (r *Reader) Maybe(c byte) bool {
	if r.pos < len(r.line) && r.line[r.pos] == c {
		r.pos++
		return true
	}
	return false
}

// SP consumes one space.
func (r *Reader) SP() error { return r.Byte(' ', "space") }

// End checks that the command ends here (CRLF).
func (r *Reader) End() error {
	if r.pos < len(r.line) || r.lit != nil {
		return r.expected("end of command")
	}
	return nil
}

// AtEnd reports whether the command ends here.
func (r *Reader) AtEnd() bool { return r.pos >= len(r.line) && r.lit == nil }

func (r *Reader) expected(what string) error {
	switch {
	case r.pos < len(r.line):
		got := r.line[r.pos:]
		if len(got) > 20 {
			got = append(got[:20:20], "..."...)
		}
		return syntaxf("expected %s at %q", what, got)
	case r.lit != nil:
		return syntaxf("expected %s, got a literal", what)
	}
	return syntaxf("expected %s, got end of command", what)
}

// Rest returns what is left of the current line (without consuming a
// literal at its end) and consumes it.
func (r *Reader) Rest() string {
	s := string(r.line[r.pos:])
	r.pos = len(r.line)
	return s
}

// isAtomChar: any CHAR except atom-specials (RFC 3501 9: "(" ")" "{" SP
// CTL list-wildcards quoted-specials resp-specials).
func isAtomChar(c byte) bool {
	switch c {
	case '(', ')', '{', ' ', '%', '*', '"', '\\', ']':
		return false
	}
	return c > 0x20 && c < 0x7f
}

// isAStringChar is ATOM-CHAR or resp-specials ("]").
func isAStringChar(c byte) bool { return isAtomChar(c) || c == ']' }

// Atom reads an atom (RFC 3501 atom).
func (r *Reader) Atom() (string, error) {
	return r.run(isAtomChar, "atom")
}

// Tag reads a command tag: astring characters except '+'.
func (r *Reader) Tag() (string, error) {
	return r.run(func(c byte) bool { return isAStringChar(c) && c != '+' }, "tag")
}

// run reads a non-empty run of bytes ok accepts.
func (r *Reader) run(ok func(byte) bool, what string) (string, error) {
	start := r.pos
	for r.pos < len(r.line) && ok(r.line[r.pos]) {
		r.pos++
	}
	if r.pos == start {
		return "", r.expected(what)
	}
	return string(r.line[start:r.pos]), nil
}

// Run reads the longest run of bytes ok accepts (possibly empty).
func (r *Reader) Run(ok func(byte) bool) string {
	start := r.pos
	for r.pos < len(r.line) && ok(r.line[r.pos]) {
		r.pos++
	}
	return string(r.line[start:r.pos])
}

// Number reads a number (RFC 3501: 32-bit unsigned).
func (r *Reader) Number() (uint32, error) {
	n, err := r.number(32)
	return uint32(n), err
}

// Number64 reads a 63-bit number (RFC 7162 mod-sequence values).
func (r *Reader) Number64() (uint64, error) { return r.number(63) }

func (r *Reader) number(bits int) (uint64, error) {
	start := r.pos
	for r.pos < len(r.line) && '0' <= r.line[r.pos] && r.line[r.pos] <= '9' {
		r.pos++
	}
	if r.pos == start {
		return 0, r.expected("number")
	}
	n, err := strconv.ParseUint(string(r.line[start:r.pos]), 10, bits)
	if err != nil {
		return 0, syntaxf("number %s out of range", r.line[start:r.pos])
	}
	return n, nil
}

// Quoted reads a quoted string (RFC 3501 quoted: '"' then characters with
// '\\' and '"' escaped, no CR or LF). 8-bit bytes are taken as they come
// (UTF8=ACCEPT and the many clients that send UTF-8 regardless).
func (r *Reader) Quoted() (string, error) {
	if err := r.Byte('"', "quoted string"); err != nil {
		return "", err
	}
	var b []byte
	for r.pos < len(r.line) {
		c := r.line[r.pos]
		r.pos++
		switch c {
		case '"':
			return string(b), nil
		case '\\':
			if r.pos >= len(r.line) {
				return "", syntaxf("missing '\"'")
			}
			c = r.line[r.pos]
			r.pos++
			if c != '\\' && c != '"' {
				return "", syntaxf("bad escape \\%c in quoted string", c)
			}
		case 0:
			return "", syntaxf("NUL in quoted string")
		}
		b = append(b, c)
	}
	return "", syntaxf("missing '\"'")
}

// String reads a string: quoted or a literal (read into memory, at most
// MaxLiteral bytes).
func (r *Reader) String() (string, error) {
	if r.Peek() == '"' {
		return r.Quoted()
	}
	if r.AtLiteral() {
		b, err := r.Literal()
		return string(b), err
	}
	return "", r.expected("string")
}

// AString reads an astring: an atom with ']' allowed, or a string.
func (r *Reader) AString() (string, error) {
	if r.Peek() == '"' || r.AtLiteral() {
		return r.String()
	}
	return r.run(isAStringChar, "string")
}

// NString reads an nstring: NIL or a string; ok is false for NIL.
func (r *Reader) NString() (s string, ok bool, err error) {
	if r.Peek() == '"' || r.AtLiteral() {
		s, err = r.String()
		return s, err == nil, err
	}
	a, err := r.Atom()
	if err != nil {
		return "", false, err
	}
	if !equalFold(a, "NIL") {
		return "", false, syntaxf("expected string or NIL, got %q", a)
	}
	return "", false, nil
}

// Literal reads the literal announced here into memory (MaxLiteral at
// most; a larger one is refused before the client sends it when it waits
// for a continuation) and moves on to the line after it.
func (r *Reader) Literal() ([]byte, error) {
	l := r.Pending()
	if l == nil {
		return nil, r.expected("literal")
	}
	if l.Size > r.limits.MaxLiteral || r.total+int(l.Size) > r.limits.MaxCommand {
		return nil, &TooBigError{Size: l.Size, Max: r.limits.MaxLiteral}
	}
	if l.Sync && r.Continue != nil {
		if err := r.Continue(); err != nil {
			return nil, r.fail(err)
		}
	}
	b := make([]byte, l.Size)
	if _, err := io.ReadFull(r.br, b); err != nil {
		return nil, r.fail(err)
	}
	r.total += int(l.Size)
	r.lit = nil
	if err := r.readLine(); err != nil {
		return nil, err
	}
	return b, nil
}

// TooBigError is a literal over the limit for reading it into memory. The
// literal has not been read (Discard drops it if the client sends it
// anyway).
type TooBigError struct {
	Size, Max int64
}

func (e *TooBigError) Error() string {
	return fmt.Sprintf("literal of %d bytes is over the limit of %d", e.Size, e.Max)
}

// LiteralReader streams the literal announced here, however large (the
// caller decides what is too large from Pending first): it sends the
// continuation a synchronizing literal needs, and returns a reader of
// exactly the literal's bytes. The parse goes on after it with the next
// call, which drains what the caller left unread.
func (r *Reader) LiteralReader() (Literal, io.Reader, error) {
	l := r.Pending()
	if l == nil {
		return Literal{}, nil, r.expected("literal")
	}
	lit := *l
	if lit.Sync && r.Continue != nil {
		if err := r.Continue(); err != nil {
			return lit, nil, r.fail(err)
		}
	}
	r.stream = &io.LimitedReader{R: r.br, N: lit.Size}
	r.lit = nil
	return lit, &streamReader{r: r}, nil
}

// streamReader reads a streamed literal; a read error ends the connection.
type streamReader struct{ r *Reader }

func (s *streamReader) Read(p []byte) (int, error) {
	if s.r.stream == nil {
		return 0, io.EOF
	}
	n, err := s.r.stream.Read(p)
	if err == io.EOF && s.r.stream.N > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF {
		s.r.fail(err)
	}
	return n, err
}

// EndLiteral finishes a streamed literal: drains what is left of it and
// reads the line after it, where the command goes on.
func (r *Reader) EndLiteral() error {
	if r.stream == nil {
		return nil
	}
	if _, err := io.Copy(io.Discard, r.stream); err != nil {
		return r.fail(err)
	}
	if r.stream.N > 0 {
		return r.fail(io.ErrUnexpectedEOF)
	}
	r.stream = nil
	return r.readLine()
}

// List reads a parenthesized list, calling item for each element (item
// reads it); empty lists are allowed.
func (r *Reader) List(item func() error) error {
	if err := r.Byte('(', "'('"); err != nil {
		return err
	}
	if r.Maybe(')') {
		return nil
	}
	for {
		if err := item(); err != nil {
			return err
		}
		if r.Maybe(')') {
			return nil
		}
		if err := r.SP(); err != nil {
			return r.expected("space or ')'")
		}
	}
}

// Flag reads a flag: "\" atom (system flags, \* in PERMANENTFLAGS) or a
// keyword atom.
func (r *Reader) Flag() (string, error) {
	if r.Maybe('\\') {
		if r.Maybe('*') {
			return `\*`, nil
		}
		a, err := r.Atom()
		if err != nil {
			return "", err
		}
		return `\` + a, nil
	}
	return r.Atom()
}

// ListMailbox reads LIST's mailbox pattern: list-char runs (atom chars,
// '%', '*', ']') or a string.
func (r *Reader) ListMailbox() (string, error) {
	if r.Peek() == '"' || r.AtLiteral() {
		return r.String()
	}
	return r.run(func(c byte) bool { return isAStringChar(c) || c == '%' || c == '*' }, "mailbox pattern")
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'a' <= x && x <= 'z' {
			x -= 32
		}
		if 'a' <= y && y <= 'z' {
			y -= 32
		}
		if x != y {
			return false
		}
	}
	return true
}
