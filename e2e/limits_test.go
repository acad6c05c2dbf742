package e2e

import (
	"bytes"
	"crypto/tls"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"yubin/internal/testutil"
	"yubin/internal/testutil/dnstest"
)

// The real binary with [spam] dnsbl and the sending limit configured: a
// listed client is refused on port 25, and an account past its hourly
// limit gets 451 4.7.0 while the domain's admin is warned.
func TestBlocklistAndSendingLimit(t *testing.T) {
	data, cfg := newDataDir(t)
	zones, err := dnstest.Parse(strings.NewReader("1.0.0.127.block.test. A 127.0.0.2\n"), "")
	testutil.Must(t, err)
	dns := dnstest.NewServer(t, zones)
	mustCLI(t, "boss-pw\n", "account", "add", "boss@example.com", "--role", "admin", "--password-stdin", "--config", cfg, "--data", data)
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	testutil.Must(t, err)
	// The config ends in [dns]: the first line goes there.
	f.WriteString("resolver = \"" + dns.Addr() + "\"\n[spam]\ndnsbl = [{zone = \"block.test\", reject = true}]\n[smtp]\nsubmission_messages_per_hour = 1\n")
	f.Close()
	srv := startServer(t, data, cfg)

	mx, err := smtp.Dial(srv.addrs["smtp"])
	testutil.Must(t, err)
	testutil.Must(t, mx.Mail("sender@remote.test", nil))
	var se *smtp.SMTPError
	if err := mx.Rcpt("info@example.com", nil); !errors.As(err, &se) || se.Code != 554 || !strings.Contains(se.Message, "blocked using block.test") {
		t.Fatalf("RCPT from a listed client: %v", err)
	}
	mx.Close()

	sub, err := smtp.DialStartTLS(srv.addrs["submission"], &tls.Config{InsecureSkipVerify: true})
	testutil.Must(t, err)
	testutil.Must(t, sub.Auth(sasl.NewPlainClient("", "info@example.com", "secret-pw")))
	msg := []byte("From: info@example.com\r\nTo: boss@example.com\r\nSubject: hi\r\n\r\nhello\r\n")
	testutil.Must(t, sub.SendMail("info@example.com", []string{"boss@example.com"}, bytes.NewReader(msg)))
	if err := sub.SendMail("info@example.com", []string{"boss@example.com"}, bytes.NewReader(msg)); !errors.As(err, &se) || se.Code != 451 || se.EnhancedCode != (smtp.EnhancedCode{4, 7, 0}) {
		t.Fatalf("second message within the hour: %v", err)
	}
	sub.Close()
	srv.log.WaitFor(t, "kind=rate-limited to=[boss@example.com]", 10*time.Second)
}

// The real binary with the default limits takes what real mail has and
// RFC 5321 does not allow: a list's VERP sender with a 150-octet local
// part, and a 10 KB line, stored as it came. A line over
// smtp.max_line_length (64 KiB) gets 554 5.6.0, and the next message on
// the same connection goes through.
func TestLongSendersAndLines(t *testing.T) {
	data, cfg := newDataDir(t)
	srv := startServer(t, data, cfg)
	imaps := srv.addrs["imaps"]

	verp := "announce-bounces+" + strings.Repeat("v", 121) + "=example.com" // 150 octets
	c, err := smtp.Dial(srv.addrs["smtp"])
	testutil.Must(t, err)
	defer c.Close()
	send := func(from, msg string) error {
		t.Helper()
		if err := c.Mail(from, nil); err != nil {
			return err
		}
		if err := c.Rcpt("info@example.com", nil); err != nil {
			return err
		}
		w, err := c.Data()
		if err != nil {
			return err
		}
		if _, err := w.Write([]byte(msg)); err != nil {
			return err
		}
		return w.Close()
	}

	list := "From: announce@lists.example.net\r\nTo: info@example.com\r\nSubject: list mail\r\n\r\nHello list.\r\n"
	testutil.Must(t, send(verp+"@lists.example.net", list))
	if got := lastInbox(t, imaps, "info@example.com", "secret-pw"); !strings.HasSuffix(got, list) {
		t.Fatalf("newest message is not the list mail:\n%.300s", got)
	}

	long := "From: x@remote.test\r\nTo: info@example.com\r\nSubject: one long line\r\nContent-Type: text/html\r\n\r\n<p>" +
		strings.Repeat("long line, no breaks ", 500) + "</p>\r\nend\r\n" // a 10.5 KB line
	testutil.Must(t, send("x@remote.test", long))
	if got := lastInbox(t, imaps, "info@example.com", "secret-pw"); !strings.HasSuffix(got, long) {
		t.Fatalf("the message with a 10 KB line was not stored as sent:\n%.300s", got)
	}

	var se *smtp.SMTPError
	over := "From: x@remote.test\r\nSubject: over\r\n\r\n" + strings.Repeat("x", 70000) + "\r\n"
	if err := send("x@remote.test", over); !errors.As(err, &se) || se.Code != 554 || se.EnhancedCode != (smtp.EnhancedCode{5, 6, 0}) {
		t.Fatalf("message with a 70,000-byte line: %v, want 554 5.6.0", err)
	}
	next := "From: x@remote.test\r\nTo: info@example.com\r\nSubject: next\r\n\r\nafter the refusal\r\n"
	testutil.Must(t, send("x@remote.test", next))
	if got := lastInbox(t, imaps, "info@example.com", "secret-pw"); !strings.HasSuffix(got, next) {
		t.Fatalf("newest message is not the one after the refusal:\n%.300s", got)
	}
	testutil.Must(t, c.Quit())
}
