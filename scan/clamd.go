package scan

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// ClamdConfig configures the clamd engine.
type ClamdConfig struct {
	// Address of clamd: "unix:/run/clamav/clamd.ctl", "tcp:127.0.0.1:3310",
	// or a bare "/path" (unix) or "host:port" (tcp).
	Address string
	// DialTimeout bounds connecting (default 5s); Timeout bounds the whole
	// exchange for one file (default 60s).
	DialTimeout time.Duration
	Timeout     time.Duration
	// MaxStream is the most bytes sent for one file (default 25 MiB, clamd's
	// default StreamMaxLength; keep clamd's StreamMaxLength at least this
	// big). The rest of a bigger file is not sent: clamd scans the start.
	MaxStream int64
}

// ClamdName is the clamd engine's name.
const ClamdName = "clamd"

// Clamd is the clamd engine: each file is sent with zINSTREAM on its own
// connection. Every failure (cannot connect, timeout, "... ERROR" reply)
// is an error wrapping ErrUnavailable, never "clean".
type Clamd struct {
	network, addr string
	cfg           ClamdConfig
}

// NewClamd returns a clamd engine. It does not connect; use Ping to check.
func NewClamd(cfg ClamdConfig) (*Clamd, error) {
	network, addr, err := ParseClamdAddress(cfg.Address)
	if err != nil {
		return nil, err
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.MaxStream <= 0 {
		cfg.MaxStream = 25 << 20
	}
	return &Clamd{network: network, addr: addr, cfg: cfg}, nil
}

// ParseClamdAddress splits "unix:/path", "tcp:host:port", "/path" or
// "host:port" into a network and an address.
func ParseClamdAddress(s string) (network, addr string, err error) {
	switch {
	case strings.HasPrefix(s, "unix:"):
		return "unix", strings.TrimPrefix(s, "unix:"), nil
	case strings.HasPrefix(s, "tcp:"):
		return "tcp", strings.TrimPrefix(s, "tcp:"), nil
	case strings.HasPrefix(s, "/"):
		return "unix", s, nil
	case s == "":
		return "", "", errors.New("scan: clamd address is empty")
	}
	if _, _, err := net.SplitHostPort(s); err != nil {
		return "", "", fmt.Errorf("scan: clamd address %q: %v", s, err)
	}
	return "tcp", s, nil
}

// Name returns "clamd".
func (c *Clamd) Name() string { return ClamdName }

func (c *Clamd) dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: c.cfg.DialTimeout}
	conn, err := d.DialContext(ctx, c.network, c.addr)
	if err != nil {
		return nil, &EngineError{ClamdName, err}
	}
	deadline := time.Now().Add(c.cfg.Timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	return conn, nil
}

func (c *Clamd) command(ctx context.Context, cmd string) (string, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("z" + cmd + "\x00")); err != nil {
		return "", &EngineError{ClamdName, err}
	}
	reply, err := bufio.NewReader(io.LimitReader(conn, 64<<10)).ReadString(0)
	if err != nil {
		return "", &EngineError{ClamdName, err}
	}
	return strings.TrimSuffix(reply, "\x00"), nil
}

// Ping checks that clamd answers.
func (c *Clamd) Ping(ctx context.Context) error {
	r, err := c.command(ctx, "PING")
	if err != nil {
		return err
	}
	if r != "PONG" {
		return &EngineError{ClamdName, fmt.Errorf("PING answered %q", r)}
	}
	return nil
}

// Version returns clamd's version string (engine and database versions).
func (c *Clamd) Version(ctx context.Context) (string, error) { return c.command(ctx, "VERSION") }

// Open connects to clamd and starts a zINSTREAM.
func (c *Clamd) Open(ctx context.Context, name string) (Stream, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Write([]byte("zINSTREAM\x00")); err != nil {
		conn.Close()
		return nil, &EngineError{ClamdName, err}
	}
	return &clamdStream{conn: conn, max: c.cfg.MaxStream}, nil
}

type clamdStream struct {
	conn net.Conn
	sent int64
	max  int64
	werr error
	hdr  [4]byte
}

const clamdChunk = 64 << 10

func (s *clamdStream) Write(p []byte) (int, error) {
	n := len(p)
	if s.werr != nil {
		return n, nil // Close reads clamd's reason, if any
	}
	if rem := s.max - s.sent; int64(len(p)) > rem {
		p = p[:rem]
	}
	for len(p) > 0 {
		c := p
		if len(c) > clamdChunk {
			c = c[:clamdChunk]
		}
		binary.BigEndian.PutUint32(s.hdr[:], uint32(len(c)))
		if _, err := s.conn.Write(s.hdr[:]); err != nil {
			s.werr = err
			return n, nil
		}
		if _, err := s.conn.Write(c); err != nil {
			s.werr = err
			return n, nil
		}
		s.sent += int64(len(c))
		p = p[len(c):]
	}
	return n, nil
}

func (s *clamdStream) Close() (Result, error) {
	defer s.conn.Close()
	if s.werr == nil {
		if _, err := s.conn.Write([]byte{0, 0, 0, 0}); err != nil {
			s.werr = err
		}
	}
	reply, err := bufio.NewReader(io.LimitReader(s.conn, 64<<10)).ReadString(0)
	reply = strings.TrimSpace(strings.TrimSuffix(reply, "\x00"))
	if reply == "" {
		if err == nil {
			err = s.werr
		}
		if err == nil {
			err = errors.New("empty reply")
		}
		return Result{}, &EngineError{ClamdName, err}
	}
	return parseClamdReply(reply)
}

// parseClamdReply parses "stream: OK", "stream: NAME FOUND" and
// "... ERROR" replies.
func parseClamdReply(reply string) (Result, error) {
	body := reply
	if i := strings.Index(reply, ": "); i >= 0 {
		body = reply[i+2:]
	}
	switch {
	case body == "OK":
		return Result{}, nil
	case strings.HasSuffix(body, " FOUND"):
		name := strings.TrimSpace(strings.TrimSuffix(body, " FOUND"))
		if name == "" {
			name = "unknown"
		}
		return Result{Virus: name}, nil
	case strings.HasSuffix(body, "ERROR"):
		return Result{}, &EngineError{ClamdName, errors.New(reply)}
	}
	return Result{}, &EngineError{ClamdName, fmt.Errorf("unexpected reply %q", reply)}
}
