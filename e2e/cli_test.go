package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
	vars := map[string]string{"EMPTYDNS": dnstest.NewServer(t, nil).Addr()}
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
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	msg := fmt.Sprintf("From: x@remote.test\r\nTo: %s\r\nSubject: test\r\n\r\n%s\r\n", rcpt, body)
	if err := c.SendMail("x@remote.test", []string{rcpt}, strings.NewReader(msg)); err != nil {
		return err
	}
	return c.Quit()
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
