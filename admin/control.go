package admin

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"yubin/internal/config"
	"yubin/internal/notify"
	"yubin/internal/storage"
	"yubin/store"
)

// The control protocol: the client connects to the unix socket, writes one
// request as a line of JSON, {"op": NAME, "req": REQUEST} with REQUEST in
// the op's own request type (see ops.go), reads one answer line,
// {"ok": true, "result": RESULT} or {"error": MESSAGE, "kind": KIND}, and
// the server closes the connection. KIND names the error's sentinel
// (kinds), so errors.Is works on the client's side too. Requests carry
// passwords in clear text; the socket is mode 0600 in the data dir and the
// server also checks the peer's user id.
//
// A stream operation (StreamOp: the backup) answers {"ok": true,
// "stream": true} first, then its bytes in frames — a 4-byte big-endian
// length, then that many bytes (at most maxFrame) — then a frame of
// length 0, then the answer line as above. An error after the first line
// (the snapshot failed half-way) is in that last line; a stream cut
// before it is a failure too. A stream has no overall deadline: each
// frame must go out within streamIdle, and a server shutting down ends it.

type request struct {
	Op  string          `json:"op"`
	Req json.RawMessage `json:"req"` // the op's own request type
}

type response struct {
	OK     bool            `json:"ok"`
	Stream bool            `json:"stream,omitempty"` // frames follow (a stream operation)
	Error  string          `json:"error,omitempty"`
	Kind   string          `json:"kind,omitempty"` // the error's sentinel (kinds)
	Result json.RawMessage `json:"result,omitempty"`
}

// maxRequest bounds one request line: an import batch carries whole
// messages (up to MaxImportMessage, base64 in JSON). Only the server's own
// user (or root) may connect at all.
const maxRequest = 96 << 20

// requestTimeout bounds one connection on the server side.
const requestTimeout = 30 * time.Second

// maxFrame bounds one frame of a stream.
const maxFrame = 1 << 20

// streamIdle bounds how long one frame of a stream may take to get
// through (the other side stopped reading, or writing).
var streamIdle = 5 * time.Minute

var kinds = []struct {
	name string
	err  error
}{
	{"invalid", store.ErrInvalid},
	{"no_such_domain", store.ErrNoSuchDomain},
	{"no_such_account", store.ErrNoSuchAccount},
	{"exists", store.ErrExists},
	{"locked", store.ErrInUse},
	{"closed", store.ErrClosed},
	{"no_such_message", store.ErrNoSuchMessage},
	{"denied", ErrDenied},
}

func kindOf(err error) string {
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return ""
}

func kindErr(name string) error {
	for _, k := range kinds {
		if k.name == name {
			return k.err
		}
	}
	return nil
}

// ListenControl creates the control socket at path with mode 0600. A stale
// socket file left by a crashed server is removed first; if a live server
// answers on path, ListenControl refuses. The socket is created in a private
// directory and renamed into place, so it is never reachable with looser
// permissions. Closing the returned listener removes the socket file.
//
// The server should call it after opening the store (whose file lock
// guarantees it is the only server for this data dir).
func ListenControl(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("control socket %s: the file exists and is not a socket", path)
		}
		c, err := net.DialTimeout("unix", path, 2*time.Second)
		switch {
		case err == nil:
			c.Close()
			return nil, fmt.Errorf("control socket %s: another yubin server is running for this data dir (it answers on the socket)", path)
		case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOENT):
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("control socket: removing stale socket: %w", err)
			}
		default:
			return nil, fmt.Errorf("control socket %s: exists and cannot be checked: %v", path, err)
		}
	}
	const maxPath = 104 // sun_path is 108 bytes on Linux, 104 on the BSDs
	if len(path) >= maxPath {
		return nil, fmt.Errorf("control socket path %s is too long for a unix socket (%d bytes, at most %d): use a shorter data dir", path, len(path), maxPath-1)
	}
	// Bind in a fresh 0700 directory, chmod, then rename into place.
	listenPath, tmpDir := path, ""
	if d, err := os.MkdirTemp(dir, ".ctl"); err == nil {
		if p := filepath.Join(d, "s"); len(p) < maxPath {
			listenPath, tmpDir = p, d
		} else {
			os.Remove(d)
		}
	}
	if tmpDir != "" {
		defer os.RemoveAll(tmpDir)
	}
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: listenPath, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ul.SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, error) {
		ul.Close()
		os.Remove(listenPath)
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(listenPath, 0o600); err != nil {
		return fail(err)
	}
	if listenPath != path {
		if err := os.Rename(listenPath, path); err != nil {
			return fail(err)
		}
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return &controlListener{UnixListener: ul, path: path, fi: fi}, nil
}

// controlListener removes its socket file on Close, unless another server
// has replaced it in the meantime.
type controlListener struct {
	*net.UnixListener
	path string
	fi   os.FileInfo
	once sync.Once
}

func (l *controlListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() {
		if fi, e := os.Lstat(l.path); e == nil && os.SameFile(fi, l.fi) {
			os.Remove(l.path)
		}
	})
	return err
}

