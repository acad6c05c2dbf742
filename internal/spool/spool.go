// Package spool holds the message data of SMTP transactions while it is
// received: in memory up to a small buffer, beyond it in a file of the
// spool directory (data_dir/spool), and always within one budget of
// in-flight bytes shared by every session. A session that stalls in the
// middle of a big DATA therefore costs one buffer of memory, whatever the
// message's size, and the sum of what all sessions hold is bounded.
//
// A message that went to a file is handed on as its header section, in
// memory, and the rest as an io.SectionReader over the file, which the
// delivery path and the store read as they need it. Files are removed when
// their transaction ends (Message.Close) and any left over by a crash are
// removed when the spool is opened.
package spool

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// Defaults for zero Open arguments.
const (
	// DefaultMemory is how much of a message stays in memory: a message
	// up to this size is never written to a file, and a bigger one is
	// written through a buffer of this size.
	DefaultMemory = 128 << 10
	// DefaultBudget is the default limit on the bytes of all messages
	// being received or delivered at once.
	DefaultBudget = 256 << 20
)

// MaxHeader is how much of a spooled message is searched for the end of
// its header section. A message whose header section is longer (no empty
// line in its first MaxHeader bytes) is handed on whole, in memory.
const MaxHeader = 1 << 20

// filePrefix starts the name of every spool file; Open removes such files.
const filePrefix = "data-"

// ErrBudget is returned by Message.Write when the message would take the
// bytes in flight over the budget.
var ErrBudget = errors.New("spool: in-flight data budget exhausted")

// Spool is a spool directory with its budget. It is safe for concurrent use.
type Spool struct {
	dir    string
	budget int64
	memory int
	used   atomic.Int64 // bytes reserved by open messages
	files  atomic.Int64 // spool files open
}

// Open makes dir (mode 0700) if needed, removes the files a previous run
// left in it, and returns the spool. budget bounds the bytes held by all
// open messages together and memory is the in-memory buffer of each;
// zero or negative take the defaults.
func Open(dir string, budget int64, memory int) (*Spool, error) {
	if budget <= 0 {
		budget = DefaultBudget
	}
	if memory <= 0 {
		memory = DefaultMemory
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasPrefix(e.Name(), filePrefix) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return nil, fmt.Errorf("spool: removing a leftover file: %w", err)
			}
		}
	}
	return &Spool{dir: dir, budget: budget, memory: memory}, nil
}

// Dir is the spool directory.
func (s *Spool) Dir() string { return s.dir }

// Budget is the limit on the bytes held by all open messages.
func (s *Spool) Budget() int64 { return s.budget }

// InFlight is the number of bytes open messages hold now.
func (s *Spool) InFlight() int64 { return s.used.Load() }

// Files is the number of spool files open now.
func (s *Spool) Files() int64 { return s.files.Load() }

// Fits reports whether n more bytes fit into the budget at the moment
// (for the SIZE a client declares).
func (s *Spool) Fits(n int64) bool { return s.used.Load()+n <= s.budget }

func (s *Spool) reserve(n int64) bool {
	if s.used.Add(n) > s.budget {
		s.used.Add(-n)
		return false
	}
	return true
}

// New starts a message. Close it when its transaction ends.
func (s *Spool) New() *Message { return &Message{sp: s} }

// Message is one message being received: Write it, Finish it, hand on
// what Finish returns, and Close it once that is no longer read. A
// Message is used by one goroutine at a time.
type Message struct {
	sp   *Spool
	buf  []byte   // the whole message, or the file's write buffer
	f    *os.File // nil while the message fits in buf
	size int64    // bytes written
	held int64    // bytes reserved from the budget
	err  error    // sticky write error
}

// Write appends p. It fails with ErrBudget when p would take the spool
// over its budget, and then keeps failing: the message is lost and only
// Close remains to be called.
func (m *Message) Write(p []byte) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	if !m.sp.reserve(int64(len(p))) {
		m.err = ErrBudget
		return 0, m.err
	}
	m.held += int64(len(p))
	m.size += int64(len(p))
	if m.f == nil && len(m.buf)+len(p) <= m.sp.memory {
		if len(m.buf)+len(p) > cap(m.buf) {
			nb := make([]byte, len(m.buf), min(max(2*cap(m.buf), len(m.buf)+len(p), 16<<10), m.sp.memory))
			copy(nb, m.buf)
			m.buf = nb
		}
		m.buf = append(m.buf, p...)
		return len(p), nil
	}
	if m.f == nil {
		if m.err = m.spill(); m.err != nil {
			return 0, m.err
		}
	}
	n := len(p)
	for len(p) > 0 {
		if len(m.buf) == cap(m.buf) {
			if m.err = m.flush(); m.err != nil {
				return 0, m.err
			}
		}
		k := min(len(p), cap(m.buf)-len(m.buf))
		m.buf = append(m.buf, p[:k]...)
		p = p[k:]
	}
	return n, nil
}

// spill moves the message to a new spool file; buf becomes the file's
// write buffer.
func (m *Message) spill() error {
	f, err := os.CreateTemp(m.sp.dir, filePrefix)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	m.f = f
	m.sp.files.Add(1)
	if err := m.flush(); err != nil {
		return err
	}
	if cap(m.buf) < m.sp.memory {
		m.buf = make([]byte, 0, m.sp.memory)
	}
	return nil
}

func (m *Message) flush() error {
	if _, err := m.f.Write(m.buf); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	m.buf = m.buf[:0]
	return nil
}

// Size is the number of bytes written.
func (m *Message) Size() int64 { return m.size }

// Spooled reports whether the message went to a file.
func (m *Message) Spooled() bool { return m.f != nil }

// Finish ends writing and returns the message. A message that stayed in
// memory is head, whole, and tail is nil. A spooled one is its header
// section through the empty line (CRLF CRLF) in head and the rest in tail,
// a reader over the spool file that stays valid until Close; when no
// empty line is found within MaxHeader bytes, head is the whole message
// (read into memory) and tail is nil.
func (m *Message) Finish() (head []byte, tail *io.SectionReader, err error) {
	if m.err != nil {
		return nil, nil, m.err
	}
	if m.f == nil {
		return m.buf, nil, nil
	}
	if err := m.flush(); err != nil {
		return nil, nil, err
	}
	m.buf = nil
	for n := int64(16 << 10); ; n *= 4 {
		n = min(n, m.size, MaxHeader)
		b := make([]byte, n)
		if _, err := m.f.ReadAt(b, 0); err != nil {
			return nil, nil, fmt.Errorf("spool: %w", err)
		}
		if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
			end := int64(i + 4)
			return b[:end:end], io.NewSectionReader(m.f, end, m.size-end), nil
		}
		if n == m.size || n == MaxHeader {
			break
		}
	}
	b := make([]byte, m.size)
	if _, err := m.f.ReadAt(b, 0); err != nil {
		return nil, nil, fmt.Errorf("spool: %w", err)
	}
	return b, nil, nil
}

// Close removes the message's file, if any, and gives its bytes back to
// the budget. It may be called more than once.
func (m *Message) Close() error {
	var err error
	if m.f != nil {
		err = m.f.Close()
		if rerr := os.Remove(m.f.Name()); err == nil {
			err = rerr
		}
		m.f = nil
		m.sp.files.Add(-1)
	}
	m.sp.used.Add(-m.held)
	m.held = 0
	m.buf = nil
	if m.err == nil {
		m.err = errors.New("spool: message closed")
	}
	return err
}
