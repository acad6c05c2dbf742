package e2e

// The harness of the browser tests: the real yubin binary with its web
// listener on, and Debian's chromium driven with chromedp. Each browser
// has a profile (cookies) of its own. Use it like this:
//
//	w := startWeb(t)                  // server, domains, accounts (webAccounts)
//	b := newBrowser(t)                // skips when chromium is absent
//	w.login(t, b, bobWeb, bobWebPW)   // fails the test unless it worked
//	w.open(t, b, "/mail/"+bobWeb+"/forward")
//	text := textOf(t, b, "#notice")

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// Accounts startWeb adds besides info@example.com (secret-pw, a user):
const (
	adminWeb   = "admin@example.com" // role admin of example.com
	adminWebPW = "admin web pw"
	bobWeb     = "bob@example.com"
	bobWebPW   = "bob web pw"
	carolWeb   = "carol@example.com"
	carolWebPW = "carol web pw"
	otherAdmin = "boss@other.test" // role admin of other.test
	otherPW    = "other web pw"
)

// webEnv is a running server with its web listener.
type webEnv struct {
	srv       *server
	data, cfg string
	base      string // https://127.0.0.1:PORT
}

// startWeb starts yubin serve with the web on 127.0.0.1 port 0 and the
// accounts above.
func startWeb(t *testing.T) *webEnv {
	t.Helper()
	data, cfg := newDataDir(t)
	mustCLI(t, "", "domain", "add", "other.test", "--config", cfg, "--data", data)
	for _, a := range []struct{ addr, pw, role string }{
		{adminWeb, adminWebPW, "admin"}, {bobWeb, bobWebPW, "user"}, {carolWeb, carolWebPW, "user"}, {otherAdmin, otherPW, "admin"},
	} {
		mustCLI(t, a.pw+"\n", "account", "add", a.addr, "--role", a.role, "--password-stdin", "--config", cfg, "--data", data)
	}
	srv := startServer(t, data, cfg)
	addr := srv.addrs["web"]
	if addr == "" {
		t.Fatalf("no web listener logged:\n%s", srv.log.String())
	}
	if !strings.Contains(srv.log.String(), `msg="web: Mail Manager and Site Manager" url=https://localhost:`) {
		t.Errorf("the web URL is not logged:\n%s", srv.log.String())
	}
	return &webEnv{srv: srv, data: data, cfg: cfg, base: "https://" + addr}
}

// chromium returns the browser's path, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium not installed: the browser tests need Debian's chromium (make test-deps installs it)")
	return ""
}

// newBrowser starts a headless chromium with a profile of its own and
// returns its context; it ends with the test. Each action (run) has 30
// seconds.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,        // tests may run as root
		chromedp.IgnoreCertErrors, // the server's self-signed certificate
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	// A page that opens a dialog ran script: fail.
	ctx, cancelC := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			t.Errorf("the page ran script: a %s dialog %q", d.Type, d.Message)
		}
	}))
	t.Cleanup(func() { cancelC(); cancelA() })
	if err := chromedp.Do(ctx); err != nil { // start it now, without a deadline (see chromedp.Run)
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// actionTimeout bounds each run of actions.
const actionTimeout = 30 * time.Second

// run runs actions in the browser and fails the test on an error.
func run(t *testing.T, b context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatal(err)
	}
}

// get runs an action that returns a value.
func get[T any](t *testing.T, b context.Context, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// open navigates to path and waits for the page.
func (w *webEnv) open(t *testing.T, b context.Context, path string) {
	t.Helper()
	run(t, b, chromedp.Navigate(w.base+path), chromedp.WaitReady(chromedp.CSS("main h1")))
}

// tryLogin fills the login form and submits it; the page after it is
// loaded when it returns.
func (w *webEnv) tryLogin(t *testing.T, b context.Context, addr, pw string) {
	t.Helper()
	w.open(t, b, "/login")
	run(t, b,
		chromedp.SendKeys(chromedp.CSS("#address"), addr),
		chromedp.SendKeys(chromedp.CSS("#password"), pw))
	submit(t, b, "#login")
}

// login logs in and requires the overview to follow.
func (w *webEnv) login(t *testing.T, b context.Context, addr, pw string) {
	t.Helper()
	w.tryLogin(t, b, addr, pw)
	if u := location(t, b); !strings.HasSuffix(u, "/mail/"+addr+"/") {
		t.Fatalf("login as %s ends at %s: %s", addr, u, textOf(t, b, "main"))
	}
}

// submit clicks the button sel and waits for the page that follows.
func submit(t *testing.T, b context.Context, sel string) {
	t.Helper()
	run(t, b,
		chromedp.SetAttributeValue(chromedp.CSS("main"), "data-old", "1"),
		chromedp.Click(chromedp.CSS(sel)),
		chromedp.WaitReady(chromedp.CSS("main:not([data-old]) h1")))
}

// location is the page's URL.
func location(t *testing.T, b context.Context) string {
	t.Helper()
	return get(t, b, chromedp.Location())
}

// textOf is the text of the first element sel matches.
func textOf(t *testing.T, b context.Context, sel string) string {
	t.Helper()
	return get(t, b, chromedp.Text(chromedp.CSS(sel)))
}

// count is how many elements sel matches now.
func count(t *testing.T, b context.Context, sel string) int {
	t.Helper()
	return get(t, b, chromedp.Evaluate[int](`document.querySelectorAll(`+jsString(sel)+`).length`))
}

func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
