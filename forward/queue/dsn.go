package queue

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"yubin/store"
)

// failure is one recipient that could not be delivered.
type failure struct {
	Rcpt       string
	Status     string // enhanced status, e.g. "5.1.1"
	Diagnostic string // the remote reply, or what went wrong
	RemoteMTA  string // host that gave the reply, if any
	SMTP       bool   // Diagnostic is an SMTP reply
}

// buildDSN makes a delivery status notification (RFC 3464,
// multipart/report) for the failed recipients of entry e, to e.ReturnPath,
// with the original message's header section attached.
func buildDSN(hostname string, e store.QueueEntry, msg []byte, fails []failure, now time.Time) []byte {
	var rnd [12]byte
	rand.Read(rnd[:])
	boundary := "=_yubin_" + hex.EncodeToString(rnd[:])
	date := now.Format(time.RFC1123Z)
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...); b.WriteString("\r\n") }
	w("From: Mail Delivery System <MAILER-DAEMON@%s>", hostname)
	w("To: <%s>", e.ReturnPath)
	w("Subject: Undelivered Mail Returned to Sender")
	w("Date: %s", date)
	w("Message-ID: <%s.%s@%s>", e.ID, hex.EncodeToString(rnd[:4]), hostname)
	w("Auto-Submitted: auto-replied")
	w("MIME-Version: 1.0")
	w("Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"%s\"", boundary)
	w("")
	w("This is a MIME-encapsulated message.")
	w("")
	w("--%s", boundary)
	w("Content-Type: text/plain; charset=utf-8")
	w("Content-Transfer-Encoding: 8bit")
	w("")
	w("This is the mail system at host %s.", hostname)
	w("")
	w("Your message could not be delivered to one or more recipients.")
	w("It is attached below (headers only).")
	w("")
	for _, f := range fails {
		w("<%s>: %s", f.Rcpt, oneLine(f.Diagnostic))
	}
	w("")
	w("--%s", boundary)
	w("Content-Type: message/delivery-status")
	w("")
	w("Reporting-MTA: dns; %s", hostname)
	w("X-Yubin-Queue-ID: %s", e.ID)
	w("Arrival-Date: %s", e.Created.Format(time.RFC1123Z))
	for _, f := range fails {
		w("")
		w("Final-Recipient: rfc822; %s", f.Rcpt)
		w("Action: failed")
		w("Status: %s", f.Status)
		if f.RemoteMTA != "" {
			w("Remote-MTA: dns; %s", f.RemoteMTA)
		}
		kind := "x-yubin"
		if f.SMTP {
			kind = "smtp"
		}
		w("Diagnostic-Code: %s; %s", kind, oneLine(f.Diagnostic))
		w("Last-Attempt-Date: %s", date)
	}
	w("")
	w("--%s", boundary)
	w("Content-Type: text/rfc822-headers")
	w("")
	b.Write(headerSection(msg))
	w("--%s--", boundary)
	return b.Bytes()
}

// headerSection returns the message's header fields, ending with CRLF, and
// without the blank line.
func headerSection(msg []byte) []byte {
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		return msg[:i+2]
	}
	if len(msg) > 0 && !bytes.HasSuffix(msg, []byte("\r\n")) {
		return append(append([]byte(nil), msg...), '\r', '\n')
	}
	return msg
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 900 {
		s = s[:900]
	}
	return s
}
