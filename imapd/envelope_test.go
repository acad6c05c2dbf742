package imapd

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"

	"yubin/internal/mailheader"
	"yubin/internal/testutil"
)

// envelopeHeaders are odd headers whose envelopes, from the store's cache,
// must be what the library's ExtractEnvelope makes of them.
var envelopeHeaders = []string{
	"From: Alice Example <alice@example.org>\r\nTo: info@example.com\r\nSubject: hello\r\n" +
		"Date: Mon, 02 Jan 2006 15:04:05 +0100\r\nMessage-ID: <1@example.org>\r\n\r\nbody\r\n",
	"From: =?UTF-8?B?SsO8cmdlbiBNw7xsbGVy?= <jm@example.de>\r\n" +
		"To: =?ISO-8859-1?Q?Fran=E7ois?= <f@example.fr>, \"Bob, Jr.\" <bob@example.com>\r\n" +
		"Subject: =?UTF-8?Q?caf=C3=A9_?= =?UTF-8?B?5pel5pys?= and more\r\n" +
		"Subject: =?windows-1252?Q?second_=80?=\r\n" +
		"Date: 2 Jan 2006 15:04:05 -0800 (PST)\r\n\r\n",
	"X-Nothing: here\r\n\r\nbody\r\n",
	"\r\njust a body\r\n",
	"Subject: only a header\r\nFrom: a@example.org",
	"From: a@example.org\r\nTo: undisclosed-recipients:;\r\nCc: Team: b@example.org, Carol <c@example.org>;, d@example.org\r\n\r\n",
	"Received: from x\r\n\tby y; Mon, 02 Jan 2006 15:04:05 +0000\r\nsubject: a long\r\n subject line\r\nFROM: a@example.org\r\n" +
		"Sender: s@example.org\r\nReply-To: r@example.org\r\nBcc: x@example.org\r\nIn-Reply-To: <a@x> <b@y>\r\nMessage-Id:   <m@z>  \r\n\r\n",
	"From: a@example.org\r\nthis is not a field\r\nSubject: lost\r\n\r\n",
	"From: not an address\r\nTo: <@>\r\nDate: yesterday\r\nSubject: =?x-unknown?Q?abc?=\r\n\r\n",
	"Subject: lf\nFrom: a@example.org\nDate: Tue, 3 Jan 2006 01:02:03 GMT\n\nbody\n",
	" starts with a space: x\r\nSubject: never seen\r\n\r\n",
}

// envelopeString renders an envelope the way the wire shows it (the date
// by its text, not its *time.Location).
func envelopeString(e *imap.Envelope) string {
	d := ""
	if !e.Date.IsZero() {
		d = e.Date.Format(time.RFC1123Z)
	}
	return fmt.Sprintf("%s|%q|%q|%q|%q|%q|%q|%q|%q|%q", d, e.Subject, e.From, e.Sender, e.ReplyTo, e.To, e.Cc, e.Bcc, e.InReplyTo, e.MessageID)
}

// libraryEnvelope is the library's envelope of a message's header.
func libraryEnvelope(m string) *imap.Envelope {
	h, _ := textproto.ReadHeader(bufio.NewReader(strings.NewReader(m[:headerLen(m)])))
	return imapserver.ExtractEnvelope(h)
}

// flatEnvelope is a summary as the library would make it: where we
// deliberately differ, groups, the library lists the members alone (it
// drops the group syntax of RFC 5322 3.4, which ENVELOPE keeps: RFC 3501
// 7.4.2).
func flatEnvelope(e *mailheader.Summary) *imap.Envelope {
	list := func(l []mailheader.Address) []imap.Address {
		var out []imap.Address
		for _, a := range l {
			if a.Host != "" {
				out = append(out, imap.Address{Name: a.Name, Mailbox: a.Mailbox, Host: a.Host})
			}
		}
		return out
	}
	return &imap.Envelope{Date: e.Date, Subject: e.Subject, From: list(e.From), Sender: list(e.Sender), ReplyTo: list(e.ReplyTo),
		To: list(e.To), Cc: list(e.Cc), Bcc: list(e.Bcc), InReplyTo: e.InReplyTo, MessageID: e.MessageID}
}

func TestEnvelopeMatchesLibrary(t *testing.T) {
	e := newEnv(t, Config{})
	var uids []uint32
	for _, m := range envelopeHeaders {
		uids = append(uids, e.deliver(t, "info@example.com", "", m).UID)
	}
	for pass := range 2 { // parsed, then (probably) from the cache
		envs, err := e.st.Summaries(t.Context(), "info@example.com", "INBOX", uids)
		testutil.Must(t, err)
		for i, m := range envelopeHeaders {
			want := libraryEnvelope(m)
			if got := flatEnvelope(&envs[i]); envelopeString(got) != envelopeString(want) {
				t.Errorf("pass %d, message %d:\n got %s\nwant %s", pass, i, envelopeString(got), envelopeString(want))
			}
		}
		// The groups the library drops.
		g := envs[5]
		if len(g.To) != 2 || !g.To[0].IsGroupStart() || g.To[0].Mailbox != "undisclosed-recipients" || !g.To[1].IsGroupEnd() ||
			len(g.Cc) != 5 || g.Cc[0].Mailbox != "Team" || !g.Cc[3].IsGroupEnd() || g.Cc[4].Mailbox != "d" {
			t.Errorf("pass %d: groups %+v %+v", pass, g.To, g.Cc)
		}
		time.Sleep(50 * time.Millisecond) // let the cache write land
	}
}

