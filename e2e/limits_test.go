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
