package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestForward: the form sets, replaces and stops forwarding through the
// admin service; bad input (11 targets, a malformed one, the account
// itself, an unknown local account) gets the form back with the error at
// the field and changes nothing.
func TestForward(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login(bobAddr, bobPW)
	p := mail(bobAddr, "forward")
	a := b.submit(p, url.Values{"targets": {"far@remote.test\r\ninfo@example.com"}, "keep_copy": {"on"}, "action": {"save"}})
	if a.status != http.StatusSeeOther {
		t.Fatalf("set: %d\n%s", a.status, a.body)
	}
	f := e.forwardOf(bobAddr)
	if !slices.Equal(f.Targets, []string{"far@remote.test", "info@example.com"}) || !f.KeepCopy {
		t.Fatalf("forward %+v", f)
	}
	if a := b.get(a.header.Get("Location")); !strings.Contains(a.body, `id="notice"`) || !strings.Contains(a.body, "far@remote.test\ninfo@example.com") {
		t.Fatalf("after saving:\n%s", a.body)
	}
	var eleven []string
	for i := range 11 {
		eleven = append(eleven, fmt.Sprintf("t%d@remote.test", i))
	}
	for _, bad := range []string{strings.Join(eleven, "\n"), "not an address", bobAddr, "Bob@www.example.com", "nobody@example.com"} {
		a := b.submit(p, url.Values{"targets": {bad}, "action": {"save"}})
		if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, `id="targets-error"`) {
			t.Errorf("targets %q: %d, want 422 with the error at the field\n%s", bad, a.status, a.body)
		}
		if g := e.forwardOf(bobAddr); !slices.Equal(g.Targets, f.Targets) || !g.KeepCopy {
			t.Errorf("targets %q changed the rule: %+v", bad, g)
		}
	}
	if a := b.submit(p, url.Values{"action": {"clear"}}); a.status != http.StatusSeeOther {
		t.Fatalf("clear: %d", a.status)
	}
	if g := e.forwardOf(bobAddr); len(g.Targets) != 0 {
		t.Fatalf("after clear: %+v", g)
	}
}

// TestCSRF: a form without its token, with a wrong one or with another
// session's is refused with 403 and changes nothing.
func TestCSRF(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login(bobAddr, bobPW)
	other := e.browser()
	other.login(bobAddr, bobPW)
	otherTok := other.csrf(mail(bobAddr, "forward"))
	form := func(tok string) url.Values {
		v := url.Values{"targets": {"thief@evil.test"}, "action": {"save"}}
		if tok != "" {
			v.Set("csrf", tok)
		}
		return v
	}
	for what, tok := range map[string]string{"none": "", "wrong": "AAAA", "another session's": otherTok} {
		for _, p := range []string{"forward", "spam", "password", "quarantine"} {
			a := b.post(mail(bobAddr, p), form(tok))
			if a.status != http.StatusForbidden {
				t.Errorf("%s token to %s: %d, want 403", what, p, a.status)
			}
		}
	}
	if f := e.forwardOf(bobAddr); len(f.Targets) != 0 {
		t.Fatalf("a refused form changed forwarding: %+v", f)
	}
	if a := b.post("/logout", url.Values{}); a.status != http.StatusForbidden {
		t.Errorf("logout without token: %d", a.status)
	}
	// A body that is not a form is refused before anything.
	req, _ := http.NewRequestWithContext(t.Context(), "POST", e.srv.URL+mail(bobAddr, "forward"), strings.NewReader(`{"targets":"x@y.test"}`))
	req.Header.Set("Content-Type", "application/json")
	if a := b.do(req); a.status != http.StatusBadRequest {
		t.Errorf("a JSON body: %d", a.status)
	}
	// Over the size limit.
	big := url.Values{"csrf": {b.csrf(mail(bobAddr, "forward"))}, "targets": {strings.Repeat("a", maxBody)}}
	if a := b.post(mail(bobAddr, "forward"), big); a.status != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over the limit: %d", a.status)
	}
}

// TestScope: a user opening another account's pages gets 403, whether
// the account exists or not; a domain admin may open the accounts of its
// domain (and its child's addresses) but not another domain's.
func TestScope(t *testing.T) {
	e := newEnv(t)
	bob := e.browser()
	bob.login(bobAddr, bobPW)
	for _, acct := range []string{adminAddr, carolAddr, "nobody@example.com", "nobody@nowhere.test"} {
		for _, p := range []string{"", "forward", "spam", "quarantine", "stops", "clients"} {
			if a := bob.get(mail(acct, p)); a.status != http.StatusForbidden {
				t.Errorf("bob opens %s: %d, want 403", mail(acct, p), a.status)
			}
		}
		a := bob.post(mail(acct, "forward"), url.Values{"csrf": {bob.csrf(mail(bobAddr, "forward"))}, "targets": {"thief@evil.test"}})
		if a.status != http.StatusForbidden {
			t.Errorf("bob posts to %s: %d, want 403", acct, a.status)
		}
	}
	adm := e.browser()
	adm.login(adminAddr, adminPW)
	for _, p := range []string{"", "forward", "spam", "quarantine", "stops", "clients"} {
		if a := adm.get(mail(bobAddr, p)); a.status != http.StatusOK {
			t.Errorf("the admin opens %s: %d", mail(bobAddr, p), a.status)
		}
		if a := adm.get(mail(carolAddr, p)); a.status != http.StatusForbidden {
			t.Errorf("the admin of example.com opens %s: %d, want 403", mail(carolAddr, p), a.status)
		}
	}
	if a := adm.get(mail("nobody@example.com", "")); a.status != http.StatusNotFound {
		t.Errorf("the admin opens an unknown account of its domain: %d, want 404", a.status)
	}
	// Another's password is the Site Manager's (a reset), not this page's.
	if a := adm.get(mail(bobAddr, "password")); a.status != http.StatusForbidden {
		t.Errorf("the admin opens bob's password page: %d, want 403", a.status)
	}
	a := adm.submit(mail(bobAddr, "forward"), url.Values{"targets": {"info@example.com"}, "action": {"save"}})
	if a.status != http.StatusSeeOther || len(e.forwardOf(bobAddr).Targets) != 1 {
		t.Errorf("the admin sets bob's forwarding: %d %+v", a.status, e.forwardOf(bobAddr))
	}
	carol := e.browser()
	carol.login(carolAddr, carolPW)
	a = carol.post(mail(bobAddr, "forward"), url.Values{"csrf": {carol.csrf(mail(carolAddr, "forward"))}, "action": {"clear"}})
	if a.status != http.StatusForbidden || len(e.forwardOf(bobAddr).Targets) != 1 {
		t.Errorf("carol of other.test clears bob's forwarding: %d %+v", a.status, e.forwardOf(bobAddr))
	}
}

// TestJapaneseErrors: in Japanese, the admin service's error (English,
// the CLI's words) comes after the page's own Japanese sentence.
func TestJapaneseErrors(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.get("/lang?to=ja&back=/login")
	b.login(bobAddr, bobPW)
	a := b.submit(mail(bobAddr, "forward"), url.Values{"targets": {"not an address"}, "action": {"save"}})
	if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, "転送先のアドレスを確認してください。（forward target: invalid address") {
		t.Fatalf("%d\n%s", a.status, a.body)
	}
}
