package imapd

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// An APPEND's literal comes in at the client's pace: a client that
// announces 50 MiB and stalls must not hold 50 MiB of memory. The literal
// is spooled instead — in memory up to spoolMem bytes, beyond that to a
// file in Config.SpoolDir, unlinked as soon as it is created (nothing is
// left behind, even by a crash) — through one fixed copy buffer; only the
// complete message is read back, for the store. The bytes of all APPENDs
// in flight are bounded by Config.AppendBudget (libConn reserves them when
// the APPEND line comes, before the library asks for the literal).

// spoolMem is the largest literal kept in memory while it comes in.
const spoolMem = 64 << 10

// copyBufs are the buffers literals are copied through.
var copyBufs = sync.Pool{New: func() any { return new([32 << 10]byte) }}

// spool holds a literal while it comes in.
type spool struct {
	srv *Server
	mem []byte
	f   *os.File
	n   int64
}

// newSpool makes a spool for a literal of size bytes.
func (s *Server) newSpool(size int64) (*spool, error) {
	sp := &spool{srv: s}
	if size <= spoolMem {
		sp.mem = make([]byte, 0, size)
		return sp, nil
	}
	s.spoolOnce.Do(func() { s.spoolErr = prepareSpoolDir(s.cfg.SpoolDir) })
	if s.spoolErr != nil {
		return nil, s.spoolErr
	}
	f, err := os.CreateTemp(s.cfg.SpoolDir, spoolPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool: %w", err)
	}
	sp.f = f
	return sp, nil
}

const spoolPrefix = "imap-append-"

// prepareSpoolDir makes the spool directory (0700) and removes what a
// crash may have left in it between creating and unlinking a file.
func prepareSpoolDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	old, _ := filepath.Glob(filepath.Join(dir, spoolPrefix+"*"))
	for _, f := range old {
		os.Remove(f)
	}
	return nil
}

// fill copies the literal, of size bytes, from r into the spool.
func (sp *spool) fill(r io.Reader, size int64) error {
	buf := copyBufs.Get().(*[32 << 10]byte)
	defer copyBufs.Put(buf)
	if _, err := io.CopyBuffer(sp, r, buf[:]); err != nil {
		return err
	}
	if sp.n != size {
		return io.ErrUnexpectedEOF // the connection ended
	}
	return nil
}

func (sp *spool) Write(p []byte) (int, error) {
	if sp.f == nil {
		sp.mem = append(sp.mem, p...)
	} else if _, err := sp.f.Write(p); err != nil {
		return 0, fmt.Errorf("spool: %w", err)
	}
	sp.n += int64(len(p))
	sp.srv.spooled.Add(int64(len(p)))
	return len(p), nil
}

// bytes returns the literal; from a file, it is read back into memory.
func (sp *spool) bytes() ([]byte, error) {
	if sp.f == nil {
		return sp.mem, nil
	}
	b := make([]byte, sp.n)
	if _, err := sp.f.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return b, nil
}

// close frees the spool (and its file's space).
func (sp *spool) close() {
	sp.srv.spooled.Add(-sp.n)
	sp.n = 0
	if sp.f != nil {
		sp.f.Close()
	}
}
