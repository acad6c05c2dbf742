package queue

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/foxcpp/go-mockdns"

	"yubin/internal/testutil"
	"yubin/store"
)

// loggedRunner is e.runner with its log kept in a buffer.
func (e *env) loggedRunner(cfg Config) (*Runner, *testutil.Buffer) {
	if cfg.Hostname == "" {
		cfg.Hostname = "mail.example.com"
	}
	var log testutil.Buffer
	return New(e.st, cfg, Options{Resolver: &mockdns.Resolver{Zones: e.zones}, Dial: e.dial, Now: e.clock.Now,
		Log: slog.New(slog.NewTextHandler(&log, nil))}), &log
}

// The smart host must get TLS unless the config says otherwise: one that
// offers no STARTTLS, or fails the handshake, gets no MAIL command at all;
// the entry stays queued with the reason, is tried again after the
// backoff, and a warning names the host.
func TestSmartHostTLSRequired(t *testing.T) {
	for name, tc := range map[string]struct {
		sinkTLS bool
		cfg     Config
		why     string
	}{
		"no STARTTLS offered":       {false, Config{}, "offers no STARTTLS"},
		"starttls, none offered":    {false, Config{SmartHostTLS: "starttls"}, "offers no STARTTLS"},
		"certificate not trusted":   {true, Config{SmartHostVerifyTLS: true}, "failed the TLS handshake"},
		"none, but with a password": {false, Config{SmartHostTLS: "none", SmartHostUser: "u", SmartHostPassword: "p"}, "offers no STARTTLS"},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			sk := newSink(t, tc.sinkTLS)
			tc.cfg.SmartHost = sk.Addr
			r, log := e.loggedRunner(tc.cfg)
			id := e.enqueue(store.Outbound{From: "info@example.com", ReturnPath: "info@example.com", Recipients: []string{"a@one.test"}, Message: testMsg})
			for attempt := 1; attempt <= 2; attempt++ {
				r.RunDue(ctx)
				if sk.Mails.Load() != 0 {
					t.Fatalf("attempt %d: %d MAIL commands reached a smart host without TLS", attempt, sk.Mails.Load())
				}
				sk.None()
				q, err := e.st.QueueEntry(ctx, id)
				testutil.Must(t, err)
				if q.Attempts != attempt || !strings.Contains(q.LastError, tc.why) || !strings.Contains(q.LastError, "nothing was sent") {
					t.Fatalf("attempt %d: entry %+v", attempt, q)
				}
				e.clock.Add(DefaultRetryInitial << (attempt - 1))
			}
			if sk.Conns.Load() != 2 {
				t.Fatalf("%d connections, want one per attempt", sk.Conns.Load())
			}
			if got := log.String(); !strings.Contains(got, "level=WARN msg=\"smart host without TLS: nothing sent") || !strings.Contains(got, "addr="+sk.Addr) {
				t.Fatalf("no warning naming the smart host:\n%s", got)
			}
			if len(e.inbox("info@example.com")) != 0 {
				t.Fatal("a temporary failure bounced")
			}
			e.verify()
		})
	}
}

// Plain text to the smart host only when the config says so:
// "opportunistic" uses STARTTLS when offered and sends in the clear
// otherwise; "none" never starts TLS.
func TestSmartHostTLSOptedOut(t *testing.T) {
	for name, tc := range map[string]struct {
		mode    string
		sinkTLS bool
		wantTLS bool
	}{
		"opportunistic, offered":     {"opportunistic", true, true},
		"opportunistic, not offered": {"opportunistic", false, false},
		"none, offered":              {"none", true, false},
		"none, not offered":          {"none", false, false},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			sk := newSink(t, tc.sinkTLS)
			e.enqueue(store.Outbound{From: "info@example.com", ReturnPath: "info@example.com", Recipients: []string{"a@one.test"}, Message: testMsg})
			e.runner(Config{SmartHost: sk.Addr, SmartHostTLS: tc.mode}).RunDue(ctx)
			if m := sk.Next(); m.TLS != tc.wantTLS || m.To[0] != "a@one.test" {
				t.Fatalf("got %+v, want TLS %v", m, tc.wantTLS)
			}
			if e.queueLen() != 0 {
				t.Fatal("still queued")
			}
		})
	}
}
