package smtpd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	netsmtp "net/smtp"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"yubin/internal/auth"
	"yubin/internal/testutil"
)

var receivedRe = regexp.MustCompile(`^Received: from (\S+) \(\[([0-9a-f.:]+)\]\)\r\n\tby ` + regexp.QuoteMeta(testHost) +
	` with (ESMTPS?A?) id ([0-9A-Z]{16})(?:\r\n\tfor <([^>]+)>)?;\r\n\t(\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4})\r\n`)

// checkReceived checks the first header of msg is our Received header and
// returns its parts: helo, ip, protocol, queue id, for.
func checkReceived(t *testing.T, msg []byte) (helo, ip, proto, id, rcpt string) {
	t.Helper()
	m := receivedRe.FindSubmatch(msg)
	if m == nil {
		t.Fatalf("message does not start with a Received header:\n%.400s", msg)
	}
	if _, err := time.Parse(time.RFC1123Z, string(m[6])); err != nil {
		t.Errorf("Received date %q: %v", m[6], err)
	}
	return string(m[1]), string(m[2]), string(m[3]), string(m[4]), string(m[5])
}

func TestMXDeliversLocalMail(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := dialRaw(t, e.mx)
	ehlo := c.cmd("EHLO client.remote.test", 250, "")
	for _, want := range []string{"STARTTLS", "SIZE 52428800", "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"} {
		if !strings.Contains(ehlo, want) {
			t.Errorf("EHLO on port 25 lacks %q:\n%s", want, ehlo)
		}
	}
	if strings.Contains(ehlo, "AUTH") {
		t.Errorf("AUTH offered on port 25:\n%s", ehlo)
	}
	c.cmd("MAIL FROM:<sender@remote.test>", 250, "2.0.0")
	c.cmd("RCPT TO:<Info@Example.COM>", 250, "2.0.0")
	msg := testMessage("hello", "first line", ".a line starting with a dot", "last line")
	reply := c.data(msg, 250, "2.0.0")
	c.cmd("QUIT", 221, "2.0.0")

	got := e.inbox(userInfo)
	if len(got) != 1 {
		t.Fatalf("INBOX has %d messages, want 1", len(got))
	}
	helo, ip, proto, id, rcpt := checkReceived(t, got[0])
	if helo != "client.remote.test" || ip != "127.0.0.1" || proto != "ESMTP" || rcpt != "Info@Example.COM" {
		t.Errorf("Received: helo %q ip %q proto %q for %q", helo, ip, proto, rcpt)
	}
	if !strings.Contains(reply, id) {
		t.Errorf("250 reply %q does not name queue id %s", reply, id)
	}
	if body := got[0][bytes.Index(got[0], []byte("From: ")):]; string(body) != msg {
		t.Errorf("stored message differs:\n%q\nwant\n%q", body, msg)
	}
	e.verify()
}

func TestMXChildDomainLandsInParentAccount(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := dialRaw(t, e.mx)
	c.cmd("EHLO client.remote.test", 250, "")
	c.cmd("MAIL FROM:<sender@remote.test>", 250, "2.0.0")
	c.cmd("RCPT TO:<info@child.example.com>", 250, "2.0.0")
	msg := testMessage("to the child domain", "body for child")
	c.data(msg, 250, "2.0.0")

	got := e.inbox(userInfo)
	if len(got) != 1 {
		t.Fatalf("info@example.com INBOX has %d messages, want 1", len(got))
	}
	_, _, _, _, rcpt := checkReceived(t, got[0])
	if rcpt != "info@child.example.com" {
		t.Errorf("Received for <%s>, want <info@child.example.com>", rcpt)
	}
	if !bytes.HasSuffix(got[0], []byte(msg)) {
		t.Errorf("stored body differs: %q", got[0])
	}

	// Two addresses of one account in one transaction: one copy.
	c.cmd("MAIL FROM:<sender@remote.test>", 250, "2.0.0")
	c.cmd("RCPT TO:<info@example.com>", 250, "2.0.0")
	c.cmd("RCPT TO:<info@sales.example.com>", 250, "2.0.0")
	c.cmd("RCPT TO:<bob@example.com>", 250, "2.0.0")
	c.data(testMessage("two addresses"), 250, "2.0.0")
	if n := len(e.inbox(userInfo)); n != 2 {
		t.Errorf("info has %d messages, want 2", n)
	}
	bob := e.inbox(userBob)
	if len(bob) != 1 {
		t.Fatalf("bob has %d messages, want 1", len(bob))
	}
	if _, _, _, _, rcpt := checkReceived(t, bob[0]); rcpt != "" {
		t.Errorf("Received names a recipient (%q) for a message with several", rcpt)
	}
	e.verify()
}

func TestMXNullSender(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := dialRaw(t, e.mx)
	c.cmd("HELO client.remote.test", 250, "")
	c.cmd("MAIL FROM:<>", 250, "2.0.0")
	c.cmd("RCPT TO:<bob@example.com>", 250, "2.0.0")
	c.data("Subject: bounce\r\n\r\nundeliverable\r\n", 250, "2.0.0")
	if n := len(e.inbox(userBob)); n != 1 {
		t.Fatalf("bob has %d messages, want 1", n)
	}
	// A sender that is not a plain address is refused on port 25 too.
	c.cmd("MAIL FROM:<user%other@remote.test>", 553, "5.1.7")
}

