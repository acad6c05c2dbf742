package imapd

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"

	"yubin/internal/testutil"
	"yubin/store"
)

// nextTag is the tag raw.cmd gives the next command.
func (r *raw) nextTag() string { return fmt.Sprintf("t%d", r.n+1) }

// esearchOf returns the ESEARCH responses about the search tagged tag.
func esearchOf(lines []string, tag string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, `* ESEARCH (TAG "`+tag+`")`) {
			out = append(out, l)
		}
	}
	return out
}

// wantLines checks a command's untagged responses, in order.
func (r *raw) wantLines(cmd string, want ...string) {
	r.T.Helper()
	if got := r.ok("%s", cmd); !slices.Equal(got, want) {
		r.T.Errorf("%s:\n got %q\nwant %q", cmd, got, want)
	}
}

// updateOf runs a command and checks the ESEARCH updates it brings about
// the search tagged tag (none when want is empty).
func (r *raw) updateOf(tag, cmd string, want ...string) []string {
	r.T.Helper()
	lines := r.ok("%s", cmd)
	if got := esearchOf(lines, tag); !slices.Equal(got, want) {
		r.T.Errorf("%s: updates of %s\n got %q\nwant %q (all %q)", cmd, tag, got, want, lines)
	}
	return lines
}

// before reports whether the line a comes before the line b in lines.
func before(lines []string, a, b string) bool {
	i, j := slices.Index(lines, a), slices.Index(lines, b)
	return i >= 0 && j >= 0 && i < j
}

func TestContextCapabilities(t *testing.T) {
	_, r := searchEnv(t)
	caps := r.ok("CAPABILITY")[0]
	for _, c := range []string{"CONTEXT=SEARCH", "CONTEXT=SORT", "ESORT", "BINARY"} {
		if !strings.Contains(caps+" ", " "+c+" ") {
			t.Errorf("capability %s missing: %s", c, caps)
		}
	}
}

func TestSearchPartial(t *testing.T) {
	_, r := searchEnv(t, plainMsgs(5)...)
	partial := func(cmd, want string) {
		t.Helper()
		tag := r.nextTag()
		uid := ""
		if strings.HasPrefix(cmd, "UID ") {
			uid = " UID"
		}
		r.wantOne(cmd, `* ESEARCH (TAG "`+tag+`")`+uid+want)
	}
	partial("SEARCH RETURN (PARTIAL 1:1) ALL", " PARTIAL (1:1 1)")
	partial("SEARCH RETURN (PARTIAL 2:4) ALL", " PARTIAL (2:4 2:4)")
	partial("SEARCH RETURN (PARTIAL 4:2) ALL", " PARTIAL (2:4 2:4)")
	partial("SEARCH RETURN (PARTIAL 1:6) ALL", " PARTIAL (1:6 1:5)")
	partial("SEARCH RETURN (PARTIAL 6:6) ALL", " PARTIAL (6:6 NIL)")
	partial("SEARCH RETURN (PARTIAL 2:3) 1:2,4:5", " PARTIAL (2:3 2,4)")
	partial("SEARCH RETURN (PARTIAL 2:10) 1:2,4:5", " PARTIAL (2:10 2,4:5)")
	// From the end (RFC 9394): -1 is the last result.
	partial("SEARCH RETURN (PARTIAL -1:-2) ALL", " PARTIAL (-1:-2 4:5)")
	partial("SEARCH RETURN (PARTIAL -2:-1) ALL", " PARTIAL (-1:-2 4:5)")
	partial("SEARCH RETURN (PARTIAL -5:-9) ALL", " PARTIAL (-5:-9 1)")
	partial("SEARCH RETURN (PARTIAL -6:-7) ALL", " PARTIAL (-6:-7 NIL)")
	// The other options see the whole result.
	partial("SEARCH RETURN (MIN PARTIAL 2:3 MAX COUNT) ALL", " MIN 1 MAX 5 PARTIAL (2:3 2:3) COUNT 5")
	partial("SEARCH RETURN (PARTIAL 1:3) 99", " PARTIAL (1:3 NIL)")

	r.ok("STORE 2 +FLAGS (\\Deleted)")
	r.ok("EXPUNGE")
	partial("UID SEARCH RETURN (PARTIAL 2:2) ALL", " PARTIAL (2:2 3)")
	partial("UID SEARCH RETURN (PARTIAL -1:-1) ALL", " PARTIAL (-1:-1 5)")
	// SORT's is in the sort's order.
	partial("SORT RETURN (PARTIAL 1:3) (REVERSE SUBJECT) US-ASCII ALL", " PARTIAL (1:3 4,3,2)")
	partial("UID SORT RETURN (PARTIAL 2:3) (REVERSE SUBJECT) US-ASCII ALL", " PARTIAL (2:3 4,3)")

	// SAVE keeps what PARTIAL returned.
	partial("SEARCH RETURN (SAVE PARTIAL 2:3) ALL", " PARTIAL (2:3 2:3)")
	r.wantOne("SEARCH $", "* SEARCH 2 3")

	for _, cmd := range []string{
		"SEARCH RETURN (PARTIAL 1) ALL", "SEARCH RETURN (PARTIAL 1:*) ALL", "SEARCH RETURN (PARTIAL *:1) ALL",
		"SEARCH RETURN (PARTIAL 0:2) ALL", "SEARCH RETURN (PARTIAL -1:2) ALL", "SEARCH RETURN (PARTIAL 1:2 ALL) ALL",
		"SEARCH RETURN (PARTIAL 1:2 PARTIAL 3:4) ALL", "SEARCH RETURN (PARTIAL) ALL", "SEARCH RETURN (PARTIAL 1:4294967296) ALL",
	} {
		if st := r.tagged("%s", cmd); !strings.HasPrefix(st, "BAD") {
			t.Errorf("%s: %s, want BAD", cmd, st)
		}
		r.ok("NOOP")
	}
}

