package pop3d

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"yubin/internal/auth"
	"yubin/internal/netserve"
	"yubin/internal/testutil"
	"yubin/internal/testutil/teststore"
	"yubin/internal/testutil/tlstest"
	"yubin/store"
)

type env struct {
	st       store.Store
	srv      *Server
	plain    string // 110-style listener address
	implicit string // 995-style listener address
}

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	st := teststore.New(t, teststore.Options{Accounts: []store.Account{
		{Address: "info@example.com", PasswordHash: teststore.PasswordHash(t, "pw-info")},
		{Address: "bob@example.com", PasswordHash: teststore.PasswordHash(t, "pw-bob")}}})
	cert := tlstest.SelfSigned(t, "localhost")
	srv := New(cfg, st, auth.New(st, auth.Policy{MaxFailures: 5}, nil), nil)
	addrs := testutil.Serve(t, srv, cert.Server, netserve.Plain, netserve.Implicit).Addrs
	return &env{st: st, srv: srv, plain: addrs[0], implicit: addrs[1]}
}

func (e *env) deliver(t testing.TB, to string, msg string) {
	t.Helper()
	_, err := e.st.Deliver(context.Background(), store.Delivery{Recipients: []string{to}, Message: []byte(msg)})
	testutil.Must(t, err)
}

// client is a minimal POP3 client speaking raw lines, so tests see the
// exact replies.
type client struct{ *testutil.Conn }

func dialPlain(t testing.TB, addr string) *client {
	t.Helper()
	cl := &client{testutil.Dial(t, addr, nil)}
	cl.expectOK()
	return cl
}

func dialTLS(t testing.TB, addr string) *client {
	t.Helper()
	cl := &client{testutil.Dial(t, addr, &tls.Config{InsecureSkipVerify: true})}
	cl.expectOK()
	return cl
}

func (c *client) send(format string, args ...any) {
	c.T.Helper()
	fmt.Fprintf(c.Conn, format+"\r\n", args...)
}

func (c *client) cmd(format string, args ...any) string {
	c.T.Helper()
	c.send(format, args...)
	return c.Line()
}

func (c *client) expectOK() string {
	c.T.Helper()
	l := c.Line()
	if !strings.HasPrefix(l, "+OK") {
		c.T.Fatalf("want +OK, got %q", l)
	}
	return l
}

func (c *client) ok(format string, args ...any) string {
	c.T.Helper()
	l := c.cmd(format, args...)
	if !strings.HasPrefix(l, "+OK") {
		c.T.Fatalf("%s: want +OK, got %q", fmt.Sprintf(format, args...), l)
	}
	return l
}

func (c *client) err(want string, format string, args ...any) {
	c.T.Helper()
	l := c.cmd(format, args...)
	if !strings.HasPrefix(l, "-ERR") || !strings.Contains(l, want) {
		c.T.Fatalf("%s: want -ERR containing %q, got %q", fmt.Sprintf(format, args...), want, l)
	}
}

// multi reads a multi-line body up to the "." line, un-stuffing dots.
func (c *client) multi() []string {
	c.T.Helper()
	var out []string
	for {
		l := c.Line()
		if l == "." {
			return out
		}
		if strings.HasPrefix(l, ".") {
			l = l[1:]
		}
		out = append(out, l)
	}
}

func (c *client) startTLS() {
	c.T.Helper()
	c.ok("STLS")
	c.StartTLS(&tls.Config{InsecureSkipVerify: true})
}

func (c *client) login(user string) {
	c.T.Helper()
	c.ok("USER %s", user)
	c.ok("PASS pw-%s", strings.ToLower(strings.Split(user, "@")[0]))
}

func TestCapaAndTLSRules(t *testing.T) {
	e := newEnv(t, Config{})
	c := dialPlain(t, e.plain)
	c.ok("CAPA")
	caps := strings.Join(c.multi(), "|")
	if !strings.Contains(caps, "STLS") || strings.Contains(caps, "USER") || strings.Contains(caps, "SASL") {
		t.Fatalf("caps before TLS: %s", caps)
	}
	c.err("STLS", "USER info@example.com")
	c.err("STLS", "PASS x")
	c.err("STLS", "AUTH PLAIN AGluZm9AZXhhbXBsZS5jb20AcHctaW5mbw==")
	c.err("only valid after login", "STAT")
	c.startTLS()
	c.ok("CAPA")
	caps = strings.Join(c.multi(), "|")
	for _, want := range []string{"TOP", "UIDL", "USER", "SASL PLAIN", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "IMPLEMENTATION"} {
		if !strings.Contains(caps, want) {
			t.Errorf("caps after TLS lack %s: %s", want, caps)
		}
	}
	if strings.Contains(caps, "STLS") {
		t.Errorf("STLS offered twice: %s", caps)
	}
	c.err("Already", "STLS")
	c.login("info@example.com")
	c.ok("CAPA")
	if caps := strings.Join(c.multi(), "|"); strings.Contains(caps, "USER") {
		t.Errorf("USER offered in TRANSACTION state: %s", caps)
	}
	c.ok("QUIT")
}

