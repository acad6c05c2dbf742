package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"yubin/internal/testutil"
	"yubin/internal/testutil/dovecottest"
)

const testdata = "../internal/mailimport/testdata/"

// mailboxCounts is "account show --json": mailbox → messages.
func mailboxCounts(t *testing.T, flags []string, addr string) map[string]int {
	t.Helper()
	var a struct {
		Used      int64 `json:"used"`
		Mailboxes []struct {
			Name     string `json:"name"`
			Messages int    `json:"messages"`
		} `json:"mailboxes"`
	}
	out := mustCLI(t, "", append([]string{"account", "show", addr, "--json"}, flags...)...)
	testutil.Must(t, json.Unmarshal([]byte(out), &a))
	m := map[string]int{}
	for _, b := range a.Mailboxes {
		m[b.Name] = b.Messages
	}
	return m
}

// TestImport runs "yubin import" of mail files through the real binary:
// with the server running (through its control socket: an IMAP session
// that has INBOX selected sees the new mail), twice (nothing twice), into
// a full mailbox (a clear stop, exit status 1), and with the server
// stopped (on the data dir itself).
func TestImport(t *testing.T) {
	data, cfg := newDataDir(t)
	flags := []string{"--config", cfg, "--data", data}
	srv := startServer(t, data, cfg)

	// An IMAP session with INBOX selected while the import runs.
	ic, err := imapclient.DialTLS(srv.addrs["imaps"], &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	testutil.Must(t, err)
	defer ic.Close()
	testutil.Must(t, ic.Login("info@example.com", "secret-pw").Wait())
	sel, err := ic.Select("INBOX", nil).Wait()
	testutil.Must(t, err)
	if sel.NumMessages != 0 {
		t.Fatalf("INBOX has %d messages before the import", sel.NumMessages)
	}

	out, errs, code := cli(t, "", append([]string{"import", "info@example.com", testdata + "maildir"}, flags...)...)
	if code != 0 || errs != "" {
		t.Fatalf("import: exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"INBOX: 4 imported (of 4)\n",
		"Work/2024: 1 imported (of 1)\n",
		"made 2 mailboxes: Entwürfe, Work/2024\n",
		"imported 7 messages (1.1 KiB) into info@example.com\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The running server's session sees the new messages, with their flags.
	testutil.Must(t, ic.Noop().Wait())
	if n := ic.Mailbox().NumMessages; n != 4 {
		t.Fatalf("the IMAP session sees %d messages in INBOX, want 4", n)
	}
	msgs, err := ic.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{Flags: true, InternalDate: true}).Collect()
	testutil.Must(t, err)
	var seen int
	for _, m := range msgs {
		if hasFlag(m.Flags, imap.FlagSeen) && m.InternalDate.Equal(time.Unix(1700000001, 0)) {
			seen++
		}
	}
	if seen != 1 {
		t.Errorf("INBOX over IMAP: %+v", msgs)
	}

	// Twice: nothing twice.
	out = mustCLI(t, "", append([]string{"import", "info@example.com", testdata + "maildir"}, flags...)...)
	if !strings.Contains(out, "imported 0 messages (0 B) into info@example.com; 7 there already\n") {
		t.Fatalf("second import:\n%s", out)
	}
	if c := mailboxCounts(t, flags, "info@example.com"); c["INBOX"] != 4 || c["Work/2024"] != 1 || c["Entwürfe"] != 1 {
		t.Fatalf("after the second import: %v", c)
	}

	// A full mailbox stops the import with one clear line.
	mustCLI(t, "", append([]string{"account", "quota", "info@example.com", "1500"}, flags...)...)
	out, errs, code = cli(t, "", append([]string{"import", "info@example.com", testdata + "thunderbird"}, flags...)...)
	stop := regexp.MustCompile(`^yubin: import: stopped: the mailbox of info@example.com is full \(1\.\d KiB of 1\.5 KiB used; the next message needs \d+ B\): (\d) messages? imported, (\d) not; raise the quota \(yubin account quota info@example.com SIZE\) and run the same import again: it brings in only what is missing\n$`)
	m := stop.FindStringSubmatch(errs)
	if code != 1 || m == nil || m[1] == "0" || atoi(t, m[1])+atoi(t, m[2]) != 4 {
		t.Fatalf("over quota: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	mustCLI(t, "", append([]string{"account", "quota", "info@example.com", "0"}, flags...)...)
	out = mustCLI(t, "", append([]string{"import", "info@example.com", testdata + "thunderbird"}, flags...)...)
	if !strings.Contains(out, "imported "+m[2]+" message") || !strings.Contains(out, m[1]+" there already") {
		t.Fatalf("the rest (%s were imported):\n%s", m[1], out)
	}

	// The server stopped: the CLI imports on the data dir itself.
	srv.stop(t)
	out = mustCLI(t, "", append([]string{"import", "info@example.com", testdata + "inbox.mbox", "--into", "Old"}, flags...)...)
	if !strings.Contains(out, "imported 3 messages") || !strings.Contains(out, "made the mailbox Old\n") {
		t.Fatalf("import on a stopped server:\n%s", out)
	}
	out = mustCLI(t, "", append([]string{"import", "info@example.com", testdata + "maildir"}, flags...)...)
	if !strings.Contains(out, "imported 0 messages (0 B) into info@example.com; 7 there already\n") {
		t.Fatalf("the first import again, server stopped:\n%s", out)
	}
	if c := mailboxCounts(t, flags, "info@example.com"); c["Old"] != 3 || c["INBOX"] != 5 || c["Work/2024"] != 3 {
		t.Fatalf("mailboxes at the end: %v", c)
	}
}

// TestImportFromDovecot pulls mail from a real Dovecot through the real
// binary, the password on stdin: through the running server (the account
// checked first; flags and internal dates kept; the old server's
// certificate checked), again with the server stopped (nothing twice),
// and with a wrong password (one clear line).
func TestImportFromDovecot(t *testing.T) {
	d := dovecottest.Start(t, map[string]string{"old@old.example": "old-pw"})
	d.Append(t, "old@old.example", "INBOX",
		dovecottest.Message{Flags: []imap.Flag{imap.FlagSeen, imap.FlagAnswered}, Date: time.Date(2018, 1, 2, 3, 4, 5, 0, time.UTC), Raw: []byte("Subject: from dovecot\r\n\r\nold mail\r\n")})
	d.Append(t, "old@old.example", "Sent Messages",
		dovecottest.Message{Flags: []imap.Flag{imap.FlagSeen}, Date: time.Date(2018, 1, 3, 3, 4, 5, 0, time.UTC), Raw: []byte("Subject: sent from dovecot\r\n\r\nold sent mail\r\n")})
	url := "imaps://old@old.example@" + d.IMAPS
	data, cfg := newDataDir(t)
	flags := []string{"--config", cfg, "--data", data}
	srv := startServer(t, data, cfg)

	// An unknown account is said before the old server is asked.
	out, errs, code := cli(t, "old-pw\n", append([]string{"import", "bob@example.com", url, "--ca", d.CAFile}, flags...)...)
	if code != 1 || errs != "yubin: import: unknown account bob@example.com\n" {
		t.Fatalf("unknown account: exit %d\n%s%s", code, out, errs)
	}
	out = mustCLI(t, "old-pw\n", append([]string{"import", "info@example.com", url, "--ca", d.CAFile}, flags...)...)
	if !strings.Contains(out, "imported 2 messages") || !strings.Contains(out, "Sent: 1 imported (of 1)") {
		t.Fatalf("IMAP import:\n%s", out)
	}
	if err := imapCheck(srv.addrs["imaps"], "info@example.com", "secret-pw", "Sent", time.Date(2018, 1, 3, 3, 4, 5, 0, time.UTC), imap.FlagSeen); err != nil {
		t.Fatal(err)
	}
	if err := imapCheck(srv.addrs["imaps"], "info@example.com", "secret-pw", "INBOX", time.Date(2018, 1, 2, 3, 4, 5, 0, time.UTC), imap.FlagAnswered); err != nil {
		t.Fatal(err)
	}
	// Without a certificate to trust, the self-signed one is refused.
	if _, errs, code := cli(t, "old-pw\n", append([]string{"import", "info@example.com", url}, flags...)...); code != 1 || !strings.Contains(errs, "certificate") {
		t.Fatalf("unverified certificate: exit %d, %s", code, errs)
	}

	srv.stop(t)
	out = mustCLI(t, "old-pw\n", append([]string{"import", "info@example.com", url, "--ca", d.CAFile}, flags...)...)
	if !strings.Contains(out, "imported 0 messages (0 B) into info@example.com; 2 there already") {
		t.Fatalf("IMAP import again, server stopped:\n%s", out)
	}
	if c := mailboxCounts(t, flags, "info@example.com"); c["INBOX"] != 1 || c["Sent"] != 1 {
		t.Fatalf("mailboxes: %v", c)
	}
	// A wrong password: one clear line. (Last: Dovecot then slows down
	// logins from this address for a while.)
	out, errs, code = cli(t, "wrong-pw\n", append([]string{"import", "info@example.com", url, "--ca", d.CAFile}, flags...)...)
	if code != 1 || !regexp.MustCompile(`^yubin: import: 127\.0\.0\.1:\d+: login failed for old@old.example: .*\n$`).MatchString(errs) {
		t.Fatalf("wrong password: exit %d\n%s%s", code, out, errs)
	}
}

func hasFlag(flags []imap.Flag, f imap.Flag) bool {
	for _, x := range flags {
		if x == f {
			return true
		}
	}
	return false
}

// imapCheck logs in and checks that mailbox holds one message with date
// as its internal date and flag.
func imapCheck(addr, user, pw, mailbox string, date time.Time, flag imap.Flag) error {
	ic, err := imapclient.DialTLS(addr, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		return err
	}
	defer ic.Close()
	if err := ic.Login(user, pw).Wait(); err != nil {
		return err
	}
	if _, err := ic.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		return err
	}
	msgs, err := ic.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{Flags: true, InternalDate: true}).Collect()
	if err != nil {
		return err
	}
	if len(msgs) != 1 || !msgs[0].InternalDate.Equal(date) || !hasFlag(msgs[0].Flags, flag) {
		return fmt.Errorf("%s of %s over IMAP: %+v", mailbox, user, msgs)
	}
	return nil
}
