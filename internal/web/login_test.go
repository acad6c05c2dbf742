package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"yubin/admin"
	"yubin/imapd"
	"yubin/internal/auth"
	"yubin/internal/netserve"
	"yubin/internal/spool"
	"yubin/internal/testutil"
	"yubin/internal/testutil/tlstest"
	"yubin/store"
)

// TestLogin: the right password starts a session (cookie Secure,
// HttpOnly, SameSite=Strict) and opens the overview; a wrong one, an
// unknown account, a missing field or a login form without its token
// does not.
func TestLogin(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	if a := b.get("/"); !loggedOut(a) {
		t.Fatalf("GET / without a session: %d %s", a.status, a.header.Get("Location"))
	}
	for _, c := range []struct {
		addr, pw string
		status   int
	}{
		{bobAddr, "wrong", http.StatusUnauthorized},
		{"nobody@example.com", bobPW, http.StatusUnauthorized},
		{bobAddr, "", http.StatusUnprocessableEntity},
	} {
		a := b.tryLogin(c.addr, c.pw)
		if a.status != c.status || !strings.Contains(a.body, `id="problem"`) {
			t.Errorf("login %s/%q: %d, want %d with the problem shown", c.addr, c.pw, a.status, c.status)
		}
		if ck := sessionCookieOf(a); ck != nil {
			t.Errorf("login %s/%q set a session cookie", c.addr, c.pw)
		}
	}
	// Without the login form's token.
	a := b.post("/login", url.Values{"address": {bobAddr}, "password": {bobPW}})
	if a.status != http.StatusForbidden || sessionCookieOf(a) != nil {
		t.Errorf("login without the form's token: %d", a.status)
	}
	a = b.post("/login", url.Values{"csrf": {"forged"}, "address": {bobAddr}, "password": {bobPW}})
	if a.status != http.StatusForbidden || sessionCookieOf(a) != nil {
		t.Errorf("login with a forged token: %d", a.status)
	}

	a = b.tryLogin("Bob@Example.COM", bobPW)
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/" {
		t.Fatalf("login: %d %s", a.status, a.header.Get("Location"))
	}
	ck := sessionCookieOf(a)
	if ck == nil {
		t.Fatal("no session cookie")
	}
	if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Domain != "" || len(ck.Value) < 40 {
		t.Errorf("session cookie %+v", ck)
	}
	raw := strings.Join(a.header.Values("Set-Cookie"), "\n")
	for _, want := range []string{"Secure", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(raw, want) {
			t.Errorf("Set-Cookie lacks %s: %s", want, raw)
		}
	}
	a = b.get("/")
	if a.status != http.StatusSeeOther || a.header.Get("Location") != mail(bobAddr, "") {
		t.Fatalf("GET /: %d %s", a.status, a.header.Get("Location"))
	}
	a = b.get(mail(bobAddr, ""))
	if a.status != http.StatusOK || !strings.Contains(a.body, bobAddr) || !strings.Contains(a.body, "0 B of 10.0 MiB (0%)") {
		t.Fatalf("overview: %d\n%s", a.status, a.body)
	}
	if a.proto != 2 {
		t.Errorf("served over HTTP/%d, want HTTP/2", a.proto)
	}
}

func sessionCookieOf(a answer) *http.Cookie {
	for _, c := range (&http.Response{Header: a.header}).Cookies() {
		if c.Name == sessionCookie && c.Value != "" {
			return c
		}
	}
	return nil
}

// TestHeaders: every answer — the login page, a page, a refused form,
// the stylesheet — has the security headers.
func TestHeaders(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	check := func(what string, a answer) {
		t.Helper()
		for k, v := range map[string]string{
			"X-Frame-Options":        "DENY",
			"X-Content-Type-Options": "nosniff",
			"Referrer-Policy":        "same-origin",
		} {
			if got := a.header.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", what, k, got, v)
			}
		}
		csp := a.header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'none'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", what, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP allows inline: %q", what, csp)
		}
	}
	check("login page", b.get("/login"))
	check("stylesheet", b.get("/static/style.css"))
	check("no such page", b.get("/nope"))
	if a := b.get("/static/"); a.status != http.StatusNotFound {
		t.Errorf("GET /static/: %d, want no listing", a.status)
	}
	b.login(bobAddr, bobPW)
	for _, p := range []string{"", "password", "forward", "spam", "quarantine", "stops", "clients"} {
		a := b.get(mail(bobAddr, p))
		if a.status != http.StatusOK {
			t.Errorf("GET %s: %d\n%s", mail(bobAddr, p), a.status, a.body)
		}
		check(p, a)
		if strings.Contains(a.body, "<script") || strings.Contains(a.body, "style=") {
			t.Errorf("%s: inline script or style in the page", p)
		}
	}
	check("refused form", b.post(mail(bobAddr, "forward"), url.Values{"targets": {"x@y.test"}}))
}