// Envelope addresses with local parts over RFC 5321's 64 octets, as list
// mail (VERP), BATV and SRS senders have them, are taken up to
// address.MaxLocalPart; longer ones get "501 Path too long" and the
// session goes on.
func TestLongAddresses(t *testing.T) {
	e := newEnv(t, envOptions{})
	verp := "debian-user-bounces+" + strings.Repeat("v", 118) + "=example.org" // 150 octets
	if len(verp) != 150 {
		t.Fatalf("VERP local part has %d octets", len(verp))
	}
	c := dialRaw(t, e.mx)
	c.cmd("EHLO lists.example.net", 250, "")
	c.cmd("MAIL FROM:<"+verp+"@lists.example.net> SIZE=100", 250, "2.0.0")
	c.cmd("RCPT TO:<bob@example.com>", 250, "2.0.0")
	c.data(testMessage("list mail"), 250, "2.0.0")
	if got := e.inbox(userBob); len(got) != 1 || !bytes.Contains(got[0], []byte("Subject: list mail\r\n")) {
		t.Fatalf("bob has %d messages, want the list mail", len(got))
	}

	// The limits: 256 octets before the @ (253 after it, as in DNS).
	c.cmd("MAIL FROM:<"+strings.Repeat("s", 256)+"@remote.test>", 250, "2.0.0")
	c.cmd("RSET", 250, "2.0.0")
	c.cmd("MAIL FROM:<"+strings.Repeat("s", 257)+"@remote.test>", 501, "5.1.7")
	c.cmd("MAIL FROM:<"+strings.Repeat("s", 1500)+"@remote.test>", 501, "5.1.7")
	c.cmd("MAIL FROM:<"+strings.Repeat("s", 100000)+"@remote.test>", 501, "5.1.7") // within a command line (Serve)
	c.cmd("MAIL FROM:<s@"+strings.Repeat("d.", 127)+"test>", 501, "5.1.7")         // 258-octet domain
	c.cmd("MAIL FROM:<s%x@remote.test>", 553, "5.1.7")                             // syntax, not length
	c.cmd("MAIL FROM:<"+verp+"@lists.example.net>", 250, "2.0.0")
	// A long local part at our domain is no account (accounts keep the
	// RFC's 64 octets), one at another domain is relaying, one over the
	// limit is too long; none ends the transaction.
	c.cmd("RCPT TO:<"+verp+"@example.com>", 550, "5.1.1")
	c.cmd("RCPT TO:<"+verp+"@remote.test>", 550, "5.7.1")
	c.cmd("RCPT TO:<"+strings.Repeat("r", 257)+"@example.com>", 501, "5.1.3")
	c.cmd("RCPT TO:<info@example.com>", 250, "2.0.0")
	c.data(testMessage("after the refusals"), 250, "2.0.0")
	if got := e.inbox(userInfo); len(got) != 1 {
		t.Fatalf("info has %d messages, want 1", len(got))
	}

	// Submission: an admin may send as any name at the domain, a long
	// one too; past the limit it is 501 there as well.
	s := loginSubmission(t, e, userAdmin)
	s.cmd("MAIL FROM:<"+verp+"@example.com>", 250, "2.0.0")
	s.cmd("RSET", 250, "2.0.0")
	s.cmd("MAIL FROM:<"+strings.Repeat("s", 257)+"@example.com>", 501, "5.1.7")
	s.cmd("MAIL FROM:<admin@example.com>", 250, "2.0.0")

	// HELO: a domain name or address literal, at most 255 octets.
	h := dialRaw(t, e.mx)
	h.cmd("EHLO "+strings.Repeat("h", 256), 501, "5.5.2")
	h.cmd("EHLO "+strings.Repeat("h", 250)+".test", 250, "")
	h.cmd("MAIL FROM:<a@remote.test>", 250, "2.0.0")
	e.verify()
}

// TestRelayTricks runs every case in testdata/relay-tricks.txt.
func TestRelayTricks(t *testing.T) {
	data, err := os.ReadFile("testdata/relay-tricks.txt")
	if err != nil {
		t.Fatal(err)
	}
	type tc struct {
		path string
		code int
		enh  string
		line int
	}
	var cases []tc
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			t.Fatalf("relay-tricks.txt:%d: want ADDRESS CODE ENHANCED", i+1)
		}
		var code int
		fmt.Sscan(f[len(f)-2], &code)
		path := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(strings.TrimSuffix(line, f[len(f)-1])), f[len(f)-2]))
		cases = append(cases, tc{path, code, f[len(f)-1], i + 1})
	}
	if len(cases) < 20 {
		t.Fatalf("only %d cases read", len(cases))
	}
	e := newEnv(t, envOptions{})
	usedBefore := map[string]int64{}
	for _, a := range []string{userInfo, userBob, userAdmin, userCarol} {
		usedBefore[a] = e.used(a)
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			cl := dialRaw(t, e.mx)
			cl.cmd("EHLO client.remote.test", 250, "")
			cl.cmd("MAIL FROM:<sender@remote.test>", 250, "2.0.0")
			cl.T = t
			cl.cmd("RCPT TO:"+c.path, c.code, c.enh)
			cl.cmd("RSET", 250, "2.0.0") // nothing is delivered
			cl.cmd("QUIT", 221, "2.0.0")
		})
	}
	for a, u := range usedBefore {
		if got := e.used(a); got != u {
			t.Errorf("%s: used %d, want %d (something was stored)", a, got, u)
		}
	}
	e.verify()
}

func TestRefusedRecipientNotStored(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := dialRaw(t, e.mx)
	c.cmd("EHLO client.remote.test", 250, "")
	c.cmd("MAIL FROM:<sender@remote.test>", 250, "2.0.0")
	c.cmd("RCPT TO:<user%remote.test@example.com>", 550, "5.7.1")
	c.cmd("RCPT TO:<nobody@example.com>", 550, "5.1.1")
	c.cmd("DATA", 502, "5.5.1") // no valid recipient
	if e.used(userInfo) != 0 || len(e.inbox(userInfo)) != 0 {
		t.Fatal("something was stored")
	}
	e.verify()
}

