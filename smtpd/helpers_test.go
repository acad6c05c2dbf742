package smtpd

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"yubin/internal/auth"
	"yubin/internal/delivery"
	"yubin/internal/notify"
	"yubin/internal/spool"
	"yubin/internal/testutil"
	"yubin/internal/testutil/teststore"
	"yubin/internal/testutil/tlstest"
	"yubin/store"
)

const (
	testHost     = "mx.example.com"
	testPassword = "correct horse battery staple"
)

// testEnv is a running server on 127.0.0.1 with all three listeners.
type testEnv struct {
	t       testing.TB
	store   store.Store
	srv     *Server
	mx      string // 127.0.0.1:port of each listener
	sub     string
	subs    string
	client  *tls.Config // trusts the server's self-signed certificate
	serving *testutil.Serving
}

type envOptions struct {
	cfg Config
	// deliverer, if set, makes the delivery path (stages) over the store.
	deliverer func(st store.Store) *delivery.Deliverer
	policy    auth.Policy
	noSync    bool
	quiet     bool
	notify    bool // Config.Notifier: a notifier over the store
	// dir, if set, is the data directory of the store, which has the
	// domains and accounts already (storeOptions); else the store is new.
	dir string
}

// storeOptions are the test store's: its domains and accounts.
func storeOptions(noSync bool) teststore.Options {
	return teststore.Options{NoSync: noSync, Password: testPassword,
		Domains: []teststore.Domain{{Name: "example.com"}, {Name: "child.example.com", Parent: "example.com"},
			{Name: "sales.example.com", Parent: "example.com"}, {Name: "other.test"}},
		Accounts: []store.Account{{Address: userInfo, Quota: 1 << 20}, {Address: userBob},
			{Address: userAdmin, Role: store.RoleAdmin}, {Address: userCarol}}}
}

// Accounts created by newEnv, all with testPassword.
const (
	userInfo  = "info@example.com"  // user, 1 MiB quota
	userBob   = "bob@example.com"   // user, unlimited
	userAdmin = "admin@example.com" // admin, unlimited
	userCarol = "carol@other.test"  // user on another parent domain
)

func newEnv(t testing.TB, o envOptions) *testEnv {
	t.Helper()
	var st store.Store
	if o.dir != "" {
		st = teststore.OpenDir(t, o.dir, teststore.Options{NoSync: o.noSync})
	} else {
		st = teststore.New(t, storeOptions(o.noSync))
	}

	cert := tlstest.SelfSigned(t, testHost)

	var log *slog.Logger
	if !o.quiet && testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cfg := o.cfg
	if cfg.Hostname == "" {
		cfg.Hostname = testHost
	}
	if o.deliverer != nil {
		cfg.Deliverer = o.deliverer(st)
	} else {
		cfg.Deliverer = delivery.New(st, log)
	}
	if o.notify {
		cfg.Notifier = notify.New(st, testHost, nil)
	}
	if cfg.Spool == nil {
		cfg.Spool = testSpool(t, 0)
	}
	au := auth.New(st, o.policy, nil)
	srv := New(cfg, st, au, log)
	e := &testEnv{t: t, store: st, srv: srv, client: cert.Client}
	e.serving = testutil.Serve(t, srv, cert.Server, MX, Submission, Submissions)
	e.mx, e.sub, e.subs = e.serving.Addrs[0], e.serving.Addrs[1], e.serving.Addrs[2]
	return e
}

// testSpool opens a spool in a new temporary directory; budget 0 takes
// the default.
func testSpool(t testing.TB, budget int64) *spool.Spool {
	t.Helper()
	sp, err := spool.Open(filepath.Join(t.TempDir(), "spool"), budget, 0)
	testutil.Must(t, err)
	return sp
}

// inbox returns the raw messages in account's INBOX.
func (e *testEnv) inbox(account string) [][]byte {
	e.t.Helper()
	msgs, _, err := e.store.Messages(e.t.Context(), account, "INBOX")
	testutil.Must(e.t, err)
	var out [][]byte
	for _, m := range msgs {
		b, err := e.store.ReadMessage(e.t.Context(), account, "INBOX", m.UID)
		testutil.Must(e.t, err)
		out = append(out, b)
	}
	return out
}

func (e *testEnv) used(account string) int64 {
	e.t.Helper()
	a, err := e.store.Account(e.t.Context(), account)
	testutil.Must(e.t, err)
	return a.Used
}

