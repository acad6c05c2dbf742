package imapd

import (
	"io"
	"strings"
	"testing"
	"time"

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

// The logged-in connections of one account from one address are limited;
// the one refused stays usable, other accounts are not affected, and a
// logout makes room.
func TestUserIPConnections(t *testing.T) {
	e := newEnv(t, Config{MaxUserIPConnections: 3})
	var conns []*raw
	for i := 0; i < 3; i++ {
		r := dialRaw(t, e.implicit, true)
		r.login("info@example.com")
		conns = append(conns, r)
	}
	r := dialRaw(t, e.implicit, true)
	if _, st := r.cmd("LOGIN info@example.com pw-info"); !strings.HasPrefix(st, "NO [LIMIT]") {
		t.Fatalf("4th login: %q", st)
	}
	if _, st := r.cmd("SELECT INBOX"); strings.HasPrefix(st, "OK") {
		t.Fatal("a refused login is logged in")
	}
	r.Send("a AUTHENTICATE PLAIN AGluZm9AZXhhbXBsZS5jb20AcHctaW5mbw==\r\n") // \0info@example.com\0pw-info
	if _, st := r.until("a"); !strings.HasPrefix(st, "NO [LIMIT]") {
		t.Fatalf("4th AUTHENTICATE: %q", st)
	}
	r.login("bob@example.com")
	conns[0].ok("LOGOUT")
	conns[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(conns[0].R); err != nil {
		t.Fatal(err)
	}
	fresh := dialRaw(t, e.implicit, true)
	fresh.login("info@example.com")
	fresh.ok("SELECT INBOX")
	if _, st := dialRaw(t, e.implicit, true).cmd("LOGIN info@example.com pw-info"); !strings.HasPrefix(st, "NO [LIMIT]") {
		t.Fatalf("login over the limit again: %q", st)
	}
}