func TestSubmissionSTARTTLSAuthPlain(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := dialRaw(t, e.sub)
	ehlo := c.cmd("EHLO laptop", 250, "")
	if !strings.Contains(ehlo, "STARTTLS") || strings.Contains(ehlo, "AUTH") {
		t.Errorf("EHLO before TLS on 587 should offer STARTTLS and no AUTH:\n%s", ehlo)
	}
	c.cmd("AUTH PLAIN "+plainIR(userInfo, testPassword), 523, "5.7.10")
	c.cmd("MAIL FROM:<info@example.com>", 530, "5.7.0")
	c.startTLS(e.client)
	ehlo = c.cmd("EHLO laptop", 250, "")
	if !strings.Contains(ehlo, "AUTH PLAIN LOGIN") || strings.Contains(ehlo, "STARTTLS") {
		t.Errorf("EHLO after TLS on 587 should offer AUTH PLAIN LOGIN and no STARTTLS:\n%s", ehlo)
	}
	c.cmd("MAIL FROM:<info@example.com>", 530, "5.7.0")
	c.cmd("AUTH PLAIN "+plainIR(userInfo, "wrong"), 535, "5.7.8")
	c.cmd("AUTH PLAIN "+plainIR(userInfo, testPassword), 235, "2.0.0")
	c.cmd("MAIL FROM:<info@example.com>", 250, "2.0.0")
	c.cmd("RCPT TO:<bob@example.com>", 250, "2.0.0")
	c.data(testMessage("submitted"), 250, "2.0.0")
	got := e.inbox(userBob)
	if len(got) != 1 {
		t.Fatalf("bob has %d messages", len(got))
	}
	if _, _, proto, _, _ := checkReceived(t, got[0]); proto != "ESMTPSA" {
		t.Errorf("protocol %s, want ESMTPSA", proto)
	}

	// The same with Go's net/smtp client.
	nc, err := netsmtp.Dial(e.sub)
	testutil.Must(t, err)
	defer nc.Close()
	testutil.Must(t, nc.Hello("laptop"))
	testutil.Must(t, nc.StartTLS(e.client))
	testutil.Must(t, nc.Auth(netsmtp.PlainAuth("", "Info@Example.com", testPassword, "127.0.0.1")))
	testutil.Must(t, nc.Mail("info@example.com"))
	testutil.Must(t, nc.Rcpt("bob@child.example.com"))
	w, err := nc.Data()
	testutil.Must(t, err)
	fmt.Fprint(w, testMessage("via net/smtp"))
	testutil.Must(t, w.Close())
	testutil.Must(t, nc.Quit())
	if n := len(e.inbox(userBob)); n != 2 {
		t.Fatalf("bob has %d messages, want 2", n)
	}
}

func plainIR(user, pass string) string {
	return b64("\x00" + user + "\x00" + pass)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestSubmissionAuthLogin(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, err := smtp.DialStartTLS(e.sub, e.client)
	testutil.Must(t, err)
	defer c.Close()
	testutil.Must(t, c.Auth(sasl.NewLoginClient(userBob, testPassword)))
	testutil.Must(t, c.SendMail(userBob, []string{userInfo}, strings.NewReader(testMessage("login"))))
	if n := len(e.inbox(userInfo)); n != 1 {
		t.Fatalf("info has %d messages", n)
	}

	// LOGIN step by step, without an initial response, and a bad password.
	r := dialRaw(t, e.sub)
	r.cmd("EHLO laptop", 250, "")
	r.startTLS(e.client)
	r.cmd("EHLO laptop", 250, "")
	if got := r.cmd("AUTH LOGIN", 334, ""); got != b64("Username:") {
		t.Errorf("first LOGIN challenge %q", got)
	}
	if got := r.cmd(b64(userBob), 334, ""); got != b64("Password:") {
		t.Errorf("second LOGIN challenge %q", got)
	}
	r.cmd(b64("nope"), 535, "5.7.8")
	r.cmd("AUTH LOGIN "+b64(userBob), 334, "")
	r.cmd(b64(testPassword), 235, "2.0.0")
	r.cmd("AUTH LOGIN", 503, "5.5.1")
	r.cmd("AUTH CRAM-MD5", 503, "5.5.1")
}

func TestSubmissionsImplicitTLS(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, err := smtp.DialTLS(e.subs, e.client)
	testutil.Must(t, err)
	defer c.Close()
	testutil.Must(t, c.Hello("laptop"))
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS offered on implicit TLS")
	}
	if !c.SupportsAuth("PLAIN") || !c.SupportsAuth("LOGIN") {
		t.Error("AUTH PLAIN/LOGIN not offered on 465")
	}
	smtpCode(t, c.Mail(userAdmin, nil), 530, smtp.EnhancedCode{5, 7, 0})
	testutil.Must(t, c.Auth(sasl.NewPlainClient("", userAdmin, testPassword)))
	testutil.Must(t, c.SendMail("whoever@sales.example.com", []string{"carol@other.test"}, strings.NewReader(testMessage("implicit tls"))))
	got := e.inbox(userCarol)
	if len(got) != 1 {
		t.Fatalf("carol has %d messages", len(got))
	}
	if _, _, proto, _, rcpt := checkReceived(t, got[0]); proto != "ESMTPSA" || rcpt != "carol@other.test" {
		t.Errorf("Received: proto %s for %s", proto, rcpt)
	}
	// A plain-text client on 465 gets nowhere.
	conn, err := net.Dial("tcp", e.subs)
	testutil.Must(t, err)
	defer conn.Close()
	fmt.Fprintf(conn, "EHLO plain\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(conn).ReadString('\n')
	if strings.HasPrefix(line, "2") {
		t.Errorf("plain text on 465 answered %q", line)
	}
}

func TestSubmissionSenderRules(t *testing.T) {
	e := newEnv(t, envOptions{})
	login := func(user string) *rawClient {
		c := dialRawTLS(t, e.subs, e.client)
		c.cmd("EHLO laptop", 250, "")
		c.cmd("AUTH PLAIN "+plainIR(user, testPassword), 235, "2.0.0")
		return c
	}
	cases := []struct {
		user, from string
		ok         bool
	}{
		{userInfo, "info@example.com", true},
		{userInfo, "INFO@Example.Com", true},
		{userInfo, "info@child.example.com", true},
		{userInfo, "info@sales.example.com", true},
		{userInfo, "bob@example.com", false},
		{userInfo, "admin@example.com", false},
		{userInfo, "info@other.test", false},
		{userInfo, "info@remote.test", false},
		{userInfo, "info@sub.child.example.com", false},
		{userInfo, "info%remote.test@example.com", false},
		{userInfo, "", false},
		{userAdmin, "admin@example.com", true},
		{userAdmin, "anyone@example.com", true},
		{userAdmin, "info@child.example.com", true},
		{userAdmin, "noreply@sales.example.com", true},
		{userAdmin, "admin@other.test", false},
		{userAdmin, "carol@other.test", false},
		{userAdmin, "admin@remote.test", false},
		{userAdmin, "", false},
		{userCarol, "carol@other.test", true},
		{userCarol, "carol@example.com", false},
	}
	clients := map[string]*rawClient{}
	for _, tc := range cases {
		c := clients[tc.user]
		if c == nil {
			c = login(tc.user)
			clients[tc.user] = c
		}
		c.T = t
		if tc.ok {
			c.cmd("MAIL FROM:<"+tc.from+">", 250, "2.0.0")
			c.cmd("RSET", 250, "2.0.0")
		} else {
			c.cmd("MAIL FROM:<"+tc.from+">", 553, "5.7.1")
		}
	}
}

func TestSubmissionRemoteRecipientRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := dialRawTLS(t, e.subs, e.client)
	c.cmd("EHLO laptop", 250, "")
	c.cmd("AUTH PLAIN "+plainIR(userInfo, testPassword), 235, "2.0.0")
	c.cmd("MAIL FROM:<info@example.com>", 250, "2.0.0")
	text := c.cmd("RCPT TO:<friend@remote.test>", 550, "5.7.1")
	if !strings.Contains(text, "outbound delivery is not enabled") {
		t.Errorf("reply %q does not say outbound delivery is not enabled", text)
	}
	c.cmd("RCPT TO:<nobody@example.com>", 550, "5.1.1")
	c.cmd("RCPT TO:<bob@example.com>", 250, "2.0.0")
	c.data(testMessage("local only"), 250, "2.0.0")
	if len(e.inbox(userBob)) != 1 {
		t.Fatal("local recipient did not get the message")
	}
}

