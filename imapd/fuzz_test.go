package imapd

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"yubin/store"
)

func FuzzMailboxName(f *testing.F) {
	for _, s := range []string{"INBOX", "&ZeVnLIqe-/2024", "a&-b", "&Jjo", "&AGE-", "&Jjo-&Jjo-", "日本語", "a..b", "&2D3eAQ-", "&,,,-", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		store.CheckMailboxName(s)
		name, err := decodeMailboxName(s)
		if err != nil {
			return
		}
		if !utf8.ValidString(name) {
			t.Fatalf("%q decoded to invalid UTF-8 %q", s, name)
		}
		if strings.EqualFold(name, "INBOX") {
			return
		}
		enc := encodeMailboxName(name)
		back, err := decodeMailboxName(enc)
		if err != nil || back != name {
			t.Fatalf("%q -> %q -> %q -> %q (%v)", s, name, enc, back, err)
		}
	})
}

// abbrev quotes s, cutting runs of a byte short.
func abbrev(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		n := 1
		for n < len(s) && s[n] == s[0] {
			n++
		}
		if n > 8 {
			fmt.Fprintf(&b, "%s<×%d>", s[:1], n)
		} else {
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return strconv.Quote(b.String())
}

// injTemplates put a line of the fuzzer's bytes (user text, say from a
// webmail, without LF) where a command's argument goes.
var injTemplates = []string{
	"a SELECT %s\r\n",
	"a SEARCH TEXT %s\r\n",
	"a STATUS %s (MESSAGES)\r\n",
	"a LOGIN %s\r\n",
	"a APPEND INBOX (%s) {1+}\r\nx\r\n",
	"a SEARCH TEXT {1+}\r\nx %s\r\n",
	"a IDLE\r\n%s\r\n",
}

// The server runs no command but the ones the client starts on a line of
// its own: whatever a command's argument holds (short of a line end), it
// never makes a CREATE run. Each input is the middle of one of
// injTemplates, after a login and before LOGOUT, sent to a real server
// over TCP.
func FuzzLineInjection(f *testing.F) {
	for _, s := range []string{
		"INBOX",
		strings.Repeat("C", 51202-len("a SELECT ")) + "Q2 CREATE injected", // a line longer than the old library's limit
		"x\r\rQ2 CREATE injected",
		`"x`,
		strings.Repeat("D", 70000) + "Q2 CREATE injected", // over imapwire's line limit
		"x {3+}",
	} {
		for i := range injTemplates {
			f.Add(uint8(i), []byte(s))
		}
	}
	e := newEnv(f, Config{})
	f.Fuzz(func(t *testing.T, tmpl uint8, text []byte) {
		text = bytes.ReplaceAll(text, []byte("\n"), nil)
		if bytes.HasSuffix(text, []byte("}")) {
			text = append(text, 'x') // no literal: it would take LOGOUT's bytes
		}
		in := "l LOGIN info@example.com pw-info\r\nl SELECT INBOX\r\n" + fmt.Sprintf(injTemplates[int(tmpl)%len(injTemplates)], text) + "z LOGOUT\r\n"
		c, err := tls.Dial("tcp", e.implicit, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		go io.WriteString(c, in)
		out, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("%s: %v after %q", abbrev(in), err, abbrev(string(out)))
		}
		if _, err := e.st.Mailbox(t.Context(), "info@example.com", "injected"); err == nil {
			t.Fatalf("%s ran CREATE", abbrev(in))
		}
		// Every line the server wrote is a response: tagged, untagged or
		// a continuation.
		for _, l := range strings.Split(strings.TrimSuffix(string(out), "\r\n"), "\r\n") {
			if !strings.HasPrefix(l, "* ") && !strings.HasPrefix(l, "+ ") && !strings.HasPrefix(l, "l ") &&
				!strings.HasPrefix(l, "a ") && !strings.HasPrefix(l, "z ") && !isLiteralData(out, l) {
				t.Fatalf("%s: response line %q", abbrev(in), abbrev(l))
			}
		}
	})
}

// isLiteralData is true for lines that may be inside a literal the server
// sent (FETCH data); this test sends no FETCH, so none are.
func isLiteralData(out []byte, l string) bool { return false }
