package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestWebMailManagerInBrowser drives the Mail Manager of the real binary
// in chromium: log in, set a forward and see a mail sent over SMTP
// forwarded; another account's page is refused; a form whose CSRF token
// is gone or forged is refused and changes nothing; a held message whose
// Subject, From and body carry <script> shows inert text; a password
// change ends the other session and IMAP takes the new password.
func TestWebMailManagerInBrowser(t *testing.T) {
	chromium(t)
	w := startWeb(t)
	b := newBrowser(t)
	w.login(t, b, bobWeb, bobWebPW)
	if u := textOf(t, b, "#usage"); !strings.Contains(u, "of 1.0 GiB") {
		t.Errorf("usage %q", u)
	}

	// Forwarding: carol gets bob's mail, bob keeps no copy.
	w.open(t, b, "/mail/"+bobWeb+"/forward")
	run(t, b, chromedp.SendKeys(chromedp.CSS("#targets"), carolWeb))
	submit(t, b, "#save")
	if n := textOf(t, b, "#notice"); !strings.Contains(n, "saved") {
		t.Fatalf("after saving the forward: %q / %s", n, textOf(t, b, "main"))
	}
	if out := mustCLI(t, "", "forward", "show", bobWeb, "--config", w.cfg, "--data", w.data); !strings.Contains(out, carolWeb) {
		t.Fatalf("forward show: %s", out)
	}
	if err := sendMX(w.srv.addrs["smtp"], bobWeb, "forwarded by the web's rule"); err != nil {
		t.Fatal(err)
	}
	if msg := lastInbox(t, w.srv.addrs["imaps"], carolWeb, carolWebPW); !strings.Contains(msg, "forwarded by the web's rule") || !strings.Contains(msg, "Delivered-To: "+bobWeb) {
		t.Fatalf("carol's newest message:\n%s", msg)
	}

	// Bad input: the form comes back with the error at the field.
	w.open(t, b, "/mail/"+bobWeb+"/forward")
	run(t, b, chromedp.SetValue(chromedp.CSS("#targets"), "not an address"))
	submit(t, b, "#save")
	if e := textOf(t, b, "#targets-error"); !strings.Contains(e, "invalid address") {
		t.Errorf("a malformed target: %q", e)
	}

	// Another account's page, another domain's: 403.
	for _, acct := range []string{carolWeb, otherAdmin} {
		w.open(t, b, "/mail/"+acct+"/forward")
		if h := textOf(t, b, "main h1"); h != "Forbidden" {
			t.Errorf("bob opens %s's forwarding: %q", acct, h)
		}
	}

	// The admin of example.com: bob's page yes, other.test's no.
	a := newBrowser(t)
	w.login(t, a, adminWeb, adminWebPW)
	w.open(t, a, "/mail/"+bobWeb+"/forward")
	if s := get(t, a, chromedp.Value(chromedp.CSS("#targets"))); !strings.Contains(s, carolWeb) {
		t.Errorf("the admin sees bob's forwarding as %q", s)
	}
	w.open(t, a, "/mail/"+otherAdmin+"/forward")
	if h := textOf(t, a, "main h1"); h != "Forbidden" {
		t.Errorf("the admin of example.com opens other.test's forwarding: %q", h)
	}

	// A form without its CSRF token, and with a forged one.
	for what, spoil := range map[string]chromedp.Action[chromedp.Void]{
		"without": chromedp.RemoveAttribute(chromedp.CSS(`form[action$="/forward"] input[name=csrf]`), "name"),
		"forged":  chromedp.SetAttributeValue(chromedp.CSS(`form[action$="/forward"] input[name=csrf]`), "value", "forged"),
	} {
		w.open(t, b, "/mail/"+bobWeb+"/forward")
		run(t, b, spoil, chromedp.SetValue(chromedp.CSS("#targets"), "thief@evil.test"))
		submit(t, b, "#save")
		if h := textOf(t, b, "main h1"); h != "Forbidden" {
			t.Errorf("a form %s its token: %q", what, h)
		}
	}
	if out := mustCLI(t, "", "forward", "show", bobWeb, "--config", w.cfg, "--data", w.data); strings.Contains(out, "thief") || !strings.Contains(out, carolWeb) {
		t.Fatalf("a refused form changed forwarding: %s", out)
	}

	// Script in a held message: carol's filter holds everything.
	mustCLI(t, "", "spam", "policy", carolWeb, "--action=quarantine", "--threshold=0.01", "--config", w.cfg, "--data", w.data)
	evil := "From: \"<script>alert('from')</script>\" <x@remote.test>\r\nTo: " + carolWeb + "\r\n" +
		"Subject: <script>alert('subject')</script>\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" +
		"<html><body onload=\"alert('onload')\"><script>alert('body')</script><img src=x onerror=\"alert('img')\"><p>Hello <b>world</b></p></body></html>\r\n"
	if err := sendMXRaw(w.srv.addrs["smtp"], carolWeb, evil); err != nil {
		t.Fatal(err)
	}
	c := newBrowser(t)
	w.login(t, c, carolWeb, carolWebPW)
	w.open(t, c, "/mail/"+carolWeb+"/quarantine")
	if s := textOf(t, c, "#quarantine"); !strings.Contains(s, "<script>alert('subject')</script>") {
		t.Fatalf("the quarantine list: %q", s)
	}
	submit(t, c, "#quarantine a")
	fields, text := textOf(t, c, "#fields"), textOf(t, c, "#text")
	if !strings.Contains(fields, "<script>alert('subject')</script>") || !strings.Contains(fields, "<script>alert('from')</script>") {
		t.Errorf("the header fields are not shown as text: %q", fields)
	}
	if !strings.Contains(text, "Hello world") {
		t.Errorf("the text: %q", text)
	}
	if count(t, c, "script")+count(t, c, "img")+count(t, c, "main b") > 0 {
		t.Errorf("the message became markup in the page")
	}

	// The password: a second session of bob ends when the first changes it.
	b2 := newBrowser(t)
	w.login(t, b2, bobWeb, bobWebPW)
	w.open(t, b, "/mail/"+bobWeb+"/password")
	run(t, b,
		chromedp.SendKeys(chromedp.CSS("#current"), bobWebPW),
		chromedp.SendKeys(chromedp.CSS("#new"), "a new bob pw"),
		chromedp.SendKeys(chromedp.CSS("#new2"), "a new bob pw"))
	submit(t, b, "#save")
	if n := textOf(t, b, "#notice"); !strings.Contains(n, "changed") {
		t.Fatalf("after the change: %q", n)
	}
	w.open(t, b2, "/mail/"+bobWeb+"/")
	if u := location(t, b2); !strings.Contains(u, "/login") {
		t.Errorf("the other session goes on at %s", u)
	}
	w.open(t, b, "/mail/"+bobWeb+"/")
	if u := location(t, b); !strings.HasSuffix(u, "/mail/"+bobWeb+"/") {
		t.Errorf("the changing session ended: %s", u)
	}
	if err := imapLogin(w.srv.addrs["imaps"], bobWeb, "a new bob pw"); err != nil {
		t.Errorf("IMAP with the new password: %v", err)
	}
	if err := imapLogin(w.srv.addrs["imaps"], bobWeb, bobWebPW); err == nil {
		t.Errorf("IMAP takes the old password")
	}
	// And a change by the CLI ends the web session too.
	mustCLI(t, "from the cli\n", "account", "passwd", bobWeb, "--password-stdin", "--config", w.cfg, "--data", w.data)
	w.open(t, b, "/mail/"+bobWeb+"/")
	if u := location(t, b); !strings.Contains(u, "/login") {
		t.Errorf("the session goes on after the CLI changed the password: %s", u)
	}
}

