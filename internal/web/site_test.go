package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"yubin/admin"
	"yubin/internal/config"
	"yubin/internal/testutil"
	"yubin/internal/testutil/dnstest"
	"yubin/store"
)

// site is the Site Manager path of domain.
func site(domain, rest string) string { return "/site/" + domain + rest }

// submitTo posts form to action with the session's CSRF token, taken
// from the page at from (where the form is).
func (b *browser) submitTo(from, action string, form url.Values) answer {
	b.e.t.Helper()
	form.Set("csrf", b.csrf(from))
	return b.post(action, form)
}

// accountOf is the account as the admin service has it; ok false when
// there is none.
func (e *env) accountOf(addr string) (admin.AccountDetail, bool) {
	e.t.Helper()
	a, err := admin.Do(context.Background(), e.svc, admin.OpAccountShow, addr)
	if err != nil {
		return a, false
	}
	return a, true
}

// state is everything the Site Manager can change, for "nothing
// changed" checks.
func (e *env) state() string {
	e.t.Helper()
	ctx := context.Background()
	var b strings.Builder
	for _, d := range []string{"example.com", "other.test"} {
		as, err := admin.Do(ctx, e.svc, admin.OpAccountList, d)
		testutil.Must(e.t, err)
		ds, err := admin.Do(ctx, e.svc, admin.OpSettingsShow, d)
		testutil.Must(e.t, err)
		fmt.Fprintf(&b, "%+v\n", ds)
		for _, a := range as {
			sp, err := admin.Do(ctx, e.svc, admin.OpScanShow, a.Address)
			testutil.Must(e.t, err)
			c, err := e.svc.Caller(ctx, a.Address)
			testutil.Must(e.t, err)
			fmt.Fprintf(&b, "%+v %s %+v\n", a, c.Stamp, sp)
		}
	}
	return b.String()
}

// TestSiteScope: a user gets 403 on every Site Manager page and form; the
// admin of example.com gets 403 on other.test's, existing or not, and on
// other.test's accounts through its own domain's paths; nothing changes.
func TestSiteScope(t *testing.T) {
	e := newEnv(t)
	bob := e.browser()
	bob.login(bobAddr, bobPW)
	info := e.browser()
	info.login(adminAddr, adminPW)
	before := e.state()

	for _, p := range []string{"/site/", site("example.com", "/"), site("example.com", "/settings"), site("example.com", "/dns"),
		site("example.com", "/accounts/bob@example.com"), site("example.com", "/accounts/bob@example.com/remove")} {
		if a := bob.get(p); a.status != http.StatusForbidden {
			t.Errorf("user GET %s: %d, want 403", p, a.status)
		}
	}
	token := bob.csrf(mail(bobAddr, "forward"))
	for p, f := range map[string]url.Values{
		site("example.com", "/accounts"):                         {"local": {"x"}, "password": {"p"}, "password2": {"p"}},
		site("example.com", "/accounts/bob@example.com/quota"):   {"quota": {"0"}},
		site("example.com", "/accounts/bob@example.com/role"):    {"role": {"admin"}},
		site("example.com", "/accounts/info@example.com/remove"): {"confirm": {"info@example.com"}},
		site("example.com", "/settings"):                         {"warnings": {"off"}, "language": {"en"}},
	} {
		f.Set("csrf", token)
		if a := bob.post(p, f); a.status != http.StatusForbidden {
			t.Errorf("user POST %s: %d, want 403", p, a.status)
		}
	}

	if a := info.get("/site/"); a.status != http.StatusSeeOther || a.header.Get("Location") != site("example.com", "/") {
		t.Errorf("admin /site/: %d %s", a.status, a.header.Get("Location"))
	}
	if a := info.get(site("www.example.com", "/settings")); a.status != http.StatusSeeOther || a.header.Get("Location") != site("example.com", "/settings") {
		t.Errorf("child domain: %d %s", a.status, a.header.Get("Location"))
	}
	for _, p := range []string{site("other.test", "/"), site("other.test", "/settings"), site("other.test", "/dns"),
		site("other.test", "/accounts/carol@other.test"), site("nowhere.test", "/"), site("example.com", "/accounts/carol@other.test"),
		site("Other.Test", "/"), site("ample.com", "/")} {
		if a := info.get(p); a.status != http.StatusForbidden {
			t.Errorf("admin of example.com GET %s: %d, want 403", p, a.status)
		}
	}
	token = info.csrf(site("example.com", "/"))
	for p, f := range map[string]url.Values{
		site("other.test", "/accounts"):                           {"local": {"x"}, "password": {"p"}, "password2": {"p"}},
		site("other.test", "/accounts/carol@other.test/quota"):    {"quota": {"1M"}},
		site("other.test", "/accounts/carol@other.test/password"): {"password": {"p"}, "password2": {"p"}},
		site("example.com", "/accounts/carol@other.test/role"):    {"role": {"user"}},
		site("other.test", "/accounts/carol@other.test/scan"):     {"oversize": {"accept"}, "depth": {"accept"}, "extract_size": {"accept"}, "partial": {"accept"}, "encrypted": {"reject"}},
		site("other.test", "/accounts/carol@other.test/remove"):   {"confirm": {"carol@other.test"}},
		site("other.test", "/settings"):                           {"warnings": {"off"}, "language": {"en"}},
		site("other.test", "/dns"):                                {},
	} {
		f.Set("csrf", token)
		if a := info.post(p, f); a.status != http.StatusForbidden {
			t.Errorf("admin of example.com POST %s: %d, want 403", p, a.status)
		}
	}
	// A form without its token changes nothing either.
	if a := info.post(site("example.com", "/accounts/bob@example.com/quota"), url.Values{"quota": {"1"}}); a.status != http.StatusForbidden {
		t.Errorf("without CSRF: %d", a.status)
	}
	if after := e.state(); after != before {
		t.Errorf("refused requests changed something:\n%s\n%s", before, after)
	}
}

