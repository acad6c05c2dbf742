package imapd

import (
	"strings"
	"testing"

	"yubin/internal/testutil/teststore"
)

// CREATE beyond the store's mailbox limit is NO [LIMIT], saying the limit.
func TestMailboxLimit(t *testing.T) {
	e := newEnvStore(t, Config{}, teststore.Options{MaxMailboxes: 8})
	r := dialRaw(t, e.implicit, true)
	r.login("info@example.com")
	r.ok("CREATE a")
	r.ok("CREATE b")
	if _, st := r.cmd("CREATE c/d"); !strings.HasPrefix(st, "NO [LIMIT]") || !strings.Contains(st, "at most 8 mailboxes") {
		t.Fatalf("CREATE over the limit: %q", st)
	}
	r.ok("CREATE c")
	if _, st := r.cmd("RENAME c x/c"); !strings.HasPrefix(st, "NO [LIMIT]") {
		t.Fatalf("RENAME over the limit: %q", st)
	}
	r.ok("DELETE a")
	r.ok("RENAME c x/c")
}