// A SEARCH with UPDATE follows this session's own changes: STORE, EXPUNGE
// (REMOVEFROM before the EXPUNGE), APPEND (ADDTO after the EXISTS), until
// CANCELUPDATE.
func TestSearchUpdateOwnChanges(t *testing.T) {
	_, r := searchEnv(t, plainMsgs(5)...)
	r.ok("SELECT INBOX") // none \Recent
	tag := r.nextTag()
	r.wantLines("SEARCH RETURN (UPDATE) BODY body SEEN", `* ESEARCH (TAG "`+tag+`")`)
	r.wantLines(`STORE 1,2,4 +FLAGS (\Seen)`, `* 1 FETCH (FLAGS (\Seen))`, `* 2 FETCH (FLAGS (\Seen))`, `* 4 FETCH (FLAGS (\Seen))`,
		`* ESEARCH (TAG "`+tag+`") ADDTO (0 1:2,4)`)
	r.wantLines(`STORE 1,2 -FLAGS (\Seen)`, `* 1 FETCH (FLAGS ())`, `* 2 FETCH (FLAGS ())`,
		`* ESEARCH (TAG "`+tag+`") REMOVEFROM (0 1:2)`)
	r.updateOf(tag, `STORE 3:5 +FLAGS.SILENT (\Deleted)`)
	// 4 goes while it is still 4: its REMOVEFROM comes just before its
	// EXPUNGE.
	r.wantLines("EXPUNGE", "* 3 EXPUNGE", `* ESEARCH (TAG "`+tag+`") REMOVEFROM (0 3)`, "* 3 EXPUNGE", "* 3 EXPUNGE")

	msg := "Subject: six\r\n\r\nbody six\r\n"
	u, st := r.cmd("APPEND INBOX (\\Seen) {%d+}\r\n%s", len(msg), msg)
	if !strings.HasPrefix(st, "OK") || !before(u, "* 3 EXISTS", `* ESEARCH (TAG "`+tag+`") ADDTO (0 3)`) {
		t.Errorf("APPEND: %q %s", u, st)
	}
	// One that does not match adds nothing.
	msg = "Subject: seven\r\n\r\nnothing\r\n"
	if u, _ := r.cmd("APPEND INBOX (\\Seen) {%d+}\r\n%s", len(msg), msg); len(esearchOf(u, tag)) != 0 {
		t.Errorf("APPEND of a message that does not match: %q", u)
	}

	// The tag of a search with UPDATE cannot be used for another.
	r.Send(tag + " SEARCH RETURN (UPDATE) ALL\r\n")
	if _, st := r.until(tag); !strings.HasPrefix(st, "BAD") {
		t.Errorf("tag reused for UPDATE: %s", st)
	}
	r.Send(tag + " SEARCH RETURN (COUNT) ALL\r\n")
	if _, st := r.until(tag); !strings.HasPrefix(st, "OK") {
		t.Errorf("tag reused without UPDATE: %s", st)
	}

	for _, cmd := range []string{"CANCELUPDATE", `CANCELUPDATE "nope"`, `CANCELUPDATE "` + tag + `" "nope"`} {
		if st := r.tagged("%s", cmd); !strings.HasPrefix(st, "BAD") {
			t.Errorf("%s: %s, want BAD", cmd, st)
		}
	}
	r.ok(`CANCELUPDATE "%s"`, tag)
	r.updateOf(tag, `STORE 1 +FLAGS (\Seen)`)
	if st := r.tagged(`CANCELUPDATE "%s"`, tag); !strings.HasPrefix(st, "BAD") {
		t.Errorf("CANCELUPDATE twice: %s", st)
	}
}

