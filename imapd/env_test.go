package imapd

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"

	"yubin/internal/auth"
	"yubin/internal/netserve"
	"yubin/internal/spool"
	"yubin/internal/testutil"
	"yubin/internal/testutil/teststore"
	"yubin/internal/testutil/tlstest"
	"yubin/store"
)

type env struct {
	st       store.Store
	srv      *Server
	plain    string // 143-style listener address
	implicit string // 993-style listener address
	cert     *tlstest.Cert
}

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	return newEnvStore(t, cfg, teststore.Options{})
}

// newEnvStore is newEnv with a store opened with so; its accounts are
// always info@ and bob@example.com.
func newEnvStore(t testing.TB, cfg Config, so teststore.Options) *env {
	t.Helper()
	so.Accounts = []store.Account{
		{Address: "info@example.com", PasswordHash: teststore.PasswordHash(t, "pw-info"), Quota: 10 << 20},
		{Address: "bob@example.com", PasswordHash: teststore.PasswordHash(t, "pw-bob"), Quota: 10 << 20}}
	st := teststore.New(t, so)
	if cfg.Spool == nil {
		sp, err := spool.Open(filepath.Join(t.TempDir(), "spool"), 0, 0)
		testutil.Must(t, err)
		cfg.Spool = sp
	}
	cert := tlstest.SelfSigned(t, "localhost")
	au := auth.New(st, auth.Policy{MaxFailures: 50}, nil)
	srv := New(cfg, st, au, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	addrs := testutil.Serve(t, srv, cert.Server, netserve.Plain, netserve.Implicit).Addrs
	return &env{st: st, srv: srv, plain: addrs[0], implicit: addrs[1], cert: cert}
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
	*testutil.Conn
	n int
}

func dialRaw(t testing.TB, addr string, useTLS bool) *raw {
	t.Helper()
	var conf *tls.Config
	if useTLS {
		conf = &tls.Config{InsecureSkipVerify: true}
	}
	r := &raw{Conn: testutil.Dial(t, addr, conf)}
	if g := r.Line(); !strings.HasPrefix(g, "* OK") {
		t.Fatalf("greeting %q", g)
	}
	return r
}

// cmd sends a tagged command and returns the untagged lines and the
// tagged reply (without the tag).
func (r *raw) cmd(format string, args ...any) ([]string, string) {
	r.T.Helper()
	r.n++
	tag := fmt.Sprintf("t%d", r.n)
	r.Send(tag + " " + fmt.Sprintf(format, args...) + "\r\n")
	return r.until(tag)
}

func (r *raw) until(tag string) ([]string, string) {
	r.T.Helper()
	var untagged []string
	for {
		l := r.Line()
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			return untagged, rest
		}
		untagged = append(untagged, l)
	}
}

// ok runs a command that must succeed.
func (r *raw) ok(format string, args ...any) []string {
	r.T.Helper()
	u, st := r.cmd(format, args...)
	if !strings.HasPrefix(st, "OK") {
		r.T.Fatalf("%s: %s (untagged %q)", fmt.Sprintf(format, args...), st, u)
	}
	return u
}

func (r *raw) login(user string) {
	r.T.Helper()
	r.ok("LOGIN %s pw-%s", user, strings.Split(user, "@")[0])
}

func (r *raw) starttls() {
	r.T.Helper()
	r.ok("STARTTLS")
	r.StartTLS(&tls.Config{InsecureSkipVerify: true})
}
