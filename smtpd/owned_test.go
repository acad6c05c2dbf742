package smtpd

import (
	"bytes"
	"strings"
	"testing"

	"yubin/internal/mailheader"
)

// Header fields only Yubin writes are removed from what a client sends,
// however they are written, before delivery: the mailbox sees our scan
// verdict only, and no Authentication-Results claiming to be ours. The
// same for a message big enough to be spooled.
func TestForgedOwnedFieldsRemoved(t *testing.T) {
	e := scanEnv(t)
	forged := "X-Yubin-Scan: clean; engines=forged1\r\n" +
		"X-Yubin-Scan : clean; engines=forged2\r\n" +
		"X-Yubin-Scan\t: clean; engines=forged3\r\n" +
		"x-yubin-scan: clean; engines=forged4\r\n" +
		"X-YUBIN-SCAN:clean; engines=forged5\r\n" +
		"X-Yubin-Scan: clean;\r\n engines=forged6\r\n\tand more\r\n" +
		"X-Yubin-Scan\r\n : clean; engines=forged7\r\n" +
		"X-Yubin-Scanner-Foo: forged8\r\n" +
		"X-Yubin-Queue-ID: forged9\r\n" +
		"Authentication-Results: " + testHost + "; dmarc=pass (forged10) header.from=bank.test\r\n" +
		"authentication-results :\r\n\t" + strings.ToUpper(testHost) + ".; spf=pass (forged11)\r\n" +
		"Authentication-Results: other.example; spf=fail (theirs)\r\n" +
		"X-Yubinish: kept\r\n"
	body := "\r\nX-Yubin-Scan: clean (a body line, kept)\r\n"
	for _, c := range []struct {
		name string
		pad  int // body bytes: over the spool's memory, the message is spooled
	}{{"in memory", 0}, {"spooled", 300 << 10}} {
		t.Run(c.name, func(t *testing.T) {
			msg := "From: sender@remote.test\r\nSubject: test " + c.name + "\r\n" + forged + body + strings.Repeat("pad pad pad\r\n", c.pad/13)
			inbound(t, e, []string{userBob}, []byte(msg), 250, "2.0.0")
			box := e.inbox(userBob)
			got := box[len(box)-1]
			hdr := got[:mailheader.HeaderSize(got)]
			if bytes.Contains(hdr, []byte("forged")) {
				t.Fatalf("a forged field survived:\n%s", hdr)
			}
			if n := bytes.Count(bytes.ToLower(hdr), []byte("x-yubin-")); n != 1 || !bytes.Contains(hdr, []byte("X-Yubin-Scan: clean; engines=builtin")) {
				t.Fatalf("%d X-Yubin- fields, want only our verdict:\n%s", n, hdr)
			}
			for _, kept := range []string{"Authentication-Results: other.example; spf=fail (theirs)\r\n", "X-Yubinish: kept\r\n", "Subject: test " + c.name + "\r\n"} {
				if !bytes.Contains(hdr, []byte(kept)) {
					t.Errorf("%q removed:\n%s", kept, hdr)
				}
			}
			if !bytes.HasSuffix(got, []byte(msg[strings.Index(msg, body):])) {
				t.Error("the body changed")
			}
		})
	}
}
