package imapd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"yubin/internal/auth"
	"yubin/internal/netserve"
	"yubin/internal/spool"
	"yubin/internal/testutil"
	"yubin/internal/testutil/teststore"
	"yubin/internal/testutil/tlstest"
	"yubin/store"
)

// smsg is a message for the search tests: its internal date
// ("2006-01-02 15:04:05 -0700", "" for searchDate), flags and text (LF
// line ends).
type smsg struct {
	date  string
	flags []string
	text  string
}

const smsgDateLayout = "2006-01-02 15:04:05 -0700"

var searchDate = time.Date(2008, 2, 22, 12, 0, 0, 0, time.UTC)

func deliverAll(t testing.TB, st store.Mail, msgs ...smsg) {
	t.Helper()
	deliverTo(t, st, "", msgs...)
}

// deliverTo delivers msgs to a mailbox of info@ ("" for INBOX).
func deliverTo(t testing.TB, st store.Mail, box string, msgs ...smsg) {
	t.Helper()
	for _, m := range msgs {
		d := searchDate
		if m.date != "" {
			var err error
			d, err = time.Parse(smsgDateLayout, m.date)
			testutil.Must(t, err)
		}
		_, err := st.Deliver(context.Background(), store.Delivery{Recipients: []string{"info@example.com"}, Mailbox: box, Flags: m.flags, Date: d,
			Message: []byte(strings.ReplaceAll(m.text, "\n", "\r\n"))})
		testutil.Must(t, err)
	}
}

// searchEnv is a server with msgs in info@'s INBOX, and a client that
// selected it.
func searchEnv(t *testing.T, msgs ...smsg) (*env, *raw) {
	t.Helper()
	e := newEnv(t, Config{AllowInsecureAuth: true})
	deliverAll(t, e.st, msgs...)
	r := dialRaw(t, e.plain, false)
	r.login("info@example.com")
	r.ok("SELECT INBOX")
	return e, r
}

// wantOne runs a command that must succeed and checks its one untagged
// response of the kind want has ("* SEARCH", "* ESEARCH", ...); want
// "* ESEARCH" alone means there must be none.
func (r *raw) wantOne(cmd, want string) {
	r.T.Helper()
	kind := want
	if f := strings.Fields(want); len(f) >= 2 {
		kind = f[0] + " " + f[1]
	}
	var got []string
	for _, l := range r.ok("%s", cmd) {
		if l == kind || strings.HasPrefix(l, kind+" ") {
			got = append(got, l)
		}
	}
	if want == kind && strings.HasPrefix(want, "* ESEARCH") {
		if len(got) != 0 {
			r.T.Errorf("%s: got %q, want no ESEARCH", cmd, got)
		}
		return
	}
	if len(got) != 1 || got[0] != want {
		r.T.Errorf("%s:\n got %q\nwant %q", cmd, got, want)
	}
}

// tagged runs a command and returns its tagged status.
func (r *raw) tagged(format string, args ...any) string {
	r.T.Helper()
	_, st := r.cmd(format, args...)
	return st
}

func plainMsgs(n int) []smsg {
	out := make([]smsg, n)
	for i := range out {
		out[i].text = fmt.Sprintf("Subject: message %d\n\nbody %d\n", i+1, i+1)
	}
	return out
}

func TestSearchFlags(t *testing.T) {
	_, r := searchEnv(t, plainMsgs(5)...)
	r.ok(`STORE 1 FLAGS ($Hello)`)
	r.ok(`STORE 2 FLAGS (\Seen \Flagged)`)
	r.ok(`STORE 3 FLAGS (\Answered $Hello)`)
	r.ok(`STORE 4 FLAGS (\Flagged \Draft)`)
	r.ok(`STORE 5 FLAGS (\Deleted \Answered)`)
	for cmd, want := range map[string]string{
		"SEARCH ANSWERED": "* SEARCH 3 5", "SEARCH UNANSWERED": "* SEARCH 1 2 4",
		"SEARCH DELETED": "* SEARCH 5", "SEARCH UNDELETED": "* SEARCH 1 2 3 4",
		"SEARCH DRAFT": "* SEARCH 4", "SEARCH UNDRAFT": "* SEARCH 1 2 3 5",
		"SEARCH FLAGGED": "* SEARCH 2 4", "SEARCH UNFLAGGED": "* SEARCH 1 3 5",
		"SEARCH SEEN": "* SEARCH 2", "SEARCH UNSEEN": "* SEARCH 1 3 4 5",
		"SEARCH KEYWORD $Hello": "* SEARCH 1 3", "SEARCH unkeyword $hello": "* SEARCH 2 4 5",
		"search keyword $nothere": "* SEARCH", "SEARCH ALL": "* SEARCH 1 2 3 4 5",
		"SEARCH FLAGGED SEEN":                          "* SEARCH 2",
		"SEARCH FLAGGED NOT SEEN":                      "* SEARCH 4",
		"SEARCH NOT FLAGGED NOT SEEN":                  "* SEARCH 1 3 5",
		"SEARCH OR ANSWERED DRAFT":                     "* SEARCH 3 4 5",
		"SEARCH OR (ANSWERED DELETED) SEEN":            "* SEARCH 2 5",
		"SEARCH NOT (OR ANSWERED (FLAGGED DRAFT))":     "* SEARCH 1 2",
		"SEARCH OR OR SEEN DRAFT NOT UNDELETED":        "* SEARCH 2 4 5",
		"SEARCH NOT NOT NOT SEEN":                      "* SEARCH 1 3 4 5",
		"SEARCH ((((SEEN))))":                          "* SEARCH 2",
		"SEARCH (OR SEEN DRAFT) (OR FLAGGED ANSWERED)": "* SEARCH 2 4",
		// Whatever \Recent is: RECENT and OLD split the mailbox, NEW is
		// RECENT and UNSEEN.
		"SEARCH OR RECENT OLD":  "* SEARCH 1 2 3 4 5",
		"SEARCH RECENT OLD":     "* SEARCH",
		"SEARCH NEW SEEN":       "* SEARCH",
		"SEARCH NEW NOT RECENT": "* SEARCH",
	} {
		r.wantOne(cmd, want)
	}
	// UID SEARCH answers UIDs.
	u := uidsOf(t, r)
	r.wantOne("UID SEARCH FLAGGED", fmt.Sprintf("* SEARCH %d %d", u[1], u[3]))
}

// uidsOf returns the UIDs of the selected mailbox, by sequence number.
func uidsOf(t *testing.T, r *raw) []uint32 {
	t.Helper()
	u := r.ok("UID SEARCH ALL")
	var out []uint32
	for _, l := range u {
		if f, ok := strings.CutPrefix(l, "* SEARCH"); ok {
			for _, n := range strings.Fields(f) {
				var x uint32
				fmt.Sscan(n, &x)
				out = append(out, x)
			}
		}
	}
	return out
}

