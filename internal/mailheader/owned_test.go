package mailheader

import (
	"bytes"
	"strings"
	"testing"
)

func TestStripOwned(t *testing.T) {
	const host = "mx.example.com"
	body := "\r\nX-Yubin-Scan: clean (in the body: kept)\r\nAuthentication-Results: mx.example.com; in the body\r\n"
	for _, c := range []struct{ name, in, want string }{
		{"plain", "X-Yubin-Scan: clean\r\nSubject: s\r\n", "Subject: s\r\n"},
		{"space before colon", "Subject: s\r\nX-Yubin-Scan : clean\r\n", "Subject: s\r\n"},
		{"tab before colon", "Subject: s\r\nX-Yubin-Scan\t: clean\r\n", "Subject: s\r\n"},
		{"case", "x-yubin-scan: clean\r\nSubject: s\r\nX-YUBIN-SCAN: clean\r\n", "Subject: s\r\n"},
		{"folded", "X-Yubin-Scan: clean;\r\n engines=forged\r\n\tmore\r\nSubject: s\r\n", "Subject: s\r\n"},
		{"folded before colon", "X-Yubin-Scan\r\n : clean\r\nSubject: s\r\n", "Subject: s\r\n"},
		{"any X-Yubin- field", "X-Yubin-Queue-ID: 1\r\nX-Yubin-Scanner-Foo: x\r\nSubject: s\r\n", "Subject: s\r\n"},
		{"white space first", " X-Yubin-Scan: clean\r\nSubject: s\r\n", "Subject: s\r\n"},
		{"not ours", "X-Yubin: x\r\nX-Yubinscan: x\r\nX-Yubi-Scan: x\r\nSubject: s\r\n", "X-Yubin: x\r\nX-Yubinscan: x\r\nX-Yubi-Scan: x\r\nSubject: s\r\n"},
		{"our AR", "Authentication-Results: MX.Example.COM. (forged);\r\n\tspf=pass smtp.mailfrom=a@b.test\r\nSubject: s\r\n", "Subject: s\r\n"},
		{"our AR, name spaced and lower case", "authentication-results : mx.example.com 1; dkim=pass\r\nSubject: s\r\n", "Subject: s\r\n"},
		{"our AR, id folded", "Authentication-Results:\r\n\t(c) mx.example.com;\r\n\tdkim=pass\r\nSubject: s\r\n", "Subject: s\r\n"},
		{"someone else's AR", "Authentication-Results: other.example; spf=fail\r\nSubject: s\r\n", "Authentication-Results: other.example; spf=fail\r\nSubject: s\r\n"},
		{"AR of a longer name", "Authentication-Results: mx.example.com.evil; spf=pass\r\n", "Authentication-Results: mx.example.com.evil; spf=pass\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := StripOwned([]byte(c.in+body), host)
			if string(got) != c.want+body {
				t.Fatalf("got  %q\nwant %q", got, c.want+body)
			}
		})
	}
	same := []byte("Subject: s\r\n\r\nX-Yubin-Scan: body\r\n")
	if got := StripOwned(same, host); &got[0] != &same[0] {
		t.Fatal("a message without our fields was copied")
	}
	if got := StripOwned([]byte("Authentication-Results: x; spf=pass\r\n\r\n"), ""); !bytes.Contains(got, []byte("x; spf")) {
		t.Fatal("an empty host owns an Authentication-Results field")
	}
}

func TestOwned(t *testing.T) {
	for _, c := range []struct {
		name, value string
		want        bool
	}{
		{"X-Yubin-Scan", "clean", true}, {" x-yubin-scan\t", "", true}, {"X-Yubin-", "", true},
		{"X-Yubin", "", false}, {"Subject", "X-Yubin-Scan: clean", false},
		{"Authentication-Results", "mx.example.com; spf=pass", true},
		{"Authentication-Results", "(comment) MX.example.com.; spf=pass", true},
		{"Authentication-Results", "other.test; spf=pass", false},
		{"Authentication-Results", "", false},
	} {
		if got := Owned(c.name, c.value, "mx.example.com"); got != c.want {
			t.Errorf("Owned(%q, %q) = %v", c.name, c.value, got)
		}
	}
}

// FuzzStripOwned checks that whatever the header, the body is kept byte
// for byte, nothing grows, and no field we own is left in the header.
func FuzzStripOwned(f *testing.F) {
	f.Add([]byte("Authentication-Results: h.example; spf=pass\r\nSubject: s\r\n\r\nbody"), "h.example")
	f.Add([]byte("A: b\r\n c\r\nAuthentication-Results:(x) h.example;\r\n\tdkim=none\r\n\r\n"), "h.example")
	f.Add([]byte("X-Yubin-Scan : clean\r\n\tfolded\r\n\r\nX-Yubin-Scan: body"), "")
	f.Fuzz(func(t *testing.T, msg []byte, host string) {
		got := StripOwned(msg, host)
		body := msg[HeaderSize(msg):]
		if !bytes.HasSuffix(got, body) || len(got) > len(msg) {
			t.Fatalf("body changed or message grew: %q -> %q", msg, got)
		}
		hdr := got[:len(got)-len(body)]
		for off := 0; off < len(hdr); {
			next := fieldEnd(hdr, off)
			if name, value, ok := strings.Cut(string(hdr[off:next]), ":"); ok && Owned(name, value, host) {
				t.Fatalf("field %q left in %q", hdr[off:next], got)
			}
			off = next
		}
	})
}
