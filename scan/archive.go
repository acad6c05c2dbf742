package scan

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/flate"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
)

type kind int

const (
	kindNone kind = iota
	kindZip
	kindGzip
	kindBzip2
	kindTar
)

func (k kind) String() string {
	return [...]string{"file", "zip", "gzip", "bzip2", "tar"}[k]
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, 4096) }

// sniff recognizes an archive by its first bytes, never by its name.
func sniff(h []byte) kind {
	switch {
	case len(h) >= 4 && h[0] == 'P' && h[1] == 'K' &&
		(h[2] == 3 && h[3] == 4 || h[2] == 5 && h[3] == 6 || h[2] == 7 && h[3] == 8):
		return kindZip
	case len(h) >= 3 && h[0] == 0x1f && h[1] == 0x8b && h[2] == 8:
		return kindGzip
	case len(h) >= 10 && bytes.HasPrefix(h, []byte("BZh")) && h[3] >= '1' && h[3] <= '9' &&
		(bytes.Equal(h[4:10], []byte("1AY&SY")) || bytes.Equal(h[4:10], []byte{0x17, 0x72, 0x45, 0x38, 0x50, 0x90})):
		return kindBzip2
	case isTar(h):
		return kindTar
	}
	return kindNone
}

func isTar(h []byte) bool {
	if len(h) < 512 {
		return false
	}
	if bytes.Equal(h[257:262], []byte("ustar")) {
		return true
	}
	// old (v7) tar: a name and a valid header checksum
	if h[0] == 0 {
		return false
	}
	sum := int64(0)
	for i, c := range h[:512] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += int64(c)
	}
	field := strings.TrimRight(strings.TrimSpace(string(h[148:156])), "\x00 ")
	want, err := strconv.ParseInt(field, 8, 64)
	return err == nil && want == sum
}

// limitReader counts decompressed bytes as they are read and stops the
// moment a limit is passed: per file always, per message (total) for the
// outputs of decompressors (not tar members, which are not decompressed).
type limitReader struct {
	r          io.Reader
	st         *state
	n          node
	read       int64
	countTotal bool
}

func (st *state) limited(r io.Reader, n node, countTotal bool) io.Reader {
	return &limitReader{r: r, st: st, n: n, countTotal: countTotal}
}

func (l *limitReader) Read(p []byte) (int, error) {
	st := l.st
	if err := st.ctx.Err(); err != nil {
		return 0, err
	}
	if max := st.lim.MaxFileSize - l.read + 1; int64(len(p)) > max {
		p = p[:max]
	}
	if l.countTotal {
		if max := st.lim.MaxTotalSize - st.total + 1; int64(len(p)) > max {
			p = p[:max]
		}
	}
	k, err := l.r.Read(p)
	l.read += int64(k)
	if l.countTotal {
		st.total += int64(k)
	}
	if l.read > st.lim.MaxFileSize {
		st.stopExpand = true
		st.v.add(l.n.finding(ExtractSize, fmt.Sprintf("extracted file larger than %d bytes", st.lim.MaxFileSize)))
		return k, errLimit
	}
	if l.countTotal && st.total > st.lim.MaxTotalSize {
		st.stopExpand = true
		st.v.add(l.n.finding(ExtractSize, fmt.Sprintf("total extracted size larger than %d bytes", st.lim.MaxTotalSize)))
		return k, errLimit
	}
	return k, err
}

// countEntry counts one archive member; false when the limit is passed.
func (st *state) countEntry(n node) bool {
	st.entries++
	if st.entries > st.lim.MaxEntries {
		st.stopExpand = true
		st.v.add(n.finding(ExtractSize, fmt.Sprintf("more than %d archive members", st.lim.MaxEntries)))
		return false
	}
	return true
}

// expand scans an archive: its own bytes go to w (the engines), its
// members are scanned with st.file.
func (st *state) expand(k kind, br *bufio.Reader, w io.Writer, n node) error {
	childLevel := n.level + 1
	if k == kindTar && n.fromCompressor {
		childLevel = n.level
	}
	if childLevel >= st.lim.MaxDepth {
		st.v.add(n.finding(Depth, fmt.Sprintf("%s not expanded: its members would be compressed %d times (limit %d)", k, childLevel, st.lim.MaxDepth)))
		return st.copyTo(w, br, n)
	}
	switch k {
	case kindZip:
		return st.zip(br, w, n, childLevel)
	case kindGzip, kindBzip2:
		return st.decompress(k, br, w, n, childLevel)
	case kindTar:
		return st.tar(br, w, n, childLevel)
	}
	return st.copyTo(w, br, n)
}

func trimExt(name string, exts ...string) string {
	lower := strings.ToLower(name)
	for _, e := range exts {
		if strings.HasSuffix(lower, e) && len(name) > len(e) {
			return name[:len(name)-len(e)]
		}
	}
	return ""
}

