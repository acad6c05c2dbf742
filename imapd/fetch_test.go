package imapd

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"yubin/internal/testutil"
)

// crlf turns a text written with \n line ends into CRLF.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// full sends a command and returns its untagged responses whole (each
// literal inlined after its announcement) and the tagged status.
func (r *raw) full(format string, args ...any) ([]string, string) {
	r.T.Helper()
	r.n++
	tag := fmt.Sprintf("t%d", r.n)
	r.Send(tag + " " + fmt.Sprintf(format, args...) + "\r\n")
	var out []string
	for {
		l := r.Line()
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			return out, rest
		}
		resp := l
		for strings.HasSuffix(l, "}") {
			i := strings.LastIndexByte(l, '{')
			var n int
			if _, err := fmt.Sscanf(l[i:], "{%d}", &n); err != nil {
				break
			}
			b := make([]byte, n)
			if _, err := io.ReadFull(r.R, b); err != nil {
				r.T.Fatal(err)
			}
			l = r.Line()
			resp += "\r\n" + string(b) + l
		}
		out = append(out, resp)
	}
}

// fetchOK is full for a command that must succeed with a plain OK.
func (r *raw) fetchOK(format string, args ...any) []string {
	r.T.Helper()
	out, st := r.full(format, args...)
	if !strings.HasPrefix(st, "OK") || strings.HasPrefix(st, "OK [") {
		r.T.Fatalf("%s: %s (untagged %q)", fmt.Sprintf(format, args...), st, out)
	}
	return out
}

// expect checks a command's responses.
func (r *raw) expect(cmd string, want ...string) {
	r.T.Helper()
	got := r.fetchOK("%s", cmd)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		r.T.Errorf("%s:\n got %q\nwant %q", cmd, got, want)
	}
}

// lit is a literal as the server writes it.
func lit(s string) string { return fmt.Sprintf("{%d}\r\n%s", len(s), s) }

// selectedRaw logs in and selects box twice: the first SELECT claims its
// messages as \Recent, so that none is in the session (the tests show
// flags as they are stored).
func selectedRaw(t *testing.T, e *env, box string) *raw {
	t.Helper()
	r := dialRaw(t, e.implicit, true)
	r.login("info@example.com")
	r.ok("SELECT %s", box)
	r.ok("SELECT %s", box)
	return r
}

// mimeMsg is imaptest's fetch-body-mime message.
var mimeMsg = crlf(`From: user@domain.org
Date: Sat, 24 Mar 2007 23:00:00 +0200
Mime-Version: 1.0
Content-Type: multipart/mixed; boundary="foo
 bar"

Root MIME prologue

--foo bar
Content-Type: text/x-myown; charset=us-ascii

hello

--foo bar
Content-Type: message/rfc822

From: sub@domain.org
Date: Sun, 12 Aug 2012 12:34:56 +0300
Subject: submsg
Content-Type: multipart/alternative; boundary="sub1"

Sub MIME prologue
--sub1
Content-Type: text/html

<p>Hello world</p>

--sub1
Content-Type: text/plain

Hello another world

--sub1--
Sub MIME epilogue

--foo bar--
Root MIME epilogue
`)

// Every plain item and macro of one simple message, and the order items
// go out in.
func TestFetchItems(t *testing.T) {
	e := newEnv(t, Config{})
	e.deliver(t, "info@example.com", "", msg1)
	msgs, _, err := e.st.Messages(t.Context(), "info@example.com", "INBOX")
	testutil.Must(t, err)
	r := selectedRaw(t, e, "INBOX")
	date := `"` + msgs[0].Date.Format("02-Jan-2006 15:04:05 -0700") + `"`
	env := `("Mon, 02 Jan 2006 15:04:05 +0000" "first" (("Alice" NIL "alice" "example.org")) (("Alice" NIL "alice" "example.org")) ` +
		`(("Alice" NIL "alice" "example.org")) ((NIL NIL "info" "example.com")) NIL NIL NIL "<1@example.org>")`
	body := `("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 28 2)`
	hdr := msg1[:len(msg1)-28]
	r.expect("FETCH 1 FAST", `* 1 FETCH (FLAGS () INTERNALDATE `+date+` RFC822.SIZE 169)`)
	r.expect("FETCH 1 ALL", `* 1 FETCH (FLAGS () INTERNALDATE `+date+` RFC822.SIZE 169 ENVELOPE `+env+`)`)
	r.expect("FETCH 1 full", `* 1 FETCH (FLAGS () INTERNALDATE `+date+` RFC822.SIZE 169 ENVELOPE `+env+` BODY `+body+`)`)
	r.expect("FETCH 1 (body bodystructure uid)", `* 1 FETCH (UID 1 BODY `+body+` BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 28 2 NIL NIL NIL NIL))`)
	r.expect("UID FETCH 1 FLAGS", `* 1 FETCH (UID 1 FLAGS ())`)
	r.expect("UID FETCH 1:* INTERNALDATE", `* 1 FETCH (UID 1 INTERNALDATE `+date+`)`)
	r.expect("FETCH 1 (RFC822.HEADER RFC822.SIZE)", `* 1 FETCH (RFC822.SIZE 169 RFC822.HEADER `+lit(hdr)+`)`)
	r.expect("FETCH 1 (BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[])",
		`* 1 FETCH (BODY[HEADER] `+lit(hdr)+` BODY[TEXT] `+lit(msg1[len(hdr):])+` BODY[] `+lit(msg1)+`)`)
	// A non-multipart message is its own part 1.
	r.expect("FETCH 1 (BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[2] BODY.PEEK[1.1] BODY.PEEK[1.HEADER])",
		`* 1 FETCH (BODY[1] `+lit(msg1[len(hdr):])+` BODY[1.MIME] `+lit(hdr)+` BODY[2] `+lit("")+` BODY[1.1] `+lit("")+` BODY[1.HEADER] `+lit("")+`)`)
	// The same item twice goes out once.
	r.expect("FETCH 1 (FLAGS BODY.PEEK[TEXT]<0.5> FLAGS BODY.PEEK[TEXT]<0.5>)", `* 1 FETCH (FLAGS () BODY[TEXT]<0> `+lit("Hello")+`)`)
	r.expect("FETCH 1 RFC822.TEXT", `* 1 FETCH (FLAGS (\Seen) RFC822.TEXT `+lit(msg1[len(hdr):])+`)`)
	r.expect("FETCH 1 RFC822", `* 1 FETCH (RFC822 `+lit(msg1)+`)`)
	r.expect("FETCH * BODY[]", `* 1 FETCH (BODY[] `+lit(msg1)+`)`)
	r.expect("UID FETCH 5:7 FLAGS")
	// A session that claimed a message as \Recent shows it.
	e.deliver(t, "info@example.com", "", msg1)
	r2 := dialRaw(t, e.implicit, true)
	r2.login("info@example.com")
	r2.ok("SELECT INBOX")
	r2.expect("FETCH 1:2 FLAGS", `* 1 FETCH (FLAGS (\Seen))`, `* 2 FETCH (FLAGS (\Recent))`)
}

