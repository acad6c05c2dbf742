package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestCrossOriginPostRefused: a POST a browser marks as coming from
// another origin (Sec-Fetch-Site, or an Origin other than the host) is
// refused before its handler runs, even with the session's cookie and
// its token (defense in depth beside SameSite=Strict and the token:
// a sibling host of the same site is "same-site", which SameSite lets
// through). The same form from the page itself, and a client that is
// not a browser (no such headers), go on.
func TestCrossOriginPostRefused(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login(bobAddr, bobPW)
	path := mail(bobAddr, "forward")
	post := func(hdr map[string]string, target string) answer {
		t.Helper()
		form := url.Values{"csrf": {b.csrf(path)}, "targets": {target}, "action": {"save"}}
		req, err := http.NewRequestWithContext(t.Context(), "POST", e.srv.URL+path, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		return b.do(req)
	}
	for _, hdr := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site"}, // a sibling host: the cookie goes along
		{"Origin": "https://evil.test"},
		{"Origin": "null"},
	} {
		if a := post(hdr, "thief@evil.test"); a.status != http.StatusForbidden {
			t.Errorf("POST with %v: %d, want 403", hdr, a.status)
		}
		if f := e.forwardOf(bobAddr); len(f.Targets) != 0 {
			t.Fatalf("POST with %v changed the forwarding: %v", hdr, f.Targets)
		}
	}
	// Login CSRF: another site's form logging the browser in.
	form := url.Values{"csrf": {b.csrf("/login")}, "address": {bobAddr}, "password": {bobPW}}
	req, err := http.NewRequestWithContext(t.Context(), "POST", e.srv.URL+"/login", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if a := b.do(req); a.status != http.StatusForbidden {
		t.Errorf("cross-site login: %d, want 403", a.status)
	}
	// The page's own form, and a client without the headers.
	for i, hdr := range []map[string]string{
		{"Sec-Fetch-Site": "same-origin", "Origin": e.srv.URL},
		{},
	} {
		target := []string{"a@elsewhere.test", "b@elsewhere.test"}[i]
		if a := post(hdr, target); a.status != http.StatusSeeOther {
			t.Fatalf("POST with %v: %d, want 303\n%s", hdr, a.status, a.body)
		}
		if f := e.forwardOf(bobAddr); len(f.Targets) != 1 || f.Targets[0] != target {
			t.Fatalf("POST with %v: forwarding %v, want %s", hdr, f.Targets, target)
		}
	}
}

// TestSiteOwnPasswordNeedsCurrent: the Site Manager's password reset
// (no current password) is for the domain's other accounts; an admin's
// own password is changed on its Password page with the current one, so
// that a session left open cannot take the account for good. Its own
// account page shows no reset form, and posting one (by any spelling of
// the address) changes nothing.
func TestSiteOwnPasswordNeedsCurrent(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login(adminAddr, adminPW)
	p := site("example.com", "/accounts/"+adminAddr)
	a := b.get(p)
	if a.status != http.StatusOK || strings.Contains(a.body, `id="save-password"`) || !strings.Contains(a.body, `href="/mail/info@example.com/password"`) {
		t.Errorf("own account page: %d, a reset form or no link to the Password page\n%s", a.status, a.body)
	}
	before := e.state()
	for _, addr := range []string{adminAddr, "INFO@example.com"} {
		a := b.submitTo(p, site("example.com", "/accounts/"+addr+"/password"), url.Values{"password": {"taken over"}, "password2": {"taken over"}})
		if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, `id="password-error"`) {
			t.Errorf("resetting one's own password as %s: %d, want 422 with the error at password\n%s", addr, a.status, a.body)
		}
	}
	if after := e.state(); after != before {
		t.Errorf("the refused resets changed something:\n%s\n%s", before, after)
	}
	if _, err := e.auth.Authenticate(t.Context(), nil, adminAddr, "taken over"); err == nil {
		t.Fatal("the admin's password was reset without the current one")
	}
	if _, err := e.auth.Authenticate(t.Context(), nil, adminAddr, adminPW); err != nil {
		t.Errorf("the admin's own password: %v", err)
	}
}
