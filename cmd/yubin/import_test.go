package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"yubin/internal/testutil"
)

const importData = "../../internal/mailimport/testdata/"

// TestImportCLI: what "yubin import" prints (plain lines, a bar on a
// terminal, JSON), its refusals, a quota stop and messages too big, on a
// stopped server's data dir (e2e/import_test.go runs it through a running
// server and from Dovecot).
func TestImportCLI(t *testing.T) {
	dir := testutil.ShortDir(t)
	setupCLI(t, dir)

	out := mustCLI(t, dir, "", "import", "info@example.com", importData+"maildir")
	if want := "INBOX: 4 imported (of 4)\nEntwürfe: 1 imported (of 1)\nSent: 1 imported (of 1)\nTrash: empty\nWork/2024: 1 imported (of 1)\n" +
		"made 2 mailboxes: Entwürfe, Work/2024\nimported 7 messages (1.1 KiB) into info@example.com\n"; out != want {
		t.Errorf("plain output:\n%s\nwant:\n%s", out, want)
	}

	// On a terminal: one bar, written over, and the summary.
	var term bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &term, stderr: &term, stdoutIsTerminal: true}
	if code := run(e, []string{"import", "bob@example.com", importData + "thunderbird", "--data", dir}); code != 0 {
		t.Fatalf("exit %d:\n%s", code, term.String())
	}
	bar := regexp.MustCompile(`^skipped \S+Inbox.msf: a Thunderbird index\nskipped \S+popstate.dat: not an mbox file\n(\r\[[#-]{24}\] +\d+%  \d/4  \d+ B  [\w/ ]{24})+\n` +
		`made 2 mailboxes: Work, Work/2024\nimported 4 messages \(627 B\) into bob@example.com\n$`)
	if !bar.MatchString(term.String()) || !strings.Contains(term.String(), "\r[########################] 100%  4/4  627 B  Work/2024") {
		t.Errorf("terminal output:\n%q", term.String())
	}

	// --json: the result.
	out = mustCLI(t, dir, "", "import", "bob@example.com", importData+"inbox.mbox", "--json")
	res := decode[struct {
		Account      struct{ Address string }
		Imported     int
		AlreadyThere int `json:"already_there"`
		Mailboxes    []struct {
			Name, From string
			Messages   int
		}
	}](t, out)
	if res.Account.Address != "bob@example.com" || res.Imported != 3 || len(res.Mailboxes) != 1 || res.Mailboxes[0].Messages != 3 {
		t.Errorf("--json: %+v\n%s", res, out)
	}

	// A quota stop: one line, exit status 1, what was imported said.
	mustCLI(t, dir, "", "account", "quota", "carol@other.test", "700")
	r := cli(t, dir, "", "import", "carol@other.test", importData+"maildir")
	stop := regexp.MustCompile(`^yubin: import: stopped: the mailbox of carol@other.test is full \(\d+ B of 700 B used; the next message needs \d+ B\): [1-4] messages? imported, [3-6] not; raise the quota \(yubin account quota carol@other.test SIZE\) and run the same import again: it brings in only what is missing\n$`)
	if r.code != 1 || !stop.MatchString(r.err) {
		t.Errorf("quota stop: exit %d\n%s%s", r.code, r.out, r.err)
	}

	// Messages over imap.append_limit are named and not imported.
	mustCLI(t, dir, "", "account", "quota", "carol@other.test", "0")
	cfg := filepath.Join(dir, "small.toml")
	testutil.Must(t, os.WriteFile(cfg, []byte("[imap]\nappend_limit = 500\n"), 0o600))
	mbox := filepath.Join(dir, "big.mbox")
	testutil.Must(t, os.WriteFile(mbox, []byte("From a@b Mon Jan  1 00:00:00 2024\nSubject: small\n\nx\n\n"+
		"From a@b Mon Jan  1 00:00:00 2024\nSubject: big\n\n"+strings.Repeat("y", 600)+"\n"), 0o644))
	r = cli(t, dir, "", "import", "carol@other.test", mbox, "--config", cfg)
	if r.code != 1 || r.out != "INBOX: 1 imported, 1 too big (of 2)\nnot imported, over 500 B: "+mbox+":6 (615 B)\nimported 1 message (21 B) into carol@other.test\n" ||
		r.err != "yubin: import: 1 message over 500 B not imported (listed above)\n" {
		t.Errorf("too big: exit %d\n%s%s", r.code, r.out, r.err)
	}

	for _, c := range []struct {
		args  []string
		stdin string
		code  int
		err   string
	}{
		{[]string{"import", "bob@example.com"}, "", 2, "usage: yubin import ADDRESS"},
		{[]string{"import", "nobody@example.com", importData + "maildir"}, "", 1, "yubin: import: unknown account nobody@example.com\n"},
		{[]string{"import", "bob@example.com", "/nonexistent"}, "", 1, "yubin: import: stat /nonexistent: no such file or directory\n"},
		{[]string{"import", "bob@example.com", "ftp://x@y"}, "", 1, "yubin: import: \"ftp://x@y\": not an imaps:// or imap:// URL\n"},
		{[]string{"import", "bob@example.com", "imaps://u:secret@y"}, "", 1, "yubin: import: \"imaps://u@y\": the password does not go in the URL: it is read from stdin\n"},
		{[]string{"import", "bob@example.com", "imaps://y"}, "", 1, "yubin: import: \"imaps://y\": no user name: write imaps://USER@y\n"},
		{[]string{"import", "bob@example.com", "imaps://u@127.0.0.1:1"}, "", 1, "yubin: import: no password on stdin for u at 127.0.0.1:1 (give it as one line)\n"},
		{[]string{"import", "bob@example.com", "imaps://u@127.0.0.1:1"}, "pw\n", 1, "yubin: import: 127.0.0.1:1: dial tcp 127.0.0.1:1: connect: connection refused\n"},
		{[]string{"import", "bob@example.com", "imaps://u@y", "--ca", "/nonexistent"}, "pw\n", 1, "yubin: import: --ca: open /nonexistent: no such file or directory\n"},
		{[]string{"import", "bob@example.com", "imaps://u@y", "--ca", importData + "inbox.mbox"}, "pw\n", 1, "no PEM certificate in it\n"},
		{[]string{"import", "bob@example.com", "imaps://u@y", "--ca", "x", "--insecure"}, "pw\n", 1, "yubin: import: --ca and --insecure together: give one\n"},
		{[]string{"import", "bob@example.com", importData + "maildir", "--into", "a/../b"}, "", 1, "yubin: import: --into \"a/../b\": not a mailbox name to import into\n"},
		{[]string{"import", "bob@example.com", importData + "maildir", "--into", "inbox"}, "", 1, "not a mailbox name to import into\n"},
		{[]string{"import", "bob@example.com", importData + "maildir", "--insecure"}, "", 1, "yubin: import: --ca and --insecure are for an imaps:// or imap:// source\n"},
		{[]string{"import", "bob@example.com", importData + "maildir.want"}, "", 1, "not an mbox file: it does not begin with a \"From \" line\n"},
	} {
		r := cli(t, dir, c.stdin, c.args...)
		if r.code != c.code || !strings.Contains(r.err, c.err) || r.out != "" || c.code == 1 && strings.Count(r.err, "\n") != 1 {
			t.Errorf("yubin %v: exit %d\nstdout: %s\nstderr: %s\nwant %d, %q", c.args, r.code, r.out, r.err, c.code, c.err)
		}
	}
	if out := mustCLI(t, dir, "", "import", "--help"); !strings.Contains(out, "imaps://USER@HOST[:PORT] every mailbox") {
		t.Errorf("help:\n%s", out)
	}
}
