package imapd

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

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

// The command-stream follower never panics or loops on any input, and
// hands over nothing but what came in, in order — but for the "+" that
// makes a literal it held back non-synchronizing, and CRLF for LF. Simple
// command lines (no literals, quotes, long lines or stray CRs) it hands
// over as they came.
func FuzzLibConn(f *testing.F) {
	for _, s := range []string{
		"a LOGIN u p\r\nb SELECT INBOX\r\n",
		"a APPEND INBOX {5+}\r\nhello\r\nb NOOP\r\n",
		"a APPEND INBOX {5}\r\nhello\r\n",
		"a IDLE\r\nDONE\r\nb GETQUOTAROOT INBOX\r\n",
		"a CREATE \"&Jjo\" {3+}\r\nabc\r\n\r\nb NOOP\r\n",
		"a SELECT \"x\ty\"\r\n",
		"{99999999999999999999}\r\n",
		"a CREATE {3}\r\nabc\r\nb RENAME {1}\r\nx {2}\nyz\r\n",
		"a NOOP\r\rQ2 CREATE x\r\nb CREATE \"x\r\nQ3 CREATE y\r\n",
		"a AUTHENTICATE PLAIN\r\nAHUAcA==\r\nb NOOP\r\n",
		"a LIST \"\" {1+}\r\n*\r\na SELECT \"a\\\"b\"\r\n",
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
		norm := strings.NewReplacer("+}", "}", "\r\n", "\n")
		if g, i := norm.Replace(string(got)), norm.Replace(string(in)); !isSubsequence(g, i) {
			t.Fatalf("input %q handed over as %q", in, got)
		}
		simple := true
		for _, l := range bytes.SplitAfter(in, []byte("\n")) {
			l = bytes.TrimSuffix(bytes.TrimSuffix(l, []byte("\n")), []byte("\r"))
			if len(l) > 1000 || bytes.ContainsAny(l, "{\"&\r\x00") {
				simple = false
			}
			for _, c := range l {
				if c < 0x20 || c >= 0x7f {
					simple = false
				}
			}
		}
		if complete := in[:bytes.LastIndexByte(in, '\n')+1]; simple && !bytes.Equal(got, complete) {
			t.Fatalf("input %q handed over as %q", in, got)
		}
	})
}

// abbrev quotes s, cutting runs of a byte short.
func abbrev(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		n := 1
		for n < len(s) && s[n] == s[0] {
			n++
		}
		if n > 8 {
			fmt.Fprintf(&b, "%s<×%d>", s[:1], n)
		} else {
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return strconv.Quote(b.String())
}

// isSubsequence says whether s is t with some bytes left out.
func isSubsequence(s, t string) bool {
	for i := 0; i < len(s); i++ {
		j := strings.IndexByte(t, s[i])
		if j < 0 {
			return false
		}
		t = t[j+1:]
	}
	return true
}

// injSession is the library's in-memory session, counting CREATEs.
type injSession struct {
	*imapmemserver.UserSession
	creates *atomic.Int64
}

func (s injSession) Login(username, password string) error { return nil }

func (s injSession) Create(name string, options *imap.CreateOptions) error {
	s.creates.Add(1)
	return s.UserSession.Create(name, options)
}

// injTemplates put a line of the fuzzer's bytes (user text, say from a
// webmail, without LF) where a command's argument goes.
var injTemplates = []string{
	"a SELECT %s\r\n",
	"a SEARCH TEXT %s\r\n",
	"a STATUS %s (MESSAGES)\r\n",
	"a LOGIN %s\r\n",
	"a APPEND INBOX (%s) {1+}\r\nx\r\n",
	"a SEARCH TEXT {1+}\r\nx %s\r\n",
	"a IDLE\r\n%s\r\n",
}

// The library behind libConn runs no command but the ones the client
// starts on a line of its own: whatever a command's argument holds (short
// of a line end), it never makes a CREATE run. Each input is the middle
// of one of injTemplates, after a login and before LOGOUT.
func FuzzLineInjection(f *testing.F) {
	for _, s := range []string{
		"INBOX",
		strings.Repeat("C", 51202-len("a SELECT ")) + "Q2 CREATE injected", // cut right before Q2
		"x\r\rQ2 CREATE injected",
		`"x`,
		strings.Repeat("D", 4096) + "Q2 CREATE injected",
	} {
		for i := range injTemplates {
			f.Add(uint8(i), []byte(s))
		}
	}
	var creates atomic.Int64
	lib := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			u := imapmemserver.NewUser("u", "p")
			u.Create("INBOX", nil)
			return injSession{imapmemserver.NewUserSession(u), &creates}, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapLiteralPlus: {}, imap.CapIdle: {}},
		InsecureAuth: true,
	})
	ln := newChanListener()
	go lib.Serve(ln)
	f.Cleanup(func() { ln.Close(); lib.Close() })
	srv := &Server{cfg: Config{IdleTimeout: time.Minute}}
	f.Fuzz(func(t *testing.T, tmpl uint8, text []byte) {
		text = bytes.ReplaceAll(text, []byte("\n"), nil)
		if bytes.HasSuffix(text, []byte("}")) {
			text = append(text, 'x') // no literal: it would take LOGOUT's bytes
		}
		in := "l LOGIN u p\r\nl SELECT INBOX\r\n" + fmt.Sprintf(injTemplates[int(tmpl)%len(injTemplates)], text) + "z LOGOUT\r\n"
		client, server := net.Pipe()
		defer client.Close()
		before := creates.Load()
		if !ln.hand(newLibConn(srv, server, false, nil)) {
			t.Skip("closed")
		}
		done := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, client)
			done <- err
		}()
		client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(client, in)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no end", abbrev(in))
		}
		if n := creates.Load() - before; n != 0 {
			t.Fatalf("%s ran %d CREATE", abbrev(in), n)
		}
	})
}