// Partial fetches: <origin.count> cut the section; an origin past its end
// gives an empty string (RFC 3501 6.4.5).
func TestFetchPartial(t *testing.T) {
	e := newEnv(t, Config{})
	e.deliver(t, "info@example.com", "", msg1)
	e.deliver(t, "info@example.com", "", mimeMsg)
	r := selectedRaw(t, e, "INBOX")
	r.expect("FETCH 1 BODY.PEEK[]<0.10>", `* 1 FETCH (BODY[]<0> `+lit(msg1[:10])+`)`)
	r.expect("FETCH 1 BODY.PEEK[TEXT]<6.100>", `* 1 FETCH (BODY[TEXT]<6> `+lit("world.\r\nSecond line.\r\n")+`)`)
	r.expect("FETCH 1 BODY.PEEK[TEXT]<27.10>", `* 1 FETCH (BODY[TEXT]<27> `+lit("\n")+`)`)
	r.expect("FETCH 1 BODY.PEEK[TEXT]<28.10>", `* 1 FETCH (BODY[TEXT]<28> `+lit("")+`)`)
	r.expect("FETCH 1 BODY.PEEK[TEXT]<4000000000.10>", `* 1 FETCH (BODY[TEXT]<4000000000> `+lit("")+`)`)
	r.expect("FETCH 1 BODY.PEEK[HEADER.FIELDS (Subject)]<2.4>", `* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)]<2> `+lit("bjec")+`)`)
	r.expect("FETCH 2 BODY.PEEK[2.1]<3.5>", `* 2 FETCH (BODY[2.1]<3> `+lit("Hello")+`)`)
	r.expect("FETCH 2 BODY.PEEK[2.TEXT]<0.17>", `* 2 FETCH (BODY[2.TEXT]<0> `+lit("Sub MIME prologue")+`)`)
	// RFC822 takes no partial.
	if _, st := r.full("FETCH 1 RFC822<0.5>"); !strings.HasPrefix(st, "BAD") {
		t.Errorf("RFC822 with a partial: %s", st)
	}
}

// HEADER.FIELDS and HEADER.FIELDS.NOT match names in any case, keep the
// message's order and spelling, and always end with the blank line.
func TestFetchHeaderFields(t *testing.T) {
	e := newEnv(t, Config{})
	m := crlf("Subject: one\nX-Long: a\n\tfolded\nfrom: Alice <a@example.org>\nSUBJECT: two\nTo: b@example.org\n\nbody\n")
	e.deliver(t, "info@example.com", "", m)
	r := selectedRaw(t, e, "INBOX")
	r.expect("FETCH 1 BODY.PEEK[HEADER.FIELDS (subject FROM)]",
		`* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT FROM)] `+lit(crlf("Subject: one\nfrom: Alice <a@example.org>\nSUBJECT: two\n\n"))+`)`)
	r.expect("FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (Subject \"FROM\")]",
		`* 1 FETCH (BODY[HEADER.FIELDS.NOT (SUBJECT FROM)] `+lit(crlf("X-Long: a\n\tfolded\nTo: b@example.org\n\n"))+`)`)
	r.expect("FETCH 1 BODY.PEEK[HEADER.FIELDS (x-nothing)]", `* 1 FETCH (BODY[HEADER.FIELDS (X-NOTHING)] `+lit("\r\n")+`)`)
	r.expect("FETCH 1 BODY.PEEK[HEADER.FIELDS (x-long x-long)]", `* 1 FETCH (BODY[HEADER.FIELDS (X-LONG X-LONG)] `+lit(crlf("X-Long: a\n\tfolded\n\n"))+`)`)
	// A field name as a literal.
	r.expect("FETCH 1 BODY.PEEK[HEADER.FIELDS ({2+}\r\nto)]", `* 1 FETCH (BODY[HEADER.FIELDS (TO)] `+lit(crlf("To: b@example.org\n\n"))+`)`)
	// Without PEEK it sets \Seen like any BODY[...].
	r.expect("FETCH 1 BODY[HEADER.FIELDS (TO)]", `* 1 FETCH (FLAGS (\Seen) BODY[HEADER.FIELDS (TO)] `+lit(crlf("To: b@example.org\n\n"))+`)`)
}

// rfc822Msg, rfc822x2Msg and digestMsg are imaptest's
// fetch-body-message-rfc822, -x2 and -mime messages.
var (
	rfc822Msg = crlf(`From: user@domain.org
Date: Sat, 24 Mar 2007 23:00:00 +0200
Mime-Version: 1.0
Content-Type: message/rfc822

From: sub@domain.org
Date: Sun, 12 Aug 2012 12:34:56 +0300
Subject: submsg

Hello world
`)
	rfc822x2Msg = crlf(`From: user@domain.org
Date: Sat, 24 Mar 2007 23:00:00 +0200
Mime-Version: 1.0
Content-Type: message/rfc822

From: user2@domain.org
Date: Fri, 23 Mar 2007 11:22:33 +0200
Mime-Version: 1.0
Content-Type: message/rfc822

From: sub@domain.org
Date: Sun, 12 Aug 2012 12:34:56 +0300
Subject: submsg

Hello world
`)
	digestMsg = crlf(`From: user@domain.org
Date: Sat, 24 Mar 2007 23:00:00 +0200
Mime-Version: 1.0
Content-Type: message/rfc822

From: sub@domain.org
Date: Sun, 12 Aug 2012 12:34:56 +0300
Subject: submsg
Content-Type: multipart/digest; boundary="foo"

prologue

--foo 

From: m1@example.com
Subject: m1

m1 body

--foo 
X-Mime: m2 header

From: m2@example.com
Subject: m2

m2 body

--foo--

epilogue
`)
)