// TestSiteAccounts: the list with usage; adding an account through the
// admin service; bad input gets the form back with the error at its
// field and adds nothing.
func TestSiteAccounts(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login(adminAddr, adminPW)
	p := site("example.com", "/")
	a := b.get(p)
	if a.status != 200 || !strings.Contains(a.body, `href="/site/example.com/accounts/bob@example.com"`) || !strings.Contains(a.body, "0 B of 10.0 MiB") ||
		!strings.Contains(a.body, `<span id="app">Site Manager</span>`) || !strings.Contains(a.body, `<a href="/site/" class="here">`) ||
		strings.Contains(a.body, carolAddr) || !strings.Contains(a.body, "www.example.com") {
		t.Fatalf("accounts page: %d\n%s", a.status, a.body)
	}
	before := e.state()
	for _, c := range []struct {
		form  url.Values
		field string
	}{
		{url.Values{"local": {""}, "password": {"pw"}, "password2": {"pw"}}, "local"},
		{url.Values{"local": {"x@other.test"}, "password": {"pw"}, "password2": {"pw"}}, "local"},
		{url.Values{"local": {"a b"}, "password": {"pw"}, "password2": {"pw"}}, "local"},
		{url.Values{"local": {"bob"}, "password": {"pw"}, "password2": {"pw"}}, "local"},
		{url.Values{"local": {"new"}, "password": {""}, "password2": {""}}, "password"},
		{url.Values{"local": {"new"}, "password": {"pw"}, "password2": {"other"}}, "password2"},
		{url.Values{"local": {"new"}, "password": {"pw"}, "password2": {"pw"}, "quota": {"5 apples"}}, "quota"},
		{url.Values{"local": {"new"}, "password": {"pw"}, "password2": {"pw"}, "quota": {"-1G"}}, "quota"},
		{url.Values{"local": {"new"}, "password": {"pw"}, "password2": {"pw"}, "role": {"root"}}, "role"},
	} {
		a := b.submitTo(p, site("example.com", "/accounts"), c.form)
		if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, `id="`+c.field+`-error"`) {
			t.Errorf("%v: %d, want 422 with the error at %s\n%s", c.form, a.status, c.field, a.body)
		}
		if l := c.form.Get("local"); l != "" && !strings.Contains(a.body, `value="`+l+`"`) {
			t.Errorf("%v: the form did not come back filled in", c.form)
		}
	}
	if after := e.state(); after != before {
		t.Errorf("refused adds changed something:\n%s\n%s", before, after)
	}
	a = b.submitTo(p, site("example.com", "/accounts"), url.Values{"local": {"New.User"}, "password": {"new pw"}, "password2": {"new pw"}, "quota": {"2G"}, "role": {"user"}})
	if a.status != http.StatusSeeOther {
		t.Fatalf("add: %d\n%s", a.status, a.body)
	}
	acct, ok := e.accountOf("new.user@example.com")
	if !ok || acct.Quota != 2<<30 || acct.Role != admin.RoleUser {
		t.Fatalf("added %+v %v", acct, ok)
	}
	if _, err := e.auth.Authenticate(context.Background(), nil, "new.user@example.com", "new pw"); err != nil {
		t.Fatalf("the new account's password: %v", err)
	}
	if a := b.get(a.header.Get("Location")); !strings.Contains(a.body, `id="notice"`) || !strings.Contains(a.body, "new.user@example.com") {
		t.Fatalf("after adding:\n%s", a.body)
	}
	// Without a quota: the server's default.
	b.submitTo(p, site("example.com", "/accounts"), url.Values{"local": {"plain"}, "password": {"x"}, "password2": {"x"}, "role": {"admin"}})
	if acct, ok := e.accountOf("plain@example.com"); !ok || acct.Quota != 0 || acct.Role != admin.RoleAdmin {
		t.Fatalf("added without a quota: %+v %v", acct, ok)
	}
}

