package imapd

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"yubin/internal/testutil"
	"yubin/store"
)

var syncLiteral = regexp.MustCompile(`\{(\d+)\}\r\n`)

// sendSync sends a command, waiting for the server's continuation after
// each synchronizing literal's announcement. It returns the line that came
// instead of a continuation, or "" when every literal was asked for.
func (r *raw) sendSync(cmd string) string {
	r.T.Helper()
	for {
		loc := syncLiteral.FindStringSubmatchIndex(cmd)
		if loc == nil {
			r.Send(cmd)
			return ""
		}
		r.Send(cmd[:loc[1]])
		if l := r.Line(); !strings.HasPrefix(l, "+ ") {
			return l
		}
		n, _ := strconv.Atoi(cmd[loc[2]:loc[3]])
		r.Send(cmd[loc[1] : loc[1]+n])
		cmd = cmd[loc[1]+n:]
	}
}

// syncCmd runs a tagged command with synchronizing literals and returns
// its untagged lines and tagged reply (without the tag).
func (r *raw) syncCmd(format string, args ...any) ([]string, string) {
	r.T.Helper()
	r.n++
	tag := fmt.Sprintf("t%d", r.n)
	if l := r.sendSync(tag + " " + fmt.Sprintf(format, args...) + "\r\n"); l != "" {
		rest, ok := strings.CutPrefix(l, tag+" ")
		if !ok {
			r.T.Fatalf("instead of a continuation: %q", l)
		}
		return nil, rest
	}
	return r.until(tag)
}

// appendUID parses OK [APPENDUID v uids].
func appendUID(t *testing.T, st string) (uint32, string) {
	t.Helper()
	var v uint32
	var uids string
	if _, err := fmt.Sscanf(st, "OK [APPENDUID %d %s", &v, &uids); err != nil || !strings.HasSuffix(uids, "]") {
		t.Fatalf("want OK [APPENDUID ...], got %q", st)
	}
	return v, strings.TrimSuffix(uids, "]")
}

func (e *env) boxMessages(t *testing.T, account, box string) []store.MessageInfo {
	t.Helper()
	msgs, _, err := e.st.Messages(t.Context(), account, box)
	testutil.Must(t, err)
	return msgs
}

func (e *env) storedText(t *testing.T, account, box string, uid uint32) string {
	t.Helper()
	b, err := e.st.ReadMessage(t.Context(), account, box, uid)
	testutil.Must(t, err)
	return string(b)
}

