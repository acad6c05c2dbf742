package scan

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// EICAR is the EICAR anti-virus test file. The built-in engine always
// knows it and finds it anywhere in a file (also inside an HTML body).
const EICAR = `X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`

// EICARName is the name the built-in engine reports for EICAR.
const EICARName = "Eicar-Test-Signature"

// BuiltinName is the built-in engine's name.
const BuiltinName = "builtin"

// Builtin is the built-in engine: EICAR plus the signatures of a
// directory, in these line formats (one signature a line; blank lines and
// lines starting with '#' are ignored; a bad line is skipped and logged):
//
//	*.hdb  ClamAV MD5 hash:     MD5HEX:SIZE:Name
//	*.hsb  ClamAV SHA hash:     SHA256HEX:SIZE:Name  (or SHA1HEX; SIZE may be *)
//	*.pat  our body patterns:   Name:HEXBYTES        (at least 4 bytes, anywhere in a file)
//	*.ndb  ClamAV body patterns, the subset Name:TargetType:*:HEXBYTES
//	       (any target type; offset must be *; no wildcards)
//
// Hash signatures match a whole file (a MIME part after transfer decoding,
// or an archive member); body patterns match anywhere in one.
// Other files in the directory (e.g. ClamAV .cvd) are ignored.
//
// Reload re-reads the directory (the server calls it on SIGHUP); Watch
// polls it and reloads when a signature file changes. A reload that fails
// keeps the previous signatures.
type Builtin struct {
	dir string
	log *slog.Logger
	db  atomic.Pointer[sigDB]
	mu  sync.Mutex // serializes reloads
}

// SigStats describes the loaded signatures.
type SigStats struct {
	Dir      string
	Hashes   int // MD5/SHA1/SHA256 signatures
	Patterns int // body patterns, EICAR included
	Skipped  int // bad lines skipped
	Loaded   time.Time
}

type hashSig struct {
	size int64 // -1: any size
	name string
}

type sigDB struct {
	md5      map[[md5.Size]byte][]hashSig
	sha1     map[[sha1.Size]byte][]hashSig
	sha256   map[[sha256.Size]byte][]hashSig
	ac       *acMatcher
	patNames []string
	stats    SigStats
	stamp    string
}

// NewBuiltin loads the built-in engine from dir ("" = EICAR only). A
// missing or unreadable dir is an error.
func NewBuiltin(dir string, log *slog.Logger) (*Builtin, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Builtin{dir: dir, log: log}
	if err := b.Reload(); err != nil {
		return nil, err
	}
	return b, nil
}

// Name returns "builtin".
func (b *Builtin) Name() string { return BuiltinName }

// Stats describes the signatures in use.
func (b *Builtin) Stats() SigStats { return b.db.Load().stats }

// Reload re-reads the signature directory now.
func (b *Builtin) Reload() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	stamp, err := dirStamp(b.dir)
	if err != nil {
		return fmt.Errorf("scan: signatures: %w", err)
	}
	db, err := loadSigDB(b.dir, b.log)
	if err != nil {
		return fmt.Errorf("scan: signatures: %w", err)
	}
	db.stamp = stamp
	b.db.Store(db)
	b.log.Info("scan signatures loaded", "dir", b.dir, "hashes", db.stats.Hashes, "patterns", db.stats.Patterns, "skipped", db.stats.Skipped)
	return nil
}

// Watch polls the directory every interval (default 5s) and reloads when
// a signature file was added, removed or changed. stop ends the watcher
// and waits for it.
func (b *Builtin) Watch(interval time.Duration) (stop func()) {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				stamp, err := dirStamp(b.dir)
				if err != nil || stamp == b.db.Load().stamp {
					continue
				}
				if err := b.Reload(); err != nil {
					b.log.Warn("scan signatures reload failed", "err", err)
				}
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

func isSigFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".hdb", ".hsb", ".pat", ".ndb":
		return true
	}
	return false
}