// RETURN (UPDATE ...) honours the other options at first; the updates
// follow another session's changes, during IDLE too, and with UID
// SEARCH name UIDs, expunges included.
func TestSearchUpdateOtherSession(t *testing.T) {
	e := newEnv(t, Config{})
	for i := 1; i <= 4; i++ {
		e.deliver(t, "info@example.com", "", fmt.Sprintf("Subject: m%d\r\n\r\nbody\r\n", i))
	}
	a := selectedRaw(t, e, "INBOX")
	b := selectedRaw(t, e, "INBOX")
	tag := a.nextTag()
	a.wantLines("UID SEARCH RETURN (UPDATE COUNT) OR FLAGGED SUBJECT m1", `* ESEARCH (TAG "`+tag+`") UID COUNT 1`)
	seq := a.nextTag()
	a.wantLines("SEARCH RETURN (UPDATE ALL) FLAGGED", `* ESEARCH (TAG "`+seq+`")`)

	b.ok(`STORE 2,3 +FLAGS (\Flagged)`)
	lines := a.updateOf(tag, "NOOP", `* ESEARCH (TAG "`+tag+`") UID ADDTO (0 2:3)`)
	if got := esearchOf(lines, seq); !slices.Equal(got, []string{`* ESEARCH (TAG "` + seq + `") ADDTO (0 2:3)`}) {
		t.Errorf("updates of the SEARCH: %q", lines)
	}

	b.ok(`STORE 1,2 +FLAGS.SILENT (\Deleted)`)
	b.ok("EXPUNGE")
	lines = a.updateOf(tag, "NOOP", `* ESEARCH (TAG "`+tag+`") UID REMOVEFROM (0 1:2)`)
	// 1 goes first, which makes 2 the first: its REMOVEFROM comes
	// before its EXPUNGE.
	var got []string
	for _, l := range lines {
		if strings.HasSuffix(l, " EXPUNGE") || len(esearchOf([]string{l}, seq)) > 0 {
			got = append(got, l)
		}
	}
	if want := []string{"* 1 EXPUNGE", `* ESEARCH (TAG "` + seq + `") REMOVEFROM (0 1)`, "* 1 EXPUNGE"}; !slices.Equal(got, want) {
		t.Errorf("expunges: %q, want %q", got, want)
	}

	// A new message that matches, while IDLE: the EXISTS, then the ADDTO.
	a.Send("idle IDLE\r\n")
	if l := a.Line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("IDLE: %q", l)
	}
	_, err := e.st.Deliver(context.Background(), store.Delivery{Recipients: []string{"info@example.com"}, Flags: []string{`\Flagged`},
		Message: []byte("Subject: new\r\n\r\nbody\r\n")})
	testutil.Must(t, err)
	var idle []string
	for len(esearchOf(idle, tag)) == 0 || len(esearchOf(idle, seq)) == 0 {
		idle = append(idle, a.Line())
	}
	a.Send("DONE\r\n")
	if _, st := a.until("idle"); !strings.HasPrefix(st, "OK") {
		t.Errorf("IDLE: %s", st)
	}
	if !before(idle, "* 3 EXISTS", `* ESEARCH (TAG "`+seq+`") ADDTO (0 3)`) || !slices.Contains(idle, `* ESEARCH (TAG "`+tag+`") UID ADDTO (0 5)`) {
		t.Errorf("IDLE: %q", idle)
	}
	// Leaving the mailbox ends the updates.
	a.ok("SELECT INBOX")
	b.ok(`STORE 1 -FLAGS (\Flagged)`)
	a.updateOf(tag, "NOOP")
	a.updateOf(seq, "NOOP")
	if st := a.tagged(`CANCELUPDATE "%s"`, tag); !strings.HasPrefix(st, "BAD") {
		t.Errorf("CANCELUPDATE after SELECT: %s", st)
	}
}