func TestAuthLockout(t *testing.T) {
	e := newEnv(t, envOptions{policy: auth.Policy{MaxFailures: 3}})
	c := dialRawTLS(t, e.subs, e.client)
	c.cmd("EHLO laptop", 250, "")
	for range 3 {
		c.cmd("AUTH PLAIN "+plainIR(userInfo, "guess"), 535, "5.7.8")
	}
	text := c.cmd("AUTH PLAIN "+plainIR(userInfo, testPassword), 454, "4.7.0")
	if !strings.Contains(text, "Too many failed logins") {
		t.Errorf("lockout reply %q", text)
	}
	// A new connection from the same address is refused as well.
	c2 := dialRawTLS(t, e.subs, e.client)
	c2.cmd("EHLO laptop", 250, "")
	c2.cmd("AUTH PLAIN "+plainIR(userInfo, testPassword), 454, "4.7.0")
}

func TestAuthOnPort25(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := dialRaw(t, e.mx)
	c.cmd("EHLO client", 250, "")
	c.cmd("AUTH PLAIN "+plainIR(userInfo, testPassword), 523, "5.7.10")
	c.startTLS(e.client)
	if ehlo := c.cmd("EHLO client", 250, ""); strings.Contains(ehlo, "AUTH") {
		t.Errorf("AUTH offered on port 25 after TLS:\n%s", ehlo)
	}
	c.cmd("AUTH PLAIN "+plainIR(userInfo, testPassword), 502, "5.5.1")
	// Mail over STARTTLS on 25 is ESMTPS.
	c.cmd("MAIL FROM:<a@remote.test>", 250, "2.0.0")
	c.cmd("RCPT TO:<bob@example.com>", 250, "2.0.0")
	c.data(testMessage("tls on 25"), 250, "2.0.0")
	if _, _, proto, _, _ := checkReceived(t, e.inbox(userBob)[0]); proto != "ESMTPS" {
		t.Errorf("protocol %s, want ESMTPS", proto)
	}
}

func TestAllowInsecureAuth(t *testing.T) {
	e := newEnv(t, envOptions{cfg: Config{AllowInsecureAuth: true}})
	c := dialRaw(t, e.sub)
	if ehlo := c.cmd("EHLO laptop", 250, ""); !strings.Contains(ehlo, "AUTH PLAIN LOGIN") {
		t.Errorf("AUTH not offered with AllowInsecureAuth:\n%s", ehlo)
	}
	c.cmd("AUTH PLAIN "+plainIR(userInfo, testPassword), 235, "2.0.0")
	c.cmd("MAIL FROM:<info@example.com>", 250, "2.0.0")
	c.cmd("RCPT TO:<bob@example.com>", 250, "2.0.0")
	c.data(testMessage("insecure"), 250, "2.0.0")
	if _, _, proto, _, _ := checkReceived(t, e.inbox(userBob)[0]); proto != "ESMTPA" {
		t.Errorf("protocol %s, want ESMTPA", proto)
	}
}

