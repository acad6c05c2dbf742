package imapd

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// \Recent (RFC 3501 2.3.2): the first session to SELECT a mailbox gets its
// new messages as recent, no other; EXAMINE claims nothing; a message
// delivered while a session has the mailbox selected is recent there.
func TestRecent(t *testing.T) {
	e := newEnv(t, Config{})
	for range 2 {
		e.deliver(t, "info@example.com", "", "Subject: r\r\n\r\nx\r\n")
	}
	ex := dialRaw(t, e.implicit, true)
	ex.login("info@example.com")
	if u := ex.ok("EXAMINE INBOX"); !slices.Contains(u, "* 2 RECENT") {
		t.Fatalf("EXAMINE: %q", u)
	}
	a := dialRaw(t, e.implicit, true)
	a.login("info@example.com")
	if u := a.ok("SELECT INBOX"); !slices.Contains(u, "* 2 RECENT") {
		t.Fatalf("first SELECT: %q", u)
	}
	if u := a.ok("STATUS INBOX (RECENT)"); !slices.Contains(u, "* STATUS INBOX (RECENT 2)") {
		t.Fatalf("STATUS in the session: %q", u)
	}
	b := dialRaw(t, e.implicit, true)
	b.login("info@example.com")
	if u := b.ok("SELECT INBOX"); !slices.Contains(u, "* 0 RECENT") {
		t.Fatalf("second SELECT: %q", u)
	}
	if u := b.ok("STATUS INBOX (RECENT)"); !slices.Contains(u, "* STATUS INBOX (RECENT 0)") {
		t.Fatalf("STATUS elsewhere: %q", u)
	}
	e.deliver(t, "info@example.com", "", "Subject: r3\r\n\r\nx\r\n")
	u := waitUpdate(t, a, "EXISTS")
	if !slices.Contains(u, "* 3 EXISTS") || !slices.Contains(u, "* 3 RECENT") { // 1 and 2 from the SELECT, 3 now
		t.Fatalf("delivery while selected: %q", u)
	}
	if u := b.ok("NOOP"); !slices.Contains(u, "* 0 RECENT") {
		t.Fatalf("the other session: %q", u)
	}
	if u := a.ok("UID SEARCH RECENT"); !slices.Contains(u, "* SEARCH 1 2 3") {
		t.Fatalf("SEARCH RECENT: %q", u)
	}
	if u := b.ok("UID SEARCH RECENT"); !slices.Contains(u, "* SEARCH") {
		t.Fatalf("SEARCH RECENT elsewhere: %q", u)
	}
	if u := a.ok("STORE 3 +FLAGS (\\Flagged)"); len(u) != 1 || !strings.Contains(u[0], `\Recent`) {
		t.Fatalf("STORE reply: %q", u)
	}
	if u := ex.ok("NOOP"); !slices.Contains(u, "* 3 EXISTS") {
		t.Fatalf("EXAMINE session: %q", u)
	}
}

// waitUpdate sends NOOPs until one answers with an untagged line
// containing what; the delivery's event may take a moment to arrive.
func waitUpdate(t *testing.T, r *raw, what string) []string {
	t.Helper()
	var all []string
	for range 200 {
		u := r.ok("NOOP")
		all = append(all, u...)
		for _, l := range u {
			if strings.Contains(l, what) {
				return all
			}
		}
	}
	t.Fatalf("no %s in %q", what, all)
	return nil
}