// TestLanguage: Accept-Language picks Japanese; the switch link sets a
// cookie that wins over it and goes back to the page.
func TestLanguage(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", e.srv.URL+"/login", nil)
	req.Header.Set("Accept-Language", "ja-JP,ja;q=0.9,en;q=0.5")
	if a := b.do(req); !strings.Contains(a.body, "ログイン") || !strings.Contains(a.body, `lang="ja"`) {
		t.Fatalf("Japanese login page:\n%s", a.body)
	}
	if a := b.get("/login"); !strings.Contains(a.body, "Log in") {
		t.Fatalf("English login page:\n%s", a.body)
	}
	a := b.get("/lang?to=ja&back=/login")
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/login" {
		t.Fatalf("switch: %d %s", a.status, a.header.Get("Location"))
	}
	if a := b.get("/login"); !strings.Contains(a.body, "メールアドレス") {
		t.Fatalf("after the switch:\n%s", a.body)
	}
	// Browsers drop tabs and newlines anywhere in a URL, and other
	// control characters at its ends: "/\t/evil.test" is //evil.test.
	for _, evil := range []string{"//evil.test/", "https://evil.test/", "/\\evil.test",
		"/\t/evil.test", "/\n/evil.test", "/\r/evil.test", "/\x00/evil.test", "/\x1f/evil.test", "/\x7f/evil.test"} {
		if a := b.get("/lang?to=en&back=" + url.QueryEscape(evil)); a.header.Get("Location") != "/" {
			t.Errorf("back=%q goes to %q", evil, a.header.Get("Location"))
		}
	}
}

// TestLockoutSharedWithIMAP: ten wrong passwords on the web lock the
// client's address out of the web and of IMAP alike (one Authenticator),
// even with the right password.
func TestLockoutSharedWithIMAP(t *testing.T) {
	e := newEnv(t)
	cert := tlstest.SelfSigned(t, "mail.example.com")
	sp, err := spool.Open(filepath.Join(t.TempDir(), "spool"), 0, 0)
	testutil.Must(t, err)
	im := imapd.New(imapd.Config{Hostname: "mail.example.com", Spool: sp}, e.st, e.auth, nil)
	imaps := testutil.Serve(t, im, cert.Server, netserve.Implicit).Addrs[0]
	imapLogin := func(pw string) string {
		t.Helper()
		c, err := tls.Dial("tcp", imaps, cert.Client)
		testutil.Must(t, err)
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 4096)
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "a LOGIN %s \"%s\"\r\n", bobAddr, pw)
		var got strings.Builder
		for !strings.Contains(got.String(), "a ") {
			n, err := c.Read(buf)
			got.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return got.String()
	}
	if r := imapLogin(bobPW); !strings.Contains(r, "a OK") {
		t.Fatalf("IMAP login before: %q", r)
	}
	b := e.browser()
	for i := range 10 {
		if a := b.tryLogin(bobAddr, fmt.Sprintf("wrong %d", i)); a.status != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d", i+1, a.status)
		}
	}
	if a := b.tryLogin(bobAddr, bobPW); a.status != http.StatusTooManyRequests || sessionCookieOf(a) != nil {
		t.Fatalf("web login after 10 failures: %d", a.status)
	}
	if bad, locked := e.met.counts(); bad != 10 || locked != 1 {
		t.Errorf("metrics: %d bad credentials, %d locked out; want 10 and 1", bad, locked)
	}
	if r := imapLogin(bobPW); !strings.Contains(r, "a NO") {
		t.Fatalf("IMAP login after 10 web failures: %q", r)
	}
}

// TestLogout ends the session: its cookie opens nothing afterwards.
func TestLogout(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login(bobAddr, bobPW)
	old := b.jar.Cookies(mustURL(t, e.srv.URL))
	if a := b.post("/logout", url.Values{}); a.status != http.StatusForbidden {
		t.Fatalf("logout without the token: %d", a.status)
	}
	if a := b.submit(mail(bobAddr, ""), url.Values{}); a.status != http.StatusNotFound && a.status != http.StatusMethodNotAllowed {
		t.Logf("posting the overview: %d", a.status)
	}
	tok := b.csrf(mail(bobAddr, ""))
	if a := b.post("/logout", url.Values{"csrf": {tok}}); a.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", a.status)
	}
	if a := b.get(mail(bobAddr, "")); !loggedOut(a) {
		t.Fatalf("after logout: %d", a.status)
	}
	// The old cookie, kept by someone, opens nothing either.
	b2 := e.browser()
	b2.jar.SetCookies(mustURL(t, e.srv.URL), old)
	if a := b2.get(mail(bobAddr, "")); !loggedOut(a) {
		t.Fatalf("old cookie after logout: %d", a.status)
	}
	if e.web.sessions.count() != 0 {
		t.Errorf("%d sessions held after logout", e.web.sessions.count())
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	testutil.Must(t, err)
	return u
}