func TestSearchSets(t *testing.T) {
	_, r := searchEnv(t, plainMsgs(6)...)
	u := uidsOf(t, r)
	if len(u) != 6 {
		t.Fatalf("uids %v", u)
	}
	// Break the mapping of sequence numbers to UIDs.
	r.ok(`STORE 2 +FLAGS (\Deleted)`)
	r.ok("EXPUNGE")
	u = append(u[:1], u[2:]...)
	uidnext := u[4] + 1
	for cmd, want := range map[string]string{
		"SEARCH ALL":     "* SEARCH 1 2 3 4 5",
		"UID SEARCH ALL": fmt.Sprintf("* SEARCH %d %d %d %d %d", u[0], u[1], u[2], u[3], u[4]),
		"SEARCH 1:3,5":   "* SEARCH 1 2 3 5",
		"SEARCH 4:2":     "* SEARCH 2 3 4",
		fmt.Sprintf("SEARCH UID %d:%d,%d", u[0], u[1], u[3]): "* SEARCH 1 2 4",
		fmt.Sprintf("SEARCH UID %d:%d", u[2], u[0]+1):        "* SEARCH 2 3",
		fmt.Sprintf("SEARCH 1:3 NOT UID %d", u[1]):           "* SEARCH 1 3",
		"SEARCH NOT 2,4":                                     "* SEARCH 1 3 5",
		fmt.Sprintf("SEARCH OR 1 UID %d", u[1]):              "* SEARCH 1 2",
		"SEARCH *":                                           "* SEARCH 5",
		"SEARCH UID *":                                       "* SEARCH 5",
		fmt.Sprintf("SEARCH UID %d:*", uidnext):              "* SEARCH 5",
		"SEARCH *:3":                                         "* SEARCH 3 4 5",
		"SEARCH 1,4,*":                                       "* SEARCH 1 4 5",
		"SEARCH 1000":                                        "* SEARCH",
		fmt.Sprintf("SEARCH (3) UID %d", u[3]):               "* SEARCH",
		fmt.Sprintf("SEARCH (UID %d) 4", u[3]):               "* SEARCH 4",
		fmt.Sprintf("SEARCH 4 (UID %d)", u[3]):               "* SEARCH 4",
		"UID SEARCH UID 1:4294967295":                        fmt.Sprintf("* SEARCH %d %d %d %d %d", u[0], u[1], u[2], u[3], u[4]),
		fmt.Sprintf("UID SEARCH UID %d:4294967295", uidnext): "* SEARCH",
	} {
		r.wantOne(cmd, want)
	}
}

func TestSearchSizeAndDates(t *testing.T) {
	e, r := searchEnv(t,
		smsg{date: "2007-03-24 12:00:00 +0000", text: "Date: Sat, 24 Mar 2007 23:00:00 +0200\n\n1\n"},
		smsg{date: "2007-03-25 12:00:00 +0000", text: "Date: Sun, 25 Mar 2007 00:30:00 +0200\n\n22\n"},
		smsg{date: "2007-03-25 12:00:00 +0000", text: "Date: Sun, 25 Mar 2007 23:59:00 +0300\n\n333\n"},
		smsg{date: "2007-03-26 12:00:00 +0000", text: "Subject: no date: the internal one counts\n\n4\n4\n"},
	)
	msgs, _, err := e.st.Messages(context.Background(), "info@example.com", "INBOX")
	testutil.Must(t, err)
	size := msgs[2].Size
	if msgs[1].Size >= size || msgs[3].Size <= size {
		t.Fatalf("sizes %d %d %d", msgs[1].Size, size, msgs[3].Size)
	}
	for cmd, want := range map[string]string{
		fmt.Sprintf("SEARCH SMALLER %d", size):                         "* SEARCH 1 2",
		fmt.Sprintf("SEARCH LARGER %d", size):                          "* SEARCH 4",
		fmt.Sprintf("SEARCH NOT SMALLER %d NOT LARGER %d", size, size): "* SEARCH 3",
		fmt.Sprintf("SEARCH OR SMALLER %d LARGER %d", size, size):      "* SEARCH 1 2 4",
		"SEARCH LARGER 0": "* SEARCH 1 2 3 4",

		// The internal date (noon UTC: the same day in most zones).
		"SEARCH BEFORE 24-Mar-2007":  "* SEARCH",
		"SEARCH BEFORE 25-mar-2007":  "* SEARCH 1",
		"SEARCH ON 25-MAR-2007":      "* SEARCH 2 3",
		"SEARCH ON 23-Mar-2007":      "* SEARCH",
		"SEARCH SINCE 26-Mar-2007":   "* SEARCH 4",
		`SEARCH SINCE "25-Mar-2007"`: "* SEARCH 2 3 4",
		"SEARCH NOT ON 25-Mar-2007":  "* SEARCH 1 4",
		"SEARCH SINCE 1-Jan-2008":    "* SEARCH",
		"SEARCH BEFORE 1-Jan-2008":   "* SEARCH 1 2 3 4",

		// The Date field, in its own zone; the internal date without one.
		"SEARCH SENTBEFORE 24-Mar-2007": "* SEARCH",
		"SEARCH SENTBEFORE 25-Mar-2007": "* SEARCH 1",
		"SEARCH SENTON 24-Mar-2007":     "* SEARCH 1",
		"SEARCH SENTON 25-Mar-2007":     "* SEARCH 2 3",
		"SEARCH SENTSINCE 26-Mar-2007":  "* SEARCH 4",
		"SEARCH SENTSINCE 25-Mar-2007":  "* SEARCH 2 3 4",
		"SEARCH NOT SENTON 25-Mar-2007": "* SEARCH 1 4",
	} {
		r.wantOne(cmd, want)
	}
	for _, cmd := range []string{"SEARCH ON 32-Mar-2007", "SEARCH ON 1-Foo-2007", "SEARCH ON 2007-03-01", "SEARCH ON", "SEARCH LARGER x"} {
		if st := r.tagged("%s", cmd); !strings.HasPrefix(st, "BAD") {
			t.Errorf("%s: %s", cmd, st)
		}
	}
}

var addressMsgs = []smsg{
	{text: "From: alice@example.org\nTo: bob@example.net\nCc: carol@example.com\nBcc: dave@example.com\n\n1\n"},
	{text: "From: Alice Liddell <alice@example.org>\nTo: Bob Builder <bob@example.net>\nCc: \"Carol, Singer\" <carol@example.com>\n\n2\n"},
	// Comments inside the address: the strict parser gives up on it.
	{text: "From: <alice (the sender)@ (her domain) example.org>\nTo: <bob@example.net>\n\n3\n"},
	// A comment as the name.
	{text: "From: alice@example.org (Alice Liddell)\nTo: bob@example.net (Bob Builder)\n\n4\n"},
	{text: "From: alice1@example.org, alice2@example.org\nCc: carol@example.com\n\n5\n"},
	{text: "From: Alice Liddell <alice@example.org>\nTo: friends: bob@example.net, erin@example.net;\n\n6\n"},
	{text: "From: =?utf-8?q?J=C3=BCrgen?= <jurgen@example.de>\nTo: undisclosed-recipients:;\n\n7\n"},
}