// TestSiteAccount: quota, role, password reset and scan policy of one
// account, each refused with the error at its field for bad input.
func TestSiteAccount(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login(adminAddr, adminPW)
	bob := e.browser()
	bob.login(bobAddr, bobPW)
	p := site("example.com", "/accounts/bob@example.com")
	a := b.get(p)
	if a.status != 200 || !strings.Contains(a.body, `value="10M"`) || !strings.Contains(a.body, `href="/mail/bob@example.com/forward"`) {
		t.Fatalf("account page: %d\n%s", a.status, a.body)
	}

	before := e.state()
	for _, c := range []struct {
		action string
		form   url.Values
		field  string
	}{
		{"/quota", url.Values{"quota": {"lots"}}, "quota"},
		{"/quota", url.Values{"quota": {""}}, "quota"},
		{"/quota", url.Values{"quota": {"-5M"}}, "quota"},
		{"/role", url.Values{"role": {"root"}}, "role"},
		{"/password", url.Values{"password": {""}, "password2": {""}}, "password"},
		{"/password", url.Values{"password": {"a"}, "password2": {"b"}}, "password2"},
		{"/scan", url.Values{"oversize": {"explode"}, "depth": {"accept"}, "extract_size": {"accept"}, "partial": {"accept"}, "encrypted": {"reject"}}, "scan"},
		{"/scan", url.Values{"oversize": {"accept"}, "depth": {"accept"}, "extract_size": {"accept"}, "partial": {"accept"}, "encrypted": {"discard"}}, "scan"},
		{"/scan", url.Values{"oversize": {"accept"}}, "scan"},
	} {
		a := b.submitTo(p, p+c.action, c.form)
		if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, `id="`+c.field+`-error"`) {
			t.Errorf("%s %v: %d, want 422 with the error at %s\n%s", c.action, c.form, a.status, c.field, a.body)
		}
	}
	// The admin's own role stays admin.
	if a := b.submitTo(p, site("example.com", "/accounts/info@example.com/role"), url.Values{"role": {"user"}}); a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, `id="role-error"`) {
		t.Errorf("demoting oneself: %d\n%s", a.status, a.body)
	}
	if after := e.state(); after != before {
		t.Errorf("refused forms changed something:\n%s\n%s", before, after)
	}

	if a := b.submitTo(p, p+"/quota", url.Values{"quota": {"1.5G"}}); a.status != http.StatusSeeOther {
		t.Fatalf("quota: %d\n%s", a.status, a.body)
	}
	if acct, _ := e.accountOf(bobAddr); acct.Quota != 3<<29 {
		t.Errorf("quota %d", acct.Quota)
	}
	if a := b.submitTo(p, p+"/role", url.Values{"role": {"admin"}}); a.status != http.StatusSeeOther {
		t.Fatalf("role: %d\n%s", a.status, a.body)
	}
	if acct, _ := e.accountOf(bobAddr); acct.Role != admin.RoleAdmin {
		t.Errorf("role %q", acct.Role)
	}
	b.submitTo(p, p+"/role", url.Values{"role": {"user"}})
	if a := b.submitTo(p, p+"/scan", url.Values{"oversize": {"accept"}, "depth": {"discard"}, "extract_size": {"accept"}, "partial": {"discard"}, "encrypted": {"reject"}}); a.status != http.StatusSeeOther {
		t.Fatalf("scan: %d\n%s", a.status, a.body)
	}
	sp, err := admin.Do(context.Background(), e.svc, admin.OpScanShow, bobAddr)
	testutil.Must(t, err)
	if sp.Oversize != store.ScanAccept || sp.Depth != store.ScanDiscard || sp.ExtractSize != store.ScanAccept || sp.Encrypted != store.ScanReject {
		t.Errorf("scan policy %+v", sp)
	}
	// A password reset: bob's session ends, the new password logs in.
	if a := b.submitTo(p, p+"/password", url.Values{"password": {"reset pw"}, "password2": {"reset pw"}}); a.status != http.StatusSeeOther {
		t.Fatalf("password: %d\n%s", a.status, a.body)
	}
	if a := bob.get(mail(bobAddr, "")); !loggedOut(a) {
		t.Errorf("bob's session outlived the reset: %d", a.status)
	}
	if _, err := e.auth.Authenticate(context.Background(), nil, bobAddr, "reset pw"); err != nil {
		t.Errorf("the new password: %v", err)
	}
	// The admin opens bob's forwarding page of the Mail Manager and sets it.
	if a := b.submit(mail(bobAddr, "forward"), url.Values{"targets": {"far@remote.test"}, "action": {"save"}}); a.status != http.StatusSeeOther {
		t.Fatalf("forward as the admin: %d\n%s", a.status, a.body)
	}
	if f := e.forwardOf(bobAddr); len(f.Targets) != 1 {
		t.Errorf("forward %+v", f)
	}
	// And its spam filter.
	if a := b.submit(mail(bobAddr, "spam"), url.Values{"action": {"quarantine"}, "threshold": {"0.7"}}); a.status != http.StatusSeeOther {
		t.Fatalf("spam policy as the admin: %d\n%s", a.status, a.body)
	}
	sp2, err := admin.Do(context.Background(), e.svc, admin.OpSpamShow, bobAddr)
	testutil.Must(t, err)
	if sp2.Action != store.SpamQuarantine || sp2.Threshold != 0.7 {
		t.Errorf("spam policy %+v", sp2.SpamPolicy)
	}
}