func TestAppend(t *testing.T) {
	e := newEnv(t, Config{})
	r := dialRaw(t, e.implicit, true)
	r.login("info@example.com")
	box, err := e.st.Mailbox(t.Context(), "info@example.com", "INBOX")
	testutil.Must(t, err)

	// Plain, with a synchronizing literal; bare LFs become CRLF.
	msg := "Subject: one\r\n\r\nbody\nline two\r\n"
	_, st := r.syncCmd("APPEND INBOX {%d}\r\n%s", len(msg), msg)
	v, uids := appendUID(t, st)
	if v != box.UIDValidity || uids != "1" {
		t.Fatalf("APPENDUID %d %s, want %d 1", v, uids, box.UIDValidity)
	}
	if got := e.storedText(t, "info@example.com", "INBOX", 1); got != "Subject: one\r\n\r\nbody\r\nline two\r\n" {
		t.Fatalf("stored %q", got)
	}

	// Flags (\Recent dropped, a keyword kept, case made canonical) and a
	// date-time with a space-padded day; LITERAL+.
	msg = "Subject: two\r\n\r\nx\r\n"
	_, st = r.cmd(`APPEND inbox (\seen $Label \Recent) " 5-Mar-2024 10:11:12 +0100" {%d+}`+"\r\n%s", len(msg), msg)
	if _, uids = appendUID(t, st); uids != "2" {
		t.Fatalf("second APPEND: %q", st)
	}
	m := e.boxMessages(t, "info@example.com", "INBOX")[1]
	if !slices.Equal(m.Flags, []string{"$Label", `\Seen`}) {
		t.Errorf("flags %q", m.Flags)
	}
	if want := time.Date(2024, 3, 5, 9, 11, 12, 0, time.UTC); !m.Date.Equal(want) {
		t.Errorf("internal date %v, want %v", m.Date, want)
	}
	_, st = r.cmd(`APPEND INBOX () "15-Dec-2023 23:59:59 -0800" {%d+}`+"\r\n%s", len(msg), msg)
	if _, uids = appendUID(t, st); uids != "3" {
		t.Fatalf("third APPEND: %q", st)
	}
	if m := e.boxMessages(t, "info@example.com", "INBOX")[2]; len(m.Flags) != 0 || !m.Date.Equal(time.Date(2023, 12, 16, 7, 59, 59, 0, time.UTC)) {
		t.Errorf("third: flags %q, date %v", m.Flags, m.Date)
	}

	// Refused before the literal: the client gets the tagged reply
	// instead of a continuation, and the session goes on.
	for _, c := range []struct{ cmd, want string }{
		{`APPEND INBOX "5-Mar-2024 25:11:12 +0100" {10}`, "BAD"},
		{`APPEND INBOX "32-Mar-2024 10:11:12 +0100" {10}`, "BAD"},
		{`APPEND INBOX "5-Mar-2024" {10}`, "BAD"},
		{`APPEND INBOX (\Bogus) {10}`, "BAD"},
		{`APPEND INBOX (\*) {10}`, "BAD"},
		{`APPEND Nope {10}`, "NO [TRYCREATE]"},
		{`APPEND Nope (\Seen) {10}`, "NO [TRYCREATE]"},
		{`APPEND INBOX {0}`, "NO"},
		{`APPEND INBOX ~{0}`, "NO"},
		{`APPEND INBOX`, "BAD"},
		{`APPEND INBOX (\Seen)`, "BAD"},
		{`APPEND INBOX "5-Mar-2024 10:11:12 +0100"`, "BAD"},
		{`APPEND INBOX FOO {10}`, "BAD"},
	} {
		if _, st := r.cmd("%s", c.cmd); !strings.HasPrefix(st, c.want+" ") {
			t.Errorf("%s: %q, want %s", c.cmd, st, c.want)
		}
		r.ok("NOOP")
	}
	// The same, sent without waiting: the literal is read and dropped.
	for _, c := range []struct{ cmd, want string }{
		{`APPEND INBOX "32-Mar-2024 10:11:12 +0100" {10+}`, "BAD"},
		{`APPEND INBOX (\Bogus) {10+}`, "BAD"},
		{`APPEND Nope {10+}`, "NO [TRYCREATE]"},
	} {
		if _, st := r.cmd("%s\r\n0123456789", c.cmd); !strings.HasPrefix(st, c.want+" ") {
			t.Errorf("%s: %q, want %s", c.cmd, st, c.want)
		}
		r.ok("NOOP")
	}
	if n := len(e.boxMessages(t, "info@example.com", "INBOX")); n != 3 {
		t.Fatalf("%d messages, want 3", n)
	}
}