func TestSearchAddresses(t *testing.T) {
	_, r := searchEnv(t, addressMsgs...)
	for cmd, want := range map[string]string{
		"SEARCH FROM alice@example.org":      "* SEARCH 1 2 3 4 6",
		`SEARCH FROM "Alice Liddell"`:        "* SEARCH 2 4 6",
		"SEARCH FROM liddell":                "* SEARCH 2 4 6",
		"SEARCH FROM lice@exa":               "* SEARCH 1 2 3 4 6",
		"SEARCH FROM ALICE":                  "* SEARCH 1 2 3 4 5 6",
		"SEARCH FROM alice2":                 "* SEARCH 5",
		`SEARCH FROM "Liddell <alice@"`:      "* SEARCH 2 4 6",
		"SEARCH TO bob@example.net":          "* SEARCH 1 2 3 4 6",
		"SEARCH TO builder":                  "* SEARCH 2 4",
		"SEARCH TO erin":                     "* SEARCH 6",
		"SEARCH TO undisclosed-recipients":   "* SEARCH 7",
		`SEARCH CC "carol, singer"`:          "* SEARCH 2",
		"SEARCH CC carol":                    "* SEARCH 1 2 5",
		"SEARCH BCC dave":                    "* SEARCH 1",
		"SEARCH BCC nobody":                  "* SEARCH",
		"SEARCH HEADER TO \"\"":              "* SEARCH 1 2 3 4 6 7",
		"SEARCH HEADER CC \"\"":              "* SEARCH 1 2 5",
		"SEARCH HEADER BCC \"\"":             "* SEARCH 1",
		"SEARCH HEADER FROM liddell":         "* SEARCH 2 4 6",
		"SEARCH NOT FROM alice":              "* SEARCH 7",
		`SEARCH CHARSET UTF-8 FROM "jürgen"`: "* SEARCH 7",
		`SEARCH FROM "JÜRGEN"`:               "* SEARCH 7",
	} {
		r.wantOne(cmd, want)
	}
}

func TestSearchHeaderAndSubject(t *testing.T) {
	_, r := searchEnv(t,
		smsg{text: "Subject: hello beautiful world\n\nbody\n"},
		smsg{text: "X-Extra: hello beautiful header\nX-Extra: another one\n\nbody\n"},
		smsg{text: "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\nX-Folded: first\n second\n\nbody\n"},
	)
	for cmd, want := range map[string]string{
		"SEARCH SUBJECT hello":                   "* SEARCH 1",
		`SEARCH SUBJECT "hello beautiful world"`: "* SEARCH 1",
		`SEARCH SUBJECT "eautiful worl"`:         "* SEARCH 1",
		`SEARCH SUBJECT "köln"`:                  "* SEARCH 3",
		`SEARCH SUBJECT "KÖLN"`:                  "* SEARCH 3",
		"SEARCH SUBJECT nothing":                 "* SEARCH",
		`SEARCH HEADER SUBJECT ""`:               "* SEARCH 1 3",
		`SEARCH NOT HEADER SUBJECT ""`:           "* SEARCH 2",
		`SEARCH HEADER X-Extra ""`:               "* SEARCH 2",
		`SEARCH NOT HEADER x-extra ""`:           "* SEARCH 1 3",
		"SEARCH HEADER x-extra HELLO":            "* SEARCH 2",
		`SEARCH HEADER X-EXTRA "eautiful head"`:  "* SEARCH 2",
		"SEARCH HEADER x-extra another":          "* SEARCH 2",
		`SEARCH HEADER x-folded "first second"`:  "* SEARCH 3",
		`SEARCH HEADER subject "grüße"`:          "* SEARCH 3",
		"SEARCH HEADER x-none x":                 "* SEARCH",
	} {
		r.wantOne(cmd, want)
	}
}

func TestSearchBodyAndText(t *testing.T) {
	_, r := searchEnv(t,
		smsg{text: "Subject: one\n\nasdfghjkl zxcvbnm\n"},
		smsg{text: "Subject: qwertyuiop\n\nasdfghjkl\n"},
		smsg{text: "X-Header: qwertyuiop\n\nzxcvbnm\n"},
		smsg{text: "Subject: four\n\nzxcvbnm qwertyuiop\n"},
		smsg{text: "Subject: five\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=XX\n\npreamble\n" +
			"--XX\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n" +
			"dGhlIG5lZWRsZSBpbiBiYXNlNjQ=\n" + // "the needle in base64"
			"--XX\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n" +
			"c2VjcmV0d29yZA==\n" + // "secretword": not text
			"--XX--\n"},
		smsg{text: "Subject: six\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\ncaf=E9 cr=E8me\n"},
	)
	for cmd, want := range map[string]string{
		"SEARCH TEXT asdfghjkl":                "* SEARCH 1 2",
		"SEARCH TEXT qwertyuiop":               "* SEARCH 2 3 4",
		"SEARCH BODY qwertyuiop":               "* SEARCH 4",
		"SEARCH BODY ZXCVBNM":                  "* SEARCH 1 3 4",
		"SEARCH TEXT xcvbn":                    "* SEARCH 1 3 4",
		"SEARCH BODY wertyuio":                 "* SEARCH 4",
		"SEARCH BODY needle":                   "* SEARCH 5",
		"SEARCH BODY secretword":               "* SEARCH",
		`SEARCH BODY "café"`:                   "* SEARCH 6",
		`SEARCH TEXT "CRÈME"`:                  "* SEARCH 6",
		`SEARCH BODY ""`:                       "* SEARCH 1 2 3 4 5 6",
		"SEARCH TEXT multipart":                "* SEARCH 5",
		"SEARCH BODY multipart":                "* SEARCH",
		"SEARCH BODY nowhere":                  "* SEARCH",
		"SEARCH BODY zxcvbnm BODY qwertyuiop":  "* SEARCH 4",
		"SEARCH OR BODY asdfghjkl SUBJECT six": "* SEARCH 1 2 6",
	} {
		r.wantOne(cmd, want)
	}
}

// Search strings as literals: synchronizing (after a continuation) and
// LITERAL+, 8-bit with CHARSET UTF-8.
func TestSearchLiterals(t *testing.T) {
	_, r := searchEnv(t,
		smsg{text: "Subject: hello world\n\nbody\n"},
		smsg{text: "Subject: =?utf-8?q?K=C3=B6ln?=\n\nbody\n"},
	)
	r.Send("a SEARCH SUBJECT {5}\r\n")
	if l := r.Line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("no continuation: %q", l)
	}
	r.Send("WORLD\r\n")
	if u, st := r.until("a"); !strings.HasPrefix(st, "OK") || len(u) != 1 || u[0] != "* SEARCH 1" {
		t.Fatalf("%q %q", u, st)
	}
	r.Send("b SEARCH CHARSET UTF-8 OR SUBJECT {5+}\r\nköln SUBJECT {3+}\r\nxyz\r\n")
	if u, st := r.until("b"); !strings.HasPrefix(st, "OK") || len(u) != 1 || u[0] != "* SEARCH 2" {
		t.Fatalf("%q %q", u, st)
	}
	// A literal in a parenthesized group, then more keys.
	r.Send("c SEARCH (SUBJECT {5+}\r\nhello) ALL\r\n")
	if u, st := r.until("c"); !strings.HasPrefix(st, "OK") || len(u) != 1 || u[0] != "* SEARCH 1" {
		t.Fatalf("%q %q", u, st)
	}
}