// TestSiteRemove: removal takes the confirmation page and the address
// typed; a wrong one removes nothing; the admin's own account cannot be
// removed.
func TestSiteRemove(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login(adminAddr, adminPW)
	p := site("example.com", "/accounts/bob@example.com")
	if a := b.get(p + "/remove"); a.status != 200 || !strings.Contains(a.body, `id="remove-warning"`) {
		t.Fatalf("confirmation page: %d\n%s", a.status, a.body)
	}
	for _, typed := range []string{"", "bob", "info@example.com"} {
		if a := b.submitTo(p+"/remove", p+"/remove", url.Values{"confirm": {typed}}); a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, `id="confirm-error"`) {
			t.Errorf("confirm %q: %d\n%s", typed, a.status, a.body)
		}
		if _, ok := e.accountOf(bobAddr); !ok {
			t.Fatalf("confirm %q removed the account", typed)
		}
	}
	self := site("example.com", "/accounts/info@example.com/remove")
	if a := b.submitTo(p, self, url.Values{"confirm": {adminAddr}}); a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, `id="confirm-error"`) {
		t.Errorf("removing oneself: %d", a.status)
	}
	if _, ok := e.accountOf(adminAddr); !ok {
		t.Fatal("the admin removed itself")
	}
	a := b.submitTo(p+"/remove", p+"/remove", url.Values{"confirm": {"Bob@Example.com"}})
	if a.status != http.StatusSeeOther || a.header.Get("Location") != site("example.com", "/?done=account-remove") {
		t.Fatalf("remove: %d %s\n%s", a.status, a.header.Get("Location"), a.body)
	}
	if _, ok := e.accountOf(bobAddr); ok {
		t.Fatal("bob is still there")
	}
	if a := b.get(p); a.status != http.StatusNotFound {
		t.Errorf("the removed account's page: %d", a.status)
	}
}

