package imapd

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"yubin/internal/imapwire"

	"yubin/internal/spool"
	"yubin/internal/testutil"
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

// noMailbox fails the test if the account has a mailbox of that name.
func (e *env) noMailbox(t *testing.T, account, name string) {
	t.Helper()
	if _, err := e.st.Mailbox(t.Context(), account, name); err == nil {
		t.Fatalf("mailbox %q exists", name)
	}
}

// expectBye reads the connection to its end: a BYE, then nothing.
func (r *raw) expectBye(why string) {
	r.T.Helper()
	if l := r.Line(); !strings.HasPrefix(l, "* BYE "+why) {
		r.T.Fatalf("want BYE %s, got %q", why, l)
	}
	r.SetReadDeadline(time.Now().Add(10 * time.Second))
	if rest, err := io.ReadAll(r.R); err != nil || len(rest) > 0 {
		r.T.Fatalf("after BYE: %q %v", rest, err)
	}
}

// A command line longer than the library takes is refused whole: its tail
// (past the library's 51,202-byte cut) never runs as a command. So are
// lines the library would read past their end or stop short of it.
func TestCommandLineInjection(t *testing.T) {
	e := newEnv(t, Config{})
	r := dialRaw(t, e.implicit, true)
	r.login("info@example.com")
	max := imapwire.DefaultLimits.MaxLine
	long := func(prefix, tail string) string {
		return prefix + strings.Repeat("C", max+1-len(prefix)) + tail
	}
	// A line over the limit is dropped whole, to its end, and answered
	// with its tag: nothing in it runs.
	r.Send(long("a1 CREATE ", "Q2 CREATE injected\r\n") + "a3 NOOP\r\n")
	if _, st := r.until("a1"); st != "BAD Command line too long" {
		t.Fatalf("long line: %q", st)
	}
	if l := r.Line(); l != "a3 OK NOOP completed" {
		t.Fatalf("after the long line: %q", l)
	}
	// A long line ending with a non-synchronizing literal that looks like a
	// command: the literal goes with the line.
	lit := "Q4 CREATE injected4\r\n"
	r.Send(long("b1 APPEND INBOX (", fmt.Sprintf(") {%d+}\r\n%s\r\nb2 NOOP\r\n", len(lit), lit)))
	if _, st := r.until("b1"); st != "BAD Command line too long" {
		t.Fatalf("long APPEND: %q", st)
	}
	if l := r.Line(); l != "b2 OK NOOP completed" {
		t.Fatalf("after the long APPEND: %q", l)
	}
	// A CR in the middle of a line is not a line end.
	if _, st := r.cmd("NOOP\r\rQ5 CREATE injected5"); !strings.HasPrefix(st, "BAD") {
		t.Fatalf("bare CR: %q", st)
	}
	// A quoted string left open ends with its line (Dovecot says the same).
	if _, st := r.cmd("CREATE \"xx"); st != `BAD missing '"'` {
		t.Fatalf("open quote: %q", st)
	}
	// Just under the limit is a command like any other.
	r.ok("CREATE \"%s\"", strings.Repeat("x", 400))
	if _, st := r.cmd("CREATE \"%s\"", strings.Repeat("x", max-100)); !strings.HasPrefix(st, "NO [CANNOT] Invalid mailbox name: mailbox name") {
		t.Fatalf("CREATE of %d bytes: %q", max-100, st)
	}
	// In the middle of a command (after a literal the server has read),
	// a line over the limit ends the command.
	r.Send(long("d1 CREATE {1+}\r\nx ", "Q7 CREATE injected7\r\n") + "d2 NOOP\r\n")
	if _, st := r.until("d1"); st != "BAD Command line too long" {
		t.Fatalf("long continuation line: %q", st)
	}
	if l := r.Line(); l != "d2 OK NOOP completed" {
		t.Fatalf("after the long continuation: %q", l)
	}
	// In IDLE, anything but DONE ends IDLE with BAD.
	r.ok("SELECT INBOX")
	r.Send("i1 IDLE\r\n")
	if l := r.Line(); !strings.HasPrefix(l, "+") {
		t.Fatal(l)
	}
	r.Send(strings.Repeat("D", 4096) + "Q8 CREATE injected8\r\n")
	if _, st := r.until("i1"); st != "BAD Expected DONE" {
		t.Fatalf("IDLE: %q", st)
	}
	for _, n := range []string{"injected", "injected4", "injected5", "injected7", "injected8"} {
		e.noMailbox(t, "info@example.com", n)
	}
	// A line that never ends is not read for ever.
	r = dialRaw(t, e.implicit, true)
	r.Send(long("e1 NOOP ", strings.Repeat("x", imapwire.MaxSkip)))
	r.expectBye("Command line too long")
}