func TestSearchCharsetAndSyntax(t *testing.T) {
	_, r := searchEnv(t, plainMsgs(2)...)
	r.wantOne("SEARCH CHARSET UTF-8 ALL", "* SEARCH 1 2")
	r.wantOne("SEARCH CHARSET us-ascii SUBJECT message", "* SEARCH 1 2")
	r.wantOne(`SEARCH CHARSET "UTF-8" SUBJECT "message 2"`, "* SEARCH 2")
	if st := r.tagged("SEARCH CHARSET ISO-8859-1 ALL"); st != "NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset ISO-8859-1" {
		t.Errorf("unknown charset: %q", st)
	}
	// A refused charset with a literal after it: the connection goes on.
	r.Send("x SEARCH CHARSET KOI8-R SUBJECT {3+}\r\nabc\r\n")
	if _, st := r.until("x"); !strings.HasPrefix(st, "NO [BADCHARSET") {
		t.Errorf("refused charset with literal: %q", st)
	}
	for _, cmd := range []string{
		"SEARCH", "SEARCH NOSUCHKEY", "SEARCH ()", "SEARCH (SEEN", "SEARCH SEEN)", "SEARCH OR SEEN",
		"SEARCH NOT", "SEARCH UID", "SEARCH UID x", "SEARCH 0", "SEARCH HEADER subject", "SEARCH SUBJECT",
		"SEARCH KEYWORD", "SEARCH CHARSET", "SEARCH SEEN  SEEN", "SEARCH RETURN (NOSUCH) ALL", "SEARCH RETURN ALL",
		"SEARCH " + strings.Repeat("NOT ", 200) + "SEEN",
		"SEARCH " + strings.Repeat("(", 100) + "SEEN" + strings.Repeat(")", 100),
	} {
		if st := r.tagged("%s", cmd); !strings.HasPrefix(st, "BAD") {
			t.Errorf("%s: %q", cmd, st)
		}
	}
	r.wantOne("SEARCH ALL", "* SEARCH 1 2") // still fine
}

func TestESearch(t *testing.T) {
	_, r := searchEnv(t, plainMsgs(7)...)
	r.ok(`STORE 4 +FLAGS (\Deleted)`)
	r.ok("EXPUNGE")
	u := uidsOf(t, r)
	r.ok(`STORE 2,4 +FLAGS (\Seen)`)
	n := 0
	tag := func() string { n++; return fmt.Sprintf("e%d", n) }
	for _, c := range []struct{ cmd, want string }{
		{"SEARCH RETURN (ALL) ALL", `* ESEARCH (TAG "%s") ALL 1:6`},
		{"SEARCH RETURN () ALL", `* ESEARCH (TAG "%s") ALL 1:6`},
		{"SEARCH RETURN (MIN) ALL", `* ESEARCH (TAG "%s") MIN 1`},
		{"SEARCH RETURN (MAX) ALL", `* ESEARCH (TAG "%s") MAX 6`},
		{"SEARCH RETURN (COUNT) ALL", `* ESEARCH (TAG "%s") COUNT 6`},
		{"SEARCH RETURN (MIN MAX ALL COUNT) SEEN", `* ESEARCH (TAG "%s") MIN 2 MAX 4 ALL 2,4 COUNT 2`},
		{"SEARCH RETURN (count max min) 2:5", `* ESEARCH (TAG "%s") MIN 2 MAX 5 COUNT 4`},
		{"SEARCH RETURN (ALL) CHARSET UTF-8 UNSEEN", `* ESEARCH (TAG "%s") ALL 1,3,5:6`},
		{"UID SEARCH RETURN (ALL) ALL", fmt.Sprintf(`* ESEARCH (TAG "%%s") UID ALL %d:%d,%d:%d`, u[0], u[2], u[3], u[5])},
		{"UID SEARCH RETURN (MIN MAX) SEEN", fmt.Sprintf(`* ESEARCH (TAG "%%s") UID MIN %d MAX %d`, u[1], u[3])},
		{"UID SEARCH RETURN (COUNT) SEEN", `* ESEARCH (TAG "%s") UID COUNT 2`},
		// Nothing found: only COUNT says so.
		{"SEARCH RETURN () 1000", `* ESEARCH (TAG "%s")`},
		{"SEARCH RETURN (MIN MAX) 1000", `* ESEARCH (TAG "%s")`},
		{"SEARCH RETURN (COUNT) 1000", `* ESEARCH (TAG "%s") COUNT 0`},
		{"UID SEARCH RETURN (MIN) 1000", `* ESEARCH (TAG "%s") UID`},
		{"UID SEARCH RETURN (ALL COUNT) 1000", `* ESEARCH (TAG "%s") UID COUNT 0`},
	} {
		tg := tag()
		r.Send(tg + " " + c.cmd + "\r\n")
		got, st := r.until(tg)
		want := fmt.Sprintf(c.want, tg)
		if !strings.HasPrefix(st, "OK") || len(got) != 1 || got[0] != want {
			t.Errorf("%s: %q %q, want %q", c.cmd, got, st, want)
		}
	}
}