// Body parts by number, nested message/rfc822 parts and their HEADER,
// TEXT and MIME, as imaptest's fetch-body-mime and
// fetch-body-message-rfc822* scripts expect them.
func TestFetchParts(t *testing.T) {
	e := newEnv(t, Config{})
	for _, m := range []string{mimeMsg, rfc822Msg, rfc822x2Msg, digestMsg} {
		e.deliver(t, "info@example.com", "", m)
	}
	r := selectedRaw(t, e, "INBOX")
	after := func(m, start string) string { return m[strings.Index(m, crlf(start)):] }
	cut := func(m, start, end string) string {
		m = after(m, start)
		return m[:strings.Index(m, crlf(end))]
	}
	sub := cut(mimeMsg, "From: sub@", "\n--foo bar--")
	cases := []struct {
		seq     int
		section string
		want    string
	}{
		{1, "TEXT", after(mimeMsg, "Root MIME prologue")},
		{1, "1", crlf("hello\n")},
		{1, "1.MIME", crlf("Content-Type: text/x-myown; charset=us-ascii\n\n")},
		{1, "2", sub},
		{1, "2.MIME", crlf("Content-Type: message/rfc822\n\n")},
		{1, "2.HEADER", cut(mimeMsg, "From: sub@", "Sub MIME prologue")},
		{1, "2.HEADER.FIELDS (from subject X-foo)", crlf("From: sub@domain.org\nSubject: submsg\n\n")},
		{1, "2.HEADER.FIELDS.NOT (from subject X-foo)", crlf("Date: Sun, 12 Aug 2012 12:34:56 +0300\nContent-Type: multipart/alternative; boundary=\"sub1\"\n\n")},
		{1, "2.TEXT", after(sub, "Sub MIME prologue")},
		{1, "2.1.MIME", crlf("Content-Type: text/html\n\n")},
		{1, "2.1", crlf("<p>Hello world</p>\n")},
		{1, "2.2.MIME", crlf("Content-Type: text/plain\n\n")},
		{1, "2.2", crlf("Hello another world\n")},
		{1, "3", ""},
		{1, "2.3", ""},
		{1, "1.1", crlf("hello\n")}, // as Dovecot: 1 of a leaf is the leaf
		{1, "1.TEXT", ""},           // part 1 holds no message
		{2, "TEXT", after(rfc822Msg, "From: sub@")},
		{2, "1", after(rfc822Msg, "From: sub@")},
		{2, "1.1", crlf("Hello world\n")},
		{2, "1.HEADER", cut(rfc822Msg, "From: sub@", "Hello world")},
		{2, "1.HEADER.FIELDS (from subject X-foo)", crlf("From: sub@domain.org\nSubject: submsg\n\n")},
		{2, "1.HEADER.FIELDS.NOT (from subject X-foo)", crlf("Date: Sun, 12 Aug 2012 12:34:56 +0300\n\n")},
		{2, "1.TEXT", crlf("Hello world\n")},
		{3, "1", after(rfc822x2Msg, "From: user2@")},
		{3, "1.1", after(rfc822x2Msg, "From: sub@")},
		{3, "1.HEADER", cut(rfc822x2Msg, "From: user2@", "From: sub@")},
		{3, "1.TEXT", after(rfc822x2Msg, "From: sub@")},
		{3, "1.1.1", crlf("Hello world\n")},
		{3, "1.1.HEADER", cut(rfc822x2Msg, "From: sub@", "Hello world")},
		{3, "1.1.TEXT", crlf("Hello world\n")},
		{4, "1.HEADER", cut(digestMsg, "From: sub@", "prologue")},
		{4, "1.TEXT", after(digestMsg, "prologue")},
		{4, "1.1", crlf("From: m1@example.com\nSubject: m1\n\nm1 body\n")},
		{4, "1.1.MIME", "\r\n"},
		{4, "1.1.HEADER", crlf("From: m1@example.com\nSubject: m1\n\n")},
		{4, "1.1.TEXT", crlf("m1 body\n")},
		{4, "1.2", crlf("From: m2@example.com\nSubject: m2\n\nm2 body\n")},
		{4, "1.2.MIME", crlf("X-Mime: m2 header\n\n")},
		{4, "1.2.HEADER", crlf("From: m2@example.com\nSubject: m2\n\n")},
		{4, "1.2.TEXT", crlf("m2 body\n")},
	}
	for _, c := range cases {
		name := strings.ToUpper(strings.ReplaceAll(c.section, `"`, ""))
		r.expect(fmt.Sprintf("FETCH %d BODY.PEEK[%s]", c.seq, c.section), fmt.Sprintf("* %d FETCH (BODY[%s] %s)", c.seq, name, lit(c.want)))
	}
	for i, m := range []string{mimeMsg, rfc822Msg, rfc822x2Msg, digestMsg} {
		r.expect(fmt.Sprintf("FETCH %d BODY.PEEK[]", i+1), fmt.Sprintf("* %d FETCH (BODY[] %s)", i+1, lit(m)))
	}
}