func TestCommands(t *testing.T) {
	e := newEnv(t, Config{})
	m1 := "Subject: one\r\nFrom: a@b.c\r\n\r\nline 1\r\n.hidden dot\r\nline 3\r\n"
	m2 := "Subject: two\r\n\r\nbody\r\n"
	e.deliver(t, "info@example.com", m1)
	e.deliver(t, "info@example.com", m2)
	c := dialTLS(t, e.implicit)
	c.err("Send USER first", "PASS pw-info")
	c.ok("USER info@example.com")
	c.err("[AUTH]", "PASS wrong")
	c.login("INFO@Example.com")
	if got := c.ok("STAT"); got != fmt.Sprintf("+OK 2 %d", len(m1)+len(m2)) {
		t.Fatalf("STAT: %q", got)
	}
	c.ok("LIST")
	if got := c.multi(); fmt.Sprint(got) != fmt.Sprintf("[1 %d 2 %d]", len(m1), len(m2)) {
		t.Fatalf("LIST: %v", got)
	}
	if got := c.ok("LIST 2"); got != fmt.Sprintf("+OK 2 %d", len(m2)) {
		t.Fatalf("LIST 2: %q", got)
	}
	c.ok("UIDL")
	uidls := c.multi()
	if len(uidls) != 2 || uidls[0] == uidls[1] {
		t.Fatalf("UIDL: %v", uidls)
	}
	c.ok("RETR 1")
	if got := strings.Join(c.multi(), "\r\n") + "\r\n"; got != m1 {
		t.Fatalf("RETR 1: %q", got)
	}
	c.ok("TOP 1 1")
	if got := c.multi(); fmt.Sprint(got) != "[Subject: one From: a@b.c  line 1]" {
		t.Fatalf("TOP 1 1: %q", got)
	}
	c.ok("TOP 1 0")
	if got := c.multi(); len(got) != 3 {
		t.Fatalf("TOP 1 0: %q", got)
	}
	c.err("No such message", "RETR 3")
	c.err("Invalid message number", "RETR 0")
	c.err("Invalid message number", "RETR x")
	c.err("takes 1 argument", "RETR")
	c.err("takes 1 argument", "DELE 1 2")
	c.err("non-negative", "TOP 1 -1")
	c.err("Unknown command", "XYZZ")
	c.err("3 or 4 letters", "XYZZY")
	c.err("Already logged in", "USER x")
	c.ok("NOOP")
	c.ok("DELE 1")
	c.err("already deleted", "DELE 1")
	c.err("already deleted", "RETR 1")
	if got := c.ok("STAT"); got != fmt.Sprintf("+OK 1 %d", len(m2)) {
		t.Fatalf("STAT after DELE: %q", got)
	}
	c.ok("LIST")
	if got := c.multi(); len(got) != 1 || !strings.HasPrefix(got[0], "2 ") {
		t.Fatalf("LIST after DELE: %v", got)
	}
	c.ok("RSET")
	if got := c.ok("STAT"); !strings.HasPrefix(got, "+OK 2 ") {
		t.Fatalf("STAT after RSET: %q", got)
	}
	c.err("Line too long", "NOOP %s", strings.Repeat("x", 300))
	c.ok("NOOP") // still usable
	c.ok("DELE 2")
	c.ok("QUIT")

	msgs, _, _ := e.st.Messages(t.Context(), "info@example.com", "INBOX")
	if len(msgs) != 1 || msgs[0].UID != 1 {
		t.Fatalf("after QUIT: %+v", msgs)
	}
	a, _ := e.st.Account(t.Context(), "info@example.com")
	if a.Used != int64(len(m1)) {
		t.Fatalf("quota not freed: used %d", a.Used)
	}
	// UIDL is stable in the next session.
	c = dialTLS(t, e.implicit)
	c.login("info@example.com")
	if got := c.ok("UIDL 1"); got != "+OK 1 "+strings.SplitN(uidls[0], " ", 2)[1] {
		t.Fatalf("UIDL changed: %q vs %q", got, uidls[0])
	}
}