// CONDSTORE (RFC 7162 3.1): HIGHESTMODSEQ in SELECT and STATUS, MODSEQ in
// STORE replies, UNCHANGEDSINCE with MODIFIED.
func TestCondStore(t *testing.T) {
	e := newEnv(t, Config{})
	for range 3 {
		e.deliver(t, "info@example.com", "", "Subject: c\r\n\r\nx\r\n")
	}
	r := dialRaw(t, e.implicit, true)
	r.login("info@example.com")
	caps := r.ok("CAPABILITY")
	if !strings.Contains(caps[0], " CONDSTORE") || !strings.Contains(caps[0], " QRESYNC") {
		t.Fatalf("capabilities: %q", caps)
	}
	u := r.ok("SELECT INBOX (CONDSTORE)")
	hms := highestModSeq(t, u)
	if u := r.ok("STATUS INBOX (HIGHESTMODSEQ)"); !slices.Contains(u, fmt.Sprintf("* STATUS INBOX (HIGHESTMODSEQ %d)", hms)) {
		t.Fatalf("STATUS: %q (SELECT said %d)", u, hms)
	}
	u = r.ok("STORE 1 +FLAGS (\\Seen)")
	want := fmt.Sprintf(`* 1 FETCH (FLAGS (\Seen \Recent) MODSEQ (%d))`, hms+1)
	if len(u) != 1 || u[0] != want {
		t.Fatalf("STORE: %q, want %q", u, want)
	}
	// Message 1 changed after hms: a conditional store on 1:3 with
	// UNCHANGEDSINCE hms changes 2 and 3 and reports 1 as MODIFIED.
	u, st := r.cmd("STORE 1:3 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Flagged)", hms)
	if st != "OK [MODIFIED 1] Conditional STORE failed for some messages" || len(u) != 2 ||
		!strings.HasPrefix(u[0], "* 2 FETCH (MODSEQ (") || !strings.HasPrefix(u[1], "* 3 FETCH (MODSEQ (") {
		t.Fatalf("conditional STORE: %q %q", u, st)
	}
	if u, st := r.cmd("UID STORE 1 (UNCHANGEDSINCE 0) +FLAGS (\\Flagged)"); st != "OK [MODIFIED 1] Conditional STORE failed for some messages" || len(u) != 0 {
		t.Fatalf("UNCHANGEDSINCE 0: %q %q", u, st)
	}
	if _, st := r.cmd("STORE 1 (NOSUCH 1) +FLAGS (\\Flagged)"); !strings.HasPrefix(st, "BAD") {
		t.Fatalf("unknown modifier: %q", st)
	}
}

func highestModSeq(t *testing.T, u []string) uint64 {
	t.Helper()
	for _, l := range u {
		var n uint64
		if _, err := fmt.Sscanf(l, "* OK [HIGHESTMODSEQ %d]", &n); err == nil {
			return n
		}
	}
	t.Fatalf("no HIGHESTMODSEQ in %q", u)
	return 0
}

// QRESYNC (RFC 7162 3.2): ENABLE, SELECT (QRESYNC ...) with VANISHED
// (EARLIER) and the changed flags, VANISHED instead of EXPUNGE, CLOSED.
func TestQResync(t *testing.T) {
	e := newEnv(t, Config{})
	for range 4 {
		e.deliver(t, "info@example.com", "", "Subject: q\r\n\r\nx\r\n")
	}
	r := dialRaw(t, e.implicit, true)
	r.login("info@example.com")
	if _, st := r.cmd("SELECT INBOX (QRESYNC (1 1))"); !strings.HasPrefix(st, "BAD") {
		t.Fatalf("QRESYNC before ENABLE: %q", st)
	}
	if u := r.ok("ENABLE QRESYNC"); len(u) != 1 || u[0] != "* ENABLED QRESYNC" {
		t.Fatalf("ENABLE: %q", u)
	}
	u := r.ok("SELECT INBOX")
	hms := highestModSeq(t, u)
	var uidValidity uint32
	for _, l := range u {
		fmt.Sscanf(l, "* OK [UIDVALIDITY %d]", &uidValidity)
	}
	// Another session changes message 2 and expunges message 3.
	o := dialRaw(t, e.implicit, true)
	o.login("info@example.com")
	o.ok("SELECT INBOX")
	o.ok("STORE 2 +FLAGS (\\Answered)")
	o.ok("STORE 3 +FLAGS (\\Deleted)")
	o.ok("EXPUNGE")
	u = r.ok("SELECT INBOX (QRESYNC (%d %d 1:4))", uidValidity, hms)
	if !slices.Contains(u, "* OK [CLOSED] Previous mailbox closed") {
		t.Errorf("no CLOSED: %q", u)
	}
	if !slices.Contains(u, "* VANISHED (EARLIER) 3") {
		t.Errorf("no VANISHED (EARLIER) 3: %q", u)
	}
	found := false
	for _, l := range u {
		if strings.HasPrefix(l, "* 2 FETCH (UID 2 FLAGS (\\Answered") && strings.Contains(l, "MODSEQ (") {
			found = true
		}
	}
	if !found {
		t.Errorf("no FETCH of message 2: %q", u)
	}
	// An expunge while selected is VANISHED, not EXPUNGE.
	o.ok("STORE 1 +FLAGS (\\Deleted)")
	o.ok("EXPUNGE")
	if u := waitUpdate(t, r, "VANISHED"); !slices.Contains(u, "* VANISHED 1") {
		t.Fatalf("expunge while selected: %q", u)
	}
}

