// Package mailfiles reads the messages kept in mail files: an mbox file, a
// Maildir, or a directory holding one message per file. "yubin spam train"
// reads its training sets with it.
//
// mbox is read as mboxrd (which reads mboxo files right too): every line
// that begins with "From " starts a message and is not part of it (the
// empty line before it ends the previous message and is dropped too), and
// one ">" is taken off each line of the form ">From ", ">>From ", ...
// Content-Length headers (mboxcl) are not used. A Maildir is a directory
// with cur/ or new/; their files are its messages (tmp/ is left alone). Any
// other directory is read as one message per file (hidden files and
// subdirectories are skipped; a leading From_ line is dropped, as in the
// SpamAssassin public corpus).
//
// Every message must begin with a header field: a file or message that
// does not is an error naming it, so that a wrong path is noticed before
// anything is trained on it.
package mailfiles

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Kind is what a path holds.
type Kind string

const (
	MBox    Kind = "mbox"
	Maildir Kind = "maildir"
	Dir     Kind = "directory"
)

// Source is one path of mail.
type Source struct {
	Path string
	Kind Kind
	// Max is how many bytes of a message are kept (the rest is read and
	// dropped); 0 = DefaultMax.
	Max int
}

// DefaultMax bounds one message read.
const DefaultMax = 4 << 20

// Open looks at path and says what it holds. A path that is neither a
// file nor a directory, or cannot be read, is an error.
func Open(path string) (*Source, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	switch {
	case fi.Mode().IsRegular():
		return &Source{Path: path, Kind: MBox}, nil
	case fi.IsDir():
		for _, sub := range []string{"cur", "new"} {
			if st, err := os.Stat(filepath.Join(path, sub)); err == nil && st.IsDir() {
				return &Source{Path: path, Kind: Maildir}, nil
			}
		}
		return &Source{Path: path, Kind: Dir}, nil
	}
	return nil, fmt.Errorf("%s: not a file or a directory", path)
}

// Message is one message of a source.
type Message struct {
	// Where says where it is: a file's path, or the mbox and the line of
	// its From_ line ("inbox.mbox:1207").
	Where string
	Raw   []byte
	// Flags are the IMAP flags the source keeps for the message: from the
	// info of a Maildir file's name (MaildirFlags), from the Status,
	// X-Status and X-Keywords fields of an mbox message (MboxFlags).
	Flags []string
	// Date is when the message arrived, as the source tells, or zero: the
	// earlier of a Maildir file's modification time and the time in its
	// name (MaildirDate), the date of an mbox message's From_ line
	// (FromLineDate).
	Date time.Time
	// Size is the size of the message, of which Raw holds the first
	// Source.Max bytes.
	Size int64
}

// Each calls fn with every message of the source, in order (the files of
// a directory sorted by name), and stops at fn's first error or at the
// first message that is not mail. A source without any message is an
// error.
func (s *Source) Each(fn func(Message) error) error {
	var n int
	count := func(m Message) error {
		if err := check(m); err != nil {
			return err
		}
		n++
		return fn(m)
	}
	var err error
	if s.Kind == MBox {
		err = s.mbox(count)
	} else {
		err = s.files(count)
	}
	if err == nil && n == 0 {
		switch s.Kind {
		case MBox:
			err = fmt.Errorf("%s: empty: no messages", s.Path)
		case Maildir:
			err = fmt.Errorf("%s: no messages in its cur/ and new/", s.Path)
		default:
			err = fmt.Errorf("%s: no messages (give an mbox file, a Maildir with cur/ and new/, or a directory of message files)", s.Path)
		}
	}
	return err
}

func (s *Source) max() int {
	if s.Max > 0 {
		return s.Max
	}
	return DefaultMax
}