func TestSearchRes(t *testing.T) {
	e, r := searchEnv(t, plainMsgs(6)...)
	u := uidsOf(t, r)
	// Before any SAVE, $ is empty.
	r.wantOne("SEARCH $", "* SEARCH")
	r.ok(`STORE 2,4:5 +FLAGS (\Seen)`)
	// SAVE alone answers nothing.
	r.wantOne("SEARCH RETURN (SAVE) SEEN", "* ESEARCH")
	r.wantOne("SEARCH $", "* SEARCH 2 4 5")
	r.wantOne("UID SEARCH UID $", fmt.Sprintf("* SEARCH %d %d %d", u[1], u[3], u[4]))
	r.wantOne("SEARCH NOT $", "* SEARCH 1 3 6")
	r.wantOne("SEARCH OR $ 1", "* SEARCH 1 2 4 5")
	// $ in STORE and COPY.
	r.ok(`STORE $ +FLAGS (\Flagged)`)
	r.wantOne("SEARCH FLAGGED", "* SEARCH 2 4 5")
	r.ok("CREATE Saved")
	if st := r.tagged("UID COPY $ Saved"); !strings.HasPrefix(st, "OK [COPYUID ") {
		t.Errorf("COPY $: %q", st)
	}
	if m, err := e.st.Mailbox(context.Background(), "info@example.com", "Saved"); err != nil || m.Messages != 3 {
		t.Errorf("copied %d (%v)", m.Messages, err)
	}
	// SAVE with other options saves everything it found, and answers.
	r.wantOne("SEARCH RETURN (SAVE COUNT) 1:3", `* ESEARCH (TAG "t`+fmt.Sprint(r.n+1)+`") COUNT 3`)
	r.wantOne("SEARCH $", "* SEARCH 1 2 3")
	// SAVE with only MIN and MAX saves those.
	r.wantOne("SEARCH RETURN (SAVE MIN MAX) 2:5", `* ESEARCH (TAG "t`+fmt.Sprint(r.n+1)+`") MIN 2 MAX 5`)
	r.wantOne("SEARCH $", "* SEARCH 2 5")
	r.wantOne("SEARCH RETURN (SAVE MIN) 3:5", `* ESEARCH (TAG "t`+fmt.Sprint(r.n+1)+`") MIN 3`)
	r.wantOne("SEARCH $", "* SEARCH 3")
	// A search can use the result it replaces.
	r.wantOne("SEARCH RETURN (SAVE) OR $ 6", "* ESEARCH")
	r.wantOne("SEARCH $", "* SEARCH 3 6")
	// An expunged message drops out of it.
	r.ok(`STORE 3 +FLAGS (\Deleted)`)
	r.ok("EXPUNGE")
	r.wantOne("SEARCH $", "* SEARCH 5")
	r.wantOne("UID SEARCH $", fmt.Sprintf("* SEARCH %d", u[5]))
	// A SEARCH that saves and fails empties it.
	if st := r.tagged("SEARCH RETURN (SAVE) NOSUCHKEY"); !strings.HasPrefix(st, "BAD") {
		t.Fatalf("bad key: %q", st)
	}
	r.wantOne("SEARCH $", "* SEARCH")
	r.wantOne("SEARCH RETURN (SAVE) 1", "* ESEARCH")
	if st := r.tagged("SEARCH RETURN (SAVE) CHARSET X ALL"); !strings.HasPrefix(st, "NO [BADCHARSET") {
		t.Fatalf("bad charset: %q", st)
	}
	r.wantOne("SEARCH $", "* SEARCH")
	// Selecting a mailbox starts without one.
	r.wantOne("SEARCH RETURN (SAVE) 1", "* ESEARCH")
	r.ok("SELECT INBOX")
	r.wantOne("SEARCH $", "* SEARCH")
	// FETCH with $, once FETCH is there.
	if _, ok := commands["FETCH"]; !ok {
		t.Skip("FETCH is not implemented yet")
	}
	r.wantOne("SEARCH RETURN (SAVE) 2,4", "* ESEARCH")
	got := r.ok("UID FETCH $ FLAGS")
	if len(got) != 2 || !strings.HasPrefix(got[0], "* 2 FETCH (") || !strings.Contains(got[0], fmt.Sprint("UID ", u[1])) ||
		!strings.HasPrefix(got[1], "* 4 FETCH (") {
		t.Errorf("UID FETCH $ FLAGS: %q", got)
	}
}

// SEARCH and SORT with CONDSTORE's MODSEQ (RFC 7162 3.1.5).
func TestSearchModSeq(t *testing.T) {
	e, r := searchEnv(t, plainMsgs(4)...)
	for _, seq := range []int{1, 3, 2, 4} {
		r.ok(`STORE %d +FLAGS (\Seen)`, seq)
	}
	msgs, meta, err := e.st.Messages(context.Background(), "info@example.com", "INBOX")
	testutil.Must(t, err)
	ms := func(seq int) uint64 { return msgs[seq-1].ModSeq }
	if !(ms(1) < ms(3) && ms(3) < ms(2) && ms(2) < ms(4)) {
		t.Fatalf("mod-sequences %d %d %d %d", ms(1), ms(2), ms(3), ms(4))
	}
	// The first MODSEQ turns CONDSTORE on, and says so.
	u := r.ok("SEARCH MODSEQ %d", ms(3))
	if len(u) != 2 || u[0] != fmt.Sprintf("* OK [HIGHESTMODSEQ %d] Highest", meta.HighestModSeq) ||
		u[1] != fmt.Sprintf("* SEARCH 2 3 4 (MODSEQ %d)", ms(4)) {
		t.Fatalf("first SEARCH MODSEQ: %q", u)
	}
	for _, c := range []struct{ cmd, want string }{
		{fmt.Sprintf(`SEARCH 1:3 MODSEQ "/flags/\\seen" all %d`, ms(3)), fmt.Sprintf("* SEARCH 2 3 (MODSEQ %d)", ms(2))},
		{fmt.Sprintf(`UID SEARCH MODSEQ "/flags/$Junk" priv %d`, ms(2)), fmt.Sprintf("* SEARCH %d %d (MODSEQ %d)", msgs[1].UID, msgs[3].UID, ms(4))},
		{fmt.Sprintf("SEARCH MODSEQ %d", ms(4)+1), "* SEARCH"},
		{"SEARCH NOT MODSEQ 0", "* SEARCH"},
		{fmt.Sprintf("SORT (REVERSE ARRIVAL) UTF-8 MODSEQ %d", ms(3)), fmt.Sprintf("* SORT 2 3 4 (MODSEQ %d)", ms(4))},
		{"SEARCH RETURN (MIN) 1:3 MODSEQ 1", fmt.Sprintf(`* ESEARCH (TAG "#") MIN 1 MODSEQ %d`, ms(1))},
		{"SEARCH RETURN (MAX) 1:3 MODSEQ 1", fmt.Sprintf(`* ESEARCH (TAG "#") MAX 3 MODSEQ %d`, ms(3))},
		{"SEARCH RETURN () 1:3 MODSEQ 1", fmt.Sprintf(`* ESEARCH (TAG "#") ALL 1:3 MODSEQ %d`, ms(2))},
		{"SEARCH RETURN (MIN MAX) 2:3 MODSEQ 1", fmt.Sprintf(`* ESEARCH (TAG "#") MIN 2 MAX 3 MODSEQ %d`, ms(2))},
		{fmt.Sprintf("SEARCH RETURN (COUNT) MODSEQ %d", ms(2)), fmt.Sprintf(`* ESEARCH (TAG "#") COUNT 2 MODSEQ %d`, ms(4))},
		{fmt.Sprintf("SEARCH RETURN (ALL) MODSEQ %d", ms(4)+1), `* ESEARCH (TAG "#")`},
	} {
		// "#" is the tag of the command.
		r.wantOne(c.cmd, strings.Replace(c.want, "#", fmt.Sprintf("t%d", r.n+1), 1))
	}
	for _, cmd := range []string{"SEARCH MODSEQ", "SEARCH MODSEQ x", `SEARCH MODSEQ "/flags/\\seen" mine 1`, `SEARCH MODSEQ "/flags/\\seen" 1`} {
		if st := r.tagged("%s", cmd); !strings.HasPrefix(st, "BAD") {
			t.Errorf("%s: %q", cmd, st)
		}
	}
}