// A literal over APPENDLIMIT or the quota is refused before the client
// sends it; sent anyway (LITERAL+), it is read and dropped. Either way the
// connection goes on.
func TestAppendRefusedLiterals(t *testing.T) {
	e := newEnv(t, Config{AppendLimit: 1000})
	r := dialRaw(t, e.implicit, true)
	r.login("info@example.com")
	big := "Subject: big\r\n\r\n" + strings.Repeat("x", 1100)

	r.Send(fmt.Sprintf("a1 APPEND INBOX {%d}\r\n", len(big)))
	if l := r.Line(); !strings.HasPrefix(l, "a1 NO [TOOBIG] ") {
		t.Fatalf("synchronizing literal over APPENDLIMIT: %q", l)
	}
	r.ok("NOOP")
	if _, st := r.cmd("APPEND INBOX {%d+}\r\n%s", len(big), big); !strings.HasPrefix(st, "NO [TOOBIG] ") {
		t.Fatalf("LITERAL+ over APPENDLIMIT: %q", st)
	}
	r.ok("NOOP")

	testutil.Must(t, e.st.SetQuota(t.Context(), "info@example.com", 500))
	msg := "Subject: q\r\n\r\n" + strings.Repeat("y", 600)
	r.Send(fmt.Sprintf("a2 APPEND INBOX {%d}\r\n", len(msg)))
	if l := r.Line(); !strings.HasPrefix(l, "a2 NO [OVERQUOTA] ") {
		t.Fatalf("synchronizing literal over the quota: %q", l)
	}
	r.ok("NOOP")
	if _, st := r.cmd("APPEND INBOX {%d+}\r\n%s", len(msg), msg); !strings.HasPrefix(st, "NO [OVERQUOTA] ") {
		t.Fatalf("LITERAL+ over the quota: %q", st)
	}
	r.ok("NOOP")
	// One that fits still goes in.
	if _, st := r.syncCmd("APPEND INBOX {%d}\r\n%s", 20, "Subject: s\r\n\r\nsmall\r\n"); !strings.HasPrefix(st, "OK [APPENDUID ") {
		t.Fatalf("small APPEND: %q", st)
	}
	if n := len(e.boxMessages(t, "info@example.com", "INBOX")); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
}

// An APPEND to the selected mailbox shows as EXISTS before its tagged
// reply, and a new keyword as FLAGS; another session sees EXISTS at its
// next command.
func TestAppendToSelected(t *testing.T) {
	e := newEnv(t, Config{})
	r := dialRaw(t, e.implicit, true)
	r.login("info@example.com")
	o := dialRaw(t, e.implicit, true)
	o.login("info@example.com")
	r.ok("SELECT INBOX")
	o.ok("SELECT INBOX")
	msg := "Subject: s\r\n\r\nhello\r\n"
	u, st := r.cmd("APPEND INBOX ($Work) {%d+}\r\n%s", len(msg), msg)
	if !strings.HasPrefix(st, "OK [APPENDUID ") {
		t.Fatal(st)
	}
	if !slices.Contains(u, "* 1 EXISTS") || !slices.ContainsFunc(u, func(l string) bool { return strings.HasPrefix(l, "* FLAGS (") && strings.Contains(l, "$Work") }) {
		t.Fatalf("untagged %q", u)
	}
	if u := o.ok("NOOP"); !slices.Contains(u, "* 1 EXISTS") {
		t.Fatalf("other session: %q", u)
	}
	// To another mailbox: nothing about it in the selected one.
	r.ok("CREATE Other")
	if u, st := r.cmd("APPEND Other {%d+}\r\n%s", len(msg), msg); !strings.HasPrefix(st, "OK [APPENDUID ") || len(u) != 0 {
		t.Fatalf("APPEND to another mailbox: %q %q", u, st)
	}
}