// TestWebLockoutInBrowser: ten wrong passwords in the browser lock the
// address out of the web and of IMAP, the right password included.
func TestWebLockoutInBrowser(t *testing.T) {
	chromium(t)
	w := startWeb(t)
	b := newBrowser(t)
	for i := range 10 {
		w.tryLogin(t, b, bobWeb, fmt.Sprintf("wrong %d", i))
		if p := textOf(t, b, "#problem"); !strings.Contains(p, "Wrong") {
			t.Fatalf("wrong password %d: %q", i+1, p)
		}
	}
	w.tryLogin(t, b, bobWeb, bobWebPW)
	if p := textOf(t, b, "#problem"); !strings.Contains(p, "Too many failed logins") {
		t.Fatalf("the right password after 10 failures: %q at %s", p, location(t, b))
	}
	if err := imapLogin(w.srv.addrs["imaps"], bobWeb, bobWebPW); err == nil || !strings.Contains(err.Error(), "UNAVAILABLE") {
		t.Fatalf("IMAP after 10 failures on the web: %v", err)
	}
}

// TestWebListener: the real server's web listener speaks HTTP/2 and
// HTTP/1.1 over TLS with the mail listeners' certificate.
func TestWebListener(t *testing.T) {
	w := startWeb(t)
	for _, h2 := range []bool{true, false} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(w.base + "/login")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := 1
		if h2 {
			want = 2
		}
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != want || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("h2=%v: %d over HTTP/%d, X-Frame-Options %q", h2, resp.StatusCode, resp.ProtoMajor, resp.Header.Get("X-Frame-Options"))
		}
		if cs := resp.TLS; cs == nil || len(cs.PeerCertificates) == 0 || cs.PeerCertificates[0].Subject.CommonName == "" {
			t.Errorf("no certificate")
		} else if imaps := certOf(t, w.srv.addrs["imaps"]); !imaps.Equal(cs.PeerCertificates[0]) {
			t.Errorf("the web's certificate is not the mail listeners'")
		}
	}
}

// certOf is the certificate a TLS listener serves.
func certOf(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}