func TestSort(t *testing.T) {
	_, r := searchEnv(t,
		smsg{date: "2008-02-22 00:00:00 +0000", text: "Date: Fri, 22 Feb 2008 00:00:00 +0200\nSubject: b\nFrom: user2@domain2.org\nTo: Zed <zed@a.org>\nCc: user2@domain2.org (foo bar)\n\n" + strings.Repeat("1", 1000) + "\n"},
		smsg{date: "2008-02-22 02:00:00 +0000", text: "Date: Fri, 22 Feb 2008 02:00:00 +0200\nSubject: Re: a\nFrom: user2@domain1.org\nTo: b@c.d\nCc: =?utf-8?q?B=C3=A4r?= <user2@domain1.org>\n\n" + strings.Repeat("x", 2000) + "\n"},
		smsg{date: "2008-02-22 01:00:00 +0000", text: "Subject: [list] A\nFrom: user1@domain1.org\nTo: =?iso-8859-1?q?foo_aar?= <e@f.g>\nCc: user1@domain1.org\n\n" + strings.Repeat("x", 3000) + "\n"},
		smsg{date: "2008-02-22 02:00:00 +0000", text: "Date: Fri, 22 Feb 2008 01:30:00 +0200\nSubject: c (fwd)\nFrom: <User0 (x) @ (y) domain.org>\nTo: d\n\n" + strings.Repeat("x", 5000) + "\n"},
		smsg{date: "2008-02-22 02:00:00 +0000", text: "Date: Fri, 22 Feb 2008 01:00:00 +0200\nFrom: Anna <zz@x.org>\nTo: undisclosed:;\n\n" + strings.Repeat("x", 4000) + "\n"},
	)
	for _, c := range []struct{ cmd, want string }{
		{"SORT (ARRIVAL) US-ASCII ALL", "1 3 2 4 5"},
		{"SORT (REVERSE ARRIVAL) US-ASCII ALL", "2 4 5 3 1"},
		{"SORT (ARRIVAL REVERSE SIZE) UTF-8 ALL", "1 3 4 5 2"},
		{"SORT (SIZE) US-ASCII ALL", "1 2 3 5 4"},
		{"SORT (REVERSE SIZE) US-ASCII ALL", "4 5 3 2 1"},
		// Sent dates in UTC: 1 21-22:00, 2 00:00, 3 (internal) 01:00,
		// 4 23:30, 5 23:00.
		{"SORT (DATE) US-ASCII ALL", "1 5 4 2 3"},
		{"SORT (REVERSE DATE) US-ASCII ALL", "3 2 4 5 1"},
		// Base subjects: "" (5), A (2, 3), B (1), C (4).
		{"SORT (SUBJECT) US-ASCII ALL", "5 2 3 1 4"},
		{"SORT (REVERSE SUBJECT) US-ASCII ALL", "4 1 2 3 5"},
		{"SORT (SUBJECT REVERSE ARRIVAL) US-ASCII ALL", "5 2 3 1 4"},
		{"SORT (SUBJECT REVERSE SIZE) US-ASCII ALL", "5 3 2 1 4"},
		// First From mailbox: user0, user1, user2 (1, 2), zz.
		{"SORT (FROM) US-ASCII ALL", "4 3 1 2 5"},
		{"SORT (REVERSE FROM) US-ASCII ALL", "5 1 2 3 4"},
		// First Cc mailbox: "" (4, 5: none), user1, user2 (1, 2).
		{"SORT (CC) US-ASCII ALL", "4 5 3 1 2"},
		{"SORT (REVERSE CC) US-ASCII ALL", "1 2 3 4 5"},
		{"SORT (CC REVERSE ARRIVAL) US-ASCII ALL", "4 5 3 2 1"},
		// First To mailbox: b, d, e, "undisclosed" (5's group, by its
		// name), zed.
		{"SORT (TO) US-ASCII ALL", "2 4 3 5 1"},
		// Display: "b@c.d", "d", "foo aar", "undisclosed", "Zed".
		{"SORT (DISPLAYTO) US-ASCII ALL", "2 4 3 5 1"},
		{"SORT (DISPLAYFROM) US-ASCII ALL", "5 4 3 2 1"},
		{"SORT (REVERSE DISPLAYFROM) US-ASCII ALL", "1 2 3 4 5"},
		// Criteria restrict what is sorted.
		{"SORT (REVERSE ARRIVAL) UTF-8 NOT 2", "4 5 3 1"},
		{"SORT (ARRIVAL) US-ASCII 1000", ""},
	} {
		want := "* SORT"
		if c.want != "" {
			want += " " + c.want
		}
		r.wantOne(c.cmd, want)
	}
	u := uidsOf(t, r)
	r.wantOne("UID SORT (REVERSE ARRIVAL) US-ASCII 1:3", fmt.Sprintf("* SORT %d %d %d", u[1], u[2], u[0]))
	for _, cmd := range []string{"SORT () US-ASCII ALL", "SORT (REVERSE) US-ASCII ALL",
		"SORT (NOSUCH) US-ASCII ALL", "SORT ARRIVAL US-ASCII ALL", "SORT (ARRIVAL) US-ASCII", "SORT (REVERSE REVERSE SIZE) US-ASCII ALL"} {
		if st := r.tagged("%s", cmd); !strings.HasPrefix(st, "BAD") {
			t.Errorf("%s: %q", cmd, st)
		}
	}
	if st := r.tagged("SORT (ARRIVAL) ISO-8859-1 ALL"); !strings.HasPrefix(st, "NO [BADCHARSET (UTF-8 US-ASCII)]") {
		t.Errorf("charset: %q", st)
	}
	// ESORT: MIN and MAX are the first and last in sort order, ALL is
	// in sort order.
	for _, c := range []struct{ cmd, want string }{
		{"SORT RETURN (MIN) (ARRIVAL) US-ASCII 1:5", "MIN 1"},
		{"SORT RETURN (MAX) (ARRIVAL) US-ASCII 1:5", "MAX 5"},
		{"SORT RETURN (ALL) (ARRIVAL) US-ASCII ALL", "ALL 1,3,2,4:5"},
		{"SORT RETURN () (REVERSE ARRIVAL) US-ASCII ALL", "ALL 2,4:5,3,1"},
		{"SORT RETURN (COUNT) (ARRIVAL) US-ASCII 2:*", "COUNT 4"},
		{"SORT RETURN (MIN MAX COUNT) (REVERSE SIZE) US-ASCII ALL", "MIN 4 MAX 1 COUNT 5"},
		{"SORT RETURN (COUNT) (SIZE) US-ASCII 1000", "COUNT 0"},
	} {
		r.wantOne(c.cmd, fmt.Sprintf(`* ESEARCH (TAG "t%d") %s`, r.n+1, c.want))
	}
	r.wantOne("UID SORT RETURN (MIN MAX) (REVERSE ARRIVAL) US-ASCII ALL", fmt.Sprintf(`* ESEARCH (TAG "t%d") UID MIN %d MAX %d`, r.n+1, u[1], u[0]))
	// SAVE in SORT keeps the set.
	r.wantOne("SORT RETURN (SAVE) (SIZE) US-ASCII 4:5", "* ESEARCH")
	r.wantOne("SEARCH $", "* SEARCH 4 5")
}

