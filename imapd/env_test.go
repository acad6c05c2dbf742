package imapd

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"yubin/internal/auth"
	"yubin/internal/testutil"
	"yubin/internal/testutil/teststore"
	"yubin/internal/tlsutil"
	"yubin/store"
)

type env struct {
	st       store.Store
	srv      *Server
	plain    string // 143-style listener address
	implicit string // 993-style listener address
	tlsConf  *tls.Config
	dir      string // holds tls/cert.pem
}

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	dir := t.TempDir()
	st := teststore.New(t, teststore.Options{Accounts: []store.Account{
		{Address: "info@example.com", PasswordHash: teststore.PasswordHash(t, "pw-info"), Quota: 10 << 20},
		{Address: "bob@example.com", PasswordHash: teststore.PasswordHash(t, "pw-bob"), Quota: 10 << 20}}})
	tlsConf, err := tlsutil.SelfSigned(filepath.Join(dir, "tls"), "localhost")
	testutil.Must(t, err)
	au := auth.New(st, auth.Policy{MaxFailures: 50}, nil)
	srv := New(cfg, st, au, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	e := &env{st: st, srv: srv, tlsConf: tlsConf, dir: dir}
	for _, m := range []Mode{Plain, Implicit} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		testutil.Must(t, err)
		if m == Plain {
			e.plain = ln.Addr().String()
		} else {
			e.implicit = ln.Addr().String()
		}
		go srv.Serve(ln, m, tlsConf)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return e
}

// testWriter sends server logs to the test's log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (e *env) deliver(t testing.TB, to, box, msg string) store.Delivered {
	t.Helper()
	d, err := e.st.Deliver(context.Background(), store.Delivery{Recipients: []string{to}, Mailbox: box, Message: []byte(msg)})
	testutil.Must(t, err)
	return d[0]
}

// login dials implicit TLS with imapclient and logs in.
func (e *env) login(t testing.TB, user string, h *imapclient.UnilateralDataHandler) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialTLS(e.implicit, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}, UnilateralDataHandler: h})
	testutil.Must(t, err)
	t.Cleanup(func() { c.Close() })
	testutil.Must(t, c.Login(user, "pw-"+strings.Split(user, "@")[0]).Wait())
	return c
}

// raw is a line-level client, so tests see exact replies.
type raw struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
	n    int
}

func dialRaw(t testing.TB, addr string, useTLS bool) *raw {
	t.Helper()
	var c net.Conn
	var err error
	if useTLS {
		c, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	} else {
		c, err = net.Dial("tcp", addr)
	}
	testutil.Must(t, err)
	t.Cleanup(func() { c.Close() })
	r := &raw{t: t, conn: c, r: bufio.NewReader(c)}
	if g := r.line(); !strings.HasPrefix(g, "* OK") {
		t.Fatalf("greeting %q", g)
	}
	return r
}

func (r *raw) line() string {
	r.t.Helper()
	r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := r.r.ReadString('\n')
	if err != nil {
		r.t.Fatalf("read: %v (got %q)", err, l)
	}
	if !strings.HasSuffix(l, "\r\n") {
		r.t.Fatalf("line without CRLF: %q", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

func (r *raw) send(s string) {
	r.t.Helper()
	if _, err := r.conn.Write([]byte(s)); err != nil {
		r.t.Fatal(err)
	}
}

// cmd sends a tagged command and returns the untagged lines and the
// tagged reply (without the tag).
func (r *raw) cmd(format string, args ...any) ([]string, string) {
	r.t.Helper()
	r.n++
	tag := fmt.Sprintf("t%d", r.n)
	r.send(tag + " " + fmt.Sprintf(format, args...) + "\r\n")
	return r.until(tag)
}

func (r *raw) until(tag string) ([]string, string) {
	r.t.Helper()
	var untagged []string
	for {
		l := r.line()
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			return untagged, rest
		}
		untagged = append(untagged, l)
	}
}

// ok runs a command that must succeed.
func (r *raw) ok(format string, args ...any) []string {
	r.t.Helper()
	u, st := r.cmd(format, args...)
	if !strings.HasPrefix(st, "OK") {
		r.t.Fatalf("%s: %s (untagged %q)", fmt.Sprintf(format, args...), st, u)
	}
	return u
}

func (r *raw) login(user string) {
	r.t.Helper()
	r.ok("LOGIN %s pw-%s", user, strings.Split(user, "@")[0])
}

func (r *raw) starttls() {
	r.t.Helper()
	r.ok("STARTTLS")
	tc := tls.Client(r.conn, &tls.Config{InsecureSkipVerify: true})
	testutil.Must(r.t, tc.Handshake())
	r.conn = tc
	r.r = bufio.NewReader(tc)
}