// BODYSTRUCTURE and BODY of nested multiparts and messages, with the
// extension data Dovecot sends.
func TestFetchBodyStructure(t *testing.T) {
	e := newEnv(t, Config{})
	for _, m := range []string{mimeMsg, digestMsg, mime1} {
		e.deliver(t, "info@example.com", "", m)
	}
	ext := crlf(`From: a@example.org
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=b; foo*0*=utf-8''%E2%82%AC; foo*1=" x" (comment)
Content-Language: en, de (German)
Content-Location: http://example.org/x

--b
Content-Type: TEXT/Plain; Charset=UTF-8; format=flowed
Content-ID: <id@example.org>
Content-Description: a description
Content-Transfer-Encoding: Quoted-Printable
Content-Disposition: inline; filename="a b.txt"
Content-Language: fr
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==

caf=C3=A9
--b
Content-Type: application/pdf; name*=utf-8''r%C3%A9sum%C3%A9.pdf
Content-Transfer-Encoding: base64
Content-Disposition: attachment

JVBERi0=
--b--
`)
	e.deliver(t, "info@example.com", "", ext)
	// Content-* fields without MIME-Version or Content-Type mean nothing.
	e.deliver(t, "info@example.com", "", crlf("From: a@example.org\nContent-Transfer-Encoding: base64\nContent-Disposition: inline\n\nxx\n"))
	// A multipart without its boundary in the body has no parts.
	e.deliver(t, "info@example.com", "", crlf("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=nothere\n\ntext\n"))
	r := selectedRaw(t, e, "INBOX")
	subEnv := `("Sun, 12 Aug 2012 12:34:56 +0300" "submsg" ((NIL NIL "sub" "domain.org")) ((NIL NIL "sub" "domain.org")) ((NIL NIL "sub" "domain.org")) NIL NIL NIL NIL NIL)`
	r.expect("FETCH 1 BODYSTRUCTURE", `* 1 FETCH (BODYSTRUCTURE (("text" "x-myown" ("charset" "us-ascii") NIL NIL "7bit" 7 1 NIL NIL NIL NIL)`+
		`("message" "rfc822" NIL NIL NIL "7bit" 298 `+subEnv+` (("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 20 1 NIL NIL NIL NIL)`+
		`("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 21 1 NIL NIL NIL NIL) "alternative" ("boundary" "sub1") NIL NIL NIL) 18 NIL NIL NIL NIL) `+
		`"mixed" ("boundary" "foo bar") NIL NIL NIL))`)
	r.expect("FETCH 1 BODY", `* 1 FETCH (BODY (("text" "x-myown" ("charset" "us-ascii") NIL NIL "7bit" 7 1)`+
		`("message" "rfc822" NIL NIL NIL "7bit" 298 `+subEnv+` (("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 20 1)`+
		`("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 21 1) "alternative") 18) "mixed"))`)
	m1 := `(NIL "m1" ((NIL NIL "m1" "example.com")) ((NIL NIL "m1" "example.com")) ((NIL NIL "m1" "example.com")) NIL NIL NIL NIL NIL)`
	m2 := strings.ReplaceAll(m1, "m1", "m2")
	r.expect("FETCH 2 BODYSTRUCTURE", `* 2 FETCH (BODYSTRUCTURE ("message" "rfc822" NIL NIL NIL "7bit" 296 `+subEnv+
		` (("message" "rfc822" NIL NIL NIL "7bit" 46 `+m1+` ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 9 1 NIL NIL NIL NIL) 4 NIL NIL NIL NIL)`+
		`("message" "rfc822" NIL NIL NIL "7bit" 46 `+m2+` ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 9 1 NIL NIL NIL NIL) 4 NIL NIL NIL NIL) `+
		`"digest" ("boundary" "foo") NIL NIL NIL) 25 NIL NIL NIL NIL))`)
	// The line break before a boundary belongs to the boundary.
	r.expect("FETCH 3 BODYSTRUCTURE", `* 3 FETCH (BODYSTRUCTURE (("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 18 0 NIL NIL NIL NIL)`+
		`("application" "octet-stream" NIL NIL NIL "base64" 8 NIL NIL NIL NIL) "mixed" ("boundary" "XX") NIL NIL NIL))`)
	r.expect("FETCH 4 BODYSTRUCTURE", `* 4 FETCH (BODYSTRUCTURE (("text" "plain" ("charset" "UTF-8" "format" "flowed") "<id@example.org>" "a description" "quoted-printable" 9 0 `+
		`"Q2hlY2sgSW50ZWdyaXR5IQ==" ("inline" ("filename" "a b.txt")) ("fr") NIL)`+
		`("application" "pdf" ("name" {12}`+"\r\nrésumé.pdf"+`) NIL NIL "base64" 8 NIL ("attachment" NIL) NIL NIL) `+
		`"mixed" ("boundary" "b" "foo" {5}`+"\r\n€ x"+`) NIL ("en" "de") "http://example.org/x"))`)
	r.expect("FETCH 5 BODYSTRUCTURE", `* 5 FETCH (BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 4 1 NIL NIL NIL NIL))`)
	r.expect("FETCH 6 (BODY BODYSTRUCTURE)", `* 6 FETCH (BODY (`+emptyBody+` "mixed") BODYSTRUCTURE (`+emptyBodyStructure+` "mixed" ("boundary" "nothere") NIL NIL NIL))`)
}

// b64Msg and qpMsg are imaptest's fetch-binary-mime-base64 and -qp
// messages.
var (
	b64Msg = crlf("From: user@domain.org\nDate: Sat, 24 Mar 2007 23:00:00 +0200\nMime-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"foo\n bar\"\n\nRoot MIME prologue\n\n--foo bar\nContent-Type: text/x-myown; charset=us-ascii\nContent-Transfer-Encoding: base64\n\n\naGVs\nbG8gd29y\nbGQ=\n\n--foo bar\nContent-Type: text/x-myown; charset=us-ascii\nContent-Transfer-Encoding: base64\n\n  aGVs    \n bG8g  \n   d29y  \t \n    bGQ= \n\n\n--foo bar\nContent-Type: text/x-myown; charset=us-ascii\nContent-Transfer-Encoding: base64\n\naGVsbG8g\ndG8geW91IHRv\nbw==\n\n--foo bar\nContent-Type: text/x-myown; charset=us-ascii\nContent-Transfer-Encoding: base64\n\naGVsbG8gdG8gZXZlcnlvbmUh\n--foo bar\nContent-Type: text/x-myown; charset=us-ascii\nContent-Transfer-Encoding: base64\n\nYWJjZGVmZw1oaWprbA0KbW5vCnBxcnN0dXZxeHl6\n\n--foo bar--\nRoot MIME epilogue\n")
	qpMsg  = crlf("From: user@domain.org\nDate: Sat, 24 Mar 2007 23:00:00 +0200\nMime-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"foo\n bar\"\n\nRoot MIME prologue\n\n--foo bar\nContent-Type: text/x-myown; charset=us-ascii\nContent-Transfer-Encoding: quoted-printable\n\nhello  \nbar=\n\nfoo\t=\nbar\nfoo\t \t= \n=62\nfoo = \t\nbar\nfoo =\n=62\nfoo  \nbar=\n\nfoo_bar\n\n--foo bar--\nRoot MIME epilogue\n")
)

