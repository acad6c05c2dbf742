package scan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Default limits (SPEC section 4).
const (
	DefaultMaxMessageSize = 5 << 20   // 552 5.2.3 above this
	DefaultMaxDepth       = 10        // a file compressed 10 or more times: VC03
	DefaultMaxFileSize    = 100 << 20 // one extracted file: VC04 above this
	DefaultMaxTotalSize   = 200 << 20 // all extracted bytes of a message: VC04 above this
	DefaultMaxEntries     = 10000     // archive members per message: VC04 above this
	DefaultMaxMIMEDepth   = 32        // multipart/message nesting: VC03 above this
	DefaultMaxParts       = 1000      // MIME parts per message: VC04 above this
	DefaultSpoolMemory    = 4 << 20   // zip spooled in memory up to this, then to a temp file
)

// Limits bound the work done for one message. Zero fields take the
// defaults above.
type Limits struct {
	// MaxMessageSize: a bigger message is not scanned; its verdict has the
	// single finding Oversize (552 5.2.3 on submission, policy on inbound).
	// Negative: no limit.
	MaxMessageSize int64
	// MaxDepth: archive layers. A file inside MaxDepth or more nested
	// archives (compressed MaxDepth or more times) is Depth (VC03): with
	// the default 10, 9 nested zips pass and 10 do not. A compressed tar
	// (tar.gz, tar.bz2) counts as one layer.
	MaxDepth int
	// MaxFileSize: bytes of one extracted file, counted as they are
	// decompressed (header sizes are not trusted, but a header that
	// announces more is rejected at once). Above: ExtractSize (VC04).
	MaxFileSize int64
	// MaxTotalSize: decompressed bytes of the whole message. Above:
	// ExtractSize (VC04).
	MaxTotalSize int64
	// MaxEntries: archive members in the whole message. Above: ExtractSize.
	MaxEntries int
	// MaxMIMEDepth: nesting of multipart and message/rfc822. Above: Depth.
	MaxMIMEDepth int
	// MaxParts: MIME parts in the message. Above: ExtractSize.
	MaxParts int
	// SpoolMemory: a zip (which needs random access) is kept in memory up
	// to this size, in a temp file in TempDir ("" = os.TempDir) beyond.
	SpoolMemory int64
	TempDir     string
}

// DefaultLimits returns the defaults of SPEC section 4.
func DefaultLimits() Limits { return Limits{}.withDefaults() }