// TestSiteSettings: warnings, their language and the report address in
// one form, all or nothing.
func TestSiteSettings(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login(adminAddr, adminPW)
	p := site("example.com", "/settings")
	if a := b.get(p); a.status != 200 || !strings.Contains(a.body, `id="warnings-on" name="warnings" value="on" checked`) {
		t.Fatalf("settings page: %d\n%s", a.status, a.body)
	}
	before := e.state()
	for _, c := range []struct {
		form  url.Values
		field string
	}{
		{url.Values{"warnings": {"off"}, "language": {"ja"}, "report_to": {carolAddr}}, "report_to"},
		{url.Values{"warnings": {"off"}, "language": {"ja"}, "report_to": {"nobody@example.com"}}, "report_to"},
		{url.Values{"warnings": {"off"}, "language": {"ja"}, "report_to": {"not an address"}}, "report_to"},
		{url.Values{"warnings": {"off"}, "language": {"fr"}, "report_to": {bobAddr}}, "language"},
		{url.Values{"warnings": {"maybe"}, "language": {"ja"}, "report_to": {bobAddr}}, "warnings"},
		{url.Values{"language": {"ja"}}, "warnings"},
	} {
		a := b.submit(p, c.form)
		if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, `id="`+c.field+`-error"`) {
			t.Errorf("%v: %d, want 422 with the error at %s\n%s", c.form, a.status, c.field, a.body)
		}
	}
	if after := e.state(); after != before {
		t.Errorf("refused settings changed something:\n%s\n%s", before, after)
	}
	if a := b.submit(p, url.Values{"warnings": {"off"}, "language": {"ja"}, "report_to": {"bob@www.example.com"}}); a.status != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", a.status, a.body)
	}
	ds, err := admin.Do(context.Background(), e.svc, admin.OpSettingsShow, "example.com")
	testutil.Must(t, err)
	if ds.Warnings || ds.Language != "ja" || ds.ReportTo != "bob@www.example.com" {
		t.Errorf("settings %+v", ds)
	}
	if a := b.submit(p, url.Values{"warnings": {"on"}, "language": {"both"}, "report_to": {""}}); a.status != http.StatusSeeOther {
		t.Fatalf("save: %d", a.status)
	}
	ds, _ = admin.Do(context.Background(), e.svc, admin.OpSettingsShow, "example.com")
	if !ds.Warnings || ds.Language != "both" || ds.ReportTo != "" {
		t.Errorf("settings %+v", ds)
	}
}

// TestSiteDNS: the records of the domain and its children, and the live
// check against a DNS server that has some of them.
func TestSiteDNS(t *testing.T) {
	e := newEnv(t)
	zones, err := dnstest.Parse(strings.NewReader("example.com. MX 10 mail.example.com.\nwww.example.com. MX 10 elsewhere.example.\n"), "")
	testutil.Must(t, err)
	cfg := config.Default()
	cfg.Hostname = "mail.example.com"
	e.svc.SetDNS(admin.DNSSettings(cfg), dnstest.NewServer(t, zones).Addr())
	b := e.browser()
	b.login(adminAddr, adminPW)
	p := site("example.com", "/dns")
	a := b.get(p)
	if a.status != 200 || !strings.Contains(a.body, "_dmarc.www.example.com.") || !strings.Contains(a.body, "yubin-ed25519._domainkey.example.com.") ||
		strings.Contains(a.body, "other.test") || strings.Contains(a.body, `id="checked"`) {
		t.Fatalf("DNS page: %d\n%s", a.status, a.body)
	}
	a = b.submit(p, url.Values{})
	if a.status != 200 || !strings.Contains(a.body, `id="checked"`) {
		t.Fatalf("check: %d\n%s", a.status, a.body)
	}
	row := func(name, typ string) string {
		i := strings.Index(a.body, "<td>"+name+"</td><td>"+typ+"</td>")
		if i < 0 {
			t.Fatalf("no row for %s %s:\n%s", name, typ, a.body)
		}
		return a.body[strings.LastIndex(a.body[:i], "<tr"):i]
	}
	if r := row("example.com.", "MX"); !strings.Contains(r, "dns-ok") {
		t.Errorf("MX of example.com: %s", r)
	}
	if r := row("www.example.com.", "MX"); !strings.Contains(r, "dns-different") {
		t.Errorf("MX of www.example.com: %s", r)
	}
	if r := row("_dmarc.example.com.", "TXT"); !strings.Contains(r, "dns-missing") {
		t.Errorf("DMARC: %s", r)
	}
	if !strings.Contains(a.body, `id="dns-summary"`) {
		t.Errorf("no summary")
	}
}

// TestSiteJapanese: the Site Manager in Japanese, an admin service error
// after the page's own Japanese sentence.
func TestSiteJapanese(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.get("/lang?to=ja&back=/login")
	b.login(adminAddr, adminPW)
	p := site("example.com", "/")
	a := b.get(p)
	if !strings.Contains(a.body, "アカウントの追加") || !strings.Contains(a.body, `<span id="app">サイトマネージャー</span>`) {
		t.Fatalf("not Japanese:\n%s", a.body)
	}
	a = b.submitTo(p, site("example.com", "/accounts"), url.Values{"local": {"bob"}, "password": {"x"}, "password2": {"x"}})
	if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, "入力内容を確認してください。（") || !strings.Contains(a.body, "already exists") {
		t.Fatalf("%d\n%s", a.status, a.body)
	}
}
