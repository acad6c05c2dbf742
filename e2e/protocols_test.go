package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

// TestSMTPWakesIMAPIdleAndPOP3Sees: through the real binary, a message
// received on port 25 reaches an IMAP client that IDLEs on INBOX (EXISTS),
// and the same message is there over POP3 — one store behind every protocol.
func TestSMTPWakesIMAPIdleAndPOP3Sees(t *testing.T) {
	data, cfg := newDataDir(t)
	srv := startServer(t, data, cfg)

	exists := make(chan uint32, 4)
	ic, err := imapclient.DialTLS(srv.addrs["imaps"], &imapclient.Options{
		TLSConfig: &tls.Config{InsecureSkipVerify: true},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	if err := ic.Login("info@example.com", "secret-pw").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := ic.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := ic.Idle()
	if err != nil {
		t.Fatal(err)
	}

	body := "From: x@remote.test\r\nTo: info@child.example.com\r\nSubject: wake up\r\n\r\nhello idle\r\n"
	c, err := smtp.Dial(srv.addrs["smtp"])
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Hello("remote.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("x@remote.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("info@child.example.com"); err != nil {
		t.Fatal(err)
	}
	w, _ := c.Data()
	fmt.Fprint(w, body)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c.Quit()

	select {
	case n := <-exists:
		if n != 1 {
			t.Fatalf("EXISTS %d, want 1", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the IDLE client heard nothing of the delivery")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	ic.Logout().Wait()

	// POP3 over implicit TLS sees it too, byte for byte after our headers.
	pc, err := tls.Dial("tcp", srv.addrs["pop3s"], &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(pc)
	line := func() string { l, _ := r.ReadString('\n'); return l }
	line()
	fmt.Fprint(pc, "USER info@example.com\r\nPASS secret-pw\r\nRETR 1\r\n")
	for i, want := range []string{"+OK", "+OK", "+OK"} {
		if l := line(); !strings.HasPrefix(l, want) {
			t.Fatalf("POP3 reply %d: %q", i, l)
		}
	}
	var msg strings.Builder
	for {
		l := line()
		if l == ".\r\n" || l == "" {
			break
		}
		msg.WriteString(strings.TrimPrefix(l, "."))
	}
	if !strings.HasSuffix(msg.String(), body) || !strings.Contains(msg.String(), "X-Yubin-Scan: clean") {
		t.Fatalf("POP3 RETR 1:\n%s", msg.String())
	}
	fmt.Fprint(pc, "QUIT\r\n")
}

// The quota warning also follows an IMAP APPEND that crosses 90 %.
func TestQuotaWarningAfterIMAPAppend(t *testing.T) {
	data, cfg := newDataDir(t)
	mustCLI(t, "", "account", "quota", "info@example.com", "100K", "--config", cfg, "--data", data)
	srv := startServer(t, data, cfg)
	ic, err := imapclient.DialTLS(srv.addrs["imaps"], &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	if err := ic.Login("info@example.com", "secret-pw").Wait(); err != nil {
		t.Fatal(err)
	}
	msg := "Subject: big draft\r\n\r\n" + strings.Repeat(strings.Repeat("y", 98)+"\r\n", 940) // ~94 KB
	app := ic.Append("Drafts", int64(len(msg)), nil)
	app.Write([]byte(msg))
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := ic.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 1 {
		t.Fatalf("INBOX has %d messages, want the quota warning", sel.NumMessages)
	}
	ic.Logout().Wait()
}
