package e2e

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"yubin/internal/testutil"
)

// TestShutdownWithIdleClients: SIGTERM with a client idle on every
// listener — plain ones before STARTTLS, implicit-TLS ones before their
// ClientHello. Each gets its goodbye and the process exits at once (it
// took 31 s with an idle client on 143: the shutdown waited it out).
func TestShutdownWithIdleClients(t *testing.T) {
	data, cfg := newDataDir(t)
	srv := startServer(t, data, cfg)
	bye := map[string]string{"smtp": "421 4.4.2 ", "submission": "421 4.4.2 ",
		"pop3": "-ERR [SYS/TEMP] Server shutting down", "imap": "* BYE Server shutting down"}
	idle := map[string]*testutil.Conn{}
	for name := range bye {
		c := testutil.Dial(t, srv.addrs[name], nil)
		c.Line() // the greeting
		idle[name] = c
	}
	var stalled []*testutil.Conn
	for _, name := range []string{"submissions", "pop3s", "imaps"} {
		stalled = append(stalled, testutil.Dial(t, srv.addrs[name], nil))
	}
	start := time.Now()
	srv.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-srv.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("still running 20 s after SIGTERM:\n%s", srv.log.String())
	}
	took := time.Since(start)
	t.Logf("exit %v after SIGTERM", took.Round(time.Millisecond))
	if srv.err != nil || took > 5*time.Second {
		t.Fatalf("exit %v after %v:\n%s", srv.err, took, srv.log.String())
	}
	for name, want := range bye {
		if got := idle[name].Line(); !strings.HasPrefix(got, want) {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	for _, c := range stalled {
		c.UntilClosed(start, 5*time.Second)
	}
}

// TestConnectionLimitsFromConfig: the per-address caps (each with its
// refusal), the handshake deadline and the login deadline are the
// config's.
func TestConnectionLimitsFromConfig(t *testing.T) {
	data, cfg := newDataDir(t)
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	testutil.Must(t, err)
	_, err = f.WriteString(`[tls]
handshake_timeout = "400ms"
[smtp]
max_connections_per_ip = 1
[pop3]
max_connections_per_ip = 1
[imap]
max_connections_per_ip = 1
auth_timeout = "1500ms"
`)
	testutil.Must(t, err)
	testutil.Must(t, f.Close())
	srv := startServer(t, data, cfg)
	// Plain listeners only: a TLS client here would have the short
	// handshake time too.
	listener := func(name string) []testutil.Listener { return []testutil.Listener{{Addr: srv.addrs[name]}} }
	start := time.Now()
	testutil.CheckPerIPCap(t, 1, listener("smtp"), "220 ", "421 4.7.0 mx.example.com Too many connections from your address, try again later")
	testutil.CheckPerIPCap(t, 1, listener("pop3"), "+OK", "-ERR [SYS/TEMP] Too many connections from your address, try again later")
	imap := testutil.CheckPerIPCap(t, 1, listener("imap"), "* OK", "* BYE [UNAVAILABLE] Too many connections from your address, try again later")[0]
	// The IMAP connection the cap let in does not log in.
	if got := imap.ClosedBetween(start, 1500*time.Millisecond, 5*time.Second); got != "* BYE Autologout; not logged in in time\r\n" {
		t.Errorf("imap, not logged in: %q", got)
	}
	start = time.Now()
	testutil.Dial(t, srv.addrs["submissions"], nil).ClosedBetween(start, 400*time.Millisecond, 5*time.Second)
	srv.stop(t)
}