func TestMessageSizeLimit(t *testing.T) {
	const max = 10 << 10
	e := newEnv(t, envOptions{cfg: Config{MaxMessageSize: max}})
	c := dialRaw(t, e.mx)
	if ehlo := c.cmd("EHLO client", 250, ""); !strings.Contains(ehlo, fmt.Sprintf("SIZE %d", max)) {
		t.Errorf("SIZE %d not advertised:\n%s", max, ehlo)
	}
	c.cmd(fmt.Sprintf("MAIL FROM:<a@remote.test> SIZE=%d", max+1), 552, "5.3.4")
	c.cmd(fmt.Sprintf("MAIL FROM:<a@remote.test> SIZE=%d", max/2), 250, "2.0.0")
	c.cmd("RCPT TO:<bob@example.com>", 250, "2.0.0")
	big := testMessage("too big", strings.Repeat(strings.Repeat("x", 99)+"\r\n", max/100+10))
	c.data(big, 552, "5.3.4")
	// The connection is still usable and a message under the limit passes.
	c.cmd("MAIL FROM:<a@remote.test>", 250, "2.0.0")
	c.cmd("RCPT TO:<bob@example.com>", 250, "2.0.0")
	c.data(testMessage("small", strings.Repeat("y", 500)), 250, "2.0.0")
	if n := len(e.inbox(userBob)); n != 1 {
		t.Fatalf("bob has %d messages, want 1", n)
	}
	e.verify()
}

func TestQuota(t *testing.T) {
	e := newEnv(t, envOptions{})
	testutil.Must(t, e.store.SetQuota(t.Context(), userInfo, 4000))
	c := dialRaw(t, e.mx)
	c.cmd("EHLO client", 250, "")

	// Declared size that would not fit: 452 4.2.2 at RCPT.
	c.cmd("MAIL FROM:<a@remote.test> SIZE=5000", 250, "2.0.0")
	c.cmd("RCPT TO:<info@example.com>", 452, "4.2.2")
	c.cmd("RSET", 250, "2.0.0")

	// A message that does not fit: 552 5.2.2 at the end of DATA.
	c.cmd("MAIL FROM:<a@remote.test>", 250, "2.0.0")
	c.cmd("RCPT TO:<info@example.com>", 250, "2.0.0")
	c.cmd("RCPT TO:<bob@example.com>", 250, "2.0.0")
	c.data(testMessage("too big for quota", manyLines(45, 99)...), 552, "5.2.2")
	if e.used(userInfo) != 0 || e.used(userBob) != 0 {
		t.Fatal("a refused message was stored (all-or-nothing broken)")
	}

	// One that fits, then the account is full: 452 4.2.2 at RCPT.
	c.cmd("MAIL FROM:<a@remote.test>", 250, "2.0.0")
	c.cmd("RCPT TO:<info@example.com>", 250, "2.0.0")
	c.data(testMessage("fits", manyLines(30, 99)...), 250, "2.0.0")
	used := e.used(userInfo)
	if used == 0 {
		t.Fatal("nothing stored")
	}
	testutil.Must(t, e.store.SetQuota(t.Context(), userInfo, used))
	c.cmd("MAIL FROM:<a@remote.test>", 250, "2.0.0")
	text := c.cmd("RCPT TO:<info@child.example.com>", 452, "4.2.2")
	if !strings.Contains(text, "Mailbox full") {
		t.Errorf("reply %q", text)
	}
	c.cmd("RCPT TO:<bob@example.com>", 250, "2.0.0")
	if got := e.used(userInfo); got != used {
		t.Errorf("used %d, want %d", got, used)
	}
	e.verify()
}

func TestMaxRecipients(t *testing.T) {
	e := newEnv(t, envOptions{cfg: Config{MaxRecipients: 3}})
	c := dialRaw(t, e.mx)
	if ehlo := c.cmd("EHLO client", 250, ""); !strings.Contains(ehlo, "RCPTMAX=3") {
		t.Errorf("LIMITS RCPTMAX not advertised:\n%s", ehlo)
	}
	c.cmd("MAIL FROM:<a@remote.test>", 250, "2.0.0")
	c.cmd("RCPT TO:<info@example.com>", 250, "2.0.0")
	c.cmd("RCPT TO:<bob@example.com>", 250, "2.0.0")
	c.cmd("RCPT TO:<admin@example.com>", 250, "2.0.0")
	c.cmd("RCPT TO:<carol@other.test>", 452, "4.5.3")
	c.data(testMessage("three"), 250, "2.0.0")
	if len(e.inbox(userCarol)) != 0 || len(e.inbox(userAdmin)) != 1 {
		t.Error("wrong recipients got the message")
	}
}