// BINARY, BINARY.PEEK and BINARY.SIZE (RFC 3516) as imaptest's
// fetch-binary-mime* scripts expect them; literal8 for data with NUL;
// UNKNOWN-CTE.
func TestFetchBinary(t *testing.T) {
	e := newEnv(t, Config{})
	for _, m := range []string{mimeMsg, b64Msg, qpMsg} {
		e.deliver(t, "info@example.com", "", m)
	}
	nul := crlf("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: BASE64\n\nAAECAw==\n" +
		"--b\nContent-Type: text/plain\nContent-Transfer-Encoding: x-uuencode\n\nbegin 644 x\n--b--\n")
	e.deliver(t, "info@example.com", "", nul)
	e.deliver(t, "info@example.com", "", crlf("Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\naGVsbG8=\n"))
	e.deliver(t, "info@example.com", "", "Subject: NUL\r\n\r\na\x00b\r\n")
	r := selectedRaw(t, e, "INBOX")
	r.expect("FETCH 6 (BODY.PEEK[TEXT] BINARY.PEEK[1] BINARY.PEEK[1]<2.3>)", "* 6 FETCH (BODY[TEXT] {5}\r\na\x80b\r\n BINARY[1] ~{5}\r\na\x00b\r\n BINARY[1]<2> {3}\r\nb\r\n)")
	if u := r.ok("CAPABILITY"); !strings.Contains(u[0], " BINARY") {
		t.Errorf("capabilities: %q", u)
	}
	// Nothing to decode: BINARY is BODY.
	sub := mimeMsg[strings.Index(mimeMsg, "From: sub@"):strings.Index(mimeMsg, "\r\n--foo bar--")]
	r.expect("FETCH 1 (BINARY.PEEK[] BINARY.SIZE[] BINARY.SIZE[1] BINARY.PEEK[1] BINARY.SIZE[2] BINARY.PEEK[2] BINARY.SIZE[2.1] BINARY.SIZE[2.2])",
		`* 1 FETCH (BINARY[] `+lit(mimeMsg)+` BINARY.SIZE[] 602 BINARY.SIZE[1] 7 BINARY[1] `+lit("hello\r\n")+` BINARY.SIZE[2] 298 BINARY[2] `+lit(sub)+
			` BINARY.SIZE[2.1] 20 BINARY.SIZE[2.2] 21)`)
	r.expect("FETCH 2 (binary.size[1] binary.size[5])", `* 2 FETCH (BINARY.SIZE[1] 11 BINARY.SIZE[5] 30)`)
	r.expect("FETCH 2 (binary.peek[1] binary.peek[2] binary.peek[3] binary.peek[4] binary.peek[5])",
		`* 2 FETCH (BINARY[1] `+lit("hello world")+` BINARY[2] `+lit("hello world")+` BINARY[3] `+lit("hello to you too")+
			` BINARY[4] `+lit("hello to everyone!")+` BINARY[5] `+lit("abcdefg\rhijkl\r\nmno\npqrstuvqxyz")+`)`)
	r.expect("FETCH 2 (binary.size[2] binary.size[3] binary.size[4])", `* 2 FETCH (BINARY.SIZE[2] 11 BINARY.SIZE[3] 16 BINARY.SIZE[4] 18)`)
	for _, c := range []struct {
		partial, want string
	}{
		{"<0.7>", "abcdefg"}, {"<0.8>", "abcdefg\r"}, {"<0.10>", "abcdefg\rhi"}, {"<10.10>", "jkl\r\nmno\np"},
		{"<5.10>", "fg\rhijkl\r\n"}, {"<15.100>", "mno\npqrstuvqxyz"}, {"<30.1>", ""},
	} {
		origin := c.partial[:strings.IndexByte(c.partial, '.')] + ">"
		r.expect("FETCH 2 BINARY.PEEK[5]"+c.partial, `* 2 FETCH (BINARY[5]`+origin+` `+lit(c.want)+`)`)
	}
	qp := "hello\r\nbar\r\nfoo\tbar\r\nfoo\t \tb\r\nfoo bar\r\nfoo b\r\nfoo\r\nbar\r\nfoo_bar\r\n"
	r.expect("FETCH 3 (binary.size[1] binary.peek[1])", `* 3 FETCH (BINARY.SIZE[1] 65 BINARY[1] `+lit(qp)+`)`)
	for _, p := range [][2]int{{0, 10}, {10, 10}, {20, 10}, {15, 10}, {40, 100}} {
		want := qp[p[0]:min(p[0]+p[1], len(qp))]
		r.expect(fmt.Sprintf("FETCH 3 BINARY.PEEK[1]<%d.%d>", p[0], p[1]), fmt.Sprintf("* 3 FETCH (BINARY[1]<%d> %s)", p[0], lit(want)))
	}
	// BINARY[] decodes every part and says so in its header.
	qpPart := "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	binWhole := qpMsg[:strings.Index(qpMsg, qpPart)] + "Content-Transfer-Encoding: binary\r\n\r\n" + qp + qpMsg[strings.Index(qpMsg, "\r\n--foo bar--"):]
	r.expect("FETCH 3 BINARY.PEEK[]", `* 3 FETCH (BINARY[] `+lit(binWhole)+`)`)
	// Decoded data with NUL goes out as literal8; BODY turns NUL into 0x80.
	r.expect("FETCH 4 (BINARY.PEEK[1] BINARY.SIZE[1])", "* 4 FETCH (BINARY[1] ~{4}\r\n\x00\x01\x02\x03 BINARY.SIZE[1] 4)")
	r.expect("FETCH 4 BINARY.PEEK[1]<1.2>", "* 4 FETCH (BINARY[1]<1> {2}\r\n\x01\x02)")
	if _, st := r.full("FETCH 4 BINARY.PEEK[2]"); !strings.HasPrefix(st, "NO [UNKNOWN-CTE]") {
		t.Errorf("x-uuencode: %s", st)
	}
	if _, st := r.full("FETCH 4 BINARY.SIZE[]"); !strings.HasPrefix(st, "NO [UNKNOWN-CTE]") {
		t.Errorf("x-uuencode in BINARY[]: %s", st)
	}
	// A NO for one message leaves the ones before it answered.
	out, st := r.full("FETCH 3:4 BINARY.SIZE[]")
	if len(out) != 1 || !strings.HasPrefix(out[0], "* 3 FETCH (BINARY.SIZE[] ") || !strings.HasPrefix(st, "NO [UNKNOWN-CTE]") {
		t.Errorf("FETCH 3:4: %q %s", out, st)
	}
	// The other parts of that message decode.
	r.expect("FETCH 4 BINARY.SIZE[1]", "* 4 FETCH (BINARY.SIZE[1] 4)")
	r.expect("FETCH 5 BINARY.PEEK[1]", `* 5 FETCH (BINARY[1] `+lit("hello")+`)`)
	// BINARY sets \Seen, BINARY.PEEK and BINARY.SIZE do not.
	r.expect("FETCH 5 BINARY.SIZE[1]", `* 5 FETCH (BINARY.SIZE[1] 5)`)
	r.expect("FETCH 5 BINARY[1]", `* 5 FETCH (FLAGS (\Seen) BINARY[1] `+lit("hello")+`)`)
}

