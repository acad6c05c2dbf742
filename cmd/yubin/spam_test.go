package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"yubin/admin"
	"yubin/internal/testutil"
	"yubin/internal/testutil/teststore"
	"yubin/store"
)

// trainingSet writes an mbox of n messages of words distinct words each.
func trainingSet(t *testing.T, n, words int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "From sender@example.test Mon Jan  1 00:00:00 2024\nSubject: message %d\n\n", i)
		for w := range words {
			fmt.Fprintf(&b, "w%dx%d ", i, w)
		}
		b.WriteString("\n\n")
	}
	f, err := os.CreateTemp(t.TempDir(), "*.mbox")
	testutil.Must(t, err)
	defer f.Close()
	_, err = f.WriteString(b.String())
	testutil.Must(t, err)
	return f.Name()
}

// testSpamCLI runs the spam and quarantine commands on dir; hold puts a
// message into an account's quarantine (on the store the server holds, or
// on the stopped store) and returns its id.
func testSpamCLI(t *testing.T, dir string, hold func(account, raw string) string) {
	setupCLI(t, dir)
	if out := mustCLI(t, dir, "", "spam", "policy", "bob@example.com", "--action", "quarantine", "--threshold", "0.9"); !regexp.MustCompile(`action\s+quarantine\n\s+threshold\s+0.90\n\s+tag\s+off`).MatchString(out) {
		t.Errorf("spam policy:\n%s", out)
	}
	for args, want := range map[string]string{
		"spam policy bob@example.com --threshold 0":       "yubin: spam policy: spam threshold must be a number above 0 and at most 1 (e.g. 0.7), not \"0\"\n",
		"spam policy bob@example.com":                     "yubin: spam policy: nothing to change (give an action, a threshold or a tag setting)\n",
		"spam show nobody@example.com":                    "yubin: unknown account nobody@example.com\n",
		"quarantine list nobody.test":                     "yubin: unknown domain nobody.test\n",
		"quarantine release nosuchid":                     "yubin: no quarantined message nosuchid\n",
		"spam reject example.com 1.5":                     "yubin: the spam reject score must be a number above 0.5 and at most 1 (e.g. 0.7), not \"1.5\", or off\n",
		"spam train example.com --spam /nonexistent.mbox": "yubin: spam train: stat /nonexistent.mbox: no such file or directory\n",
	} {
		if r := cli(t, dir, "", strings.Fields(args)...); r.code != 1 || r.err != want {
			t.Errorf("yubin %s: exit %d, %q; want 1, %q", args, r.code, r.err, want)
		}
	}

	bob := hold("bob@example.com", "From: Shop <shop@spam.test>\r\nSubject: \x1b[31mred\x1b[0m deals\r\nContent-Type: text/html\r\n\r\n<script>alert(1)</script><p>Deals</p>\r\n")
	carol := hold("carol@other.test", "Subject: for carol\r\n\r\nhi\r\n")
	out := mustCLI(t, dir, "", "quarantine", "list", "example.com")
	if !strings.Contains(out, bob) || strings.Contains(out, carol) || !strings.Contains(out, "[31mred[0m deals") || strings.ContainsRune(out, 0x1b) {
		t.Errorf("quarantine list example.com:\n%q", out)
	}
	held := decode[[]admin.QuarantineEntry](t, mustCLI(t, dir, "", "quarantine", "list", "carol@other.test", "--json"))
	if len(held) != 1 || held[0].ID != carol {
		t.Errorf("quarantine list carol --json: %+v", held)
	}
	out = mustCLI(t, dir, "", "quarantine", "show", bob)
	if !strings.Contains(out, "\nDeals\n") || strings.Contains(out, "<script") || strings.Contains(out, "alert") || strings.ContainsRune(out, 0x1b) {
		t.Errorf("quarantine show:\n%q", out)
	}
	if out := mustCLI(t, dir, "", "quarantine", "release", bob, bob); out != "released "+bob+" to the INBOX of bob@example.com (learned as wanted mail)\n" {
		t.Errorf("release: %q", out)
	}
	if r := cli(t, dir, "", "quarantine", "release", bob); r.code != 1 || r.err != "yubin: no quarantined message "+bob+"\n" {
		t.Errorf("release again: %+v", r)
	}
	if d := decode[admin.AccountDetail](t, mustCLI(t, dir, "", "account", "show", "bob@example.com", "--json")); d.Mailboxes[0].Name != "INBOX" || d.Mailboxes[0].Messages != 1 {
		t.Errorf("bob's mailboxes after release: %+v", d.Mailboxes)
	}
	if out := mustCLI(t, dir, "", "quarantine", "delete", carol); out != "deleted 1 message from the quarantine\n" {
		t.Errorf("delete: %q", out)
	}

	// Training: plain lines when stdout is not a terminal, one line
	// rewritten when it is. A set larger than a request (the control
	// socket takes 1 MiB) goes in batches, by size and by count.
	big, many := trainingSet(t, 60, 3000), trainingSet(t, 250, 3)
	out = mustCLI(t, dir, "", "spam", "train", "example.com", "--spam", big, "--ham", many)
	if want := big + ": trained 60 messages as spam (mbox)\n" + many + ": trained 250 messages as ham (mbox)\n" +
		"trained example.com's model with 60 spam and 250 ham: it now has 60 spam, 251 ham, "; !strings.HasPrefix(out, want) {
		t.Errorf("spam train:\n%s\nwant\n%s…", out, want)
	}
	var term bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &term, stderr: &term, stdoutIsTerminal: true}
	if code := run(e, []string{"spam", "train", "example.com", "--ham", many, "--data", dir}); code != 0 {
		t.Fatalf("spam train on a terminal: exit %d\n%s", code, term.String())
	}
	if out := term.String(); !regexp.MustCompile(`^\rtraining: ham 200/250 \rtraining: ham 250/250 \n` +
		`trained example.com's model with 0 spam and 250 ham: it now has 60 spam, 501 ham, [\d,]+ tokens\n$`).MatchString(out) {
		t.Errorf("progress on a terminal:\n%q", out)
	}
	s := decode[admin.SpamState](t, mustCLI(t, dir, "", "spam", "show", "bob@example.com", "--json"))
	if s.DomainModel.Spam != 60 || s.DomainModel.Ham != 501 || s.Quarantined != 0 || s.Action != store.SpamQuarantine || s.Model != "domain" {
		t.Errorf("spam show after training: %+v", s)
	}
}

func TestSpamCLI(t *testing.T) {
	dir := testutil.ShortDir(t)
	testSpamCLI(t, dir, func(account, raw string) string {
		st := teststore.OpenDir(t, dir, teststore.Options{})
		defer st.Close()
		return holdOn(t, st, account, raw)
	})
}

func TestSpamCLIWhileServing(t *testing.T) {
	dir := testutil.ShortDir(t)
	st := teststore.OpenDir(t, dir, teststore.Options{})
	stop := serveControl(t, dir, st)
	testSpamCLI(t, dir, func(account, raw string) string { return holdOn(t, st, account, raw) })
	testutil.Must(t, stop())
}

func holdOn(t *testing.T, st store.Store, account, raw string) string {
	t.Helper()
	d, err := st.Deliver(context.Background(), store.Delivery{Recipients: []string{account}, Message: []byte(raw),
		Quarantine: &store.QuarantineHold{From: "Shop <shop@spam.test>", Subject: "\x1b[31mred\x1b[0m deals", Score: 0.95}})
	testutil.Must(t, err)
	return d[0].Quarantine
}