// Addr reports the final socket path (not the temporary one it was bound to).
func (l *controlListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

// ServeControl serves the control protocol on ln until ctx is cancelled,
// then closes ln, waits for requests in progress and returns nil. It
// returns an error if accepting fails for another reason.
func (s *Service) ServeControl(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer ln.Close() // again, synchronously: the socket file is gone on return
	defer wg.Wait()
	var tempDelay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(tempDelay):
				case <-ctx.Done():
					return nil
				}
				continue
			}
			ln.Close()
			return fmt.Errorf("control socket: %w", err)
		}
		tempDelay = 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveConn(ctx, c)
		}()
	}
}

func (s *Service) serveConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(requestTimeout))
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) }) // the server stops
	defer stop()

	var resp response
	if err := checkPeer(c); err != nil {
		resp = response{Error: err.Error(), Kind: "denied"}
	} else {
		line, err := bufio.NewReader(io.LimitReader(c, maxRequest)).ReadBytes('\n')
		if err != nil && (len(line) == 0 || !errors.Is(err, io.EOF)) {
			return // nothing sensible to answer
		}
		var req request
		if err := json.Unmarshal(line, &req); err != nil {
			resp = response{Error: "control socket: malformed request: " + err.Error(), Kind: "invalid"}
		} else if sh, ok := ops[req.Op].(streamHandler); ok && !emptyRequest(&req) {
			s.serveStream(ctx, c, sh, &req)
			return
		} else {
			rctx, cancel := context.WithTimeout(ctx, requestTimeout)
			resp = result(s.dispatch(rctx, &req))
			cancel()
		}
	}
	out, _ := json.Marshal(resp)
	c.Write(append(out, '\n'))
}

// serveStream runs a stream operation on c: the first answer line, the
// frames, the last answer line (see the protocol above).
func (s *Service) serveStream(ctx context.Context, c net.Conn, sh streamHandler, req *request) {
	fw := &frameWriter{ctx: ctx, c: c, bw: bufio.NewWriterSize(c, 64<<10)}
	first, _ := json.Marshal(response{OK: true, Stream: true})
	if fw.raw(append(first, '\n')) != nil {
		return
	}
	resp := result(sh.serveStream(ctx, s, req.Req, fw))
	if fw.err != nil {
		return // the client is gone, or the server stops
	}
	last, _ := json.Marshal(resp)
	if fw.raw(append([]byte{0, 0, 0, 0}, append(last, '\n')...)) == nil {
		fw.flush()
	}
}

// frameWriter writes a stream's bytes in frames.
type frameWriter struct {
	ctx context.Context
	c   net.Conn
	bw  *bufio.Writer
	err error // sticky
}

func (f *frameWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), maxFrame)
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], uint32(k))
		if err := f.raw(hdr[:]); err != nil {
			return n, err
		}
		if err := f.raw(p[:k]); err != nil {
			return n, err
		}
		n += k
		p = p[k:]
	}
	return n, nil
}

// raw writes b as it is, each write within streamIdle.
func (f *frameWriter) raw(b []byte) error {
	if f.err != nil {
		return f.err
	}
	if err := f.ctx.Err(); err != nil {
		f.err = fmt.Errorf("control socket: %w", err)
		return f.err
	}
	f.c.SetWriteDeadline(time.Now().Add(streamIdle))
	if _, err := f.bw.Write(b); err != nil {
		f.err = fmt.Errorf("control socket: %w", err)
	}
	return f.err
}

func (f *frameWriter) flush() {
	if f.err == nil {
		f.c.SetWriteDeadline(time.Now().Add(streamIdle))
		if err := f.bw.Flush(); err != nil {
			f.err = err
		}
	}
}