// A SORT with UPDATE gives positions that keep the client's result in
// the sort's order.
func TestSortUpdate(t *testing.T) {
	e := newEnv(t, Config{})
	for _, s := range []string{"d", "b", "e", "a", "c"} {
		e.deliver(t, "info@example.com", "", "Subject: "+s+"\r\n\r\nbody\r\n")
	}
	r := selectedRaw(t, e, "INBOX")
	r.ok(`STORE 1,3,5 +FLAGS.SILENT (\Flagged)`)
	seq := r.nextTag()
	r.wantLines("SORT RETURN (UPDATE ALL) (SUBJECT) US-ASCII FLAGGED", `* ESEARCH (TAG "`+seq+`") ALL 5,1,3`)
	uid := r.nextTag()
	r.wantLines("UID SORT RETURN (UPDATE) (SUBJECT) US-ASCII FLAGGED", `* ESEARCH (TAG "`+uid+`") UID`)

	step := func(cmd, wantSeq, wantUID string) []string {
		t.Helper()
		lines := r.updateOf(seq, cmd, `* ESEARCH (TAG "`+seq+`")`+wantSeq)
		if got := esearchOf(lines, uid); !slices.Equal(got, []string{`* ESEARCH (TAG "` + uid + `") UID` + wantUID}) {
			t.Errorf("%s: UID SORT's %q, want %q", cmd, got, wantUID)
		}
		return lines
	}
	step(`STORE 4 +FLAGS.SILENT (\Flagged)`, " ADDTO (1 4)", " ADDTO (1 4)")           // a d e c: 4 5 1 3
	step(`STORE 1 -FLAGS.SILENT (\Flagged)`, " REMOVEFROM (3 1)", " REMOVEFROM (3 1)") // 4 5 3
	step(`STORE 2 +FLAGS.SILENT (\Flagged)`, " ADDTO (2 2)", " ADDTO (2 2)")           // 4 2 5 3
	// Removals from the last position, then the additions from the first.
	step(`STORE 4,5 -FLAGS.SILENT (\Flagged)`, " REMOVEFROM (3 5 1 4)", " REMOVEFROM (3 5 1 4)") // 2 3
	step(`STORE 1,4,5 +FLAGS.SILENT (\Flagged)`, " ADDTO (1 4 3 5,1)", " ADDTO (1 4 3 5,1)")     // 4 2 5 1 3
	step(`STORE 2 -FLAGS.SILENT (\Flagged)`, " REMOVEFROM (2 2)", " REMOVEFROM (2 2)")           // 4 5 1 3

	r.ok(`STORE 3 +FLAGS.SILENT (\Deleted)`)
	r.wantLines("EXPUNGE", `* ESEARCH (TAG "`+seq+`") REMOVEFROM (4 3)`, `* ESEARCH (TAG "`+uid+`") UID REMOVEFROM (4 3)`, "* 3 EXPUNGE")
	// Now 4 5 1, sequence numbers 3 4 1.
	_, err := e.st.Deliver(context.Background(), store.Delivery{Recipients: []string{"info@example.com"}, Flags: []string{`\Flagged`},
		Message: []byte("Subject: bb\r\n\r\nbody\r\n")})
	testutil.Must(t, err)
	lines := step("NOOP", " ADDTO (2 5)", " ADDTO (2 6)")
	if !before(lines, "* 5 EXISTS", `* ESEARCH (TAG "`+seq+`") ADDTO (2 5)`) {
		t.Errorf("NOOP: %q", lines)
	}
	r.wantOne("SORT RETURN (ALL) (SUBJECT) US-ASCII FLAGGED", `* ESEARCH (TAG "`+r.nextTag()+`") ALL 3,5,4,1`)
}

// Past the limit, UPDATE is refused with NOUPDATE and the rest of the
// search answered.
func TestSearchUpdateLimit(t *testing.T) {
	_, r := searchEnv(t, plainMsgs(2)...)
	for range maxSearchUpdates {
		r.ok("SEARCH RETURN (UPDATE) ALL")
	}
	tag := r.nextTag()
	r.wantLines("SEARCH RETURN (UPDATE COUNT) ALL", `* ESEARCH (TAG "`+tag+`") COUNT 2`, `* NO [NOUPDATE "`+tag+`"] Too many searches with UPDATE`)
	r.ok(`CANCELUPDATE "t3"`)
	r.ok("SEARCH RETURN (UPDATE) ALL")
}

// binMsg is a message whose only part is binary, with a NUL, bare line
// feeds and an 8-bit byte: as imaptest's append-binary has it.
const binMsg = "From: user@domain.org\r\nMime-Version: 1.0\r\nContent-Type: application/octet-stream\r\n" +
	"Content-Transfer-Encoding: binary\r\nX-After: kept\r\n\r\n\x00-\xe4\n\r\n\n"

