// Package backup is the file format of "yubin backup" and "yubin restore":
// a snapshot of the store (store.Backups.Backup) between a header that
// says what the file is and a trailer that lets a reader check it.
//
// A file is three parts, written and read front to back (so it can be
// streamed, through a pipe or ssh):
//
//	yubin-backup 1 {"yubin":"1.4.0","created":"2026-11-24T12:00:00Z","host":"mx.example.com","compression":"gzip"}\n
//	one gzip member: the store backend's snapshot, as Backup wrote it
//	{"backend":"bolt","size":N,"domains":2,"accounts":3,"messages":1234,"mail_bytes":5678,"sha256":"…","header_sha256":"…"}\n
//
// The first line is the magic word, the format version (1) and the header
// as JSON. The gzip member holds the snapshot (for the bolt backend, the
// store file itself: `tail -n +2 FILE | gunzip > yubin.db` gets it out,
// with a complaint about the trailer). The last line is the trailer: the
// snapshot's backend, size and SHA-256, and what it holds. Its size and
// checksum come last because they are known only once the snapshot is
// written. The header's checksum is there too. A Reader accepts a file only if every part is whole and the
// snapshot's size and checksum are the trailer's.
package backup

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
	"time"

	"yubin/store"
)

// Magic starts every backup file.
const Magic = "yubin-backup"

// Version is the format version this package writes and reads.
const Version = 1

// maxLine bounds the header and trailer lines.
const maxLine = 64 << 10

// Errors a Reader returns, tested with errors.Is; the error's text says
// more.
var (
	// ErrNotBackup: the file does not start as a backup does.
	ErrNotBackup = errors.New("not a yubin backup")
	// ErrTruncated: the file ends before its end.
	ErrTruncated = errors.New("the backup file is truncated")
	// ErrCorrupt: a part is damaged, or the snapshot is not what the
	// trailer says.
	ErrCorrupt = errors.New("the backup file is damaged")
	// ErrVersion: a format version this yubin does not read.
	ErrVersion = errors.New("unsupported backup format version")
)

// Header is the first line of a backup file.
type Header struct {
	// Version is the format version (not in the JSON: it precedes it).
	Version int `json:"-"`
	// Yubin is the version of the yubin that wrote the file.
	Yubin string `json:"yubin"`
	// Created is when the backup began.
	Created time.Time `json:"created"`
	// Host is the server's host name (its configured hostname).
	Host string `json:"host,omitempty"`
	// Compression of the snapshot: "gzip" (the only one).
	Compression string `json:"compression"`
}

// Trailer is the last line of a backup file.
type Trailer struct {
	store.BackupInfo
	// SHA256 is the snapshot's checksum, in hex.
	SHA256 string `json:"sha256"`
	// HeaderSHA256 is the header line's (without its newline).
	HeaderSHA256 string `json:"header_sha256"`
}

// Writer writes a backup file: the header when made, the snapshot through
// Write, the trailer at Close.
type Writer struct {
	out  *countWriter
	h    Header
	hsum string // of the header line
	gz   *gzip.Writer
	sum  hash.Hash
	n    int64 // snapshot bytes written
	done bool
}

// NewWriter writes h (Version and Compression are set by it) to w and
// returns the Writer the snapshot goes to.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	h.Version, h.Compression = Version, "gzip"
	js, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	out := &countWriter{w: w}
	line := fmt.Sprintf("%s %d %s", Magic, Version, js)
	if _, err := io.WriteString(out, line+"\n"); err != nil {
		return nil, err
	}
	// Mail compresses well at the fastest level; a backup must not be
	// held up by compression.
	gz, _ := gzip.NewWriterLevel(out, gzip.BestSpeed)
	return &Writer{out: out, h: h, hsum: sum(line), gz: gz, sum: sha256.New()}, nil
}

// Write writes snapshot bytes.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("backup: write after Close")
	}
	n, err := w.gz.Write(p)
	w.sum.Write(p[:n])
	w.n += int64(n)
	return n, err
}

