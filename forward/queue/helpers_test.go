package queue

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/foxcpp/go-mockdns"

	"yubin/internal/testutil"
	"yubin/internal/testutil/teststore"
	"yubin/internal/tlsutil"
	"yubin/store"
)

// clock is an injected clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// received is one message the sink accepted.
type received struct {
	From string
	To   []string
	Data []byte
	TLS  bool
	User string // AUTH identity
	UTF8 bool
}

// sink is a real SMTP server (go-smtp) on 127.0.0.1 playing a remote MX.
type sink struct {
	t     testing.TB
	addr  string
	got   chan received
	conns atomic.Int64
	// rcpt, when set, decides each RCPT (nil error: accept).
	rcpt func(to string) error
	// data, when set, decides the reply to the final dot.
	data func() error
	// user/pass enables AUTH PLAIN.
	user, pass string
	// quiet only counts messages (benchmarks).
	quiet bool
	count atomic.Int64
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func newSink(t testing.TB, withTLS bool) *sink {
	t.Helper()
	s := &sink{t: t, got: make(chan received, 1000)}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		return &sinkSession{s: s, tls: isTLS}, nil
	}))
	srv.Domain = "mx.remote.test"
	srv.EnableSMTPUTF8 = true
	srv.MaxMessageBytes = 64 << 20
	srv.ErrorLog = nopLogger{}
	if withTLS {
		conf, err := tlsutil.SelfSigned(filepath.Join(t.TempDir(), "tls"), "mx.remote.test")
		if err != nil {
			t.Fatal(err)
		}
		srv.TLSConfig = conf
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	go srv.Serve(countingListener{ln, &s.conns})
	t.Cleanup(func() { srv.Close() })
	return s
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

type sinkSession struct {
	s    *sink
	tls  bool
	user string
	cur  received
}

func (x *sinkSession) AuthMechanisms() []string {
	if x.s.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (x *sinkSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != x.s.user || pass != x.s.pass {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		x.user = user
		return nil
	}), nil
}

func (x *sinkSession) Reset()        { x.cur = received{} }
func (x *sinkSession) Logout() error { return nil }
func (x *sinkSession) Mail(from string, opts *smtp.MailOptions) error {
	if x.s.user != "" && x.user == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "auth required"}
	}
	x.cur = received{From: from, TLS: x.tls, User: x.user, UTF8: opts != nil && opts.UTF8}
	return nil
}
func (x *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if x.s.rcpt != nil {
		if err := x.s.rcpt(to); err != nil {
			return err
		}
	}
	x.cur.To = append(x.cur.To, to)
	return nil
}
func (x *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if x.s.data != nil {
		if err := x.s.data(); err != nil {
			return err
		}
	}
	x.cur.Data = b
	if x.s.quiet {
		x.s.count.Add(int64(len(x.cur.To)))
		return nil
	}
	x.s.got <- x.cur
	return nil
}

// next returns the next received message or fails the test.
func (s *sink) next() received {
	s.t.Helper()
	select {
	case m := <-s.got:
		return m
	case <-time.After(10 * time.Second):
		s.t.Fatal("the sink received nothing")
	}
	return received{}
}

func (s *sink) none() {
	s.t.Helper()
	select {
	case m := <-s.got:
		s.t.Fatalf("unexpected message to %v", m.To)
	default:
	}
}

// env is a store, a clock, and DNS mapping domains to sinks.
type env struct {
	t     testing.TB
	st    store.Store
	clock *clock
	zones map[string]mockdns.Zone
	hosts map[string]string // fake IP:25 -> sink address
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, clock: newClock(), zones: map[string]mockdns.Zone{}, hosts: map[string]string{}}
	e.st = teststore.New(t, teststore.Options{Now: e.clock.Now, NoSync: testing.Short(),
		Domains:  []teststore.Domain{{Name: "example.com"}, {Name: "sales.example.com", Parent: "example.com"}},
		Accounts: []store.Account{{Address: "info@example.com"}}})
	return e
}

// route makes domain's MX point at s (through a fake address).
func (e *env) route(domain string, s *sink) {
	ip := "192.0.2." + itoa(len(e.hosts)+1)
	mx := "mx." + domain + "."
	e.zones[domain+"."] = mockdns.Zone{MX: []net.MX{{Host: mx, Pref: 10}}}
	e.zones[mx] = mockdns.Zone{A: []string{ip}}
	e.hosts[ip+":25"] = s.addr
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func (e *env) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	real, ok := e.hosts[addr]
	if !ok {
		real = addr
		if strings.HasPrefix(addr, "192.0.2.") {
			return nil, errors.New("connection refused (test: no sink)")
		}
	}
	var d net.Dialer
	return d.DialContext(ctx, network, real)
}

func (e *env) runner(cfg Config) *Runner {
	if cfg.Hostname == "" {
		cfg.Hostname = "mail.example.com"
	}
	var log *slog.Logger
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return New(e.st, cfg, Options{Resolver: &mockdns.Resolver{Zones: e.zones}, Dial: e.dial, Now: e.clock.Now, Log: log})
}

func (e *env) enqueue(o store.Outbound) string {
	e.t.Helper()
	if o.Origin == "" {
		o.Origin = store.OriginSubmission
	}
	ids, err := e.st.Enqueue(context.Background(), o)
	testutil.Must(e.t, err)
	return ids[0]
}

func (e *env) verify() {
	e.t.Helper()
	problems, err := e.st.Verify(ctx)
	testutil.Must(e.t, err)
	if len(problems) > 0 {
		e.t.Fatalf("store.Verify:\n%s", strings.Join(problems, "\n"))
	}
}

func (e *env) queueLen() int {
	all, err := e.st.QueueEntries(ctx)
	testutil.Must(e.t, err)
	return len(all)
}

func (e *env) inbox(acct string) [][]byte {
	e.t.Helper()
	msgs, _, err := e.st.Messages(ctx, acct, "INBOX")
	testutil.Must(e.t, err)
	var out [][]byte
	for _, m := range msgs {
		b, err := e.st.ReadMessage(ctx, acct, "INBOX", m.UID)
		testutil.Must(e.t, err)
		out = append(out, b)
	}
	return out
}

var testMsg = []byte("From: Info <info@example.com>\r\nTo: <bob@remote.test>\r\nSubject: hello\r\nDate: Sun, 1 Mar 2026 09:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\nHello there.\r\n.leading dot\r\n")

var _ = tls.VersionTLS12