// Client mistakes in mailbox names get BAD with the reason, never the
// library's NO [SERVERBUG], whether the name is quoted or a literal; good
// names as literals still work.
func TestMailboxNameMistakes(t *testing.T) {
	e := newEnv(t, Config{})
	r := dialRaw(t, e.implicit, true)
	r.login("info@example.com")
	// lit sends a command whose last mailbox argument is a synchronizing
	// literal, and the rest of it.
	lit := func(cmd, name, rest string) string {
		r.T.Helper()
		r.n++
		tag := fmt.Sprintf("t%d", r.n)
		r.Send(fmt.Sprintf("%s %s {%d}\r\n", tag, cmd, len(name)))
		if l := r.Line(); !strings.HasPrefix(l, "+ ") {
			t.Fatalf("%s {%d}: %q", cmd, len(name), l)
		}
		r.Send(name + rest + "\r\n")
		_, st := r.until(tag)
		return st
	}
	// As Dovecot (and imaptest's atoms group) want: a name that is not
	// modified UTF-7 names no mailbox there can be (NO), a LIST pattern
	// of it matches none (OK).
	const nul = "NO [CANNOT] Invalid mailbox name: contains a NUL byte"
	const utf7 = "NO [CANNOT] Invalid mailbox name: invalid modified UTF-7"
	// A NUL is not allowed in a quoted string at all (RFC 3501 QUOTED-CHAR).
	const quotedNUL = "BAD NUL in quoted string"
	for _, c := range []struct{ got, want string }{
		{second(r.cmd("CREATE \"a\x00b\"")), quotedNUL},
		{second(r.cmd("SELECT \"a\x00b\"")), quotedNUL},
		{second(r.cmd("RENAME Junk \"a\x00b\"")), quotedNUL},
		{second(r.cmd("STATUS \"a\x00b\" (MESSAGES)")), quotedNUL},
		{second(r.cmd("CREATE \"a\\&b\"")), `BAD bad escape \& in quoted string`},
		{second(r.cmd("CREATE \"a&b\"")), utf7},
		{lit("CREATE", "a\x00b", ""), nul},
		{lit("CREATE", "&Jjo", ""), utf7},
		{lit("SELECT", "a\tb", ""), "NO [CANNOT] Invalid mailbox name: contains a control character"},
		{lit("RENAME Junk", "&Jjo", ""), utf7},
		{lit("STATUS", "&Jjo", " (MESSAGES)"), utf7},
		{lit("LIST \"\"", "&Jjo", ""), "OK LIST completed"},
		{lit("APPEND", "&Jjo", " {1+}\r\nx"), utf7},
		{lit("CREATE", "&Jjo", " {2+}\r\nx1 CREATE y"), utf7},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	// Good names as literals, the second of two, and a literal message
	// after a literal name.
	if st := lit("CREATE", "Work", ""); st != "OK CREATE completed" {
		t.Fatal(st)
	}
	r.Send("r1 RENAME {4}\r\n")
	for _, next := range []string{"Work {8}\r\n", "W&AOQ-rk\r\n"} {
		if l := r.Line(); !strings.HasPrefix(l, "+ ") {
			t.Fatalf("RENAME: %q", l)
		}
		r.Send(next)
	}
	if _, st := r.until("r1"); st != "OK RENAME completed" {
		t.Fatal(st)
	}
	msg := "Subject: lit\r\n\r\nx\r\n"
	if st := lit("APPEND", "W&AOQ-rk", fmt.Sprintf(" (\\Seen) {%d+}\r\n%s", len(msg), msg)); !strings.HasPrefix(st, "OK [APPENDUID") {
		t.Fatal(st)
	}
	if st := lit("GETQUOTAROOT", "W&AOQ-rk", ""); st != "OK GETQUOTAROOT completed" {
		t.Fatal(st)
	}
	if m, err := e.st.Mailbox(t.Context(), "info@example.com", "Wärk"); err != nil || m.Messages != 1 {
		t.Fatalf("Wärk: %+v %v", m, err)
	}
	r.ok("NOOP")
	for _, n := range []string{"y", "a\x00b"} {
		e.noMailbox(t, "info@example.com", n)
	}
}

func second(_ []string, s string) string { return s }

// waitFor polls cond until it holds, for at most 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("waiting for %s", what)
		}
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// Stalled APPENDs of large announced literals, part sent, cost a fixed
// buffer each, not their size: beyond the spool's small buffer the literal
// goes to a file in the spool directory (0700). A completed one is stored
// byte for byte, and the files go with their APPENDs.
func TestStalledAppends(t *testing.T) {
	const (
		stalled  = 6
		announce = 16 << 20 // each APPEND's literal
		sent     = 1 << 20  // of which this much comes, then nothing
	)
	spoolDir := filepath.Join(t.TempDir(), "spool")
	sp, err := spool.Open(spoolDir, 0, 0)
	testutil.Must(t, err)
	e := newEnv(t, Config{Spool: sp, MaxUserIPConnections: stalled})
	testutil.Must(t, e.st.SetQuota(t.Context(), "info@example.com", 0))
	line := strings.Repeat("0123456789abcdef", 6) + "\r\n" // 98 bytes
	msg := "Subject: big\r\n\r\n" + strings.Repeat(line, (announce-100)/len(line))
	msg += strings.Repeat("x", announce-len(msg)-2) + "\r\n"
	var conns []*raw
	for i := 0; i < stalled; i++ {
		r := dialRaw(t, e.implicit, true)
		r.login("info@example.com")
		conns = append(conns, r)
	}
	before := heapInUse()
	for _, r := range conns {
		r.Send(fmt.Sprintf("a APPEND INBOX {%d}\r\n", announce))
		if l := r.Line(); !strings.HasPrefix(l, "+ ") {
			t.Fatal(l)
		}
		r.Send(msg[:sent])
	}
	waitFor(t, "the server to read what was sent", func() bool { return sp.InFlight() == stalled*sent })
	grown := int64(heapInUse()) - int64(before)
	t.Logf("%d stalled APPENDs of %d MiB (%d MiB sent): heap %+d KiB, %d KiB each",
		stalled, announce>>20, sent>>20, grown>>10, grown/stalled>>10)
	if grown > stalled<<20 {
		t.Errorf("heap grew %d MiB for %d stalled APPENDs", grown>>20, stalled)
	}
	if fi, err := os.Stat(spoolDir); err != nil || fi.Mode().Perm() != 0o700 || sp.Files() != stalled {
		t.Fatalf("spool directory: %v %v; %d files", fi, err, sp.Files())
	}
	// One completes; its message is stored as sent.
	conns[0].Send(msg[sent:] + "\r\n")
	_, st := conns[0].until("a")
	var uidValidity, uid uint32
	if _, err := fmt.Sscanf(st, "OK [APPENDUID %d %d]", &uidValidity, &uid); err != nil {
		t.Fatalf("APPEND: %q", st)
	}
	got, err := e.st.ReadMessage(t.Context(), "info@example.com", "INBOX", uid)
	testutil.Must(t, err)
	if string(got) != msg {
		t.Fatalf("stored %d bytes, sent %d, and they differ", len(got), len(msg))
	}
	// The others go away: their spool files and bytes go with them.
	for _, r := range conns[1:] {
		r.Close()
	}
	waitFor(t, "the spool to be empty", func() bool { return sp.InFlight() == 0 && sp.Files() == 0 })
	if left, _ := os.ReadDir(spoolDir); len(left) > 0 {
		t.Fatalf("left in the spool: %v", left)
	}
}