// TestSessionExpiry: a session ends after 30 idle minutes, and after 12
// hours however busy.
func TestSessionExpiry(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login(bobAddr, bobPW)
	e.clock.add(29 * time.Minute)
	if a := b.get(mail(bobAddr, "")); a.status != http.StatusOK {
		t.Fatalf("after 29 idle minutes: %d", a.status)
	}
	e.clock.add(30 * time.Minute)
	if a := b.get(mail(bobAddr, "")); !loggedOut(a) || a.header.Get("Location") != "/login?ended=1" {
		t.Fatalf("after 30 idle minutes: %d %s", a.status, a.header.Get("Location"))
	}
	b.login(bobAddr, bobPW)
	for range 12 * 60 / 20 {
		e.clock.add(20 * time.Minute)
		if a := b.get(mail(bobAddr, "")); a.status != http.StatusOK {
			if !loggedOut(a) {
				t.Fatalf("busy session: %d", a.status)
			}
			return // the 12 hours are up
		}
	}
	t.Fatal("a busy session lived 12 hours")
}

// TestPasswordChangeEndsSessions: a password changed on the web ends the
// account's other sessions and keeps this one; one changed through the
// admin service (the CLI's path) ends them all.
func TestPasswordChangeEndsSessions(t *testing.T) {
	e := newEnv(t)
	a1, a2 := e.browser(), e.browser()
	a1.login(bobAddr, bobPW)
	a2.login(bobAddr, bobPW)
	other := e.browser()
	other.login(adminAddr, adminPW)

	// Bad input first: nothing changes.
	for _, c := range []struct {
		form  url.Values
		field string
	}{
		{url.Values{"current": {"wrong"}, "new": {"n1"}, "new2": {"n1"}}, "current"},
		{url.Values{"current": {bobPW}, "new": {"n1"}, "new2": {"n2"}}, "new2"},
		{url.Values{"current": {bobPW}, "new": {""}, "new2": {""}}, "new"},
		{url.Values{"current": {bobPW}, "new": {"a\nb"}, "new2": {"a\nb"}}, "new"},
	} {
		a := a1.submit(mail(bobAddr, "password"), c.form)
		if a.status != http.StatusUnprocessableEntity || (c.field != "" && !strings.Contains(a.body, `id="`+c.field+`-error"`)) {
			t.Errorf("password form %v: %d, want 422 with the error at %s\n%s", c.form, a.status, c.field, a.body)
		}
	}
	if a := a2.get(mail(bobAddr, "")); a.status != http.StatusOK {
		t.Fatalf("bad input ended a session: %d", a.status)
	}

	a := a1.submit(mail(bobAddr, "password"), url.Values{"current": {bobPW}, "new": {"new secret"}, "new2": {"new secret"}})
	if a.status != http.StatusSeeOther {
		t.Fatalf("change: %d\n%s", a.status, a.body)
	}
	if a := a1.get(mail(bobAddr, "password")); a.status != http.StatusOK {
		t.Fatalf("the changing session ended: %d", a.status)
	}
	if a := a2.get(mail(bobAddr, "")); !loggedOut(a) {
		t.Fatalf("the other session goes on after the change: %d", a.status)
	}
	if a := other.get(mail(adminAddr, "")); a.status != http.StatusOK {
		t.Fatalf("another account's session ended: %d", a.status)
	}
	if _, err := e.auth.Authenticate(t.Context(), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, bobAddr, "new secret"); err != nil {
		t.Fatalf("the new password: %v", err)
	}

	// The CLI's path: the admin service without a scope.
	if _, err := admin.Do(t.Context(), e.svc, admin.OpAccountPasswd, admin.PasswordChange{Address: bobAddr, Password: "from the cli"}); err != nil {
		t.Fatal(err)
	}
	if a := a1.get(mail(bobAddr, "")); !loggedOut(a) {
		t.Fatalf("session after a password change by the CLI: %d", a.status)
	}
}

// flakyDirectory is a directory whose store can be away.
type flakyDirectory struct {
	store.Directory
	down atomic.Bool
}

func (d *flakyDirectory) Account(ctx context.Context, addr string) (store.Account, error) {
	if d.down.Load() {
		return store.Account{}, errors.New("connection refused")
	}
	return d.Directory.Account(ctx, addr)
}

// A login the store cannot check (the database away) says so with 503,
// not "wrong password", and counts as no failure: once the store is back
// the address logs in, though more tries than the lockout allows failed.
func TestLoginStoreUnavailable(t *testing.T) {
	e := newEnv(t)
	dir := &flakyDirectory{Directory: e.st}
	dir.down.Store(true)
	w, err := New(Config{Admin: e.svc, Auth: auth.New(dir, auth.Policy{}, nil), Hostname: "mail.example.com", Now: e.clock.now, Metrics: e.met})
	testutil.Must(t, err)
	srv := httptest.NewUnstartedServer(w)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	down := *e
	down.srv, down.web = srv, w
	b := down.browser()
	for range 12 {
		a := b.tryLogin(bobAddr, bobPW)
		if a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, "cannot be checked") {
			t.Fatalf("login with the store away: %d\n%s", a.status, a.body)
		}
	}
	if bad, locked := e.met.counts(); bad != 0 || locked != 0 {
		t.Errorf("failures counted: %d bad, %d locked", bad, locked)
	}
	dir.down.Store(false)
	b.login(bobAddr, bobPW)
}