func dirStamp(dir string) (string, error) {
	if dir == "" {
		return "", nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, e := range ents {
		if !isSigFile(e.Name()) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "%s|%d|%d\n", e.Name(), fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String(), nil
}

func loadSigDB(dir string, log *slog.Logger) (*sigDB, error) {
	db := &sigDB{
		md5:    map[[md5.Size]byte][]hashSig{},
		sha1:   map[[sha1.Size]byte][]hashSig{},
		sha256: map[[sha256.Size]byte][]hashSig{},
	}
	db.stats.Dir = dir
	db.stats.Loaded = time.Now()
	patterns := [][]byte{[]byte(EICAR)}
	db.patNames = []string{EICARName}
	if dir != "" {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		names := make([]string, 0, len(ents))
		for _, e := range ents {
			if e.Type().IsRegular() && isSigFile(e.Name()) {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		for _, name := range names {
			path := filepath.Join(dir, name)
			f, err := os.Open(path)
			if err != nil {
				log.Warn("scan signatures: cannot read file", "file", path, "err", err)
				continue
			}
			ext := strings.ToLower(filepath.Ext(name))
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 64*1024), 1<<20)
			lineNo := 0
			for sc.Scan() {
				lineNo++
				line := strings.TrimSpace(sc.Text())
				if line == "" || line[0] == '#' {
					continue
				}
				var err error
				switch ext {
				case ".hdb", ".hsb":
					err = db.addHash(line)
				case ".pat":
					var name string
					var pat []byte
					if name, pat, err = parsePat(line); err == nil {
						patterns = append(patterns, pat)
						db.patNames = append(db.patNames, name)
					}
				case ".ndb":
					var name string
					var pat []byte
					if name, pat, err = parseNDB(line); err == nil {
						patterns = append(patterns, pat)
						db.patNames = append(db.patNames, name)
					}
				}
				if err != nil {
					db.stats.Skipped++
					log.Warn("scan signatures: line skipped", "file", path, "line", lineNo, "reason", err.Error())
				}
			}
			if err := sc.Err(); err != nil {
				db.stats.Skipped++
				log.Warn("scan signatures: file read error", "file", path, "err", err)
			}
			f.Close()
		}
	}
	db.ac = buildAC(patterns)
	db.stats.Patterns = len(patterns)
	return db, nil
}

func (db *sigDB) addHash(line string) error {
	f := strings.Split(line, ":")
	if len(f) < 3 {
		return fmt.Errorf("want HASH:SIZE:Name")
	}
	h, err := hex.DecodeString(strings.ToLower(f[0]))
	if err != nil {
		return fmt.Errorf("bad hex hash")
	}
	size := int64(-1)
	if f[1] != "*" {
		size, err = strconv.ParseInt(f[1], 10, 64)
		if err != nil || size < 0 {
			return fmt.Errorf("bad size %q", f[1])
		}
	}
	name := f[2]
	if name == "" {
		return fmt.Errorf("empty name")
	}
	sig := hashSig{size, name}
	switch len(h) {
	case md5.Size:
		db.md5[[md5.Size]byte(h)] = append(db.md5[[md5.Size]byte(h)], sig)
	case sha1.Size:
		db.sha1[[sha1.Size]byte(h)] = append(db.sha1[[sha1.Size]byte(h)], sig)
	case sha256.Size:
		db.sha256[[sha256.Size]byte(h)] = append(db.sha256[[sha256.Size]byte(h)], sig)
	default:
		return fmt.Errorf("hash of %d bytes is not MD5, SHA1 or SHA256", len(h))
	}
	db.stats.Hashes++
	return nil
}

const minPattern = 4

func parsePat(line string) (string, []byte, error) {
	i := strings.LastIndexByte(line, ':')
	if i <= 0 {
		return "", nil, fmt.Errorf("want Name:HEX")
	}
	return checkPattern(line[:i], line[i+1:])
}

func parseNDB(line string) (string, []byte, error) {
	f := strings.Split(line, ":")
	if len(f) < 4 {
		return "", nil, fmt.Errorf("want Name:TargetType:Offset:HexSignature")
	}
	if f[2] != "*" {
		return "", nil, fmt.Errorf("offset %q not supported (only *)", f[2])
	}
	return checkPattern(f[0], f[3])
}

func checkPattern(name, hx string) (string, []byte, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", nil, fmt.Errorf("empty name")
	}
	p, err := hex.DecodeString(strings.TrimSpace(hx))
	if err != nil {
		return "", nil, fmt.Errorf("pattern is not plain hex (wildcards are not supported)")
	}
	if len(p) < minPattern {
		return "", nil, fmt.Errorf("pattern shorter than %d bytes", minPattern)
	}
	return name, p, nil
}

// Open starts scanning one file.
func (b *Builtin) Open(ctx context.Context, name string) (Stream, error) {
	db := b.db.Load()
	s := &builtinStream{db: db, state: 0}
	if len(db.md5) > 0 {
		s.md5 = md5.New()
	}
	if len(db.sha1) > 0 {
		s.sha1 = sha1.New()
	}
	if len(db.sha256) > 0 {
		s.sha256 = sha256.New()
	}
	return s, nil
}

type builtinStream struct {
	db                *sigDB
	md5, sha1, sha256 hash.Hash
	size              int64
	state             int32
	found             string
}

func (s *builtinStream) Write(p []byte) (int, error) {
	s.size += int64(len(p))
	if s.found != "" {
		return len(p), nil
	}
	for _, h := range []hash.Hash{s.md5, s.sha1, s.sha256} {
		if h != nil {
			h.Write(p)
		}
	}
	var id int32
	s.state, id = s.db.ac.scan(s.state, p)
	if id >= 0 {
		s.found = s.db.patNames[id]
	}
	return len(p), nil
}

func lookup[K comparable](m map[K][]hashSig, k K, size int64) string {
	for _, sig := range m[k] {
		if sig.size < 0 || sig.size == size {
			return sig.name
		}
	}
	return ""
}

func (s *builtinStream) Close() (Result, error) {
	if s.found != "" {
		return Result{Virus: s.found}, nil
	}
	if s.md5 != nil {
		if v := lookup(s.db.md5, [md5.Size]byte(s.md5.Sum(nil)), s.size); v != "" {
			return Result{Virus: v}, nil
		}
	}
	if s.sha1 != nil {
		if v := lookup(s.db.sha1, [sha1.Size]byte(s.sha1.Sum(nil)), s.size); v != "" {
			return Result{Virus: v}, nil
		}
	}
	if s.sha256 != nil {
		if v := lookup(s.db.sha256, [sha256.Size]byte(s.sha256.Sum(nil)), s.size); v != "" {
			return Result{Virus: v}, nil
		}
	}
	return Result{}, nil
}
