package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"yubin/internal/testutil/dnstest"
	"yubin/internal/testutil/smtpsink"
)

// cliCase is one run of the CLI against the running server: the command,
// what it must answer, and what it must have changed.
type cliCase struct {
	args   []string // "$ID" is replaced by vars["ID"]
	stdin  string
	code   int    // exit status
	out    string // regexp that stdout and stderr must match
	before func(t *testing.T)
	check  func(t *testing.T, stdout string)
}

// TestEveryCLICommandWhileServing runs every command "yubin help" lists
// against a running server — the admin commands through its control
// socket, as the server holds the store — and checks the exit status, the
// answer and the effect, in the running server where there is one (a new
// password logs in over IMAP, a quota refuses mail on port 25, a forward
// reaches the smart host). Commands that cannot work while the server runs
// must say so in one clear line.
func TestEveryCLICommandWhileServing(t *testing.T) {
	data, cfg := newDataDir(t)
	sink := smtpsink.New(t, "relay.test", true) // the smart host
	var refuse atomic.Bool
	sink.Rcpt = func(string) error {
		if refuse.Load() {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "not now"}
		}
		return nil
	}
	appendConfig(t, cfg, "[outbound]\nsmart_host = \""+sink.Addr+"\"\nsmart_host_verify_tls = false\nretry_initial = \"1h\"\n")
	srv := startServer(t, data, cfg)
	flags := []string{"--config", cfg, "--data", data}
	vars := map[string]string{"EMPTYDNS": dnstest.NewServer(t, nil).Addr(), "BACKUP": filepath.Join(t.TempDir(), "yubin.ybk"), "DATA": data}
	outer := t // for what must outlive one case

	jsonOf := func(t *testing.T, v any, args ...string) {
		t.Helper()
		out := mustCLI(t, "", append(append(args, "--json"), flags...)...)
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("yubin %v --json: %v\n%s", args, err, out)
		}
	}
	inboxCount := func(t *testing.T, addr string) int {
		var a struct {
			Mailboxes []struct {
				Name     string `json:"name"`
				Messages int    `json:"messages"`
			} `json:"mailboxes"`
		}
		jsonOf(t, &a, "account", "show", addr)
		for _, m := range a.Mailboxes {
			if m.Name == "INBOX" {
				return m.Messages
			}
		}
		t.Fatalf("%s has no INBOX", addr)
		return 0
	}
	// field lists one field of every element of a list command's --json.
	field := func(t *testing.T, name string, args ...string) []string {
		var list []map[string]any
		jsonOf(t, &list, args...)
		var out []string
		for _, x := range list {
			out = append(out, fmt.Sprint(x[name]))
		}
		return out
	}
	domains := func(t *testing.T) string { return " " + strings.Join(field(t, "name", "domain", "list"), " ") + " " }
	queued := func(t *testing.T) []string { return field(t, "id", "queue", "list") }
	send := func(to, body string) error { return sendMX(srv.addrs["smtp"], to, body) }
	submit := func(t *testing.T, to string) {
		submitMail(t, srv.addrs["submission"], "info@example.com", "secret-pw", to,
			"From: info@example.com\r\nTo: "+to+"\r\nSubject: queued\r\n\r\nfor the queue\r\n")
	}
	login := func(user, pw string) error { return imapLogin(srv.addrs["imaps"], user, pw) }

	cases := []cliCase{
		{args: []string{"help"}, out: `yubin domain`},
		{args: []string{"version"}, out: `^yubin \S+\n$`},
		{args: []string{"config", "example"}, out: `(?m)^\[outbound\]$`},
		{args: []string{"config", "check"}, out: `^config \S+: ok\n$`},
		// A second server on the same data dir refuses, in one clear log line.
		{args: []string{"serve"}, code: 1, out: `another yubin is already running on \S+ \(it holds the store\)`},

		{args: []string{"domain", "add", "new.test"}, out: `^added domain new.test\n$`,
			check: func(t *testing.T, _ string) {
				if !strings.Contains(domains(t), " new.test ") {
					t.Fatal("new.test not listed")
				}
			}},
		{args: []string{"domain", "add", "sub.new.test", "--parent", "new.test"}, out: `child of new.test`},
		{args: []string{"domain", "add", "new.test"}, code: 1, out: `^yubin: domain new.test already exists\n$`},
		{args: []string{"domain", "list"}, out: `sub.new.test`},

		{args: []string{"account", "add", "bob@new.test", "--password-stdin", "--quota", "1M"}, stdin: "bob-pw-1\n", out: `bob@new.test`,
			check: func(t *testing.T, _ string) {
				if err := login("bob@new.test", "bob-pw-1"); err != nil {
					t.Fatalf("the new account cannot log in: %v", err)
				}
			}},
		{args: []string{"account", "add", "bob@sub.new.test", "--password-stdin"}, stdin: "x\n", code: 1, out: `child domain of new.test`},
		{args: []string{"account", "passwd", "bob@new.test", "--password-stdin"}, stdin: "bob-pw-2\n",
			check: func(t *testing.T, _ string) {
				if err := login("bob@new.test", "bob-pw-2"); err != nil {
					t.Fatalf("the new password does not log in: %v", err)
				}
				if err := login("bob@new.test", "bob-pw-1"); err == nil {
					t.Fatal("the old password still logs in")
				}
			}},
		{args: []string{"account", "list", "new.test"}, out: `bob@new.test`},
		{args: []string{"account", "show", "bob@new.test"}, out: `bob@sub.new.test`},

		{args: []string{"scan", "policy", "bob@new.test", "--oversize=accept"},
			check: func(t *testing.T, _ string) {
				var p struct {
					Oversize string `json:"oversize"`
				}
				jsonOf(t, &p, "scan", "show", "bob@new.test")
				if p.Oversize != "accept" {
					t.Fatalf("oversize policy %q", p.Oversize)
				}
			}},
		{args: []string{"scan", "show", "bob@new.test"}, out: `accept`},

		{args: []string{"warnings", "off", "new.test"}, out: `Warnings:\s+off`},
		{args: []string{"warnings", "on", "new.test"}, out: `Warnings:\s+on`},
		{args: []string{"warnings", "lang", "new.test", "ja"}, out: `Language:\s+ja`},
		{args: []string{"warnings", "show", "new.test"}, out: `Language:\s+ja`},

		{args: []string{"report", "set", "new.test", "bob@sub.new.test"}, out: `Daily report to:\s+bob@sub.new.test`},
		{args: []string{"report", "send", "new.test"}, out: `^sent the report for new.test to bob@sub.new.test\n$`,
			check: func(t *testing.T, _ string) {
				if n := inboxCount(t, "bob@new.test"); n != 1 {
					t.Fatalf("bob's INBOX has %d messages, want the report", n)
				}
			}},
		{args: []string{"report", "clear", "new.test"}, out: `Daily report to:\s+\(none\)`},
		{args: []string{"report", "send", "new.test"}, code: 1, out: `^yubin: new.test has no report address`},

		// The spam filter and the quarantine of a running server.
		{args: []string{"spam", "show", "bob@new.test"}, out: `(?s)action\s+junk.*threshold\s+0.50 \(the default\).*held\s+0 messages.*scored by\s+no model yet.*reject score\s+off`},
		{args: []string{"spam", "policy", "bob@new.test", "--action=quarantine", "--threshold=0.01", "--tag=on"}, out: `(?s)action\s+quarantine\s+threshold\s+0.01\s+tag\s+on`,
			check: func(t *testing.T, _ string) {
				// Mail from port 25 is held now, not delivered.
				for _, msg := range []string{scriptMail, "Subject: to delete\r\n\r\nheld, then deleted\r\n"} {
					if err := sendMXRaw(srv.addrs["smtp"], "bob@new.test", msg); err != nil {
						t.Fatal(err)
					}
				}
				ids := field(t, "id", "quarantine", "list", "bob@new.test")
				if len(ids) != 2 || inboxCount(t, "bob@new.test") != 1 {
					t.Fatalf("held %v; INBOX %d (the report alone)", ids, inboxCount(t, "bob@new.test"))
				}
				vars["QID"], vars["QID2"] = ids[0], ids[1]
			}},
		{args: []string{"spam", "policy", "bob@new.test", "--threshold=7"}, code: 1, out: `^yubin: spam policy: spam threshold must be a number above 0 and at most 1 \(e.g. 0.7\), not "7"\n$`},
		{args: []string{"spam", "policy", "bob@new.test", "--action=bounce"}, code: 1, out: `^yubin: spam policy: spam action must be off, junk or quarantine, not "bounce"\n$`},
		{args: []string{"spam", "policy", "bob@new.test", "--tag=maybe"}, code: 1, out: `spam tag must be on or off`},
		{args: []string{"spam", "policy", "nobody@new.test", "--tag=on"}, code: 1, out: `^yubin: spam policy: unknown account nobody@new.test\n$`},
		{args: []string{"spam", "policy", "bob@new.test", "--frobnicate=1"}, code: 2, out: `usage: yubin spam policy`},
		{args: []string{"spam", "show", "bob@new.test"}, out: `(?s)action\s+quarantine.*held\s+2 messages in the quarantine`},
		{args: []string{"quarantine", "list", "bob@new.test"}, out: `(?s)ID\s+ARRIVED\s+SCORE\s+FROM\s+SUBJECT\n\S+\s+.*0.25\s+Mallory <x@remote.test>\s+You won.*2 messages held`},
		{args: []string{"quarantine", "list", "sub.new.test"}, out: `(?s)ID\s+ACCOUNT\s+ARRIVED.*bob@new.test.*2 messages held`},
		{args: []string{"quarantine", "list", "example.com"}, out: `^Nothing is held for example.com.\n$`},
		{args: []string{"quarantine", "list", "nobody@new.test"}, code: 1, out: `^yubin: unknown account nobody@new.test\n$`},
		{args: []string{"quarantine", "show", "$QID"}, out: `(?s)Account\s+bob@new.test.*Score\s+0.25.*X-Yubin-Spam: yes; score=0.25; threshold=0.01.*Subject: You won\n.*\n\nHello world!\n\nclaim it \[http://phish.test/\]\n`,
			check: func(t *testing.T, out string) {
				// Never active HTML: the script and the markup are gone, in
				// the text and in the JSON.
				if strings.Contains(out, "<script") || strings.Contains(out, "alert(") || strings.Contains(out, "<b>") {
					t.Fatalf("active HTML shown:\n%s", out)
				}
				js := mustCLI(t, "", append([]string{"quarantine", "show", vars["QID"], "--json"}, flags...)...)
				if strings.ContainsAny(js, "<>") || !strings.Contains(js, `"text": "Hello world!`) {
					t.Fatalf("show --json:\n%s", js)
				}
			}},
		{args: []string{"quarantine", "show", "nosuchid"}, code: 1, out: `^yubin: no quarantined message nosuchid\n$`},
		{args: []string{"quarantine", "release", "$QID"}, out: `^released \S+ to the INBOX of bob@new.test \(learned as wanted mail\)\n$`,
			check: func(t *testing.T, _ string) {
				if n := inboxCount(t, "bob@new.test"); n != 2 {
					t.Fatalf("bob's INBOX has %d messages, want the report and the released one", n)
				}
				// Delivered as it arrived: the HTML, script and all.
				if body := lastInbox(t, srv.addrs["imaps"], "bob@new.test", "bob-pw-2"); !strings.HasSuffix(body, scriptMail[strings.Index(scriptMail, "\r\n\r\n"):]) {
					t.Fatalf("released message:\n%s", body)
				}
			}},
		{args: []string{"quarantine", "release", "$QID"}, code: 1, out: `^yubin: no quarantined message \S+\n$`,
			check: func(t *testing.T, _ string) {
				if n := inboxCount(t, "bob@new.test"); n != 2 {
					t.Fatalf("a second release: bob's INBOX has %d messages", n)
				}
			}},
		{args: []string{"quarantine", "delete", "$QID2"}, out: `^deleted 1 message from the quarantine\n$`,
			check: func(t *testing.T, _ string) {
				if ids := field(t, "id", "quarantine", "list", "bob@new.test"); len(ids) != 0 {
					t.Fatalf("still held: %v", ids)
				}
			}},
		{args: []string{"quarantine", "delete", "$QID2"}, code: 1, out: `^yubin: no quarantined message \S+\n$`},
		{args: []string{"quarantine", "release"}, code: 2, out: `usage: yubin quarantine release ID`},

		{args: []string{"spam", "reject", "new.test", "0.6"}, out: `^Reject score of new.test: 0.60 \(mail scoring at least this`,
			check: func(t *testing.T, _ string) {
				// 0.65: no Message-ID, no Date, and a From name with one of our addresses.
				err := sendMXRaw(srv.addrs["smtp"], "bob@new.test", "From: \"bob@new.test\" <x@remote.test>\r\nSubject: spoof\r\n\r\nhi\r\n")
				var se *smtp.SMTPError
				if !errors.As(err, &se) || se.Code != 550 || se.EnhancedCode != (smtp.EnhancedCode{5, 7, 1}) {
					t.Fatalf("mail over the reject score: %v", err)
				}
			}},
		{args: []string{"spam", "reject", "new.test"}, out: `^Reject score of new.test: 0.60 `},
		{args: []string{"spam", "reject", "new.test", "0.3"}, code: 1, out: `^yubin: the spam reject score must be a number above 0.5 and at most 1 \(e.g. 0.7\), not "0.3", or off\n$`},
		{args: []string{"spam", "reject", "sub.new.test", "0.9"}, code: 1, out: `^yubin: sub.new.test is a child domain of new.test: it follows new.test's settings\n$`},
		{args: []string{"spam", "reject", "new.test", "off"}, out: `^Reject score of new.test: off`},

		{args: []string{"spam", "train", "new.test", "--spam", "$SPAMMBOX", "--ham", "$HAMDIR"},
			before: func(t *testing.T) { vars["SPAMMBOX"], vars["HAMDIR"], vars["NOTMAIL"] = trainingSets(outer) },
			out:    `(?m)^\S+spam.mbox: trained 12 messages as spam \(mbox\)\n\S+Maildir: trained 12 messages as ham \(maildir\)\ntrained new.test's model with 12 spam and 12 ham: it now has 12 spam, 13 ham, \d+ tokens\n$`, // the 13th: the release above
			check: func(t *testing.T, _ string) {
				var s struct {
					Model  string `json:"model"`
					Domain struct {
						Spam, Ham, Tokens int
					} `json:"domain_model"`
				}
				jsonOf(t, &s, "spam", "show", "bob@new.test")
				if s.Model != "domain" || s.Domain.Spam != 12 || s.Domain.Ham != 13 || s.Domain.Tokens == 0 {
					t.Fatalf("spam show after training: %+v", s)
				}
			}},
		{args: []string{"spam", "train", "new.test", "--ham", "$NOTMAIL"}, code: 1, out: `^yubin: spam train: \S+notes.txt: not an mbox file: it does not begin with a "From " line \("Dear diary,"\)\n$`},
		{args: []string{"spam", "train", "new.test", "--spam", "/nonexistent/spam"}, code: 1, out: `^yubin: spam train: stat /nonexistent/spam: no such file or directory\n$`},
		{args: []string{"spam", "train", "sub.new.test", "--spam", "$SPAMMBOX"}, code: 1, out: `^yubin: spam train: sub.new.test is a child domain of new.test: its spam model is new.test's: train new.test\n$`},
		{args: []string{"spam", "train", "new.test"}, code: 2, out: `give --spam PATH, --ham PATH or both`},

		{args: []string{"account", "role", "bob@new.test", "admin"}, out: `^bob@new.test is now admin\n$`,
			check: func(t *testing.T, _ string) {
				var a struct{ Role string }
				jsonOf(t, &a, "account", "show", "bob@new.test")
				if a.Role != "admin" {
					t.Fatalf("role %q", a.Role)
				}
			}},
		{args: []string{"account", "role", "bob@new.test", "root"}, code: 1, out: `^yubin: invalid role "root": want admin or user\n$`},
		{args: []string{"account", "role", "bob@new.test", "user"}, out: `is now user`},
		{args: []string{"account", "quota", "bob@new.test", "1K"}, out: `bob@new.test`,
			check: func(t *testing.T, _ string) {
				err := send("bob@new.test", strings.Repeat("0123456789 0123456789 0123456789 0123456789\r\n", 100))
				var se *smtp.SMTPError
				if !errors.As(err, &se) || (se.Code != 452 && se.Code != 552) {
					t.Fatalf("mail over the new quota: %v", err)
				}
			}},

		{args: []string{"forward", "set", "info@example.com", "friend@remote.test", "--keep-copy"}, out: `friend@remote.test`,
			check: func(t *testing.T, _ string) {
				if err := send("info@child.example.com", "to be forwarded"); err != nil {
					t.Fatal(err)
				}
				select {
				case m := <-sink.Got:
					if strings.Join(m.To, ",") != "friend@remote.test" || !bytes.Contains(m.Data, []byte("to be forwarded")) {
						t.Fatalf("relayed %v:\n%s", m.To, m.Data)
					}
				case <-time.After(20 * time.Second):
					t.Fatalf("the forwarded copy never reached the smart host:\n%s", srv.log.String())
				}
				if n := inboxCount(t, "info@example.com"); n != 1 {
					t.Fatalf("info's INBOX has %d messages, want the kept copy", n)
				}
			}},
		{args: []string{"forward", "show", "info@example.com"}, out: `forwards to 1 address`},
		{args: []string{"forward", "clear", "info@example.com"},
			check: func(t *testing.T, _ string) {
				if out := mustCLI(t, "", append([]string{"forward", "show", "info@example.com"}, flags...)...); !strings.Contains(out, "does not forward") {
					t.Fatalf("forward show after clear: %s", out)
				}
			}},

		{args: []string{"status"}, out: `(?m)^Server: +running \(pid \d+\)`,
			check: func(t *testing.T, out string) {
				// listen.metrics is off by default: no metrics listener.
				if strings.Contains(out, "metrics") {
					t.Fatalf("a metrics listener without listen.metrics:\n%s", out)
				}
			}},
		{args: []string{"queue", "list"}, out: `queue is empty`,
			check: func(t *testing.T, _ string) {
				// Refused by the smart host: the entry waits in the queue.
				refuse.Store(true)
				submit(t, "later@remote.test")
				srv.log.WaitFor(t, "outcome=deferred", 20*time.Second)
				ids := queued(t)
				if len(ids) != 1 {
					t.Fatalf("queue %v", ids)
				}
				vars["ID"] = ids[0]
			}},
		{args: []string{"queue", "show", "$ID"}, out: `(?s)later@remote.test.*451.*Subject: queued`},
		{args: []string{"queue", "retry", "$ID"}, out: `^1 queue entry will be retried now.\n$`,
			before: func(*testing.T) { refuse.Store(false) },
			check: func(t *testing.T, _ string) {
				select {
				case m := <-sink.Got:
					if strings.Join(m.To, ",") != "later@remote.test" {
						t.Fatalf("relayed to %v", m.To)
					}
				case <-time.After(20 * time.Second):
					t.Fatalf("not relayed after queue retry:\n%s", srv.log.String())
				}
				srv.log.WaitFor(t, "to=later@remote.test host=127.0.0.1 tls=true outcome=sent", 20*time.Second)
				if ids := queued(t); len(ids) != 0 {
					t.Fatalf("still queued: %v", ids)
				}
			}},
		{args: []string{"queue", "drop", "$ID"}, out: `^1 queue entry dropped.\n$`,
			before: func(t *testing.T) {
				refuse.Store(true)
				submit(t, "dropped@remote.test")
				ids := queued(t) // queued before the 250
				if len(ids) != 1 {
					t.Fatalf("queue %v", ids)
				}
				vars["ID"] = ids[0]
			},
			check: func(t *testing.T, _ string) {
				if ids := queued(t); len(ids) != 0 {
					t.Fatalf("still queued: %v", ids)
				}
			}},
		{args: []string{"queue", "drop", "$ID"}, code: 1, out: `^yubin: queue entry \S+: no such message\n$`},
		{args: []string{"queue", "retry"}, code: 1, out: `^yubin: give queue ids, or --all\n$`},

		{args: []string{"dns", "records", "example.com"}, out: `(?m)^_dmarc\.example\.com\.\s`,
			check: func(t *testing.T, out string) {
				zones, err := dnstest.Parse(strings.NewReader(out), "")
				if err != nil {
					t.Fatalf("not a zone file: %v\n%s", err, out)
				}
				// The host's A record is printed as a comment (no dns.ipv4 in
				// this config): published, any address will do.
				h := zones["mx.example.com."]
				h.A = []string{"192.0.2.25"}
				zones["mx.example.com."] = h
				vars["DNS"] = dnstest.NewServer(outer, zones).Addr()
			}},
		{args: []string{"dns", "check", "example.com", "--resolver", "$DNS"}, out: `All \d+ records are published`},
		{args: []string{"dns", "check", "example.com", "--resolver", "$EMPTYDNS"}, code: 1, out: `need attention: \d+ missing, 0 different, 0 not looked up`},

		// quickstart for a new domain goes through the socket as well.
		{args: []string{"quickstart", "boss@qs.test"}, out: `(?s)domain\s+qs.test\s+added.*account\s+boss@qs.test\s+added`,
			check: func(t *testing.T, out string) {
				pw := regexp.MustCompile(`(?m)^    (\S+)$`).FindStringSubmatch(out)
				if pw == nil {
					t.Fatalf("no password printed:\n%s", out)
				}
				if err := login("boss@qs.test", pw[1]); err != nil {
					t.Fatalf("the quickstart account cannot log in: %v", err)
				}
			}},

		// service install is for a machine, not a running server; here it
		// refuses whatever TMPDIR is, touching nothing: the data dir is
		// under /tmp (hidden from the service by PrivateTmp), or --root
		// does not exist (TestServiceInstall installs into a root dir).
		{args: []string{"service", "install", "--root", "/nonexistent-yubin-root"}, code: 1,
			out: `^yubin: service install: (--config \S+: the service does not see /tmp|--root /nonexistent-yubin-root: not a directory)`},

		// import goes through the socket too (e2e/import_test.go has more).
		{args: []string{"import", "info@example.com", "../internal/mailimport/testdata/inbox.mbox", "--into", "Old"},
			out: `(?s)Old: 3 imported \(of 3\)\nmade the mailbox Old\nimported 3 messages \(541 B\) into info@example.com\n$`,
			check: func(t *testing.T, _ string) {
				if c := mailboxCounts(t, flags, "info@example.com"); c["Old"] != 3 {
					t.Fatalf("mailboxes after the import: %v", c)
				}
			}},

		{args: []string{"account", "remove", "bob@new.test"},
			check: func(t *testing.T, _ string) {
				if err := login("bob@new.test", "bob-pw-2"); err == nil {
					t.Fatal("a removed account still logs in")
				}
			}},
		{args: []string{"domain", "remove", "new.test"}, code: 1, out: `child`},
		{args: []string{"domain", "remove", "sub.new.test"}},
		{args: []string{"domain", "remove", "new.test"},
			check: func(t *testing.T, _ string) {
				if strings.Contains(domains(t), "new.test") {
					t.Fatal("new.test still listed")
				}
			}},

		// A backup of the running server; restoring it over the server's
		// store is refused (TestBackupUnderLoad restores it).
		{args: []string{"backup", "$BACKUP"}, out: `^backup of \S+ written to \S+yubin.ybk: `,
			check: func(t *testing.T, _ string) {
				b, err := os.ReadFile(vars["BACKUP"])
				if err != nil || !bytes.HasPrefix(b, []byte("yubin-backup 1 {")) {
					t.Fatalf("the backup file: %v, %.40q", err, b)
				}
			}},
		{args: []string{"restore", "$BACKUP"}, code: 1, out: `^yubin: restore: \S+ already has a store \(\S+yubin.db\): restore only into a data dir without one`},
		// The store of a running server is not copied (TestPostgresNodes/store_copy copies one).
		{args: []string{"store", "copy", "--from", "$DATA", "--to", "postgres://127.0.0.1:1/none"}, code: 1, out: `^yubin: store copy: \S+: .*stop the server using it first`},

		// Usage errors: exit status 2, nothing done.
		{args: []string{"domain"}, code: 2, out: `usage: yubin domain`},
		{args: []string{"frobnicate"}, code: 2, out: `unknown command "frobnicate"`},
	}
	covered := map[string]bool{}
	for _, c := range cases {
		name := strings.Join(c.args, " ")
		covered[c.args[0]] = true
		if len(c.args) > 1 {
			covered[c.args[0]+" "+c.args[1]] = true
		}
		ok := t.Run(name, func(t *testing.T) {
			if c.before != nil {
				c.before(t)
			}
			args := make([]string, 0, len(c.args)+len(flags))
			for _, a := range c.args {
				if v, ok := strings.CutPrefix(a, "$"); ok {
					a = vars[v]
				}
				args = append(args, a)
			}
			out, errs, code := cli(t, c.stdin, append(args, flags...)...)
			if code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.code, out, errs)
			}
			if code == 1 && c.args[0] != "serve" && strings.Count(strings.TrimSuffix(errs, "\n"), "\n") > 0 {
				t.Errorf("a failure of more than one line:\n%s", errs)
			}
			if got := out + errs; !regexp.MustCompile(c.out).MatchString(got) {
				t.Fatalf("output does not match %s:\n%s", c.out, got)
			}
			if c.check != nil {
				c.check(t, out)
			}
		})
		if !ok {
			t.FailNow() // the cases build on each other
		}
	}
	sink.None()

	// Every command and subcommand "yubin help" lists was run.
	for _, line := range strings.Split(mustCLI(t, "", "help"), "\n") {
		f := strings.Fields(line)
		if !strings.HasPrefix(line, "  yubin ") || len(f) < 2 {
			continue
		}
		if !covered[f[1]] {
			t.Errorf("yubin %s is not tested while the server runs", f[1])
		}
		if len(f) > 2 && regexp.MustCompile(`^[a-z|]+$`).MatchString(f[2]) {
			for _, sub := range strings.Split(f[2], "|") {
				if !covered[f[1]+" "+sub] {
					t.Errorf("yubin %s %s is not tested while the server runs", f[1], sub)
				}
			}
		}
	}
	srv.stop(t)
}