func TestDroppedConnectionDeletesNothing(t *testing.T) {
	e := newEnv(t, Config{})
	e.deliver(t, "info@example.com", "Subject: x\r\n\r\ny\r\n")
	c := dialTLS(t, e.implicit)
	c.login("info@example.com")
	c.ok("DELE 1")
	c.Conn.Close()
	// The lock is released once the server notices; a new session proves it.
	var c2 *client
	for {
		c2 = dialTLS(t, e.implicit)
		c2.ok("USER info@example.com")
		l := c2.cmd("PASS pw-info")
		if strings.HasPrefix(l, "+OK") {
			break
		}
		if !strings.Contains(l, "[IN-USE]") {
			t.Fatalf("PASS: %q", l)
		}
		c2.ok("QUIT")
	}
	if got := c2.ok("STAT"); !strings.HasPrefix(got, "+OK 1 ") {
		t.Fatalf("message lost after a dropped connection: %q", got)
	}
}

func TestInUseAndSessionSnapshot(t *testing.T) {
	e := newEnv(t, Config{})
	e.deliver(t, "info@example.com", "Subject: 1\r\n\r\n1\r\n")
	c := dialTLS(t, e.implicit)
	c.login("info@example.com")
	c2 := dialTLS(t, e.implicit)
	c2.ok("USER info@example.com")
	c2.err("[IN-USE]", "PASS pw-info")
	// Another account is not affected.
	c3 := dialTLS(t, e.implicit)
	c3.login("bob@example.com")
	c3.ok("QUIT")
	// Mail delivered during the session does not appear in it ...
	e.deliver(t, "info@example.com", "Subject: 2\r\n\r\n2\r\n")
	if got := c.ok("STAT"); !strings.HasPrefix(got, "+OK 1 ") {
		t.Fatalf("STAT: %q", got)
	}
	c.ok("QUIT")
	// ... but in the next one.
	c = dialTLS(t, e.implicit)
	c.login("info@example.com")
	if got := c.ok("STAT"); !strings.HasPrefix(got, "+OK 2 ") {
		t.Fatalf("STAT in the next session: %q", got)
	}
}

func TestAuthPlain(t *testing.T) {
	e := newEnv(t, Config{})
	c := dialTLS(t, e.implicit)
	ir := base64.StdEncoding.EncodeToString([]byte("\x00info@example.com\x00pw-info"))
	c.err("Unsupported", "AUTH CRAM-MD5")
	c.err("Invalid base64", "AUTH PLAIN !!!")
	c.err("[AUTH]", "AUTH PLAIN %s", base64.StdEncoding.EncodeToString([]byte("\x00info@example.com\x00nope")))
	c.err("another user", "AUTH PLAIN %s", base64.StdEncoding.EncodeToString([]byte("bob@example.com\x00info@example.com\x00pw-info")))
	// Without an initial response: a "+ " continuation.
	if l := c.cmd("AUTH PLAIN"); l != "+ " {
		t.Fatalf("continuation: %q", l)
	}
	c.err("cancelled", "*")
	c.ok("AUTH PLAIN %s", ir)
	c.ok("STAT")
}

func TestLockoutAfterFailures(t *testing.T) {
	e := newEnv(t, Config{})
	c := dialTLS(t, e.implicit)
	for i := 0; i < 5; i++ {
		c.ok("USER info@example.com")
		c.err("[AUTH]", "PASS wrong")
	}
	c.ok("USER info@example.com")
	c.err("[SYS/TEMP]", "PASS pw-info") // right password, but refused for a while
}

func TestPipelining(t *testing.T) {
	e := newEnv(t, Config{})
	e.deliver(t, "info@example.com", "Subject: p\r\n\r\nx\r\n")
	c := dialTLS(t, e.implicit)
	c.send("USER info@example.com\r\nPASS pw-info\r\nSTAT\r\nUIDL 1\r\nNOOP")
	for i := 0; i < 5; i++ {
		c.expectOK()
	}
}

func TestShutdownDropsSessionsWithoutDeleting(t *testing.T) {
	e := newEnv(t, Config{})
	e.deliver(t, "info@example.com", "Subject: s\r\n\r\nx\r\n")
	c := dialTLS(t, e.implicit)
	c.login("info@example.com")
	c.ok("DELE 1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	testutil.Must(t, e.srv.Shutdown(ctx))
	if l := c.Line(); !strings.Contains(l, "shutting down") {
		t.Fatalf("on shutdown: %q", l)
	}
	if msgs, _, _ := e.st.Messages(ctx, "info@example.com", "INBOX"); len(msgs) != 1 {
		t.Fatal("shutdown deleted a message")
	}
}