// Lines of a message up to MaxLineLength (64 KiB, CRLF included) are
// taken and stored as they came; a longer one gets 554 5.6.0 after the
// data, nothing is stored, and the session goes on — for lines up to
// lineSlack longer. Past that, go-smtp's own line limit, which is also the
// limit on a command line, closes the connection.
func TestLineLength(t *testing.T) {
	const max = DefaultMaxLineLength
	e := newEnv(t, envOptions{})
	c := dialRaw(t, e.mx)
	c.cmd("EHLO client", 250, "")
	transaction := func(rcpt string) {
		t.Helper()
		c.cmd("MAIL FROM:<a@remote.test>", 250, "2.0.0")
		c.cmd("RCPT TO:<"+rcpt+">", 250, "2.0.0")
	}

	// A 10 KB line and one of exactly max bytes: stored byte for byte,
	// after the Received field.
	msg := "Subject: long lines\r\n\r\n" + strings.Repeat("a", 10000) + "\r\n" + strings.Repeat("b", max-2) + "\r\nend\r\n"
	transaction(userBob)
	c.data(msg, 250, "2.0.0")
	got := e.inbox(userBob)
	if len(got) != 1 {
		t.Fatalf("bob has %d messages, want 1", len(got))
	}
	received, rest, _ := strings.Cut(string(got[0]), "Subject: long lines")
	if "Subject: long lines"+rest != msg {
		t.Errorf("stored message differs from what was sent (%d bytes, sent %d)", len(rest)+19, len(msg))
	}
	if !strings.HasPrefix(received, "Received: ") || strings.Contains(received, "\r\n\r\n") ||
		len(strings.Split(received, "\r\n\t")) != 4 {
		t.Errorf("stored before the message: %q, want the Received field only", received)
	}

	// One byte more: refused, and the next transaction on the connection
	// goes through. So does one after a line 60 KiB too long.
	for _, n := range []int{max + 1, max + 60<<10} {
		transaction(userInfo)
		text := c.data("Subject: too long\r\n\r\n"+strings.Repeat("c", n-2)+"\r\n", 554, "5.6.0")
		if !strings.Contains(text, fmt.Sprintf("longer than %d bytes", max)) {
			t.Errorf("reply %q does not give the limit", text)
		}
		transaction(userInfo)
		c.data(testMessage(fmt.Sprintf("after %d", n)), 250, "2.0.0")
	}
	if got := e.inbox(userInfo); len(got) != 2 || !bytes.Contains(got[0], []byte("Subject: after ")) {
		t.Fatalf("info has %d messages, want the 2 after the refusals", len(got))
	}

	// The same with BDAT: a long line in the second chunk.
	transaction(userInfo)
	chunk := "Subject: chunks\r\n\r\n" + strings.Repeat("d", 100)
	c.Send(fmt.Sprintf("BDAT %d\r\n%s", len(chunk), chunk))
	c.expect(250, "2.0.0")
	chunk = strings.Repeat("d", max) + "\r\n"
	c.Send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(chunk), chunk))
	c.expect(554, "5.6.0")
	transaction(userInfo)
	chunk = testMessage("bdat after")
	c.Send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(chunk), chunk))
	c.expect(250, "2.0.0")

	// Past max+lineSlack: the reply, then go-smtp closes the connection.
	transaction(userInfo)
	c.cmd("DATA", 354, "")
	c.Send("Subject: far too long\r\n\r\n" + strings.Repeat("e", max+lineSlack+1000) + "\r\n.\r\n")
	c.expect(554, "5.6.0")
	c.expect(500, "5.4.0")
	if !c.closed() {
		t.Error("connection open after a line over go-smtp's limit")
	}
	if got := e.inbox(userInfo); len(got) != 3 {
		t.Errorf("info has %d messages, want 3", len(got))
	}

	// Command lines: the same limit.
	c = dialRaw(t, e.mx)
	c.cmd("EHLO client", 250, "")
	c.cmd("NOOP "+strings.Repeat("x", 10000), 250, "")
	c.Send("NOOP " + strings.Repeat("x", max+lineSlack) + "\r\n")
	c.expect(500, "5.4.0")
	if !c.closed() {
		t.Error("connection open after an over-long command line")
	}
	e.verify()
}

// With the smallest limit (RFC 5321's 1000 bytes), a line a little over it
// is refused and the session goes on too: the limit is checked per read of
// DATA, well within lineSlack.
func TestLineLengthSmallest(t *testing.T) {
	e := newEnv(t, envOptions{cfg: Config{MaxLineLength: 1000}})
	c := dialRaw(t, e.mx)
	c.cmd("EHLO client", 250, "")
	for _, n := range []int{998, 1001, 40 << 10} {
		c.cmd("MAIL FROM:<a@remote.test>", 250, "2.0.0")
		c.cmd("RCPT TO:<bob@example.com>", 250, "2.0.0")
		if n <= 1000 {
			c.data("Subject: fits\r\n\r\n"+strings.Repeat("f", n-2)+"\r\n", 250, "2.0.0")
			continue
		}
		c.data("Subject: long\r\n\r\n"+strings.Repeat("g", n-2)+"\r\n", 554, "5.6.0")
	}
	c.cmd("MAIL FROM:<a@remote.test>", 250, "2.0.0")
	c.cmd("RCPT TO:<bob@example.com>", 250, "2.0.0")
	c.data(testMessage("still here"), 250, "2.0.0")
	if got := e.inbox(userBob); len(got) != 2 {
		t.Errorf("bob has %d messages, want 2", len(got))
	}
	e.verify()
}

func TestBareLFNormalised(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := dialRaw(t, e.mx)
	c.cmd("EHLO client", 250, "")
	c.cmd("MAIL FROM:<a@remote.test>", 250, "2.0.0")
	c.cmd("RCPT TO:<bob@example.com>", 250, "2.0.0")
	c.cmd("DATA", 354, "")
	// Bare LFs, a CRLF line, and a bare "\n.\n" that must not end the data.
	c.Send("Subject: lf\nX-Test: 1\r\n\nline one\nline two\n.\nstill data\r\n.\r\n")
	c.expect(250, "2.0.0")
	got := e.inbox(userBob)
	if len(got) != 1 {
		t.Fatalf("bob has %d messages", len(got))
	}
	want := "Subject: lf\r\nX-Test: 1\r\n\r\nline one\r\nline two\r\n.\r\nstill data\r\n"
	if !bytes.HasSuffix(got[0], []byte(want)) {
		t.Errorf("stored %q, want suffix %q", got[0], want)
	}
	if bytes.Count(got[0], []byte("\n")) != bytes.Count(got[0], []byte("\r\n")) {
		t.Error("a bare LF was stored")
	}
}