// emptyRequest reports whether r has no request.
func emptyRequest(r *request) bool { return len(r.Req) == 0 || string(r.Req) == "null" }

func result(v any, err error) response {
	if err != nil {
		return response{Error: err.Error(), Kind: kindOf(err)}
	}
	if v == nil {
		return response{OK: true}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return response{Error: err.Error()}
	}
	return response{OK: true, Result: b}
}

// dispatch runs one request on s through the table of operations.
func (s *Service) dispatch(ctx context.Context, r *request) (any, error) {
	h, ok := ops[r.Op]
	if !ok {
		return nil, errorf(store.ErrInvalid, "control socket: unknown operation %q (is the server older than this yubin?)", r.Op)
	}
	if emptyRequest(r) {
		return nil, errorf(store.ErrInvalid, "control socket: %s without a request", r.Op)
	}
	return h.serve(ctx, s, r.Req)
}

// Client performs administration operations through a server's control
// socket. Each call is one connection.
type Client struct {
	path    string
	timeout time.Duration
}

// NewClient returns a client for the control socket at path.
func NewClient(path string) *Client { return &Client{path: path, timeout: requestTimeout} }

var _ API = (*Client)(nil)

// Ping checks that a server answers on the socket.
func (c *Client) Ping(ctx context.Context) error {
	_, err := Do(ctx, c, opPing, None{})
	return err
}

// perform implements API: one connection, one request line, one answer.
func (c *Client) perform(ctx context.Context, op string, req, out any, _ func(*Service) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	conn, err := c.send(ctx, op, req)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	return readAnswer(bufio.NewReader(conn), out)
}

// performStream implements API: one connection, one request line, the
// first answer line, the frames written to w, the last answer line. Each
// read from the socket must come within streamIdle; there is no deadline
// for the whole.
func (c *Client) performStream(ctx context.Context, op string, req, out any, w io.Writer, _ func(*Service) error) error {
	dctx, cancel := context.WithTimeout(ctx, c.timeout)
	conn, err := c.send(dctx, op, req)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	src := &idleReader{conn: conn, ctx: ctx, idle: max(c.timeout, streamIdle)}
	br := bufio.NewReaderSize(src, 64<<10)
	var first response
	if err := readLine(br, &first); err != nil {
		return ctxErr(ctx, err)
	}
	if !first.OK {
		return answerErr(first)
	}
	if !first.Stream {
		return fmt.Errorf("control socket: %s: the server did not stream its answer", op)
	}
	early := func(err error) error {
		return fmt.Errorf("control socket: %s: the stream ended early: %w", op, ctxErr(ctx, err))
	}
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return early(err)
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n == 0 {
			break
		}
		if n > maxFrame {
			return fmt.Errorf("control socket: %s: a frame of %d bytes", op, n)
		}
		// CopyN through a plain Reader, so that a short frame (the
		// socket's error) and a failing w are told apart.
		if _, err := io.CopyN(w, struct{ io.Reader }{br}, int64(n)); err != nil {
			if src.err != nil || errors.Is(err, io.EOF) {
				return early(cmp.Or(src.err, err))
			}
			return err // w's
		}
	}
	if err := readAnswer(br, out); err != nil {
		return ctxErr(ctx, err)
	}
	return nil
}

// send dials the socket within ctx and writes one request line.
func (c *Client) send(ctx context.Context, op string, req any) (net.Conn, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if b, err = json.Marshal(request{Op: op, Req: b}); err != nil {
		return nil, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetWriteDeadline(dl)
	}
	_, err = conn.Write(append(b, '\n'))
	conn.SetWriteDeadline(time.Time{})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("control socket: %w", ctxErr(ctx, err))
	}
	return conn, nil
}

// readAnswer reads an answer line into out.
func readAnswer(br *bufio.Reader, out any) error {
	var resp response
	if err := readLine(br, &resp); err != nil {
		return err
	}
	if !resp.OK {
		return answerErr(resp)
	}
	if resp.Stream {
		return errorf(store.ErrInvalid, "control socket: the server streams its answer to this operation (use DoStream)")
	}
	if len(resp.Result) > 0 {
		if err := json.Unmarshal(resp.Result, out); err != nil {
			return fmt.Errorf("control socket: malformed answer: %w", err)
		}
	}
	return nil
}

