package queue

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/foxcpp/go-mockdns"

	"yubin/internal/testutil"
	"yubin/internal/testutil/smtpsink"
	"yubin/internal/testutil/teststore"
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

// newSink is a remote MX.
func newSink(t testing.TB, withTLS bool) *smtpsink.Sink {
	return smtpsink.New(t, "mx.remote.test", withTLS)
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
func (e *env) route(domain string, s *smtpsink.Sink) {
	ip := "192.0.2." + itoa(len(e.hosts)+1)
	mx := "mx." + domain + "."
	e.zones[domain+"."] = mockdns.Zone{MX: []net.MX{{Host: mx, Pref: 10}}}
	e.zones[mx] = mockdns.Zone{A: []string{ip}}
	e.hosts[ip+":25"] = s.Addr
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
