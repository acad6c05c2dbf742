package scan

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Result is one engine's answer for one file.
type Result struct {
	Virus string // signature name; "" when nothing was found
}

// Infected reports whether the engine found something.
func (r Result) Infected() bool { return r.Virus != "" }

// Stream receives one file's bytes, in order, in any number of Writes,
// then Close returns the engine's answer. A Stream is used by one goroutine.
// Write should not fail for an infected file; an error from Write or Close
// means the engine could not scan (see ErrUnavailable).
type Stream interface {
	io.Writer
	Close() (Result, error)
}

// Engine is a virus scanning engine. The scanner reads every file (a MIME
// leaf part, an archive, an archive member) once and writes it to one
// Stream of every engine at the same time, so engines must be streaming;
// ReaderEngine adapts a reader-based engine. Engines must be safe for
// concurrent use (many messages are scanned at once).
type Engine interface {
	Name() string
	// Open starts scanning a file; name is its path ("a.zip/b.exe"), for
	// logging only.
	Open(ctx context.Context, name string) (Stream, error)
}

// ErrUnavailable is wrapped by every error that means an engine could not
// give an answer (clamd down, timed out, protocol error). The caller must
// answer 451 4.7.1 (ReplyTempFail), never treat the message as clean.
var ErrUnavailable = errors.New("scan engine unavailable")

// EngineError is an engine failure. errors.Is(err, ErrUnavailable) is true.
type EngineError struct {
	Engine string
	Err    error
}

func (e *EngineError) Error() string {
	return fmt.Sprintf("scan engine %s unavailable: %v", e.Engine, e.Err)
}

// Unwrap returns both ErrUnavailable and the cause.
func (e *EngineError) Unwrap() []error { return []error{ErrUnavailable, e.Err} }

// ScanReader scans one file with one engine: a convenience for tests and
// tools.
func ScanReader(ctx context.Context, e Engine, name string, r io.Reader) (Result, error) {
	s, err := e.Open(ctx, name)
	if err != nil {
		return Result{}, err
	}
	if _, err := io.Copy(s, r); err != nil {
		_, _ = s.Close()
		return Result{}, err
	}
	return s.Close()
}

// ReaderEngine is the simplest kind of engine: it reads a file from r.
type ReaderEngine interface {
	Name() string
	Scan(ctx context.Context, name string, r io.Reader) (Result, error)
}

// FromReaderEngine adapts a ReaderEngine to Engine (it runs Scan in a
// goroutine fed through a pipe).
func FromReaderEngine(e ReaderEngine) Engine { return readerEngine{e} }

type readerEngine struct{ e ReaderEngine }

func (r readerEngine) Name() string { return r.e.Name() }

func (r readerEngine) Open(ctx context.Context, name string) (Stream, error) {
	pr, pw := io.Pipe()
	s := &pipeStream{pw: pw, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.res, s.err = r.e.Scan(ctx, name, pr)
		// let the writer finish if Scan stopped reading early
		_ = pr.CloseWithError(io.ErrClosedPipe)
	}()
	return s, nil
}

type pipeStream struct {
	pw   *io.PipeWriter
	done chan struct{}
	res  Result
	err  error
	werr bool
}

func (s *pipeStream) Write(p []byte) (int, error) {
	if s.werr {
		return len(p), nil
	}
	if _, err := s.pw.Write(p); err != nil {
		s.werr = true // Scan finished early: ignore the rest
	}
	return len(p), nil
}

func (s *pipeStream) Close() (Result, error) {
	_ = s.pw.Close()
	<-s.done
	return s.res, s.err
}

// fanout writes one file to all engines' streams. Write never fails: an
// engine whose Write fails is dropped and its error reported by Close.
type fanout struct {
	names   []string
	streams []Stream
	errs    []error
}

func openAll(ctx context.Context, engines []Engine, name string) (*fanout, error) {
	f := &fanout{names: make([]string, len(engines)), streams: make([]Stream, len(engines)), errs: make([]error, len(engines))}
	for i, e := range engines {
		s, err := e.Open(ctx, name)
		if err != nil {
			for _, o := range f.streams[:i] {
				_, _ = o.Close()
			}
			return nil, wrapEngineErr(e.Name(), err)
		}
		f.names[i] = e.Name()
		f.streams[i] = s
	}
	return f, nil
}

func wrapEngineErr(name string, err error) error {
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	return &EngineError{Engine: name, Err: err}
}

func (f *fanout) Write(p []byte) (int, error) {
	for i, s := range f.streams {
		if f.errs[i] == nil {
			if _, err := s.Write(p); err != nil {
				f.errs[i] = err
			}
		}
	}
	return len(p), nil
}

type hit struct{ engine, virus string }

// close returns the hits and the first engine error.
func (f *fanout) close() ([]hit, error) {
	var hits []hit
	var first error
	for i, s := range f.streams {
		res, err := s.Close()
		if err == nil {
			err = f.errs[i]
		}
		if err != nil {
			if first == nil {
				first = wrapEngineErr(f.names[i], err)
			}
			continue
		}
		if res.Infected() {
			hits = append(hits, hit{f.names[i], res.Virus})
		}
	}
	return hits, first
}
