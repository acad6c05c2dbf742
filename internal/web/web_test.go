package web

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"yubin/admin"
	"yubin/internal/auth"
	"yubin/internal/autoconfig"
	"yubin/internal/testutil"
	"yubin/internal/testutil/teststore"
	"yubin/store"
)

// Accounts of the test server, with their passwords.
const (
	adminAddr = "info@example.com" // role admin of example.com (and www.example.com)
	adminPW   = "admin password"
	bobAddr   = "bob@example.com" // a user
	bobPW     = "bob password"
	carolAddr = "carol@other.test" // admin of another domain
	carolPW   = "carol password"
)

// clock is a settable clock for session expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a web server over real TLS (HTTP/2) on 127.0.0.1 port 0, on a
// store of its own with the accounts above.
type env struct {
	t     *testing.T
	st    store.Store
	svc   *admin.Service
	auth  *auth.Authenticator
	web   *Server
	srv   *httptest.Server
	clock *clock
	met   *countMetrics
}

// countMetrics counts failed web logins.
type countMetrics struct {
	mu          sync.Mutex
	bad, locked int
}

func (m *countMetrics) AuthFailure(protocol string, lockedOut bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if protocol != "web" {
		panic("protocol " + protocol)
	}
	if lockedOut {
		m.locked++
	} else {
		m.bad++
	}
}

func (m *countMetrics) counts() (bad, locked int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bad, m.locked
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st := teststore.New(t, teststore.Options{NoSync: true})
	svc := admin.NewService(st, 0)
	ctx := t.Context()
	for _, d := range []admin.NewDomain{{Name: "example.com"}, {Name: "www.example.com", Parent: "example.com"}, {Name: "other.test"}} {
		_, err := admin.Do(ctx, svc, admin.OpDomainAdd, d)
		testutil.Must(t, err)
	}
	for _, a := range []admin.NewAccount{
		{Address: adminAddr, Password: adminPW, Role: admin.RoleAdmin},
		{Address: bobAddr, Password: bobPW, Quota: ptr(int64(10 << 20))},
		{Address: carolAddr, Password: carolPW, Role: admin.RoleAdmin},
	} {
		_, err := admin.Do(ctx, svc, admin.OpAccountAdd, a)
		testutil.Must(t, err)
	}
	au := auth.New(st, auth.Policy{}, nil)
	ck := &clock{t: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
	ac := autoconfig.New(autoconfig.Settings{Host: "mail.example.com", IMAP: []autoconfig.Server{{Port: 993, Socket: autoconfig.SSL}},
		SMTP: []autoconfig.Server{{Port: 465, Socket: autoconfig.SSL}, {Port: 587, Socket: autoconfig.STARTTLS}}}, st, nil)
	met := &countMetrics{}
	w, err := New(Config{Admin: svc, Auth: au, Hostname: "mail.example.com", Now: ck.now, Metrics: met, Autoconfig: ac,
		Ports: ClientPorts{IMAPS: "0.0.0.0:993", IMAP: "0.0.0.0:143", POP3S: "0.0.0.0:995", Submissions: "0.0.0.0:465", Submission: "0.0.0.0:587"}})
	testutil.Must(t, err)
	srv := httptest.NewUnstartedServer(w)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return &env{t: t, st: st, svc: svc, auth: au, web: w, srv: srv, clock: ck, met: met}
}

func ptr[T any](v T) *T { return &v }

// browser is a client with its own cookies that does not follow
// redirects (the tests look at them).
type browser struct {
	e   *env
	c   *http.Client
	jar *cookiejar.Jar
}

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	testutil.Must(e.t, err)
	c := *e.srv.Client() // a copy: each browser has its own cookies
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{e: e, c: &c, jar: jar}
}

// page is an answer.
type answer struct {
	status int
	header http.Header
	body   string
	proto  int
}

func (b *browser) do(req *http.Request) answer {
	b.e.t.Helper()
	resp, err := b.c.Do(req)
	testutil.Must(b.e.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	testutil.Must(b.e.t, err)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(body), proto: resp.ProtoMajor}
}

func (b *browser) get(path string) answer {
	b.e.t.Helper()
	req, err := http.NewRequestWithContext(b.e.t.Context(), "GET", b.e.srv.URL+path, nil)
	testutil.Must(b.e.t, err)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) answer {
	b.e.t.Helper()
	req, err := http.NewRequestWithContext(b.e.t.Context(), "POST", b.e.srv.URL+path, strings.NewReader(form.Encode()))
	testutil.Must(b.e.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the token of the first form of the page at path.
func (b *browser) csrf(path string) string {
	b.e.t.Helper()
	a := b.get(path)
	m := csrfField.FindStringSubmatch(a.body)
	if m == nil {
		b.e.t.Fatalf("GET %s: %d, no CSRF field in\n%s", path, a.status, a.body)
	}
	return html.UnescapeString(m[1])
}

// submit posts form to path with the CSRF token of the page it is on.
func (b *browser) submit(path string, form url.Values) answer {
	b.e.t.Helper()
	form.Set("csrf", b.csrf(path))
	return b.post(path, form)
}

// login logs in and requires it to work.
func (b *browser) login(addr, pw string) {
	b.e.t.Helper()
	a := b.tryLogin(addr, pw)
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/" {
		b.e.t.Fatalf("login %s: %d %s\n%s", addr, a.status, a.header.Get("Location"), a.body)
	}
}

func (b *browser) tryLogin(addr, pw string) answer {
	b.e.t.Helper()
	return b.post("/login", url.Values{"csrf": {b.csrf("/login")}, "address": {addr}, "password": {pw}})
}

// mail is the Mail Manager path of account.
func mail(account, page string) string { return "/mail/" + account + "/" + page }

// loggedOut reports whether a is the redirect to the login page.
func loggedOut(a answer) bool {
	return a.status == http.StatusSeeOther && strings.HasPrefix(a.header.Get("Location"), "/login")
}

// forwardOf is the account's forwarding rule as the admin service has it.
func (e *env) forwardOf(account string) admin.Forwarding {
	e.t.Helper()
	f, err := admin.Do(context.Background(), e.svc, admin.OpForwardShow, account)
	testutil.Must(e.t, err)
	return f
}