// appendConfig adds text to the config file.
func appendConfig(t *testing.T, cfg, text string) {
	t.Helper()
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// sendMX sends a message from x@remote.test to rcpt on port 25 (addr).
func sendMX(addr, rcpt, body string) error {
	return sendMXRaw(addr, rcpt, fmt.Sprintf("From: x@remote.test\r\nTo: %s\r\nSubject: test\r\n\r\n%s\r\n", rcpt, body))
}

// sendMXRaw sends msg from x@remote.test to rcpt on port 25 (addr).
func sendMXRaw(addr, rcpt, msg string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SendMail("x@remote.test", []string{rcpt}, strings.NewReader(msg)); err != nil {
		return err
	}
	return c.Quit()
}

// scriptMail is HTML spam with a script, for the quarantine to show.
const scriptMail = "From: Mallory <x@remote.test>\r\nSubject: You won\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" +
	"<html><body onload=\"steal()\"><script>alert('gotcha')</script><p>Hello <b>world</b>!</p>" +
	"<a href=\"http://phish.test/\">claim it</a></body></html>\r\n"

// trainingSets writes a spam mbox (From_ lines, a quoted >From line), a
// Maildir of ham, 12 messages each, and a text file that is not mail.
func trainingSets(t *testing.T) (spamMbox, hamMaildir, notMail string) {
	dir := t.TempDir()
	var mbox strings.Builder
	for i := range 12 {
		fmt.Fprintf(&mbox, "From spammer%d@spam.test Mon Jan  1 00:00:00 2024\nFrom: Deals <deals%d@spam.test>\nSubject: cheap pills %d\n\nBuy cheap pills now, limited offer %d!\n>From our pharmacy with love\n\n", i, i, i, i)
	}
	spamMbox = filepath.Join(dir, "spam.mbox")
	hamMaildir = filepath.Join(dir, "Maildir")
	notMail = filepath.Join(dir, "notes.txt")
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(hamMaildir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{spamMbox: mbox.String(), notMail: "Dear diary,\ntoday I trained a spam filter.\n"}
	for i := range 12 {
		files[filepath.Join(hamMaildir, []string{"cur", "new"}[i%2], fmt.Sprintf("%d.host:2,S", i))] =
			fmt.Sprintf("From: Alice <alice@partner.test>\r\nSubject: minutes of meeting %d\r\n\r\nThe minutes of our project meeting %d are attached.\r\n", i, i)
	}
	for p, content := range files {
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return spamMbox, hamMaildir, notMail
}

// lastInbox returns the raw text of the newest message in user's INBOX,
// fetched over IMAPS (addr).
func lastInbox(t *testing.T, addr, user, pw string) string {
	t.Helper()
	ic, err := imapclient.DialTLS(addr, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	if err := ic.Login(user, pw).Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := ic.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := ic.Fetch(imap.SeqSetNum(sel.NumMessages), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 1 || len(msgs[0].BodySection) != 1 {
		t.Fatalf("fetching the newest message: %v, %+v", err, msgs)
	}
	return string(msgs[0].BodySection[0].Bytes)
}

// submitMail submits msg on the submission port (addr) with STARTTLS and
// AUTH PLAIN as user.
func submitMail(t *testing.T, addr, user, pw, rcpt, msg string) {
	t.Helper()
	c, err := smtp.DialStartTLS(addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", user, pw)); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail(user, []string{rcpt}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	c.Quit()
}

// imapLogin logs in over IMAPS (addr) and out again.
func imapLogin(addr, user, pw string) error {
	ic, err := imapclient.DialTLS(addr, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		return err
	}
	defer ic.Close()
	if err := ic.Login(user, pw).Wait(); err != nil {
		return err
	}
	return ic.Logout().Wait()
}