func (l Limits) withDefaults() Limits {
	if l.MaxMessageSize == 0 {
		l.MaxMessageSize = DefaultMaxMessageSize
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = DefaultMaxFileSize
	}
	if l.MaxTotalSize <= 0 {
		l.MaxTotalSize = DefaultMaxTotalSize
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	if l.MaxMIMEDepth <= 0 {
		l.MaxMIMEDepth = DefaultMaxMIMEDepth
	}
	if l.MaxParts <= 0 {
		l.MaxParts = DefaultMaxParts
	}
	if l.SpoolMemory <= 0 {
		l.SpoolMemory = DefaultSpoolMemory
	}
	return l
}

// TooLarge reports whether a message of size bytes is over the scan limit
// (to check the SMTP SIZE parameter, or while reading DATA).
func (l Limits) TooLarge(size int64) bool {
	l = l.withDefaults()
	return l.MaxMessageSize >= 0 && size > l.MaxMessageSize
}

// Config configures a Scanner.
type Config struct {
	Engines []Engine // at least one; each engine's hit is a hit
	Limits  Limits
	Logger  *slog.Logger // nil: discard
}

// Scanner scans messages. It is safe for concurrent use.
type Scanner struct {
	engines []Engine
	names   []string
	limits  Limits
	log     *slog.Logger
}

// New returns a Scanner.
func New(cfg Config) (*Scanner, error) {
	if len(cfg.Engines) == 0 {
		return nil, errors.New("scan: no engine configured")
	}
	s := &Scanner{engines: cfg.Engines, limits: cfg.Limits.withDefaults(), log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, e := range cfg.Engines {
		s.names = append(s.names, e.Name())
	}
	return s, nil
}

// Limits returns the limits in force (defaults filled in).
func (s *Scanner) Limits() Limits { return s.limits }

// EngineNames returns the names of the configured engines.
func (s *Scanner) EngineNames() []string { return append([]string(nil), s.names...) }

// ScanReader reads a message (at most MaxMessageSize+1 bytes: a bigger
// message gets the Oversize verdict without being read further) and
// scans it. A reader that knows its size (a Size() int64 method, as
// *io.SectionReader and *bytes.Reader have) is not read at all when that
// size is over the limit.
func (s *Scanner) ScanReader(ctx context.Context, r io.Reader) (*Verdict, error) {
	if sr, ok := r.(interface{ Size() int64 }); ok && s.limits.TooLarge(sr.Size()) {
		return s.oversize(sr.Size()), nil
	}
	var buf bytes.Buffer
	lim := s.limits.MaxMessageSize
	if lim < 0 {
		if _, err := buf.ReadFrom(r); err != nil {
			return nil, err
		}
		return s.Scan(ctx, buf.Bytes())
	}
	n, err := buf.ReadFrom(io.LimitReader(r, lim+1))
	if err != nil {
		return nil, err
	}
	if n > lim {
		return s.oversize(n), nil
	}
	return s.Scan(ctx, buf.Bytes())
}

func (s *Scanner) oversize(n int64) *Verdict {
	v := &Verdict{Size: n, Engines: s.EngineNames()}
	v.add(Finding{Condition: Oversize, Index: -1, Detail: fmt.Sprintf("message larger than %d bytes", s.limits.MaxMessageSize)})
	return v
}

// Scan scans a raw message (RFC 5322, CRLF or LF line ends).
//
// The error is non-nil only when the scan could not be completed: an
// engine failed (errors.Is(err, ErrUnavailable): answer ReplyTempFail,
// 451 4.7.1), ctx ended, or a temp file could not be written. The
// returned Verdict is then what was found so far (a virus found before
// the failure is still a virus); it is never nil.
func (s *Scanner) Scan(ctx context.Context, raw []byte) (*Verdict, error) {
	start := time.Now()
	if s.limits.TooLarge(int64(len(raw))) {
		return s.oversize(int64(len(raw))), nil
	}
	st := &state{s: s, ctx: ctx, lim: s.limits, v: &Verdict{Size: int64(len(raw)), Engines: s.EngineNames(), Scanned: true}}
	root, p := parseMIME(raw, s.limits.MaxMIMEDepth, s.limits.MaxParts)
	for _, n := range p.notes {
		st.v.add(Finding{Condition: n.cond, Part: n.path, Index: -1, Detail: n.detail})
	}
	err := st.walk(root)
	st.v.Duration = time.Since(start)
	if err != nil {
		s.log.Warn("scan incomplete", "err", err)
	}
	return st.v, err
}

type state struct {
	s          *Scanner
	ctx        context.Context
	lim        Limits
	v          *Verdict
	total      int64
	entries    int
	stopExpand bool // an extract-size limit was hit: expand nothing more
}

func (st *state) walk(p *mimePart) error {
	if p.leaf {
		return st.leaf(p)
	}
	for _, c := range p.children {
		if err := st.walk(c); err != nil {
			return err
		}
	}
	return nil
}

func isAttachment(p *mimePart) bool {
	switch {
	case p.preamble, strings.HasPrefix(p.ctype, "multipart/"):
		return false // unsplittable multipart: treat as body
	case p.inMessage, p.disp == "attachment", p.filename != "":
		return true
	case strings.HasPrefix(p.ctype, "text/"), p.ctype == "message/partial":
		return false
	}
	return true
}

func (st *state) leaf(p *mimePart) error {
	idx := len(st.v.Parts)
	data, bad := p.body, false
	if !p.preamble {
		data, bad = decodeCTE(p.cte, p.body)
	}
	info := PartInfo{Index: idx, Part: p.path, ContentType: p.ctype, FileName: p.filename, Attachment: isAttachment(p), Size: int64(len(data)), Blank: len(bytes.TrimSpace(data)) == 0, Preamble: p.preamble}
	st.v.Parts = append(st.v.Parts, info)
	base := Finding{Part: p.path, Index: idx, Attachment: info.Attachment, FileName: p.filename}
	if bad {
		f := base
		f.Condition, f.Detail, f.Path = Malformed, "bad "+p.cte+" encoding; raw bytes scanned too", p.filename
		st.v.add(f)
	}
	if err := st.top(bytes.NewReader(data), node{base: base, path: p.filename}); err != nil {
		return err
	}
	if bad {
		return st.top(bytes.NewReader(p.body), node{base: base, path: p.filename})
	}
	return nil
}

// top scans one MIME leaf; limit stops end here.
func (st *state) top(r io.Reader, n node) error {
	err := st.file(r, n)
	if errors.Is(err, errLimit) {
		return nil
	}
	return err
}

// node is one file being scanned: a MIME leaf or an archive member.
type node struct {
	base  Finding // location of the MIME leaf
	path  string  // archive path ("a.zip/b.tgz/c.exe")
	level int     // archive layers above this file
	// fromCompressor: this file is the output of gzip/bzip2, so a tar
	// here is the same layer (tar.gz counts once).
	fromCompressor bool
	mem            *bytes.Reader // the file itself, when it is in memory
}

func (n node) finding(c Condition, detail string) Finding {
	f := n.base
	f.Condition, f.Detail, f.Path = c, detail, n.path
	return f
}

func joinPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "/" + name
}

var errLimit = errors.New("scan: extraction limit reached")

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyTo copies r to w. A read error other than a limit or ctx is
// malformed content: it is recorded on n and copying stops (nil error).
func (st *state) copyTo(w io.Writer, r io.Reader, n node) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		if err := st.ctx.Err(); err != nil {
			return err
		}
		k, err := r.Read(buf)
		if k > 0 {
			if _, werr := w.Write(buf[:k]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if errors.Is(err, errLimit) || st.ctx.Err() != nil {
				return err
			}
			st.v.add(n.finding(Malformed, err.Error()))
			return nil
		}
	}
}

// file scans one file: all engines see its bytes once; archives are then
// (or meanwhile) expanded and their members scanned recursively.
func (st *state) file(r io.Reader, n node) error {
	fan, err := openAll(st.ctx, st.s.engines, n.path)
	if err != nil {
		return err
	}
	// an in-memory file (a MIME leaf) needs no spooling for random access
	if mr, ok := r.(*bytes.Reader); ok {
		n.mem = mr
	}
	br := bufioReader(r)
	head, _ := br.Peek(512)
	kind := sniff(head)
	var ferr error
	if kind != kindNone && !st.stopExpand {
		ferr = st.expand(kind, br, fan, n)
	} else {
		ferr = st.copyTo(fan, br, n)
	}
	hits, cerr := fan.close()
	for _, h := range hits {
		f := n.finding(Virus, "")
		f.Virus, f.Engine = h.virus, h.engine
		st.v.add(f)
	}
	if ferr != nil {
		return ferr
	}
	return cerr
}
