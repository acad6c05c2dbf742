package imapd

import (
	"testing"
	"time"

	"yubin/internal/testutil"
)

// A shutdown ends idle sessions at once: before STARTTLS (this took the
// whole shutdown timeout: the pre-TLS stage had no interrupt), in the
// middle of a handshake, before login on 993, logged in.
func TestShutdownIdleAtOnce(t *testing.T) {
	e := newEnv(t, Config{})
	plain := dialRaw(t, e.plain, false)
	plain.ok("CAPABILITY")
	stalled := dialRaw(t, e.plain, false)
	stalled.ok("STARTTLS")
	implicit := dialRaw(t, e.implicit, true)
	in := dialRaw(t, e.implicit, true)
	in.login("info@example.com")
	start := testutil.ShutdownWithin(t, e.srv.Shutdown, 2*time.Second)
	for _, c := range []*raw{plain, implicit, in} {
		if l := c.Line(); l != "* BYE Server shutting down" {
			t.Errorf("at shutdown: %q", l)
		}
	}
	stalled.UntilClosed(start, 5*time.Second)
}