func TestStoreFailure451(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := dialRaw(t, e.mx)
	c.cmd("EHLO client", 250, "")
	c.cmd("MAIL FROM:<a@remote.test>", 250, "2.0.0")
	c.cmd("RCPT TO:<bob@example.com>", 250, "2.0.0")
	e.store.Close()
	c.data(testMessage("store gone"), 451, "4.3.0")
	c.cmd("MAIL FROM:<a@remote.test>", 250, "2.0.0")
	c.cmd("RCPT TO:<bob@example.com>", 451, "4.3.0")
}

func TestMaxConnections(t *testing.T) {
	e := newEnv(t, envOptions{cfg: Config{MaxConnections: 2}})
	a := dialRaw(t, e.mx)
	b := dialRaw(t, e.mx)
	// The third is turned away...
	conn, err := net.Dial("tcp", e.mx)
	testutil.Must(t, err)
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "421 4.7.0 ") {
		t.Fatalf("third connection got %q, %v; want 421 4.7.0", line, err)
	}
	// ... also over implicit TLS (limits are per listener: 465 has its own).
	s1 := dialRawTLS(t, e.subs, e.client)
	s2 := dialRawTLS(t, e.subs, e.client)
	tc, err := tls.Dial("tcp", e.subs, e.client)
	testutil.Must(t, err)
	defer tc.Close()
	tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err = bufio.NewReader(tc).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "421 4.7.0 ") {
		t.Fatalf("third TLS connection got %q, %v; want 421 4.7.0", line, err)
	}
	s1.cmd("QUIT", 221, "")
	s2.cmd("QUIT", 221, "")
	// When one leaves, a new one is let in.
	a.cmd("QUIT", 221, "2.0.0")
	a.closed()
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := net.Dial("tcp", e.mx)
		testutil.Must(t, err)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(conn).ReadString('\n')
		conn.Close()
		if strings.HasPrefix(line, "220 ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot freed: %q", line)
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.cmd("NOOP", 250, "2.0.0")
}

func TestIdleTimeout(t *testing.T) {
	e := newEnv(t, envOptions{cfg: Config{ReadTimeout: 200 * time.Millisecond}})
	c := dialRaw(t, e.mx)
	c.cmd("EHLO client", 250, "")
	c.expect(421, "4.4.2") // arrives once the 200 ms idle time has passed
	if !c.closed() {
		t.Error("idle connection not closed")
	}
}

func TestTooManyErrorsCloses(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := dialRaw(t, e.mx)
	c.cmd("EHLO client", 250, "")
	c.cmd("MAIL FROM:<a@remote.test>", 250, "2.0.0")
	for i := 1; i < maxHardErrors; i++ {
		c.cmd(fmt.Sprintf("RCPT TO:<guess%d@example.com>", i), 550, "5.1.1")
	}
	c.Send("RCPT TO:<guess-last@example.com>\r\n")
	c.expect(550, "5.1.1")
	c.expect(421, "4.7.0")
	if !c.closed() {
		t.Error("connection not closed after too many errors")
	}
}

func TestConcurrentSessions(t *testing.T) {
	e := newEnv(t, envOptions{})
	const clients, perClient = 16, 5
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *smtp.Client
			var err error
			if i%2 == 0 {
				c, err = smtp.Dial(e.mx)
			} else {
				c, err = smtp.DialTLS(e.subs, e.client)
				if err == nil {
					err = c.Auth(sasl.NewPlainClient("", userAdmin, testPassword))
				}
			}
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for j := range perClient {
				msg := testMessage(fmt.Sprintf("client %d message %d", i, j), strings.Repeat("body ", 200))
				if err := c.SendMail("admin@example.com", []string{userBob, "info@child.example.com"}, strings.NewReader(msg)); err != nil {
					errs <- err
					return
				}
			}
			errs <- c.Quit()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for _, a := range []string{userBob, userInfo} {
		if n := len(e.inbox(a)); n != clients*perClient {
			t.Errorf("%s has %d messages, want %d", a, n, clients*perClient)
		}
	}
	e.verify()
}

func TestShutdownFinishesInFlight(t *testing.T) {
	e := newEnv(t, envOptions{})
	idle := dialRaw(t, e.mx)
	idle.cmd("EHLO idle", 250, "")

	busy := dialRaw(t, e.mx)
	busy.cmd("EHLO busy", 250, "")
	busy.cmd("MAIL FROM:<a@remote.test>", 250, "2.0.0")
	busy.cmd("RCPT TO:<bob@example.com>", 250, "2.0.0")
	inData := make(chan struct{})
	var once sync.Once
	e.srv.testHookData = func() { once.Do(func() { close(inData) }) }
	busy.cmd("DATA", 354, "")
	busy.Send("Subject: in flight\r\n\r\nfirst half\r\n")
	<-inData // the server is inside DATA

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- e.srv.Shutdown(ctx)
	}()
	idle.expect(421, "")
	if !idle.closed() {
		t.Error("idle connection not closed on shutdown")
	}
	// New connections are refused.
	if c, err := net.DialTimeout("tcp", e.mx, time.Second); err == nil {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if line, _ := bufio.NewReader(c).ReadString('\n'); strings.HasPrefix(line, "220") {
			t.Error("new connection accepted after Shutdown")
		}
		c.Close()
	}
	time.Sleep(100 * time.Millisecond)
	busy.Send("second half\r\n.\r\n")
	busy.expect(250, "2.0.0")
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	e.serving.Served()
	got := e.inbox(userBob)
	if len(got) != 1 || !bytes.HasSuffix(got[0], []byte("first half\r\nsecond half\r\n")) {
		t.Fatalf("in-flight message not stored intact: %q", got)
	}
}