// imaptest's fetch-envelope script: every field, Sender and Reply-To
// from From when missing or empty, a comment as a name, groups and a
// source route.
func TestFetchEnvelopeImaptest(t *testing.T) {
	e := newEnv(t, Config{})
	for _, m := range []string{
		"Message-ID: <msg@id>\nIn-Reply-To: <reply@to.id>\nDate: Thu, 15 Feb 2007 01:02:03 +0200\nSubject: subject header\n" +
			"From: From Real <fromuser@fromdomain.org>\nTo: To Real <touser@todomain.org>\nCc: Cc Real <ccuser@ccdomain.org>\n" +
			"Bcc: Bcc Real <bccuser@bccdomain.org>\nSender: Sender Real <senderuser@senderdomain.org>\n" +
			"Reply-To: ReplyTo Real <replytouser@replytodomain.org>\n\nbody\n",
		"Date: Thu, 15 Feb 2007 01:02:03 +0200\nFrom: user@domain\n\nbody\n",
		"Date: Thu, 15 Feb 2007 01:02:03 +0200\nFrom: user@domain\n\nbody\n",
		"Date: Thu, 15 Feb 2007 01:02:03 +0200\nFrom: user@domain (Real Name)\nTo: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\n" +
			"Cc: group:;, group2: (foo) ;\n\nbody\n",
		"Date: Thu, 15 Feb 2007 01:02:03 +0200\nFrom: user@domain (Real Name)\nSender: \nReply-To: \n\nbody\n",
		"Date: Thu, 15 Feb 2007 01:02:03 +0200\nFrom: <@route:user@domain>\n\nbody\n",
	} {
		e.deliver(t, "info@example.com", "", crlf(m))
	}
	r := selectedRaw(t, e, "INBOX")
	r.expect("fetch 1:* envelope",
		`* 1 FETCH (ENVELOPE ("Thu, 15 Feb 2007 01:02:03 +0200" "subject header" (("From Real" NIL "fromuser" "fromdomain.org")) (("Sender Real" NIL "senderuser" "senderdomain.org")) (("ReplyTo Real" NIL "replytouser" "replytodomain.org")) (("To Real" NIL "touser" "todomain.org")) (("Cc Real" NIL "ccuser" "ccdomain.org")) (("Bcc Real" NIL "bccuser" "bccdomain.org")) "<reply@to.id>" "<msg@id>"))`,
		`* 2 FETCH (ENVELOPE ("Thu, 15 Feb 2007 01:02:03 +0200" NIL ((NIL NIL "user" "domain")) ((NIL NIL "user" "domain")) ((NIL NIL "user" "domain")) NIL NIL NIL NIL NIL))`,
		`* 3 FETCH (ENVELOPE ("Thu, 15 Feb 2007 01:02:03 +0200" NIL ((NIL NIL "user" "domain")) ((NIL NIL "user" "domain")) ((NIL NIL "user" "domain")) NIL NIL NIL NIL NIL))`,
		`* 4 FETCH (ENVELOPE ("Thu, 15 Feb 2007 01:02:03 +0200" NIL (("Real Name" NIL "user" "domain")) (("Real Name" NIL "user" "domain")) (("Real Name" NIL "user" "domain")) ((NIL NIL "group" NIL)(NIL NIL "g1" "d1.org")(NIL NIL "g2" "d2.org")(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL "g3" "d3.org")(NIL NIL NIL NIL)) ((NIL NIL "group" NIL)(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL NIL NIL)) NIL NIL NIL))`,
		`* 5 FETCH (ENVELOPE ("Thu, 15 Feb 2007 01:02:03 +0200" NIL (("Real Name" NIL "user" "domain")) (("Real Name" NIL "user" "domain")) (("Real Name" NIL "user" "domain")) NIL NIL NIL NIL NIL))`,
		`* 6 FETCH (ENVELOPE ("Thu, 15 Feb 2007 01:02:03 +0200" NIL ((NIL "@route" "user" "domain")) ((NIL "@route" "user" "domain")) ((NIL "@route" "user" "domain")) NIL NIL NIL NIL NIL))`)
	// The envelope of a message inside a message has its groups too.
	e.deliver(t, "info@example.com", "", crlf("MIME-Version: 1.0\nContent-Type: message/rfc822\n\nTo: undisclosed-recipients:;\nCc: Team: b@x, c@y;\n\nbody\n"))
	r.ok("NOOP")
	r.expect("FETCH 7 BODY", `* 7 FETCH (BODY ("message" "rfc822" NIL NIL NIL "7bit" 59 (NIL NIL NIL NIL NIL `+
		`((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) ((NIL NIL "Team" NIL)(NIL NIL "b" "x")(NIL NIL "c" "y")(NIL NIL NIL NIL)) NIL NIL NIL) `+
		`("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1) 4))`)
}