// FETCH MODSEQ, (CHANGEDSINCE n) and UID FETCH (CHANGEDSINCE n VANISHED).
func TestFetchModSeq(t *testing.T) {
	e := newEnv(t, Config{})
	for range 3 {
		e.deliver(t, "info@example.com", "", "Subject: f\r\n\r\nx\r\n")
	}
	r := dialRaw(t, e.implicit, true)
	r.login("info@example.com")
	r.ok("SELECT INBOX")
	u := r.ok("FETCH 1 (MODSEQ)")
	if len(u) != 2 || !strings.HasPrefix(u[0], "* OK [HIGHESTMODSEQ ") || !strings.HasPrefix(u[1], "* 1 FETCH (MODSEQ (") {
		t.Fatalf("FETCH MODSEQ (enabling CONDSTORE): %q", u)
	}
	hms := highestModSeq(t, u)
	r.ok("STORE 2 +FLAGS.SILENT (\\Flagged)")
	u = r.ok("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)", hms)
	if len(u) != 1 || !strings.HasPrefix(u[0], "* 2 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (") {
		t.Fatalf("CHANGEDSINCE: %q", u)
	}
	if _, st := r.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)", hms); !strings.HasPrefix(st, "BAD") {
		t.Fatalf("VANISHED without QRESYNC: %q", st)
	}
	r.ok("ENABLE QRESYNC")
	r.ok("STORE 3 +FLAGS.SILENT (\\Deleted)")
	r.ok("EXPUNGE")
	u = r.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)", hms)
	if len(u) != 2 || u[0] != "* VANISHED (EARLIER) 3" || !strings.Contains(u[1], "UID 2") {
		t.Fatalf("VANISHED: %q", u)
	}
	// BODY[] sets \Seen and says the new MODSEQ with it.
	u = r.ok("FETCH 1 (BODY[TEXT])")
	if len(u) == 0 || !strings.Contains(u[0], `FLAGS (\Seen \Recent) MODSEQ (`) {
		t.Fatalf("implicit \\Seen: %q", u)
	}
}

// ID (RFC 2971) before and after login, with values up to 1024 bytes.
func TestID(t *testing.T) {
	e := newEnv(t, Config{})
	r := dialRaw(t, e.implicit, true)
	if u := r.ok(`ID ("name" "test" "version" "%s")`, strings.Repeat("1", 1024)); len(u) != 1 || u[0] != `* ID ("name" "Yubin")` {
		t.Fatalf("ID: %q", u)
	}
	r.login("info@example.com")
	r.ok("ID NIL")
	if _, st := r.cmd(`ID ("odd")`); !strings.HasPrefix(st, "BAD") {
		t.Fatalf("odd ID list: %q", st)
	}
}

// Another session's keywords reach this one with FLAGS first, and a flag
// change older than what this session already said never goes out after
// it (imaptest's stress: "Keyword used without being in FLAGS", "MODSEQ
// dropped").
func TestUpdatesNeverGoBack(t *testing.T) {
	e := newEnv(t, Config{})
	e.deliver(t, "info@example.com", "", "Subject: k\r\n\r\nx\r\n")
	a := dialRaw(t, e.implicit, true)
	a.login("info@example.com")
	a.ok("SELECT INBOX (CONDSTORE)")
	b := dialRaw(t, e.implicit, true)
	b.login("info@example.com")
	b.ok("SELECT INBOX")
	b.ok("STORE 1 +FLAGS ($Label1)")
	b.ok("STORE 1 +FLAGS ($Label2)")
	u := waitUpdate(t, a, "FETCH")
	var flagsAt, fetchAt = -1, -1
	for i, l := range u {
		if strings.HasPrefix(l, "* FLAGS ") && strings.Contains(l, "$Label1") && flagsAt < 0 {
			flagsAt = i
		}
		if strings.Contains(l, " FETCH (") && fetchAt < 0 {
			fetchAt = i
		}
	}
	if flagsAt < 0 || flagsAt > fetchAt {
		t.Fatalf("keyword before FLAGS: %q", u)
	}
	// Two more changes; this session FETCHes the current flags before it
	// hears of them: the updates that follow are older and stay unsaid.
	b.ok("STORE 1 +FLAGS ($Label3)")
	b.ok("STORE 1 +FLAGS ($Label4)")
	u = a.ok("FETCH 1 (FLAGS MODSEQ)")
	var modseqs []string
	for _, l := range u {
		if i := strings.Index(l, "MODSEQ ("); i >= 0 && strings.Contains(l, " FETCH (") {
			modseqs = append(modseqs, l[i:])
		}
	}
	if len(modseqs) != 1 {
		t.Fatalf("FETCH and the stale updates: %q", u)
	}
}