// Close ends the snapshot and writes the trailer, with info (whose Size
// must be the number of bytes written) and the checksum. It does not
// close the underlying writer.
func (w *Writer) Close(info store.BackupInfo) (Trailer, error) {
	t := Trailer{BackupInfo: info, SHA256: hex.EncodeToString(w.sum.Sum(nil)), HeaderSHA256: w.hsum}
	if w.done {
		return t, errors.New("backup: Close twice")
	}
	w.done = true
	if info.Size != w.n {
		return t, fmt.Errorf("backup: the store says it wrote %d bytes, %d came", info.Size, w.n)
	}
	if err := w.gz.Close(); err != nil {
		return t, err
	}
	js, err := json.Marshal(t)
	if err != nil {
		return t, err
	}
	_, err = w.out.Write(append(js, '\n'))
	return t, err
}

// Header returns the header written.
func (w *Writer) Header() Header { return w.h }

// Written is the number of bytes of the file written so far.
func (w *Writer) Written() int64 { return w.out.n }

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Reader reads a backup file: the header when made, the snapshot through
// Read. Read returns io.EOF only once the trailer has been read and the
// snapshot checked against it; any other end is an error (ErrTruncated,
// ErrCorrupt), so a copy that succeeds copied a whole, checked snapshot.
type Reader struct {
	br   *bufio.Reader
	gz   *gzip.Reader
	h    Header
	hsum string // of the header line
	t    Trailer
	sum  hash.Hash
	n    int64
	err  error // sticky: io.EOF once checked
}

// NewReader reads and checks the header of the backup file r.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	line, err := readLine(br)
	magic := bytes.HasPrefix(line, []byte(Magic+" ")) || len(line) > 0 && strings.HasPrefix(Magic+" ", string(line))
	switch {
	case err == nil:
	case errors.Is(err, io.EOF) && len(line) == 0:
		return nil, fmt.Errorf("%w: the file is empty", ErrNotBackup)
	case !magic:
		return nil, fmt.Errorf("%w: it does not start with %q", ErrNotBackup, Magic)
	case errors.Is(err, io.EOF):
		return nil, fmt.Errorf("%w: the file ends in its header", ErrTruncated)
	case errors.Is(err, errLong):
		return nil, fmt.Errorf("%w: header: %v", ErrCorrupt, err)
	default:
		return nil, err
	}
	h, err := parseHeader(line)
	if err != nil {
		return nil, err
	}
	gz, err := gzip.NewReader(br)
	if err != nil {
		return nil, gzipErr(err, 0)
	}
	gz.Multistream(false)
	return &Reader{br: br, gz: gz, h: h, hsum: sum(string(line)), sum: sha256.New()}, nil
}

// parseHeader parses the first line of a file (without its newline).
func parseHeader(line []byte) (Header, error) {
	var h Header
	rest, ok := bytes.CutPrefix(line, []byte(Magic+" "))
	if !ok {
		return h, fmt.Errorf("%w: it does not start with %q", ErrNotBackup, Magic)
	}
	v, js, _ := bytes.Cut(rest, []byte(" "))
	n, err := strconv.Atoi(string(v))
	if err != nil || n < 1 || string(v) != strconv.Itoa(n) {
		return h, fmt.Errorf("%w: header: format version %q", ErrCorrupt, truncate(v))
	}
	if n != Version {
		return h, fmt.Errorf("%w %d: this yubin reads version %d (restore it with the yubin that made it, or a newer one)", ErrVersion, n, Version)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil || dec.More() {
		return h, fmt.Errorf("%w: header: %v", ErrCorrupt, errOr(err, "data after the header"))
	}
	h.Version = n
	if h.Compression != "gzip" {
		return h, fmt.Errorf("%w: header: compression %q (this yubin knows gzip)", ErrCorrupt, truncate([]byte(h.Compression)))
	}
	return h, nil
}

// Header returns the file's header.
func (r *Reader) Header() Header { return r.h }

// Trailer returns the file's trailer, once Read has returned io.EOF.
func (r *Reader) Trailer() Trailer { return r.t }

// Read reads snapshot bytes.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.gz.Read(p)
	r.sum.Write(p[:n])
	r.n += int64(n)
	switch {
	case err == io.EOF:
		r.err = r.finish()
		if r.err == nil {
			r.err = io.EOF
		}
		if n > 0 && r.err == io.EOF {
			return n, nil
		}
		return n, r.err
	case err != nil:
		r.err = gzipErr(err, r.n)
		return n, r.err
	}
	return n, nil
}