// A body section without PEEK sets \Seen (and says so with FLAGS), once;
// PEEK, EXAMINE and a message already seen do not.
func TestFetchSeen(t *testing.T) {
	e := newEnv(t, Config{})
	for range 4 {
		e.deliver(t, "info@example.com", "", msg1)
	}
	trained := make(chan Training, 10)
	e.srv.cfg.Train = func(tr Training) { trained <- tr }
	other := selectedRaw(t, e, "INBOX")
	r := dialRaw(t, e.implicit, true)
	r.login("info@example.com")
	r.ok("EXAMINE INBOX")
	r.expect("FETCH 1 BODY[TEXT]<0.5>", `* 1 FETCH (BODY[TEXT]<0> `+lit("Hello")+`)`)
	r.ok("SELECT INBOX")
	r.expect("FETCH 1 (FLAGS BODY.PEEK[TEXT]<0.5>)", `* 1 FETCH (FLAGS () BODY[TEXT]<0> `+lit("Hello")+`)`)
	r.expect("FETCH 1 BODY[TEXT]<0.5>", `* 1 FETCH (FLAGS (\Seen) BODY[TEXT]<0> `+lit("Hello")+`)`)
	r.expect("FETCH 1 BODY[TEXT]<0.5>", `* 1 FETCH (BODY[TEXT]<0> `+lit("Hello")+`)`)
	r.expect("UID FETCH 2:3 RFC822.SIZE", `* 2 FETCH (UID 2 RFC822.SIZE 169)`, `* 3 FETCH (UID 3 RFC822.SIZE 169)`)
	r.expect("FETCH 2:3 (UID RFC822.HEADER)", `* 2 FETCH (UID 2 RFC822.HEADER `+lit(msg1[:141])+`)`, `* 3 FETCH (UID 3 RFC822.HEADER `+lit(msg1[:141])+`)`)
	r.expect("FETCH 2:3 (UID BODY[HEADER])", `* 2 FETCH (UID 2 FLAGS (\Seen) BODY[HEADER] `+lit(msg1[:141])+`)`,
		`* 3 FETCH (UID 3 FLAGS (\Seen) BODY[HEADER] `+lit(msg1[:141])+`)`)
	// Our own flag changes come back with the data, not again as updates.
	r.expect("NOOP")
	r.expect("FETCH 1:4 FLAGS", `* 1 FETCH (FLAGS (\Seen))`, `* 2 FETCH (FLAGS (\Seen))`, `* 3 FETCH (FLAGS (\Seen))`, `* 4 FETCH (FLAGS ())`)
	// Another session hears of them.
	got := other.fetchOK("NOOP")
	if strings.Join(got, "\n") != "* 1 FETCH (UID 1 FLAGS (\\Seen))\n* 2 FETCH (UID 2 FLAGS (\\Seen))\n* 3 FETCH (UID 3 FLAGS (\\Seen))" {
		t.Errorf("other session: %q", got)
	}
	// Reading a message outside Junk and Trash trains it as ham.
	for _, want := range [][]uint32{{1}, {2, 3}} {
		tr := <-trained
		if tr.Spam || tr.Mailbox != "INBOX" || fmt.Sprint(tr.UIDs) != fmt.Sprint(want) {
			t.Errorf("training %+v, want ham %v", tr, want)
		}
	}
}

// A message expunged by another session while this one still shows it:
// the others are answered, it is left out, and the client is told
// (Dovecot's way), with the EXPUNGE coming at the next command that may
// send one.
func TestFetchExpungedElsewhere(t *testing.T) {
	e := newEnv(t, Config{})
	for range 3 {
		e.deliver(t, "info@example.com", "", msg1)
	}
	r := selectedRaw(t, e, "INBOX")
	other := selectedRaw(t, e, "INBOX")
	other.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
	r.expect("NOOP", `* 2 FETCH (UID 2 FLAGS (\Deleted))`)
	other.ok("EXPUNGE")
	for _, cmd := range []string{"FETCH 1:3 (FLAGS BODY.PEEK[TEXT]<0.5>)", "FETCH 1:3 (ENVELOPE BODYSTRUCTURE BINARY.SIZE[1])", "FETCH 2 BODY[]"} {
		out, st := r.full("%s", cmd)
		want := 2
		if cmd == "FETCH 2 BODY[]" {
			want = 0
		}
		if len(out) != want || want > 0 && (!strings.HasPrefix(out[0], "* 1 FETCH (") || !strings.HasPrefix(out[1], "* 3 FETCH (")) ||
			st != "OK [EXPUNGEISSUED] Some messages were already expunged" {
			t.Errorf("%s: %q %s", cmd, out, st)
		}
		for _, l := range out {
			if strings.Contains(l, "EXPUNGE") {
				t.Errorf("%s: EXPUNGE during FETCH: %q", cmd, out)
			}
		}
	}
	r.expect("NOOP", "* 2 EXPUNGE")
	r.expect("FETCH 1:* UID", "* 1 FETCH (UID 1)", "* 2 FETCH (UID 3)")
}

// What does not parse is BAD, and the session goes on.
func TestFetchSyntax(t *testing.T) {
	e := newEnv(t, Config{})
	e.deliver(t, "info@example.com", "", msg1)
	r := selectedRaw(t, e, "INBOX")
	for _, cmd := range []string{
		"FETCH 1", "FETCH 1 ", "FETCH 1 ()", "FETCH 1 FOO", "FETCH 1 (FLAGS FOO)", "FETCH 1 (ALL)", "FETCH 1 (FLAGS", "FETCH 1 FLAGS)",
		"FETCH 1 BODY.PEEK", "FETCH 1 BODY[", "FETCH 1 BODY[FOO]", "FETCH 1 BODY[1.]", "FETCH 1 BODY[0]", "FETCH 1 BODY[MIME]",
		"FETCH 1 BODY[HEADER.FIELDS]", "FETCH 1 BODY[HEADER.FIELDS ()]", "FETCH 1 BODY[HEADER.FIELDS (FROM]", "FETCH 1 BODY[]<0.0>",
		"FETCH 1 BODY[]<1>x", "FETCH 1 BODY[]<x.1>", "FETCH 1 BINARY[HEADER]", "FETCH 1 BINARY[1.MIME]", "FETCH 1 BINARY.SIZE[1]<0.1>",
		"FETCH 1 BINARY.PEEK", "FETCH 1 RFC822.FOO", "FETCH x FLAGS", "FETCH 1 FLAGS (CHANGEDSINCE x)", "FETCH 1 FLAGS ()", "FETCH 1 FLAGS (NOSUCH 1)",
	} {
		if out, st := r.full("%s", cmd); !strings.HasPrefix(st, "BAD") || len(out) != 0 {
			t.Errorf("%s: %q %s", cmd, out, st)
		}
		r.ok("NOOP") // too many BAD in a row end the session
	}
	r.expect("fetch 1 (uid body.peek[]<0>)", `* 1 FETCH (UID 1 BODY[]<0> `+lit(msg1)+`)`)
	r.ok("UNSELECT")
	if _, st := r.full("FETCH 1 FLAGS"); !strings.HasPrefix(st, "BAD") {
		t.Errorf("FETCH without a mailbox: %s", st)
	}
}

