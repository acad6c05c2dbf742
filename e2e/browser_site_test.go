package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// navigationStatus is the HTTP status of the page shown.
func navigationStatus(t *testing.T, b context.Context) int {
	t.Helper()
	return get(t, b, chromedp.Evaluate[int](`performance.getEntriesByType("navigation")[0].responseStatus`))
}

// The Site Manager in a real browser: the admin of example.com adds an
// account and sets its quota, and the server has them (the CLI through
// the control socket says so); other.test's pages are 403 for it, and
// the Site Manager is 403 for a user.
func TestWebSiteManager(t *testing.T) {
	w := startWeb(t)
	b := newBrowser(t)
	w.login(t, b, adminWeb, adminWebPW)
	w.open(t, b, "/site/")
	if u := location(t, b); !strings.HasSuffix(u, "/site/example.com/") {
		t.Fatalf("the Site Manager opens at %s", u)
	}
	run(t, b,
		chromedp.SendKeys(chromedp.CSS("#local"), "dave"),
		chromedp.SendKeys(chromedp.CSS("#password"), "dave pw 1"),
		chromedp.SendKeys(chromedp.CSS("#password2"), "dave pw 1"),
		chromedp.SendKeys(chromedp.CSS("#quota"), "20M"))
	submit(t, b, "#add")
	if n := textOf(t, b, "#notice"); n == "" {
		t.Fatalf("no notice after adding: %s", textOf(t, b, "main"))
	}
	if !strings.Contains(textOf(t, b, "#accounts"), "dave@example.com") {
		t.Fatalf("dave is not listed: %s", textOf(t, b, "#accounts"))
	}

	// Its page, a new quota.
	run(t, b, chromedp.Click(chromedp.CSS(`a[href="/site/example.com/accounts/dave@example.com"]`)),
		chromedp.WaitReady(chromedp.CSS("#quota")))
	if v := get(t, b, chromedp.Value(chromedp.CSS("#quota"))); v != "20M" {
		t.Errorf("quota field %q", v)
	}
	run(t, b, chromedp.SetValue(chromedp.CSS("#quota"), "50M"))
	submit(t, b, "#save-quota")
	if n := textOf(t, b, "#notice"); n == "" {
		t.Fatalf("no notice after the quota: %s", textOf(t, b, "main"))
	}
	var acct struct {
		Address string `json:"address"`
		Role    string `json:"role"`
		Quota   int64  `json:"quota"`
	}
	out := mustCLI(t, "", "account", "show", "dave@example.com", "--json", "--config", w.cfg, "--data", w.data)
	if err := json.Unmarshal([]byte(out), &acct); err != nil || acct.Quota != 50<<20 || acct.Role != "user" {
		t.Fatalf("the account as the server has it: %+v %v\n%s", acct, err, out)
	}
	// A bad quota: the form again, the error at the field, nothing changed.
	run(t, b, chromedp.SetValue(chromedp.CSS("#quota"), "lots"))
	submit(t, b, "#save-quota")
	if e := textOf(t, b, "#quota-error"); e == "" {
		t.Errorf("no error at the quota field")
	}
	if navigationStatus(t, b) != 422 {
		t.Errorf("bad quota: status %d", navigationStatus(t, b))
	}
	out = mustCLI(t, "", "account", "show", "dave@example.com", "--json", "--config", w.cfg, "--data", w.data)
	if err := json.Unmarshal([]byte(out), &acct); err != nil || acct.Quota != 50<<20 {
		t.Fatalf("after a refused quota: %+v %v", acct, err)
	}

	// other.test is not this admin's.
	for _, p := range []string{"/site/other.test/", "/site/other.test/settings", "/site/other.test/dns", "/site/other.test/accounts/" + otherAdmin} {
		w.open(t, b, p)
		if s := navigationStatus(t, b); s != 403 {
			t.Errorf("%s: status %d, want 403 (%s)", p, s, textOf(t, b, "main"))
		}
		if count(t, b, "#local, #quota, #report_to, #check") != 0 {
			t.Errorf("%s shows a form", p)
		}
	}

	// A user: no Site Manager.
	u := newBrowser(t)
	w.login(t, u, bobWeb, bobWebPW)
	if count(t, u, `nav a[href="/site/"]`) != 0 {
		t.Errorf("the user's menu has the Site Manager")
	}
	w.open(t, u, "/site/example.com/")
	if s := navigationStatus(t, u); s != 403 {
		t.Errorf("user on the Site Manager: status %d", s)
	}
}