func TestBaseSubject(t *testing.T) {
	for in, want := range map[string]struct {
		base  string
		reply bool
	}{
		"":                                     {"", false},
		"   ":                                  {"", false},
		"hello":                                {"hello", false},
		"Re: hello":                            {"hello", true},
		"RE:hello":                             {"hello", true},
		"re : hello":                           {"hello", true},
		"Re[2]: hello":                         {"hello", true},
		"Re: Re: Fwd: hello":                   {"hello", true},
		"Fw: hello":                            {"hello", true},
		"FWD:   hello   world  ":               {"hello world", true},
		"hello (fwd)":                          {"hello", true},
		"hello (FWD) (fwd) ":                   {"hello", true},
		"[list] hello":                         {"hello", false},
		"[list] Re: hello":                     {"hello", true},
		"Re: [list] hello":                     {"hello", true},
		"[a][b] [c] Re: [d] hello":             {"hello", true},
		"[list]":                               {"[list]", false},
		"[list] [other]":                       {"[other]", false},
		"[fwd: hello]":                         {"hello", true},
		"Re: [Fwd: hello]":                     {"hello", true},
		"re: [fwd: [fwd: re: [fwd: babylon]]]": {"babylon", true},
		"[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)": {"b", true},
		"Ad: Re: Ad: x":        {"Ad: Re: Ad: x", false},
		"hello\tbig\r\n world": {"hello big world", false},
		"Regarding: x":         {"Regarding: x", false},
		"b (a)":                {"b (a)", false},
		"[unclosed Re: x":      {"[unclosed Re: x", false},
	} {
		base, reply := baseSubject(in)
		if base != want.base || reply != want.reply {
			t.Errorf("%q: %q %v, want %q %v", in, base, reply, want.base, want.reply)
		}
	}
}

func threadMsgs(specs ...string) []smsg {
	out := make([]smsg, len(specs))
	for i, s := range specs {
		out[i].text = strings.ReplaceAll(s, "|", "\n") + "\n\nbody\n"
	}
	return out
}

func TestThreadReferences(t *testing.T) {
	type threadCase struct {
		name string
		msgs []string
		want string
	}
	var cases []threadCase
	for _, c := range []threadCase{
		{"loop: the message's own reference wins, the loop is not made",
			[]string{"Message-ID: <a@t>|Date: Fri, 22 Feb 2008 17:00:00 +0000",
				"Message-ID: <b@t>|References: <a@t> <c@t>|Date: Fri, 22 Feb 2008 15:00:00 +0000",
				"Message-ID: <c@t>|References: <b@t>|Date: Fri, 22 Feb 2008 16:00:00 +0000"},
			"(3 2)(1)"},
		{"duplicate ids are unique",
			[]string{"Message-ID: <a@t>", "Message-ID: <a@t>"}, "(1)(2)"},
		{"duplicate ids, merged by subject",
			[]string{"Message-ID: <a@t>|Subject: foo", "Message-ID: <a@t>|Subject: Re: foo"}, "(1 2)"},
		{"a missing parent keeps a dummy among the roots",
			[]string{"References: <gone@t>", "References: <gone@t>"}, "((1)(2))"},
		{"a missing parent with one child is pruned",
			[]string{"Message-ID: <x@t>|References: <gone@t>", "Message-ID: <y@t>"}, "(1)(2)"},
		{"a missing parent in the middle of a chain",
			[]string{"Message-ID: <a@t>", "Message-ID: <c@t>|References: <a@t> <b@t>", "Message-ID: <d@t>|References: <a@t> <b@t>"},
			"(1 (2)(3))"},
		{"In-Reply-To when there is no References",
			[]string{"Message-ID: <1@t>", "Message-ID: <2@t>|In-Reply-To: <1@t>", "Message-ID: <3@t>|In-Reply-To: <1@t> (comment <x@y>)",
				"Message-ID: <4@t>|In-Reply-To: <2@t>"},
			"(1 (2 4)(3))"},
		{"a duplicate in a chain",
			[]string{"Message-ID: <a@t>", "Message-ID: <b@t>|References: <a@t>", "Message-ID: <c@t>|References: <b@t>",
				"Message-ID: <b@t>|References: <a@t>"},
			"(1 (2 3)(4))"},
		{"children and roots by sent date",
			[]string{"Message-ID: <a@t>|Date: Fri, 22 Feb 2008 10:00:00 +0000",
				"Message-ID: <b@t>|References: <a@t>|Date: Fri, 22 Feb 2008 12:00:00 +0000",
				"Message-ID: <c@t>|References: <a@t>|Date: Fri, 22 Feb 2008 11:00:00 +0000",
				"Message-ID: <d@t>|Date: Fri, 22 Feb 2008 09:00:00 +0000"},
			"(4)(1 (3)(2))"},
		{"same subject: a reply goes under the original",
			[]string{"Message-ID: <a@t>|Subject: hello", "Message-ID: <b@t>|Subject: Re: hello", "Message-ID: <c@t>|Subject: [list] hello (fwd)"},
			"(1 (2)(3))"},
		{"same subject, neither a reply: under a dummy",
			[]string{"Message-ID: <a@t>|Subject: hello", "Message-ID: <b@t>|Subject: hello"},
			"((1)(2))"},
		{"same subject: a dummy root takes the others",
			[]string{"References: <gone@t>|Subject: topic", "References: <gone@t>|Subject: Re: topic", "Message-ID: <z@t>|Subject: topic"},
			"((1)(2)(3))"},
		{"empty subjects are not merged",
			[]string{"Message-ID: <a@t>", "Message-ID: <b@t>|Subject: Re:"}, "(1)(2)"},
		// As RFC 5256 (and Dovecot) have it: the last reference, itself,
		// would make a loop, and the link to the one before was undone.
		{"a message refers to itself",
			[]string{"Message-ID: <a@t>|References: <a@t>", "Message-ID: <b@t>|References: <a@t> <b@t>"}, "(1)(2)"},
	} {
		cases = append(cases, c)
	}
	e, r := searchEnv(t)
	for i, c := range cases {
		box := fmt.Sprintf("T%d", i)
		r.ok("CREATE %s", box)
		deliverTo(t, e.st, box, threadMsgs(c.msgs...)...)
		r.ok("SELECT %s", box)
		t.Log(c.name)
		r.wantOne("THREAD REFERENCES US-ASCII ALL", "* THREAD "+c.want)
	}
}

func TestThreadAfterExpunge(t *testing.T) {
	_, r := searchEnv(t, threadMsgs(
		"Message-ID: <a@t>|Date: Fri, 22 Feb 2008 17:00:00 +0000",
		"Message-ID: <b@t>|References: <a@t> <c@t>|Date: Fri, 22 Feb 2008 15:00:00 +0000",
		"Message-ID: <c@t>|References: <b@t>|Date: Fri, 22 Feb 2008 16:00:00 +0000")...)
	r.wantOne("THREAD REFERENCES UTF-8 ALL", "* THREAD (3 2)(1)")
	u := uidsOf(t, r)
	r.wantOne("UID THREAD REFERENCES UTF-8 ALL", fmt.Sprintf("* THREAD (%d %d)(%d)", u[2], u[1], u[0]))
	r.ok(`STORE 1 +FLAGS (\Deleted)`)
	r.ok("EXPUNGE")
	r.wantOne("THREAD REFERENCES US-ASCII ALL", "* THREAD (2 1)")
	// Only what the criteria find is threaded.
	r.wantOne("THREAD REFERENCES US-ASCII 2", "* THREAD (2)")
	r.wantOne("THREAD REFERENCES US-ASCII 1000", "* THREAD")
	for _, cmd := range []string{"THREAD NOSUCH US-ASCII ALL", "THREAD REFERENCES US-ASCII", "THREAD"} {
		if st := r.tagged("%s", cmd); !strings.HasPrefix(st, "BAD") {
			t.Errorf("%s: %q", cmd, st)
		}
	}
	if st := r.tagged("THREAD REFERENCES X-UNKNOWN ALL"); !strings.HasPrefix(st, "NO [BADCHARSET") {
		t.Errorf("charset: %q", st)
	}
}

