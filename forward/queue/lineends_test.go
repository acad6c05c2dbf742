package queue

import (
	"bytes"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"yubin/store"
)

// Bare CRs and bare LFs leave as CRLF: the next hop sees one kind of line
// end, a "\r.\r" cannot end its DATA early, lines that start with a dot
// are stuffed, and the DKIM signatures (made after the normalising) verify.
func TestBareLineEndsLeaveAsCRLF(t *testing.T) {
	e := newEnv(t)
	sk := newSink(t, true)
	e.route("remote.test", sk)
	head := "From: Info <info@example.com>\r\nTo: <bob@remote.test>\r\nSubject: bare\r\nDate: Sun, 1 Mar 2026 09:00:00 +0000\r\nMessage-ID: <2@example.com>\r\n\r\n"
	body := "one\rtwo\nthree\r.\rMAIL FROM:<x@evil.test>\r\n.dot\n\r\r\nend\r\n"
	want := "one\r\ntwo\r\nthree\r\n.\r\nMAIL FROM:<x@evil.test>\r\n.dot\r\n\r\n\r\nend\r\n"
	e.enqueue(store.Outbound{From: "info@example.com", ReturnPath: "info@example.com", Recipients: []string{"bob@remote.test"}, Message: []byte(head + body)})
	e.runner(Config{}).RunDue(ctx)

	m := sk.Next()
	for i, c := range m.Data {
		if c == '\r' && (i+1 == len(m.Data) || m.Data[i+1] != '\n') || c == '\n' && (i == 0 || m.Data[i-1] != '\r') {
			t.Fatalf("bare line end at %d of what the sink got:\n%q", i, m.Data)
		}
	}
	if !bytes.HasSuffix(m.Data, []byte(head+want)) {
		t.Fatalf("the sink got\n%q\nwant it to end in\n%q", m.Data, head+want)
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(m.Data), &dkim.VerifyOptions{LookupTXT: dkimLookup(t, e.st)})
	if err != nil || len(vs) != 2 {
		t.Fatalf("verify: %v, %d signatures", err, len(vs))
	}
	for _, v := range vs {
		if v.Err != nil {
			t.Fatalf("signature %s: %v", v.Domain, v.Err)
		}
	}
	if sk.Mails.Load() != 1 || e.queueLen() != 0 {
		t.Fatalf("%d MAIL commands, %d queued", sk.Mails.Load(), e.queueLen())
	}
}

func TestCRLFOnly(t *testing.T) {
	for in, want := range map[string]string{
		"":                 "",
		"a\r\nb\r\n":       "a\r\nb\r\n",
		"a\nb":             "a\r\nb",
		"a\rb":             "a\r\nb",
		"\r.\r":            "\r\n.\r\n",
		"\n.\n":            "\r\n.\r\n",
		"x\r\r\ny":         "x\r\n\r\ny",
		"x\n\r":            "x\r\n\r\n",
		"\r\n\r\r\n\n\r\n": "\r\n\r\n\r\n\r\n\r\n",
	} {
		if got := string(crlfOnly([]byte(in))); got != want {
			t.Errorf("crlfOnly(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzCRLFOnly: no bare CR or LF is left, and nothing but line ends changes.
func FuzzCRLFOnly(f *testing.F) {
	for _, s := range []string{"", "a\rb\nc\r\n", "\r.\r", "\r\r\n\n", "no line end"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out := crlfOnly(in)
		for i, c := range out {
			if c == '\r' && (i+1 == len(out) || out[i+1] != '\n') || c == '\n' && (i == 0 || out[i-1] != '\r') {
				t.Fatalf("bare line end at %d in %q", i, out)
			}
		}
		ends := func(b []byte) []string {
			return strings.FieldsFunc(strings.ReplaceAll(string(b), "\r\n", "\n"), func(r rune) bool { return r == '\r' || r == '\n' })
		}
		if a, b := ends(in), ends(out); strings.Join(a, "\x00") != strings.Join(b, "\x00") {
			t.Fatalf("text changed: %q -> %q", in, out)
		}
		if n := bytes.Count(out, []byte("\r\n")); n != bytes.Count(in, []byte("\r"))+bytes.Count(in, []byte("\n"))-bytes.Count(in, []byte("\r\n")) {
			t.Fatalf("%d line ends in %q from %q", n, out, in)
		}
	})
}