func headerLen(m string) int {
	if i := strings.Index(m, "\r\n\r\n"); i >= 0 {
		return i + 4
	}
	if i := strings.Index(m, "\n\n"); i >= 0 {
		return i + 2
	}
	return len(m)
}

// ENVELOPE on the wire: after delivery, from the cache, and for a copy.
func TestFetchEnvelope(t *testing.T) {
	e := newEnv(t, Config{})
	e.deliver(t, "info@example.com", "", envelopeHeaders[1])
	e.deliver(t, "info@example.com", "", envelopeHeaders[5])
	r := dialRaw(t, e.implicit, true)
	r.login("info@example.com")
	r.ok("SELECT INBOX")
	want := []string{
		`* 1 FETCH (UID 1 ENVELOPE ("Mon, 02 Jan 2006 15:04:05 -0800" "=?utf-8?q?caf=C3=A9_=E6=97=A5=E6=9C=AC_and_more?=" ` +
			`(("=?utf-8?q?J=C3=BCrgen_M=C3=BCller?=" NIL "jm" "example.de")) (("=?utf-8?q?J=C3=BCrgen_M=C3=BCller?=" NIL "jm" "example.de")) ` +
			`(("=?utf-8?q?J=C3=BCrgen_M=C3=BCller?=" NIL "jm" "example.de")) (("=?utf-8?q?Fran=C3=A7ois?=" NIL "f" "example.fr")("Bob, Jr." NIL "bob" "example.com")) ` +
			`NIL NIL NIL NIL))`,
		// Groups as RFC 3501 7.4.2 lists them; the old, library-based
		// server left them out.
		`* 2 FETCH (UID 2 ENVELOPE (NIL NIL ((NIL NIL "a" "example.org")) ((NIL NIL "a" "example.org")) ((NIL NIL "a" "example.org")) ` +
			`((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) ` +
			`((NIL NIL "Team" NIL)(NIL NIL "b" "example.org")("Carol" NIL "c" "example.org")(NIL NIL NIL NIL)(NIL NIL "d" "example.org")) NIL NIL NIL))`,
	}
	check := func(when string, got []string) {
		t.Helper()
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\n got %q\nwant %q", when, got, want)
		}
	}
	check("first", r.ok("UID FETCH 1:* (UID ENVELOPE)"))
	time.Sleep(50 * time.Millisecond)
	check("again", r.ok("UID FETCH 1:* (UID ENVELOPE)"))
	r.ok("CREATE Copies")
	r.ok("UID COPY 1:* Copies")
	r.ok("SELECT Copies")
	check("copy", r.ok("UID FETCH 1:* (UID ENVELOPE)"))
}

// A FETCH of many responses and big literals goes out whole, in order,
// and the connection works normally afterwards.
func TestFetchCorked(t *testing.T) {
	e := newEnv(t, Config{})
	var bodies []string
	for i := range 300 {
		n := 100
		if i%50 == 7 {
			n = 40 << 10 // literals bigger than the cork buffer
		}
		body := fmt.Sprintf("Subject: m%d\r\n\r\n", i) + strings.Repeat(fmt.Sprintf("%03d", i%1000), n/3) + "\r\n"
		bodies = append(bodies, body)
		e.deliver(t, "info@example.com", "", body)
	}
	r := dialRaw(t, e.implicit, true)
	r.login("info@example.com")
	r.ok("SELECT INBOX")
	for round := range 2 {
		r.Send("f FETCH 1:* (FLAGS ENVELOPE BODY.PEEK[])\r\n")
		for i := range bodies {
			l := r.Line()
			prefix := fmt.Sprintf("* %d FETCH (FLAGS (\\Recent) ENVELOPE (NIL \"m%d\" ", i+1, i)
			if !strings.HasPrefix(l, prefix) {
				t.Fatalf("round %d response %d: %q", round, i, l)
			}
			n := r.skipLiteralInto(l)
			if n != bodies[i] {
				t.Fatalf("round %d body %d: %d bytes, want %d", round, i, len(n), len(bodies[i]))
			}
			if l := r.Line(); l != ")" {
				t.Fatalf("after literal %d: %q", i, l)
			}
		}
		if _, st := r.until("f"); !strings.HasPrefix(st, "OK") {
			t.Fatal(st)
		}
	}
	r.ok("NOOP")
	r.ok("STORE 1 +FLAGS (\\Flagged)")
	if u := r.ok("FETCH 1 FLAGS"); len(u) != 1 || u[0] != `* 1 FETCH (FLAGS (\Flagged \Recent))` {
		t.Errorf("flags: %q", u)
	}
}

// skipLiteralInto reads the literal announced at the end of l.
func (r *raw) skipLiteralInto(l string) string {
	r.T.Helper()
	var n int
	i := strings.LastIndexByte(l, '{')
	if _, err := fmt.Sscanf(l[i:], "{%d}", &n); err != nil {
		r.T.Fatalf("no literal in %q", l)
	}
	var b bytes.Buffer
	if _, err := io.CopyN(&b, r.R, int64(n)); err != nil {
		r.T.Fatal(err)
	}
	return b.String()
}