// verify checks the store's invariants.
func (e *testEnv) verify() {
	e.t.Helper()
	problems, err := e.store.Verify(e.t.Context())
	testutil.Must(e.t, err)
	for _, p := range problems {
		e.t.Errorf("store.Verify: %s", p)
	}
}

// loginSubmission opens a session on 587, with STARTTLS, logged in as user.
func loginSubmission(t testing.TB, e *testEnv, user string) *rawClient {
	t.Helper()
	c := dialRaw(t, e.sub)
	c.cmd("EHLO laptop", 250, "")
	c.startTLS(e.client)
	c.cmd("EHLO laptop", 250, "")
	c.cmd("AUTH PLAIN "+plainIR(user, testPassword), 235, "2.0.0")
	return c
}

// rawClient speaks SMTP line by line, for exact control over what is sent.
type rawClient struct{ *testutil.Conn }

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	return dialRawTLS(t, addr, nil)
}

func dialRawTLS(t testing.TB, addr string, conf *tls.Config) *rawClient {
	t.Helper()
	c := &rawClient{testutil.Dial(t, addr, conf)}
	c.expect(220, "")
	return c
}

// reply reads one (possibly multi-line) reply: code and the text lines.
func (c *rawClient) reply() (int, []string, error) {
	c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var lines []string
	for {
		line, err := c.R.ReadString('\n')
		if err != nil {
			return 0, lines, err
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 4 {
			return 0, lines, fmt.Errorf("short reply line %q", line)
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil {
			return 0, lines, fmt.Errorf("bad reply line %q", line)
		}
		lines = append(lines, line[4:])
		if line[3] == ' ' {
			return code, lines, nil
		}
	}
}

// expect reads a reply and checks its code and, if enh is not empty, the
// enhanced status code at the start of the last line. It returns the text.
func (c *rawClient) expect(code int, enh string) string {
	c.T.Helper()
	got, lines, err := c.reply()
	if err != nil {
		c.T.Fatalf("reading reply (want %d %s): %v", code, enh, err)
	}
	text := strings.Join(lines, "\n")
	if got != code {
		c.T.Fatalf("reply %d %q, want %d %s", got, text, code, enh)
	}
	if enh != "" && !strings.HasPrefix(lines[len(lines)-1], enh+" ") {
		c.T.Fatalf("reply %d %q, want enhanced code %s", got, text, enh)
	}
	return text
}

// cmd sends one command line and checks the reply.
func (c *rawClient) cmd(line string, code int, enh string) string {
	c.T.Helper()
	c.Send(line + "\r\n")
	return c.expect(code, enh)
}

// startTLS upgrades the connection.
func (c *rawClient) startTLS(conf *tls.Config) {
	c.T.Helper()
	c.cmd("STARTTLS", 220, "2.0.0")
	c.StartTLS(conf)
}

// closed reports whether the server closed the connection (EOF).
func (c *rawClient) closed() bool {
	c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.R.ReadByte()
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err)
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// dataMsg sends DATA and the message (dot-stuffed, CRLF), expecting code.
func (c *rawClient) data(msg string, code int, enh string) string {
	c.T.Helper()
	c.cmd("DATA", 354, "")
	c.Send(dotStuff(msg) + ".\r\n")
	return c.expect(code, enh)
}

func dotStuff(msg string) string {
	if !strings.HasSuffix(msg, "\r\n") {
		msg += "\r\n"
	}
	lines := strings.SplitAfter(msg, "\r\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") {
			lines[i] = "." + l
		}
	}
	return strings.Join(lines, "")
}

func testMessage(subject string, bodyLines ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: sender@remote.test\r\nTo: info@example.com\r\nSubject: %s\r\nMessage-ID: <%s@remote.test>\r\n\r\n", subject, strings.ReplaceAll(subject, " ", "."))
	for _, l := range bodyLines {
		b.WriteString(l + "\r\n")
	}
	return b.String()
}

// smtpCode checks that err is an *smtp.SMTPError with code and enhanced code.
func smtpCode(t testing.TB, err error, code int, enh smtp.EnhancedCode) {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T), want SMTP %d %v", err, err, code, enh)
	}
	if se.Code != code || se.EnhancedCode != enh {
		t.Fatalf("SMTP error %d %v %q, want %d %v", se.Code, se.EnhancedCode, se.Message, code, enh)
	}
}