// check says whether m begins with a header field.
func check(m Message) error {
	line, _, _ := bytes.Cut(m.Raw, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(bytes.TrimSpace(m.Raw)) == 0 {
		return fmt.Errorf("%s: an empty message", m.Where)
	}
	if !isField(line) {
		return fmt.Errorf("%s: not a mail message (its first line is not a header field: %q)", m.Where, clip(line, 40))
	}
	return nil
}

// isField reports whether line begins with a header field's name and its
// colon (RFC 5322: printable ASCII but the colon; no space before it).
func isField(line []byte) bool {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return false
	}
	for _, c := range line[:colon] {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

func clip(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// files reads a Maildir or a directory of message files.
func (s *Source) files(fn func(Message) error) error {
	var paths []string
	dirs := []string{s.Path}
	if s.Kind == Maildir {
		dirs = []string{filepath.Join(s.Path, "cur"), filepath.Join(s.Path, "new")}
	}
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if errors.Is(err, os.ErrNotExist) && s.Kind == Maildir {
			continue // a Maildir may lack one of them
		}
		if err != nil {
			return err
		}
		var names []string
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
				continue
			}
			names = append(names, e.Name())
		}
		sort.Strings(names)
		for _, n := range names {
			paths = append(paths, filepath.Join(d, n))
		}
	}
	var kw []string // the Maildir's keywords (Dovecot's dovecot-keywords)
	if s.Kind == Maildir {
		kw = maildirKeywords(s.Path)
	}
	for _, p := range paths {
		raw, size, mtime, err := s.readFile(p)
		if err != nil {
			return err
		}
		m := Message{Where: p, Raw: raw, Size: size}
		if s.Kind == Maildir {
			m.Flags = MaildirFlags(filepath.Base(p), kw)
			m.Date = MaildirDate(filepath.Base(p), mtime)
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}

// readFile reads one message file (up to Max bytes), without a leading
// From_ line, and returns the size of the whole and its modification time.
func (s *Source) readFile(path string) ([]byte, int64, time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	// One read for a file of the size it had; ReadAll grows it if not.
	buf := bytes.NewBuffer(make([]byte, 0, min(fi.Size(), int64(s.max()))+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(f, int64(s.max()))); err != nil {
		return nil, 0, time.Time{}, fmt.Errorf("%s: %w", path, err)
	}
	raw := buf.Bytes()
	size := fi.Size()
	if bytes.HasPrefix(raw, []byte("From ")) {
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			raw = raw[i+1:]
			size -= int64(i + 1)
		} else {
			raw = nil
			size = 0
		}
	}
	return raw, size, fi.ModTime(), nil
}

// mbox reads an mbox file.
func (s *Source) mbox(fn func(Message) error) error {
	f, err := os.Open(s.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := &mboxReader{r: bufio.NewReaderSize(f, 64<<10), max: s.max(), begin: true}
	for {
		m, err := r.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", s.Path, err)
		}
		m.Where = fmt.Sprintf("%s:%d", s.Path, m.Line)
		m.Flags = MboxFlags(m.Raw)
		m.Date = FromLineDate(m.fromLine)
		if err := fn(m.Message); err != nil {
			return err
		}
	}
}

// mboxReader splits an mbox into messages. It reads the file in pieces
// of at most its buffer's size, so a line of any length costs no more.
type mboxReader struct {
	r     *bufio.Reader
	max   int
	line  int    // the number of the line being read
	begin bool   // the next piece begins a line
	from  int    // the line of the next message's From_ line; 0 before the first
	text  string // the text of that line (its first piece)
	skip  bool   // the pieces until the next line are the rest of a From_ line
	eof   bool
	size  int64 // of the message being read, beyond the limit too
}

// mboxMessage is a message with the line and text of its From_ line.
type mboxMessage struct {
	Message
	Line     int
	fromLine string
}

// piece returns the next piece of the file: a line with its line end, or
// part of a line longer than the buffer; begin says whether it begins a
// line. The piece is valid until the next call.
func (m *mboxReader) piece() (p []byte, begin bool, err error) {
	p, err = m.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		err = nil
	}
	begin = m.begin
	if len(p) > 0 {
		if begin {
			m.line++
		}
		m.begin = p[len(p)-1] == '\n'
	}
	return p, begin, err
}

var fromLine = []byte("From ")

// next returns the next message, io.EOF after the last.
func (m *mboxReader) next() (mboxMessage, error) {
	if m.from == 0 {
		p, _, err := m.piece()
		switch {
		case len(p) == 0 && (err == nil || err == io.EOF):
			return mboxMessage{}, errors.New("empty: no messages")
		case len(p) == 0:
			return mboxMessage{}, err
		case !bytes.HasPrefix(p, fromLine):
			return mboxMessage{}, fmt.Errorf("not an mbox file: it does not begin with a \"From \" line (%q)", clip(bytes.TrimRight(p, "\r\n"), 40))
		}
		m.from, m.skip, m.text = m.line, !m.begin, string(p)
	}
	if m.eof {
		return mboxMessage{}, io.EOF
	}
	msg := mboxMessage{Line: m.from, fromLine: m.text}
	var buf bytes.Buffer
	// An empty line is held back: before a From_ line (or the end of the
	// file) it is the separator, not part of the message.
	var blank []byte // nil: none held
	for {
		p, begin, err := m.piece()
		if len(p) == 0 {
			if err != nil && err != io.EOF {
				return msg, err
			}
			m.eof = true
			msg.Raw, msg.Size = buf.Bytes(), m.size
			m.size = 0
			return msg, nil
		}
		if m.skip {
			if !begin {
				continue
			}
			m.skip = false
		}
		if begin && bytes.HasPrefix(p, fromLine) {
			m.from, m.skip, m.text = m.line, !m.begin, string(p)
			msg.Raw, msg.Size = buf.Bytes(), m.size
			m.size = 0
			return msg, nil
		}
		if blank != nil {
			m.add(&buf, blank)
			blank = nil
		}
		if begin && m.begin && len(bytes.TrimRight(p, "\r\n")) == 0 {
			blank = []byte(string(p)) // a copy: p is the reader's buffer
			continue
		}
		if begin && isQuotedFrom(p) {
			p = p[1:]
		}
		m.add(&buf, p)
	}
}

// add appends b to buf within the message limit.
func (m *mboxReader) add(buf *bytes.Buffer, b []byte) {
	m.size += int64(len(b))
	if left := m.max - buf.Len(); left > 0 {
		buf.Write(b[:min(len(b), left)])
	}
}

// isQuotedFrom reports whether line is ">From ", ">>From ", ... (mboxrd).
func isQuotedFrom(line []byte) bool {
	i := 0
	for i < len(line) && line[i] == '>' {
		i++
	}
	return i > 0 && bytes.HasPrefix(line[i:], fromLine)
}