// The APPENDs in flight share the spool's budget: one that does not fit
// gets NO [LIMIT] before its literal is asked for (or, sent without
// waiting, it is dropped); one that runs over it on the way gets NO
// [LIMIT] once the rest is dropped; the connection goes on either way.
func TestAppendBudget(t *testing.T) {
	sp, err := spool.Open(filepath.Join(t.TempDir(), "spool"), 100<<10, 0)
	testutil.Must(t, err)
	e := newEnv(t, Config{Spool: sp})
	a := dialRaw(t, e.implicit, true)
	a.login("info@example.com")
	b := dialRaw(t, e.implicit, true)
	b.login("bob@example.com")
	body := func(n int) string { return "Subject: x\r\n\r\n" + strings.Repeat("y", n-14) }
	a.Send("a1 APPEND INBOX {80000}\r\n")
	if l := a.Line(); !strings.HasPrefix(l, "+ ") {
		t.Fatal(l)
	}
	a.Send(body(80000)[:79000])
	waitFor(t, "the server to read what was sent", func() bool { return sp.InFlight() == 79000 })
	if _, st := b.cmd("APPEND INBOX {40000}"); !strings.HasPrefix(st, "NO [LIMIT]") {
		t.Fatalf("APPEND over the budget: %q", st)
	}
	if _, st := b.cmd("APPEND INBOX {40000+}\r\n%s", body(40000)); !strings.HasPrefix(st, "NO [LIMIT]") {
		t.Fatalf("APPEND over the budget, LITERAL+: %q", st)
	}
	b.ok("NOOP")
	// b1 fits when it starts; by the time its literal comes, a2 has taken
	// the room.
	b.Send("b1 APPEND INBOX {20000}\r\n")
	if l := b.Line(); !strings.HasPrefix(l, "+ ") {
		t.Fatal(l)
	}
	a.Send(body(80000)[79000:] + "\r\n")
	if _, st := a.until("a1"); !strings.HasPrefix(st, "OK [APPENDUID") {
		t.Fatal(st)
	}
	a.Send("a2 APPEND INBOX {90000}\r\n")
	if l := a.Line(); !strings.HasPrefix(l, "+ ") {
		t.Fatal(l)
	}
	a.Send(body(90000)[:89000])
	waitFor(t, "the server to read what was sent", func() bool { return sp.InFlight() == 89000 })
	b.Send(body(20000) + "\r\n")
	if _, st := b.until("b1"); !strings.HasPrefix(st, "NO [LIMIT]") {
		t.Fatalf("APPEND that ran over the budget: %q", st)
	}
	b.ok("NOOP")
	a.Send(body(90000)[89000:] + "\r\n")
	if _, st := a.until("a2"); !strings.HasPrefix(st, "OK [APPENDUID") {
		t.Fatal(st)
	}
	b.ok("APPEND INBOX {40000+}\r\n%s", body(40000))
	if sp.InFlight() != 0 {
		t.Fatalf("%d bytes still in flight", sp.InFlight())
	}
	if m, _ := e.st.Mailbox(t.Context(), "bob@example.com", "INBOX"); m.Messages != 1 {
		t.Fatalf("bob has %d messages", m.Messages)
	}
}