func (st *state) decompress(k kind, br *bufio.Reader, w io.Writer, n node, level int) error {
	tee := io.TeeReader(br, w)
	base := path.Base(n.path)
	if n.path == "" {
		base = ""
	}
	var dec io.Reader
	var name string
	switch k {
	case kindGzip:
		zr, err := gzip.NewReader(tee)
		if err != nil {
			st.v.add(n.finding(Malformed, "gzip: "+err.Error()))
			return st.copyTo(w, br, n)
		}
		dec = zr
		name = path.Base(zr.Name)
		if zr.Name == "" {
			if name = trimExt(base, ".gz", ".gzip", ".z"); name == "" {
				if t := trimExt(base, ".tgz"); t != "" {
					name = t + ".tar"
				} else {
					name = "gunzip"
				}
			}
		}
	case kindBzip2:
		dec = bzip2.NewReader(tee)
		if name = trimExt(base, ".bz2", ".bzip2"); name == "" {
			if t := trimExt(base, ".tbz2", ".tbz"); t != "" {
				name = t + ".tar"
			} else {
				name = "bunzip2"
			}
		}
	}
	child := node{base: n.base, path: joinPath(n.path, name), level: level, fromCompressor: true}
	if err := st.file(st.limited(dec, child, true), child); err != nil {
		return err
	}
	// the engines see the whole compressed file
	return st.copyTo(w, br, n)
}

func (st *state) tar(br *bufio.Reader, w io.Writer, n node, level int) error {
	tr := tar.NewReader(io.TeeReader(br, w))
	for !st.stopExpand {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, errLimit) || st.ctx.Err() != nil {
				return err
			}
			st.v.add(n.finding(Malformed, "tar: "+err.Error()))
			break
		}
		child := node{base: n.base, path: joinPath(n.path, h.Name), level: level}
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA && h.Typeflag != tar.TypeGNUSparse {
			continue
		}
		if !st.countEntry(child) {
			return errLimit
		}
		if h.Size > st.lim.MaxFileSize {
			st.stopExpand = true
			st.v.add(child.finding(ExtractSize, fmt.Sprintf("archive member of %d bytes (limit %d)", h.Size, st.lim.MaxFileSize)))
			return errLimit
		}
		if err := st.file(st.limited(tr, child, false), child); err != nil {
			return err
		}
	}
	if st.stopExpand {
		return errLimit
	}
	return st.copyTo(w, br, n)
}

func (st *state) zip(br *bufio.Reader, w io.Writer, n node, level int) error {
	var ra io.ReaderAt
	var size int64
	if n.mem != nil {
		if err := st.copyTo(w, br, n); err != nil {
			return err
		}
		ra, size = n.mem, n.mem.Size()
	} else {
		sp := &spool{mem: st.lim.SpoolMemory, dir: st.lim.TempDir}
		defer sp.Close()
		if err := st.copyTo(io.MultiWriter(w, sp), br, n); err != nil {
			return err
		}
		ra, size = sp.readerAt()
	}
	zr, err := zip.NewReader(ra, size)
	if err != nil {
		st.v.add(n.finding(Malformed, "zip: "+err.Error()))
		return nil
	}
	for _, f := range zr.File {
		if st.stopExpand {
			return errLimit
		}
		if strings.HasSuffix(f.Name, "/") || f.Mode().IsDir() {
			continue
		}
		child := node{base: n.base, path: joinPath(n.path, f.Name), level: level}
		if !st.countEntry(child) {
			return errLimit
		}
		if f.Flags&0x1 != 0 {
			st.v.add(child.finding(Encrypted, "password-protected zip member"))
			continue
		}
		if f.UncompressedSize64 > uint64(st.lim.MaxFileSize) {
			st.stopExpand = true
			st.v.add(child.finding(ExtractSize, fmt.Sprintf("archive member of %d bytes (limit %d)", f.UncompressedSize64, st.lim.MaxFileSize)))
			return errLimit
		}
		rc, err := openZipMember(f)
		if err != nil {
			st.v.add(child.finding(Malformed, "zip member not scanned: "+err.Error()))
			continue
		}
		err = st.file(st.limited(rc, child, true), child)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// spool keeps a file in memory up to mem bytes, then in a temp file.
type spool struct {
	mem  int64
	dir  string
	buf  []byte
	f    *os.File
	size int64
}

func (s *spool) Write(p []byte) (int, error) {
	if s.f == nil && int64(len(s.buf)+len(p)) <= s.mem {
		s.buf = append(s.buf, p...)
		s.size += int64(len(p))
		return len(p), nil
	}
	if s.f == nil {
		f, err := os.CreateTemp(s.dir, "yubin-scan-*")
		if err != nil {
			return 0, err
		}
		s.f = f
		if _, err := f.Write(s.buf); err != nil {
			return 0, err
		}
		s.buf = nil
	}
	k, err := s.f.Write(p)
	s.size += int64(k)
	return k, err
}

func (s *spool) readerAt() (io.ReaderAt, int64) {
	if s.f != nil {
		return s.f, s.size
	}
	return bytes.NewReader(s.buf), s.size
}

func (s *spool) Close() {
	if s.f != nil {
		name := s.f.Name()
		s.f.Close()
		os.Remove(name)
	}
}

// openZipMember decompresses a member from its raw data with our own
// decompressor for the usual methods, so that the header's uncompressed
// size is neither trusted nor enforced (archive/zip stops at the declared
// size, which would hide the rest of a member whose header lies); our
// limits count the real bytes. Other methods go through archive/zip.
func openZipMember(f *zip.File) (io.ReadCloser, error) {
	switch f.Method {
	case zip.Store, zip.Deflate, 12:
	default:
		return f.Open()
	}
	raw, err := f.OpenRaw()
	if err != nil {
		return nil, err
	}
	switch f.Method {
	case zip.Deflate:
		return flate.NewReader(raw), nil
	case 12:
		return io.NopCloser(bzip2.NewReader(raw)), nil
	}
	return io.NopCloser(raw), nil
}
