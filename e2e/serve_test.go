package e2e

import (
	"crypto/tls"
	"net/smtp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"yubin/internal/testutil/teststore"
)

// TestCLIWhileServing: the admin CLI works while the server holds the store
// (through the control socket), and the account it creates can submit mail.
func TestCLIWhileServing(t *testing.T) {
	data, cfg := newDataDir(t)
	srv := startServer(t, data, cfg)
	mustCLI(t, "bob-pw-123\n", "account", "add", "bob@example.com", "--password-stdin", "--config", cfg, "--data", data)
	if _, errs, code := cli(t, "x\n", "account", "add", "bob@example.com", "--password-stdin", "--config", cfg, "--data", data); code != 1 || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Fatalf("duplicate account through the socket: exit %d, %q", code, errs)
	}

	c, err := smtp.Dial(srv.addrs["submission"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.StartTLS(&tls.Config{InsecureSkipVerify: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(smtp.PlainAuth("", "bob@example.com", "bob-pw-123", "127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("bob@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("info@child.example.com"); err != nil {
		t.Fatal(err)
	}
	w, _ := c.Data()
	w.Write([]byte("Subject: hello\r\n\r\nvia submission\r\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c.Quit()

	// The message is there over IMAPS for info@example.com.
	ic, err := imapclient.DialTLS(srv.addrs["imaps"], &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ic.Login("info@example.com", "secret-pw").Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := ic.Select("INBOX", nil).Wait()
	if err != nil || sel.NumMessages != 1 {
		t.Fatalf("IMAP SELECT INBOX: %+v %v", sel, err)
	}
	ic.Logout().Wait()
	ic.Close()

	out := mustCLI(t, "", "account", "show", "info@example.com", "--json", "--config", cfg, "--data", data)
	if !strings.Contains(out, "info@example.com") {
		t.Fatalf("account show: %s", out)
	}
	srv.stop(t)
	if !strings.Contains(srv.log.String(), "msg=stopped") {
		t.Fatalf("no clean stop in the log:\n%s", srv.log.String())
	}
	// Stopped: the CLI opens the store itself.
	out = mustCLI(t, "", "account", "list", "--config", cfg, "--data", data)
	if !strings.Contains(out, "bob@example.com") {
		t.Fatalf("account list after stop: %s", out)
	}
}

// TestGracefulShutdown: SIGTERM while a message is half sent; the
// transaction finishes with 250, the message is stored, the process exits 0.
func TestGracefulShutdown(t *testing.T) {
	data, cfg := newDataDir(t)
	srv := startServer(t, data, cfg)
	c, err := smtp.Dial(srv.addrs["smtp"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("x@client.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("info@example.com"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("Subject: in flight\r\n\r\nfirst half\r\n"))
	srv.cmd.Process.Signal(syscall.SIGTERM)
	srv.log.WaitFor(t, "shutting down", 20*time.Second)
	// The server is shutting down but must still be reading our DATA: finish it.
	w.Write([]byte("second half\r\n"))
	if err := w.Close(); err != nil {
		t.Fatalf("transaction in flight was not finished: %v\n%s", err, srv.log.String())
	}
	c.Quit()
	<-srv.exited
	if srv.err != nil {
		t.Fatalf("exit: %v\n%s", srv.err, srv.log.String())
	}
	st := teststore.OpenDir(t, data, teststore.Options{})
	defer st.Close()
	raw, err := st.ReadMessage(t.Context(), "info@example.com", "INBOX", 1)
	if err != nil || !strings.HasSuffix(string(raw), "first half\r\nsecond half\r\n") {
		t.Fatalf("message: %q %v", raw, err)
	}
}