// APPEND takes a literal8: binary parts are stored in base64, BINARY
// gives their bytes back, and the rest is kept.
func TestAppendBinary(t *testing.T) {
	e := newEnv(t, Config{})
	r := selectedRaw(t, e, "INBOX")
	_, st := r.cmd("APPEND INBOX ~{%d+}\r\n%s", len(binMsg), binMsg)
	if _, uids := appendUID(t, st); uids != "1" {
		t.Fatalf("APPEND: %s", st)
	}
	want := strings.Replace(binMsg[:strings.Index(binMsg, "\r\n\r\n")+4], "binary", "base64", 1) + "AC3kCg0KCg==\r\n"
	if got := e.storedText(t, "info@example.com", "INBOX", 1); got != want {
		t.Errorf("stored %q\nwant %q", got, want)
	}
	r.expect("FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])", "* 1 FETCH (BINARY.SIZE[1] 7 BINARY[1] ~{7}\r\n\x00-\xe4\n\r\n\n)")
	r.expect("FETCH 1 (BODY.PEEK[1])", "* 1 FETCH (BODY[1] "+lit("AC3kCg0KCg==\r\n")+")")

	// A multipart: only the binary part is encoded (the sync literal
	// way); the text's bare line feeds become CRLF.
	body := []byte("\x01\x02\x00\xff\n")
	for len(body) < 100 {
		body = append(body, body...)
	}
	multi := "Content-Type: multipart/mixed; boundary=XX\n\n--XX\nContent-Type: text/plain\n\nline one\nline two\n" +
		"--XX\ncontent-transfer-encoding:\n\tBINARY\nContent-Type: application/x-thing\n\n" + string(body) +
		"\r\n--XX\r\nContent-Type: text/plain\r\n\r\nlast\r\n--XX--\r\n"
	if _, st := r.syncCmd("APPEND INBOX ~{%d}\r\n%s", len(multi), multi); !strings.HasPrefix(st, "OK") {
		t.Fatalf("APPEND multipart: %s", st)
	}
	b64 := b64Lines(body)
	want = "Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nline one\r\nline two\r\n" +
		"--XX\r\nContent-Transfer-Encoding: base64\r\nContent-Type: application/x-thing\r\n\r\n" + b64 +
		"\r\n--XX\r\nContent-Type: text/plain\r\n\r\nlast\r\n--XX--\r\n"
	if got := e.storedText(t, "info@example.com", "INBOX", 2); got != want {
		t.Errorf("stored %q\nwant %q", got, want)
	}
	r.expect("FETCH 2 (BINARY.SIZE[2] BINARY.PEEK[3])", "* 2 FETCH (BINARY.SIZE[2] 160 BINARY[3] {4}\r\nlast)")
	r.expect("FETCH 2 (BINARY.PEEK[2])", "* 2 FETCH (BINARY[2] ~{160}\r\n"+string(body)+")")

	// CATENATE: a TEXT in literal8 makes the message one to convert.
	head := "MIME-Version: 1.0\r\nContent-Transfer-Encoding: binary\r\nSubject: cat\r\n\r\n"
	if _, st := r.syncCmd("APPEND INBOX CATENATE (TEXT {%d}\r\n%s TEXT ~{%d}\r\n%s)", len(head), head, len(body), body); !strings.HasPrefix(st, "OK") {
		t.Fatalf("CATENATE: %s", st)
	}
	r.expect("FETCH 3 (BINARY.PEEK[1])", "* 3 FETCH (BINARY[1] ~{160}\r\n"+string(body)+")")
	if got := e.storedText(t, "info@example.com", "INBOX", 3); got != "MIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\nSubject: cat\r\n\r\n"+b64+"\r\n" {
		t.Errorf("CATENATE stored %q", got)
	}

	// Without a binary part, a literal8 is stored as a literal would be.
	plain := "Subject: plain\n\nno binary here\n"
	_, st = r.cmd("APPEND INBOX ~{%d+}\r\n%s", len(plain), plain)
	if _, uids := appendUID(t, st); uids != "4" {
		t.Fatalf("APPEND plain: %s", st)
	}
	if got := e.storedText(t, "info@example.com", "INBOX", 4); got != crlf(plain) {
		t.Errorf("plain stored %q", got)
	}
}

// b64Lines is b in base64, in lines of 76 characters with CRLF between
// them.
func b64Lines(b []byte) string {
	s := base64.StdEncoding.EncodeToString(b)
	var lines []string
	for len(s) > 76 {
		lines = append(lines, s[:76])
		s = s[76:]
	}
	return strings.Join(append(lines, s), "\r\n")
}
