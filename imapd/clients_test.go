package imapd

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"yubin/internal/testutil"
)

func TestPythonImaplib(t *testing.T) {
	testutil.NeedCommand(t, "python3")
	for _, mode := range []string{"starttls", "ssl"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, Config{})
			e.deliver(t, "info@example.com", "", msg1)
			addr := e.plain
			if mode == "ssl" {
				addr = e.implicit
			}
			host, port, _ := net.SplitHostPort(addr)
			out, err := exec.Command("python3", "testdata/imaplib_client.py", mode, host, port, "info@example.com", "pw-info").CombinedOutput()
			if err != nil {
				t.Fatalf("imaplib: %v\n%s", err, out)
			}
			s := string(out)
			for _, want := range []string{" QUOTA ", "append OK [APPENDUID", "fetch 2", "rfc822 From: Alice", "search 2", "search-text 2", "uid-search 1 2",
				`quotaroot [[b'INBOX ""'], [b'"" (STORAGE 1 10240)']]`, "examined 1 2", "done"} {
				if !strings.Contains(s, want) {
					t.Errorf("imaplib output lacks %q:\n%s", want, s)
				}
			}
			if m, _ := e.st.Mailbox(t.Context(), "info@example.com", "INBOX"); m.Messages != 0 {
				t.Errorf("INBOX has %d messages after EXPUNGE", m.Messages)
			}
			if m, _ := e.st.Mailbox(t.Context(), "info@example.com", "Trash"); m.Messages != 1 {
				t.Errorf("Trash has %d messages after MOVE", m.Messages)
			}
			if p, _ := e.st.Verify(t.Context()); len(p) > 0 {
				t.Error(p)
			}
		})
	}
}

// mbsync (isync) syncs the account to a Maildir and back.
func TestMbsync(t *testing.T) {
	testutil.NeedCommand(t, "mbsync")
	e := newEnv(t, Config{})
	e.deliver(t, "info@example.com", "", msg1)
	e.deliver(t, "info@example.com", "Sent", mime1)
	dir := t.TempDir()
	host, port, _ := net.SplitHostPort(e.implicit)
	rc := `IMAPAccount yubin
Host ` + host + `
Port ` + port + `
User info@example.com
Pass pw-info
SSLType IMAPS
CertificateFile ` + filepath.Join(dir, "cert.pem") + `

IMAPStore remote
Account yubin

MaildirStore local
Path ` + dir + `/mail/
Inbox ` + dir + `/mail/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
`
	cert, err := os.ReadFile(e.cert.File)
	testutil.Must(t, err)
	testutil.Must(t, os.WriteFile(filepath.Join(dir, "cert.pem"), cert, 0o600))
	testutil.Must(t, os.WriteFile(filepath.Join(dir, "mbsyncrc"), []byte(rc), 0o600))
	testutil.Must(t, os.MkdirAll(filepath.Join(dir, "mail"), 0o700))
	run := func() string {
		out, err := exec.Command("mbsync", "-c", filepath.Join(dir, "mbsyncrc"), "-a").CombinedOutput()
		if err != nil {
			t.Fatalf("mbsync: %v\n%s", err, out)
		}
		return string(out)
	}
	run()
	files, _ := filepath.Glob(filepath.Join(dir, "mail", "INBOX", "cur", "*"))
	newf, _ := filepath.Glob(filepath.Join(dir, "mail", "INBOX", "new", "*"))
	files = append(files, newf...)
	if len(files) != 1 {
		t.Fatalf("INBOX in the Maildir has %d messages", len(files))
	}
	b, _ := os.ReadFile(files[0])
	if !bytes.Contains(b, []byte("Subject: first")) {
		t.Fatalf("synced message: %q", b)
	}
	if sent, _ := filepath.Glob(filepath.Join(dir, "mail", "Sent", "*", "*")); len(sent) != 1 {
		t.Fatalf("Sent in the Maildir: %v", sent)
	}
	// A message put in the Maildir goes up.
	testutil.Must(t, os.WriteFile(filepath.Join(dir, "mail", "INBOX", "new", "1.local:2,"), []byte("Subject: from maildir\r\n\r\nup\r\n"), 0o600))
	run()
	if m, _ := e.st.Mailbox(t.Context(), "info@example.com", "INBOX"); m.Messages != 2 {
		t.Fatalf("INBOX has %d messages after syncing up", m.Messages)
	}
}
