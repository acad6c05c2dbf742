package imapd

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"yubin/store"
)

func FuzzMailboxName(f *testing.F) {
	for _, s := range []string{"INBOX", "&ZeVnLIqe-/2024", "a&-b", "&Jjo", "&AGE-", "&Jjo-&Jjo-", "日本語", "a..b", "&2D3eAQ-", "&,,,-", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		store.CheckMailboxName(s)
		checkMailboxArgs("RENAME", s)
		checkMailboxArgs("LIST", s)
		checkMailboxArgs("COPY", s)
		name, err := decodeMailboxName(s)
		if err != nil {
			return
		}
		if !utf8.ValidString(name) {
			t.Fatalf("%q decoded to invalid UTF-8 %q", s, name)
		}
		if strings.EqualFold(name, "INBOX") {
			return
		}
		enc := encodeMailboxName(name)
		back, err := decodeMailboxName(enc)
		if err != nil || back != name {
			t.Fatalf("%q -> %q -> %q -> %q (%v)", s, name, enc, back, err)
		}
	})
}

func FuzzParseAString(f *testing.F) {
	for _, s := range []string{`INBOX`, `"a b"`, `"a\"b" rest`, `"unterminated`, `x]y`, `{3}`, `"\\"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, _, ok := parseAString(s)
		if !ok {
			return
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return // cannot be quoted back; parseAString refuses them in quotes
		}
		back, rest, ok := parseAString(quoteString(v))
		if !ok || back != v || rest != "" {
			t.Fatalf("%q: %q -> %q %q %v", s, v, back, rest, ok)
		}
	})
}

// memConn is a net.Conn over a fixed input.
type memConn struct {
	r   io.Reader
	out bytes.Buffer
}

func (c *memConn) Read(p []byte) (int, error)         { return c.r.Read(p) }
func (c *memConn) Write(p []byte) (int, error)        { return c.out.Write(p) }
func (c *memConn) Close() error                       { return nil }
func (c *memConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (c *memConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (c *memConn) SetDeadline(t time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { return nil }

// The command-stream follower hands over everything it does not serve
// itself, in order, and never panics or loops on any input.
func FuzzLibConn(f *testing.F) {
	for _, s := range []string{
		"a LOGIN u p\r\nb SELECT INBOX\r\n",
		"a APPEND INBOX {5+}\r\nhello\r\nb NOOP\r\n",
		"a APPEND INBOX {5}\r\nhello\r\n",
		"a IDLE\r\nDONE\r\nb GETQUOTAROOT INBOX\r\n",
		"a CREATE \"&Jjo\" {3+}\r\nabc\r\n\r\nb NOOP\r\n",
		"a SELECT \"x\ty\"\r\n",
		"{99999999999999999999}\r\n",
	} {
		f.Add([]byte(s), byte(1))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk byte) {
		srv := &Server{cfg: Config{IdleTimeout: time.Minute}}
		mc := &memConn{r: bytes.NewReader(in)}
		e := newLibConn(srv, mc, false, nil)
		// Pretend the library accepts every synchronizing literal.
		var got []byte
		p := make([]byte, int(chunk)%64+1)
		for i := 0; i < len(in)+100; i++ {
			if e.syncWait {
				e.Write([]byte("+ go ahead\r\n"))
			}
			n, err := e.Read(p)
			got = append(got, p[:n]...)
			if err != nil {
				break
			}
		}
		if len(got) > len(in) {
			t.Fatalf("handed over %d bytes of %d", len(got), len(in))
		}
		plain := true
		for _, c := range in {
			if c == '&' || (c < 0x20 && c != '\r' && c != '\n') || c >= 0x7f {
				plain = false
			}
		}
		if plain && !bytes.Equal(got, in) {
			t.Fatalf("input %q handed over as %q", in, got)
		}
	})
}