// A message too large to read whole is parsed and cut as a stream: every
// section comes out the same as from memory.
func TestFetchStreamed(t *testing.T) {
	e := newEnv(t, Config{})
	msgs := []string{msg1, mimeMsg, rfc822x2Msg, digestMsg, b64Msg, qpMsg, mime1}
	var big strings.Builder
	big.WriteString("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nintro\r\n--zz\r\n" +
		"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for i := 0; big.Len() < 200<<10; i++ {
		big.WriteString("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v\r\n")
	}
	big.WriteString("--zz\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nend=3D\r\n--zz--\r\n")
	msgs = append(msgs, big.String())
	for _, m := range msgs {
		e.deliver(t, "info@example.com", "", m)
	}
	cmds := []string{
		"FETCH 1:* (BODY BODYSTRUCTURE BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[2] BODY.PEEK[2.MIME] BODY.PEEK[2.TEXT] BODY.PEEK[2.HEADER])",
		"FETCH 1:* (BODY.PEEK[1.1] BODY.PEEK[1.2.MIME] BODY.PEEK[1.2.HEADER.FIELDS (Subject x-mime)] BODY.PEEK[2.1]<2.7> BODY.PEEK[3]<0.100>)",
		"FETCH 1:* (BINARY.SIZE[] BINARY.SIZE[1] BINARY.SIZE[2] BINARY.SIZE[3] BINARY.SIZE[5])",
		"FETCH 1:* (BINARY.PEEK[1] BINARY.PEEK[2]<1000.3000> BINARY.PEEK[3] BINARY.PEEK[5]<3.9>)",
		"FETCH 1:* BINARY.PEEK[]",
		"FETCH 1:* (BODY.PEEK[HEADER.FIELDS (FROM)] BODY.PEEK[TEXT]<10.20>)",
	}
	run := func() []string {
		r := selectedRaw(t, e, "INBOX")
		var all []string
		for _, c := range cmds {
			all = append(all, r.fetchOK("%s", c)...)
		}
		return all
	}
	inMemory := run()
	// NULs: message 7's BINARY[], message 8's BINARY[2] and BINARY[].
	if n := strings.Count(strings.Join(inMemory, ""), "~{"); n != 3 {
		t.Errorf("%d literal8, want 3", n)
	}
	old := maxInMemory
	maxInMemory = 0
	t.Cleanup(func() { maxInMemory = old })
	streamed := run()
	if len(streamed) != len(inMemory) {
		t.Fatalf("%d responses streamed, %d from memory", len(streamed), len(inMemory))
	}
	for i := range streamed {
		if streamed[i] != inMemory[i] {
			t.Errorf("response %d:\n streamed %.300q\nin memory %.300q", i, streamed[i], inMemory[i])
		}
	}
}

// BenchmarkFetchHeaderFields10k: what Thunderbird asks of a new mailbox,
// header fields of 10,000 messages over TLS, per iteration.
func BenchmarkFetchHeaderFields10k(b *testing.B) {
	benchFetch10k(b, "UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID "+
		"Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])")
}

// BenchmarkFetchBodyStructure10k: BODYSTRUCTURE of 10,000 messages.
func BenchmarkFetchBodyStructure10k(b *testing.B) {
	benchFetch10k(b, "UID FETCH 1:* (UID BODYSTRUCTURE)")
}

func benchFetch10k(b *testing.B, cmd string) {
	e := newEnv(b, Config{})
	fill(b, e.st, 10000, 2048)
	r := dialRaw(b, e.implicit, true)
	r.login("info@example.com")
	r.ok("SELECT INBOX")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if u := r.fetchOK("%s", cmd); len(u) != 10000 {
			b.Fatalf("%d responses", len(u))
		}
	}
}

// imaptest's fetch script: sequence and UID sets in any order, "*", a
// UID range above every UID, and the numbers after an expunge.
func TestFetchSets(t *testing.T) {
	e := newEnv(t, Config{})
	for range 3 {
		e.deliver(t, "info@example.com", "", msg1)
	}
	r := selectedRaw(t, e, "INBOX")
	all := []string{"* 1 FETCH (UID 1)", "* 2 FETCH (UID 2)", "* 3 FETCH (UID 3)"}
	r.expect("fetch 1:3 uid", all...)
	r.expect("fetch 3:1 uid", all...)
	r.expect("fetch *:1 uid", all...)
	r.expect("fetch 1,* uid", all[0], all[2])
	r.expect("fetch * uid", all[2])
	r.expect("fetch 3,1,2,1 uid", all...)
	r.expect("uid fetch 4:* uid", all[2])
	r.ok("store 2 flags \\deleted")
	r.expect("expunge", "* 2 EXPUNGE")
	r.expect("uid fetch 4:* uid", "* 2 FETCH (UID 3)")
	r.expect("uid fetch 1:* uid", "* 1 FETCH (UID 1)", "* 2 FETCH (UID 3)")
	r.expect("uid fetch 2 uid")
	r.expect("uid fetch 1,* uid", "* 1 FETCH (UID 1)", "* 2 FETCH (UID 3)")
}

// FuzzMIMEStructure: any message parses, in memory and as a stream
// alike, into parts that lie inside their parents and the message, and
// its BINARY forms decode without failing but for unknown encodings.
func FuzzMIMEStructure(f *testing.F) {
	for _, m := range []string{msg1, mime1, mimeMsg, rfc822Msg, rfc822x2Msg, digestMsg, b64Msg, qpMsg, "", "\r\n", "a: b\n\n--x\n"} {
		f.Add([]byte(m))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		root := parseStructureBytes(msg)
		streamed, err := parseStructure(bytes.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(root, streamed) {
			t.Fatalf("in memory and streamed differ")
		}
		src := func(off, n int64) (io.Reader, error) { return bytes.NewReader(msg[off : off+n]), nil }
		var check func(p *mimePart, lo, hi int64)
		check = func(p *mimePart, lo, hi int64) {
			if p.start < lo || p.start > p.bodyStart || p.bodyStart > p.end || p.end > hi || p.lines != int64(bytes.Count(msg[p.bodyStart:p.end], []byte("\n"))) {
				t.Fatalf("part %d %d %d %d outside %d %d", p.start, p.bodyStart, p.end, p.lines, lo, hi)
			}
			pos := p.bodyStart
			for _, ch := range p.children {
				check(ch, pos, p.end)
				pos = ch.end
			}
			if err := emitBinary(p, true, src, io.Discard); err != nil && err != errUnknownCTE {
				t.Fatal(err)
			}
		}
		check(root, 0, int64(len(msg)))
		for _, path := range [][]int{{1}, {2}, {1, 1}, {1, 2, 1}, {3, 1}} {
			root.find(path)
		}
	})
}