// readLine reads one answer line (at most 64 MiB).
func readLine(br *bufio.Reader, resp *response) error {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > 64<<20 {
			return errors.New("control socket: an answer longer than 64 MiB")
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && (len(line) == 0 || !errors.Is(err, io.EOF)) {
			return fmt.Errorf("control socket: reading the answer: %w", err)
		}
		break
	}
	if err := json.Unmarshal(line, resp); err != nil {
		return fmt.Errorf("control socket: malformed answer: %w", err)
	}
	return nil
}

// answerErr is the error an answer carries.
func answerErr(resp response) error {
	if resp.Error == "" {
		resp.Error = "control socket: request failed"
	}
	return &Error{Kind: kindErr(resp.Kind), Msg: resp.Error}
}

// ctxErr is ctx's error if it has ended (it caused err), else err.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// idleReader reads from the socket, each read within idle, and keeps the
// first error.
type idleReader struct {
	conn net.Conn
	ctx  context.Context
	idle time.Duration
	err  error
}

func (r *idleReader) Read(p []byte) (int, error) {
	if r.ctx.Err() == nil {
		r.conn.SetReadDeadline(time.Now().Add(r.idle))
	}
	n, err := r.conn.Read(p)
	if err != nil && r.err == nil {
		r.err = err
	}
	return n, err
}

// pingTimeout is how long Open waits for a server on the control socket.
const pingTimeout = 3 * time.Second

// lockTimeout is how long Open waits for the store's file lock.
const lockTimeout = time.Second

// Open returns the API for the data dir of cfg: the running server's
// control socket when one answers, else the store opened directly. release
// releases what Open took (the store's file lock); call it as soon as the
// operations are done. When the store is locked and no server answers on
// the socket, the error says so.
func Open(cfg config.Config) (api API, release func() error, err error) {
	api, release, err = OpenPathsWith(cfg.ControlSocket(), cfg.DataDir, cfg.Store.DefaultQuota,
		storage.Options{Backend: cfg.Store.Backend, PostgresURL: cfg.Store.PostgresURL, MaxMailboxes: cfg.Store.MaxMailboxes})
	if svc, ok := api.(*Service); ok {
		// The store is ours: reports can be sent from here too.
		if r, e := notify.NewReporter(notify.New(svc.st, cfg.Hostname, nil), cfg.Notify.ReportTime, nil); e == nil {
			svc.SetReporter(r)
		}
		// No server: status reports on the data dir.
		svc.SetStatusInfo(func(ctx context.Context) StatusInfo { return LocalStatusInfo(ctx, cfg) })
		svc.SetDNS(DNSSettings(cfg), cfg.DNS.Resolver)
	}
	return api, release, err
}

// OpenPaths is Open with explicit paths, on the embedded store.
func OpenPaths(socketPath, dataDir string, defaultQuota int64) (API, func() error, error) {
	return OpenPathsWith(socketPath, dataDir, defaultQuota, storage.Options{})
}

// OpenPathsWith is OpenPaths on the store so says (Wait is set here).
func OpenPathsWith(socketPath, dataDir string, defaultQuota int64, so storage.Options) (API, func() error, error) {
	noop := func() error { return nil }
	client := NewClient(socketPath)
	ping := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
		defer cancel()
		return client.Ping(ctx)
	}
	var pingErr error
	if _, err := os.Lstat(socketPath); err == nil {
		if pingErr = ping(); pingErr == nil {
			return client, noop, nil
		}
	}
	so.Wait = lockTimeout
	st, err := storage.OpenDir(dataDir, so)
	if err == nil {
		return NewService(st, defaultQuota), st.Close, nil
	}
	if !errors.Is(err, store.ErrInUse) {
		return nil, nil, err
	}
	// A server that is starting holds the lock before its socket is up.
	if _, e := os.Lstat(socketPath); e == nil {
		if pingErr = ping(); pingErr == nil {
			return client, noop, nil
		}
	} else if pingErr == nil {
		pingErr = fmt.Errorf("%s does not exist", socketPath)
	}
	return nil, nil, &Error{Kind: store.ErrInUse, Msg: fmt.Sprintf(
		"the store in %s is in use by another process (a running yubin server?) and no server answers on the control socket (%v)",
		dataDir, pingErr)}
}