// finish reads the trailer after the gzip member and checks the snapshot
// against it.
func (r *Reader) finish() error {
	line, err := readLine(r.br)
	if errors.Is(err, io.EOF) {
		if len(line) == 0 {
			return fmt.Errorf("%w: the file ends before its trailer (after %d bytes of store)", ErrTruncated, r.n)
		}
		return fmt.Errorf("%w: the file ends in its trailer", ErrTruncated)
	}
	if errors.Is(err, errLong) {
		return fmt.Errorf("%w: trailer: %v", ErrCorrupt, err)
	}
	if err != nil {
		return err
	}
	t, err := parseTrailer(line)
	if err != nil {
		return err
	}
	if _, err := r.br.ReadByte(); err == nil {
		return fmt.Errorf("%w: data after the trailer", ErrCorrupt)
	} else if err != io.EOF {
		return err
	}
	if t.Size != r.n {
		return fmt.Errorf("%w: the trailer says %d bytes of store, the file holds %d", ErrCorrupt, t.Size, r.n)
	}
	if got := hex.EncodeToString(r.sum.Sum(nil)); got != t.SHA256 {
		return fmt.Errorf("%w: the store's SHA-256 is %s, the trailer says %s", ErrCorrupt, got, t.SHA256)
	}
	if t.HeaderSHA256 != r.hsum {
		return fmt.Errorf("%w: the header's SHA-256 is %s, the trailer says %s", ErrCorrupt, r.hsum, t.HeaderSHA256)
	}
	r.t = t
	return nil
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// parseTrailer parses the last line of a file (without its newline).
func parseTrailer(line []byte) (Trailer, error) {
	var t Trailer
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil || dec.More() {
		return t, fmt.Errorf("%w: trailer: %v", ErrCorrupt, errOr(err, "data after the trailer"))
	}
	for _, x := range []string{t.SHA256, t.HeaderSHA256} {
		if b, err := hex.DecodeString(x); err != nil || len(b) != sha256.Size {
			return t, fmt.Errorf("%w: trailer: checksum %q", ErrCorrupt, truncate([]byte(x)))
		}
	}
	if t.Backend == "" || t.Size < 0 || t.Domains < 0 || t.Accounts < 0 || t.Messages < 0 || t.MailBytes < 0 {
		return t, fmt.Errorf("%w: trailer: %s", ErrCorrupt, truncate(line))
	}
	return t, nil
}

var errLong = fmt.Errorf("a line longer than %d bytes", maxLine)

// readLine reads one line of at most maxLine bytes and returns it without
// its newline; a file that ends first gives io.EOF with what there was.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > maxLine {
			return line, errLong
		}
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return line, err
		}
	}
}

// gzipErr says what a gzip error means for the file, after n bytes of
// snapshot.
func gzipErr(err error, n int64) error {
	var ce flate.CorruptInputError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%w: the file ends inside the compressed store (after %d bytes of it)", ErrTruncated, n)
	case errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader), errors.As(err, &ce):
		return fmt.Errorf("%w: the compressed store is damaged (found after %d bytes of it: %v)", ErrCorrupt, n, err)
	}
	return err
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

// truncate shortens b for an error message.
func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}