func TestShutdownTimeout(t *testing.T) {
	e := newEnv(t, envOptions{})
	busy := dialRaw(t, e.mx)
	busy.cmd("EHLO busy", 250, "")
	busy.cmd("MAIL FROM:<a@remote.test>", 250, "2.0.0")
	busy.cmd("RCPT TO:<bob@example.com>", 250, "2.0.0")
	inData := make(chan struct{})
	var once sync.Once
	e.srv.testHookData = func() { once.Do(func() { close(inData) }) }
	busy.cmd("DATA", 354, "")
	<-inData // the server is inside DATA
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
	e.serving.Served()
	if !busy.closed() {
		t.Error("connection still open after Shutdown gave up")
	}
	if len(e.inbox(userBob)) != 0 {
		t.Error("unfinished message stored")
	}
}

func TestServeAfterShutdown(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.serving.Stop()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testutil.Must(t, err)
	if err := e.srv.Serve(ln, MX, nil); err != nil {
		t.Fatalf("Serve after Shutdown = %v", err)
	}
}

// TestSwaks drives the server with swaks, a real-world SMTP test tool.
func TestSwaks(t *testing.T) {
	swaks := testutil.NeedCommand(t, "swaks")
	e := newEnv(t, envOptions{})
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(swaks, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("swaks %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	host, port, _ := net.SplitHostPort(e.mx)
	run("--server", host, "--port", port, "--from", "sender@remote.test", "--to", "info@child.example.com",
		"--header", "Subject: swaks mx", "--body", "hello from swaks")
	host, port, _ = net.SplitHostPort(e.sub)
	run("--server", host, "--port", port, "--tls", "--auth", "LOGIN",
		"--auth-user", userBob, "--auth-password", testPassword,
		"--from", userBob, "--to", userInfo, "--header", "Subject: swaks 587")
	host, port, _ = net.SplitHostPort(e.subs)
	run("--server", host, "--port", port, "--tlsc", "--auth", "PLAIN",
		"--auth-user", userBob, "--auth-password", testPassword,
		"--from", userBob, "--to", userInfo, "--header", "Subject: swaks 465")
	// A relay attempt fails.
	host, port, _ = net.SplitHostPort(e.mx)
	out, err := exec.Command(swaks, "--server", host, "--port", port, "--from", "a@remote.test", "--to", "b@elsewhere.test").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "550 5.7.1") {
		t.Errorf("relay through swaks: err %v\n%s", err, out)
	}
	got := e.inbox(userInfo)
	if len(got) != 3 {
		t.Fatalf("info has %d messages, want 3", len(got))
	}
	if !bytes.Contains(got[0], []byte("hello from swaks")) {
		t.Errorf("swaks body missing: %q", got[0])
	}
	e.verify()
}

// manyLines returns n lines of width characters.
func manyLines(n, width int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = strings.Repeat(string(rune('a'+i%26)), width)
	}
	return out
}

func TestPanicInSessionDoesNotCrash(t *testing.T) {
	e := newEnv(t, envOptions{})
	var once sync.Once
	e.srv.testHookData = func() { once.Do(func() { panic("boom") }) }
	c := dialRaw(t, e.mx)
	c.cmd("EHLO client", 250, "")
	c.cmd("MAIL FROM:<a@remote.test>", 250, "2.0.0")
	c.cmd("RCPT TO:<bob@example.com>", 250, "2.0.0")
	c.cmd("DATA", 354, "")
	c.expect(421, "4.0.0")
	if !c.closed() {
		t.Error("connection not closed after a panic")
	}
	// The server is still there.
	c = dialRaw(t, e.mx)
	c.cmd("EHLO client", 250, "")
	c.cmd("MAIL FROM:<a@remote.test>", 250, "2.0.0")
	c.cmd("RCPT TO:<bob@example.com>", 250, "2.0.0")
	c.data(testMessage("after the panic"), 250, "2.0.0")
	if n := len(e.inbox(userBob)); n != 1 {
		t.Fatalf("bob has %d messages", n)
	}
}

// On submission, a client that does not authenticate in time is cut off
// with 421 however busy it keeps itself; an authenticated one is not.
func TestSubmissionPreAuthTimeout(t *testing.T) {
	e := newEnv(t, envOptions{cfg: Config{PreAuthTimeout: 300 * time.Millisecond}})
	c := dialRawTLS(t, e.subs, e.client)
	c.cmd("EHLO laptop", 250, "")
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.Send("NOOP\r\n")
		code, lines, err := c.reply()
		if err != nil {
			t.Fatalf("connection dropped without a reply: %v", err)
		}
		if code == 421 {
			if !strings.HasPrefix(lines[len(lines)-1], "4.4.2") {
				t.Fatalf("421 %q", lines)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("never cut off before AUTH")
		}
	}
	if !c.closed() {
		t.Error("connection still open")
	}

	// Port 25 has no AUTH and no such clock.
	m := dialRaw(t, e.mx)
	m.cmd("EHLO mx.remote.test", 250, "")
	end := time.Now().Add(600 * time.Millisecond)
	for time.Now().Before(end) {
		m.cmd("NOOP", 250, "2.0.0")
	}

	// Authenticated in time: the clock stops. (A longer limit here, so
	// that bcrypt under -race fits in it.)
	const limit = 2 * time.Second
	e2 := newEnv(t, envOptions{cfg: Config{PreAuthTimeout: limit}})
	start := time.Now()
	a := dialRawTLS(t, e2.subs, e2.client)
	a.cmd("EHLO laptop", 250, "")
	a.cmd("AUTH PLAIN "+plainIR(userInfo, testPassword), 235, "2.0.0")
	for time.Since(start) < limit+300*time.Millisecond {
		a.cmd("NOOP", 250, "2.0.0")
		time.Sleep(20 * time.Millisecond)
	}
	a.cmd("MAIL FROM:<info@example.com>", 250, "2.0.0")
}