func TestThreadOrderedSubject(t *testing.T) {
	_, r := searchEnv(t, threadMsgs(
		"Subject: a|Date: Fri, 22 Feb 2008 22:00:10 +0200",
		"Subject: b|Date: Fri, 22 Feb 2008 22:00:09 +0200",
		"Subject: Re: a|Date: Fri, 22 Feb 2008 22:00:08 +0200",
		"Subject: [x] B (fwd)|Date: Fri, 22 Feb 2008 22:00:07 +0200",
		"Subject: a|Date: Fri, 22 Feb 2008 22:00:30 +0200",
		"Subject: c|Date: Fri, 22 Feb 2008 22:00:01 +0200",
		"Date: Fri, 22 Feb 2008 22:00:50 +0200",
		"Subject: Re:|Date: Fri, 22 Feb 2008 22:00:40 +0200",
	)...)
	// Threads by their first message's date: c (01), b (07: 4, 2),
	// a (08: 3, 1, 5), "" (40: 8, 7).
	r.wantOne("THREAD ORDEREDSUBJECT US-ASCII ALL", "* THREAD (6)(4 2)(3 (1)(5))(8 7)")
	r.wantOne("THREAD ORDEREDSUBJECT US-ASCII NOT 6", "* THREAD (4 2)(3 (1)(5))(8 7)")
}

// countingStore counts the messages the server opens.
type countingStore struct {
	store.Store
	opened atomic.Int64
}

func (s *countingStore) OpenMessage(ctx context.Context, account, mailbox string, uid uint32) (io.ReadCloser, store.MessageInfo, error) {
	s.opened.Add(1)
	return s.Store.OpenMessage(ctx, account, mailbox, uid)
}

func (s *countingStore) ReadMessage(ctx context.Context, account, mailbox string, uid uint32) ([]byte, error) {
	s.opened.Add(1)
	return s.Store.ReadMessage(ctx, account, mailbox, uid)
}

// Flags, sizes, dates and the envelope's fields are searched and sorted
// without opening a message.
func TestSearchOpensNoMessage(t *testing.T) {
	const n = 300
	st := &countingStore{Store: teststore.New(t, teststore.Options{Accounts: []store.Account{
		{Address: "info@example.com", PasswordHash: teststore.PasswordHash(t, "pw-info")}}})}
	msgs := make([]smsg, n)
	for i := range msgs {
		msgs[i] = smsg{date: fmt.Sprintf("2008-02-%02d 12:00:00 +0000", 1+i%28),
			text: fmt.Sprintf("From: Sender %d <s%d@example.org>\nTo: info@example.com\nCc: c%d@example.org\nSubject: Re: message %d\n"+
				"Date: Fri, %d Feb 2008 12:00:00 +0000\nMessage-ID: <%d@t>\nX-Other: %d\n\nbody %d\n", i, i, i, i, 1+i%28, i, i, i)}
		if i%3 == 0 {
			msgs[i].flags = []string{`\Seen`}
		}
	}
	deliverAll(t, st, msgs...)
	sp, err := spool.Open(filepath.Join(t.TempDir(), "spool"), 0, 0)
	testutil.Must(t, err)
	srv := New(Config{Spool: sp, AllowInsecureAuth: true}, st, auth.New(st, auth.Policy{MaxFailures: 50}, nil),
		slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	addrs := testutil.Serve(t, srv, tlstest.SelfSigned(t, "localhost").Server, netserve.Plain).Addrs
	r := dialRaw(t, addrs[0], false)
	r.login("info@example.com")
	r.ok("SELECT INBOX")
	for _, cmd := range []string{
		"SEARCH SEEN LARGER 10 SINCE 1-Feb-2008 NOT ON 3-Feb-2008",
		"SEARCH FROM s17@ OR TO info CC c2 SUBJECT \"message 1\" SENTSINCE 5-Feb-2008",
		"UID SEARCH RETURN (COUNT) OR BCC x SENTBEFORE 2-Feb-2008",
		"SORT (REVERSE DATE SUBJECT FROM TO CC DISPLAYFROM SIZE ARRIVAL) UTF-8 UNSEEN",
		"THREAD ORDEREDSUBJECT UTF-8 ALL",
		"SEARCH BODY body SEEN UNSEEN", // nothing is both: no body is read
	} {
		r.ok("%s", cmd)
		if o := st.opened.Swap(0); o != 0 && !strings.Contains(cmd, "BCC") {
			t.Errorf("%s opened %d messages", cmd, o)
		} else if strings.Contains(cmd, "BCC") && o != n {
			// No Bcc in the envelope: each header is read, once.
			t.Errorf("%s opened %d messages, want %d", cmd, o, n)
		}
	}
	r.wantOne("SEARCH SUBJECT \"message 17\" FROM s17@", "* SEARCH 18")
	// HEADER, BODY and THREAD REFERENCES read what they need, once a message.
	for _, cmd := range []string{"SEARCH HEADER X-Other 7", "SEARCH BODY \"body 7\" TEXT body", "THREAD REFERENCES UTF-8 ALL"} {
		r.ok("%s", cmd)
		if o := st.opened.Swap(0); o != n {
			t.Errorf("%s opened %d messages, want %d", cmd, o, n)
		}
	}
	r.ok("SEARCH 5 BODY x")
	if o := st.opened.Swap(0); o != 1 {
		t.Errorf("SEARCH 5 BODY x opened %d messages", o)
	}
}

// BenchmarkSearch10k: searches of a 10,000-message mailbox by flags,
// size and date, and by envelope fields.
func BenchmarkSearch10k(b *testing.B) {
	e := newEnv(b, Config{AllowInsecureAuth: true})
	fill(b, e.st, 10000, 2048)
	r := dialRaw(b, e.plain, false)
	r.login("info@example.com")
	r.ok("SELECT INBOX")
	r.ok("SEARCH FROM bench") // the envelope cache filled
	for _, cmd := range []string{"SEARCH UNSEEN LARGER 1000 SINCE 1-Jan-2000", "SEARCH FROM bench SUBJECT \"number 99\"",
		"SORT (REVERSE DATE) UTF-8 ALL", "SORT (SUBJECT) UTF-8 ALL"} {
		b.Run(strings.Fields(cmd)[1], func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				r.ok("%s", cmd)
			}
		})
	}
}