// MULTIAPPEND (RFC 3502): several messages in one command, stored all
// together or not at all.
func TestMultiAppend(t *testing.T) {
	e := newEnv(t, Config{AppendLimit: 1000})
	r := dialRaw(t, e.implicit, true)
	r.login("info@example.com")
	m1 := "Subject: mail1\r\n\r\nbody1\r\n"
	m2 := "Subject: mail2\r\n\r\nbody2\r\n"
	m3 := "Subject: mail3\r\n\r\nbody3\r\n"
	_, st := r.syncCmd(`APPEND INBOX (\Seen) {%d}`+"\r\n%s"+` {%d}`+"\r\n%s"+` ($A) "01-Feb-2020 00:00:00 +0000" {%d}`+"\r\n%s",
		len(m1), m1, len(m2), m2, len(m3), m3)
	if _, uids := appendUID(t, st); uids != "1:3" {
		t.Fatalf("MULTIAPPEND: %q", st)
	}
	msgs := e.boxMessages(t, "info@example.com", "INBOX")
	if len(msgs) != 3 || !slices.Equal(msgs[0].Flags, []string{`\Seen`}) || len(msgs[1].Flags) != 0 || !slices.Equal(msgs[2].Flags, []string{"$A"}) ||
		!msgs[2].Date.Equal(time.Date(2020, 2, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("stored %+v", msgs)
	}
	for i, m := range []string{m1, m2, m3} {
		if got := e.storedText(t, "info@example.com", "INBOX", uint32(i+1)); got != m {
			t.Errorf("message %d: %q", i+1, got)
		}
	}
	// LITERAL+.
	_, st = r.cmd("APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s", len(m1), m1, len(m2), m2)
	if _, uids := appendUID(t, st); uids != "4:5" {
		t.Fatalf("MULTIAPPEND with LITERAL+: %q", st)
	}

	// The second message is too big: nothing is stored, and the client is
	// told before it sends it.
	big := strings.Repeat("z", 1001)
	r.Send(fmt.Sprintf("a1 APPEND INBOX {%d}\r\n", len(m1)))
	if l := r.Line(); !strings.HasPrefix(l, "+ ") {
		t.Fatal(l)
	}
	r.Send(fmt.Sprintf("%s (\\Seen) {%d}\r\n", m1, len(big)))
	if l := r.Line(); !strings.HasPrefix(l, "a1 NO [TOOBIG] ") {
		t.Fatalf("second message too big: %q", l)
	}
	r.ok("NOOP")
	// The same with LITERAL+, and a third message after it.
	if _, st := r.cmd("APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s {%d+}\r\n%s", len(m1), m1, len(big), big, len(m2), m2); !strings.HasPrefix(st, "NO [TOOBIG] ") {
		t.Fatalf("second message too big, LITERAL+: %q", st)
	}
	r.ok("NOOP")
	// A bad second message.
	if _, st := r.cmd("APPEND INBOX {%d+}\r\n%s (\\Bogus) {%d+}\r\n%s", len(m1), m1, len(m2), m2); !strings.HasPrefix(st, "BAD ") {
		t.Fatalf("bad flag on the second message: %q", st)
	}
	r.ok("NOOP")
	if n := len(e.boxMessages(t, "info@example.com", "INBOX")); n != 5 {
		t.Fatalf("%d messages after the refused MULTIAPPENDs, want 5", n)
	}

	// Each message fits the quota as announced, but bare LFs made CRLF
	// take both over it: the store refuses the batch, and neither is kept.
	acct, err := e.st.Account(t.Context(), "info@example.com")
	testutil.Must(t, err)
	lf := "Subject: m\n\n" + strings.Repeat("abc\n", 22) // 100 bytes, 124 stored
	testutil.Must(t, e.st.SetQuota(t.Context(), "info@example.com", acct.Used+230))
	if _, st := r.cmd("APPEND INBOX {100+}\r\n%s {100+}\r\n%s", lf, lf); !strings.HasPrefix(st, "NO [OVERQUOTA] ") {
		t.Fatalf("MULTIAPPEND over the quota once stored: %q", st)
	}
	if n := len(e.boxMessages(t, "info@example.com", "INBOX")); n != 5 {
		t.Fatalf("%d messages after a refused batch, want 5", n)
	}
	if _, st := r.cmd("APPEND INBOX {100+}\r\n%s", lf); !strings.HasPrefix(st, "OK [APPENDUID ") {
		t.Fatalf("one of them alone: %q", st)
	}
}

const catSource = "From: a@example.com\r\nSubject: src\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
	"preamble\r\n--b\r\nContent-Type: text/plain\r\n\r\npart one\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>two</p>\r\n--b--\r\n"

// CATENATE (RFC 4469): a message made of literals and of (parts of)
// messages named by IMAP URLs, byte for byte.
func TestCatenate(t *testing.T) {
	e := newEnv(t, Config{Hostname: "mx.example.com"})
	src := e.deliver(t, "info@example.com", "INBOX", catSource)
	r := dialRaw(t, e.implicit, true)
	r.login("info@example.com")
	r.ok("CREATE Built")
	if u := r.ok("CAPABILITY"); !strings.Contains(u[0], " MULTIAPPEND") || !strings.Contains(u[0], " CATENATE") {
		t.Fatalf("capabilities %q", u)
	}
	base := fmt.Sprintf("/INBOX;UIDVALIDITY=%d/;UID=%d", src.UIDValidity, src.UID)
	text1 := "X-Note: made\r\n"
	text2 := "\r\nintro\r\n"
	_, st := r.syncCmd(`APPEND Built (\Draft) CATENATE (URL "%s/;SECTION=HEADER.FIELDS%%20(SUBJECT%%20FROM)" TEXT {%d}`+"\r\n%s"+
		` URL "/INBOX/;UID=%d/;SECTION=1" TEXT {%d}`+"\r\n%s"+` URL "%s/;SECTION=2.MIME" URL %s/;section=2 URL "%s/;PARTIAL=6.4" URL "%s/;SECTION=TEXT/;PARTIAL=0.8")`,
		base, len(text1), text1, src.UID, len(text2), text2, base, base, base, base)
	_, uids := appendUID(t, st)
	uid, _ := strconv.Atoi(uids)
	want := "From: a@example.com\r\nSubject: src\r\n\r\n" + text1 + "part one" + text2 +
		"Content-Type: text/html\r\n\r\n" + "<p>two</p>" + "a@ex" + "preamble"
	if got := e.storedText(t, "info@example.com", "Built", uint32(uid)); got != want {
		t.Fatalf("CATENATE stored\n%q\nwant\n%q", got, want)
	}
	if m := e.boxMessages(t, "info@example.com", "Built"); !slices.Equal(m[0].Flags, []string{`\Draft`}) {
		t.Errorf("flags %q", m[0].Flags)
	}

	// The whole message, by an absolute URL; then a header over the
	// source's text (LITERAL+).
	_, st = r.cmd(`APPEND Built CATENATE (URL "imap://info%%40example.com@mx.example.com:993%s")`, base)
	_, uids = appendUID(t, st)
	uid, _ = strconv.Atoi(uids)
	if got := e.storedText(t, "info@example.com", "Built", uint32(uid)); got != catSource {
		t.Fatalf("whole message: %q", got)
	}
	hdr := "Subject: new\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
	_, st = r.cmd(`APPEND Built CATENATE (TEXT {%d+}`+"\r\n%s"+` URL "%s/;SECTION=TEXT")`, len(hdr), hdr, base)
	_, uids = appendUID(t, st)
	uid, _ = strconv.Atoi(uids)
	if got, want := e.storedText(t, "info@example.com", "Built", uint32(uid)), hdr+catSource[strings.Index(catSource, "\r\n\r\n")+4:]; got != want {
		t.Fatalf("new header over the text: %q", got)
	}

	// MULTIAPPEND with CATENATE, and a plain literal with flags after it.
	plain := "Subject: plain\r\n\r\nbody\r\n"
	_, st = r.cmd(`APPEND Built CATENATE (URL "%s") (\Answered) {%d+}`+"\r\n%s", base, len(plain), plain)
	if _, uids := appendUID(t, st); !strings.Contains(uids, ":") {
		t.Fatalf("MULTIAPPEND with CATENATE: %q", st)
	}
	msgs := e.boxMessages(t, "info@example.com", "Built")
	if n := len(msgs); n != 5 || e.storedText(t, "info@example.com", "Built", msgs[3].UID) != catSource ||
		e.storedText(t, "info@example.com", "Built", msgs[4].UID) != plain || !slices.Equal(msgs[4].Flags, []string{`\Answered`}) {
		t.Fatalf("after MULTIAPPEND with CATENATE: %+v", msgs)
	}
}

// A URL CATENATE cannot use is NO [BADURL url]; literals sent after it
// without waiting are dropped, and nothing is stored.
func TestCatenateBadURL(t *testing.T) {
	e := newEnv(t, Config{Hostname: "mx.example.com", AppendLimit: 1000})
	src := e.deliver(t, "info@example.com", "INBOX", catSource)
	e.deliver(t, "bob@example.com", "INBOX", catSource)
	r := dialRaw(t, e.implicit, true)
	r.login("info@example.com")
	good := fmt.Sprintf("/INBOX;UIDVALIDITY=%d/;UID=%d", src.UIDValidity, src.UID)
	for _, url := range []string{
		fmt.Sprintf("/INBOX;UIDVALIDITY=%d/;UID=%d", src.UIDValidity+1, src.UID),
		fmt.Sprintf("/INBOX/;UID=%d", src.UID+1),
		"/Nope/;UID=1",
		"/INBOX",
		"/INBOX/;UID=0",
		"INBOX/;UID=1",
		good + "/;SECTION=3",
		good + "/;SECTION=1.2.3",
		good + "/;SECTION=BOGUS",
		good + "/;SECTION=MIME",
		good + "/;URLAUTH=anonymous:internal:0123",
		good + "/;PARTIAL=x",
		"imap://bob@mx.example.com/INBOX/;UID=1",
		"imap://other.example.net/INBOX/;UID=1",
		"http://mx.example.com/INBOX/;UID=1",
	} {
		_, st := r.cmd(`APPEND INBOX CATENATE (TEXT {5+}`+"\r\nhdr: "+` URL "%s" TEXT {4+}`+"\r\nbody)", url)
		if !strings.HasPrefix(st, "NO [BADURL "+url+"] ") {
			t.Errorf("%s: %q", url, st)
		}
		r.ok("NOOP")
	}
	// Refused before the synchronizing literal after it.
	bad := fmt.Sprintf("/INBOX;UIDVALIDITY=%d/;UID=%d", src.UIDValidity+1, src.UID)
	r.Send(fmt.Sprintf("a1 APPEND INBOX CATENATE (URL \"%s\" TEXT {4}\r\n", bad))
	if l := r.Line(); !strings.HasPrefix(l, "a1 NO [BADURL ") {
		t.Fatalf("BADURL before a synchronizing literal: %q", l)
	}
	r.ok("NOOP")
	// In the first message of a MULTIAPPEND: the second is dropped.
	if _, st := r.cmd(`APPEND INBOX CATENATE (URL "%s") {4+}`+"\r\nbody", bad); !strings.HasPrefix(st, "NO [BADURL ") {
		t.Fatalf("BADURL in a MULTIAPPEND: %q", st)
	}
	// The mailbox is looked at first.
	if _, st := r.cmd(`APPEND Nope CATENATE (URL "%s")`, bad); !strings.HasPrefix(st, "NO [TRYCREATE] ") {
		t.Fatalf("CATENATE to a missing mailbox: %q", st)
	}
	// Over APPENDLIMIT all together.
	part := strings.Repeat("x", 600)
	if _, st := r.cmd(`APPEND INBOX CATENATE (TEXT {600+}`+"\r\n%s TEXT {600+}\r\n%s)", part, part); !strings.HasPrefix(st, "NO [TOOBIG] ") {
		t.Fatalf("CATENATE over APPENDLIMIT: %q", st)
	}
	r.ok("NOOP")
	if n := len(e.boxMessages(t, "info@example.com", "INBOX")); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
}

// parseIMAPURL takes any string without panicking, and what it accepts
// names a message.
func FuzzParseIMAPURL(f *testing.F) {
	for _, s := range []string{"/INBOX/;UID=1", "/INBOX;UIDVALIDITY=5/;UID=2/;SECTION=1.2.HEADER.FIELDS%20(A%20B)/;PARTIAL=1.2",
		"imap://u%40x@h:1/a/b/;uid=3/;section=text", "/%ZZ/;UID=1", "/a/;UID=1;URLAUTH=x", "/a/;UID=1/;SECTION=1./;PARTIAL=0", "imap://h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, why := parseIMAPURL(s, "u@x", "h")
		if why == "" && (u.mailbox == "" || u.uid == 0 || u.section != nil && len(u.section.Part) == 0 && u.section.Specifier == "") {
			t.Fatalf("%q: accepted as %+v", s, u)
		}
	})
}
