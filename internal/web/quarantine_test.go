package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"yubin/admin"
	"yubin/internal/testutil"
	"yubin/store"
)

// hold puts raw in account's quarantine and returns its id.
func (e *env) hold(account, subject, raw string) string {
	e.t.Helper()
	d, err := e.st.Deliver(e.t.Context(), store.Delivery{Recipients: []string{account}, Message: []byte(raw),
		Quarantine: &store.QuarantineHold{QueueID: "Q1", Sender: "x@spam.test", From: "<script>alert('from')</script> <x@spam.test>",
			Subject: subject, Score: 0.97, Signals: []string{"bayes-domain:0.97"}}})
	testutil.Must(e.t, err)
	if len(d) != 1 || d[0].Quarantine == "" {
		e.t.Fatalf("not held: %+v", d)
	}
	return d[0].Quarantine
}

// evil is a message whose Subject, From and body carry script.
const evil = "From: \"<script>alert('name')</script>\" <x@spam.test>\r\n" +
	"Subject: <script>alert('subject')</script>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/html; charset=utf-8\r\n\r\n" +
	"<html><body><script>alert('body')</script><img src=x onerror=alert(1)><p>Cheap <b>pills</b></p></body></html>\r\n"

// TestQuarantineXSS: the list and the message show script in the
// Subject, From and body as text, never as markup.
func TestQuarantineXSS(t *testing.T) {
	e := newEnv(t)
	id := e.hold(bobAddr, "<script>alert('subject')</script>", evil)
	b := e.browser()
	b.login(bobAddr, bobPW)
	for _, p := range []string{mail(bobAddr, "quarantine"), mail(bobAddr, "quarantine/"+id)} {
		a := b.get(p)
		if a.status != http.StatusOK {
			t.Fatalf("GET %s: %d", p, a.status)
		}
		low := strings.ToLower(a.body)
		for _, bad := range []string{"<script", "<img", "onerror=", "<b>pills"} {
			if strings.Contains(low, bad) {
				t.Errorf("%s: %q is markup in the page\n%s", p, bad, a.body)
			}
		}
		if !strings.Contains(a.body, "&lt;script&gt;alert(&#39;subject&#39;)&lt;/script&gt;") {
			t.Errorf("%s: the subject is not shown escaped\n%s", p, a.body)
		}
	}
	a := b.get(mail(bobAddr, "quarantine/"+id))
	if !strings.Contains(a.body, "&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;") || !strings.Contains(a.body, "Cheap pills") {
		t.Errorf("the From field or the text is missing\n%s", a.body)
	}
}

// TestQuarantineActions: release puts the message in INBOX, delete
// removes it; another account's message is not found; no choice is an
// error at the field.
func TestQuarantineActions(t *testing.T) {
	e := newEnv(t)
	r := e.hold(bobAddr, "one", "Subject: one\r\n\r\nhello\r\n")
	d := e.hold(bobAddr, "two", "Subject: two\r\n\r\nhello\r\n")
	theirs := e.hold(adminAddr, "theirs", "Subject: theirs\r\n\r\nhello\r\n")
	b := e.browser()
	b.login(bobAddr, bobPW)
	p := mail(bobAddr, "quarantine")
	if a := b.get(mail(bobAddr, "quarantine/"+theirs)); a.status != http.StatusNotFound {
		t.Errorf("another's message: %d", a.status)
	}
	if a := b.submit(p, url.Values{"id": {theirs}, "action": {"delete"}}); a.status != http.StatusUnprocessableEntity {
		t.Errorf("deleting another's message: %d", a.status)
	}
	if a := b.submit(p, url.Values{"action": {"delete"}}); a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, `id="id-error"`) {
		t.Errorf("nothing chosen: %d", a.status)
	}
	if a := b.submit(p, url.Values{"id": {r}, "action": {"release"}}); a.status != http.StatusSeeOther {
		t.Fatalf("release: %d\n%s", a.status, a.body)
	}
	if a := b.submit(p, url.Values{"id": {d}, "action": {"delete"}}); a.status != http.StatusSeeOther {
		t.Fatalf("delete: %d\n%s", a.status, a.body)
	}
	left, err := admin.Do(t.Context(), e.svc, admin.OpQuarantineList, admin.QuarantineList{Of: "example.com"})
	testutil.Must(t, err)
	if len(left) != 1 || left[0].ID != theirs {
		t.Fatalf("left held: %+v", left)
	}
	det, err := admin.Do(t.Context(), e.svc, admin.OpAccountShow, bobAddr)
	testutil.Must(t, err)
	if det.Mailboxes[0].Name != "INBOX" || det.Mailboxes[0].Messages != 1 {
		t.Fatalf("INBOX after the release: %+v", det.Mailboxes)
	}
	// The admin's own Mail Manager lists its own held mail only.
	adm := e.browser()
	adm.login(adminAddr, adminPW)
	if a := adm.get(mail(adminAddr, "quarantine")); !strings.Contains(a.body, theirs) {
		t.Errorf("the admin's quarantine lacks its message")
	}
}

// TestSpamSettings: the form changes the policy through the admin
// service; a bad threshold or action is shown at its field and changes
// nothing.
func TestSpamSettings(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login(bobAddr, bobPW)
	p := mail(bobAddr, "spam")
	policy := func() admin.SpamState {
		st, err := admin.Do(t.Context(), e.svc, admin.OpSpamShow, bobAddr)
		testutil.Must(t, err)
		return st
	}
	before := policy()
	for _, c := range []struct {
		form  url.Values
		field string
	}{
		{url.Values{"action": {"quarantine"}, "threshold": {"1.5"}}, "threshold"},
		{url.Values{"action": {"quarantine"}, "threshold": {"abc"}}, "threshold"},
		{url.Values{"action": {"bin"}}, "action"},
		{url.Values{"threshold": {"0.7"}}, "action"},
	} {
		a := b.submit(p, c.form)
		if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, `id="`+c.field+`-error"`) {
			t.Errorf("%v: %d, want 422 with the error at %s\n%s", c.form, a.status, c.field, a.body)
		}
		if policy().SpamPolicy != before.SpamPolicy {
			t.Errorf("%v changed the policy", c.form)
		}
	}
	if a := b.submit(p, url.Values{"action": {"quarantine"}, "threshold": {"0.8"}, "tag": {"on"}}); a.status != http.StatusSeeOther {
		t.Fatalf("set: %d\n%s", a.status, a.body)
	}
	if got := policy(); got.Action != store.SpamQuarantine || got.Threshold != 0.8 || !got.Tag {
		t.Fatalf("policy %+v", got.SpamPolicy)
	}
	if a := b.submit(p, url.Values{"action": {"junk"}, "threshold": {""}}); a.status != http.StatusSeeOther {
		t.Fatalf("back to the default: %d", a.status)
	}
	if got := policy(); got.Action != store.SpamJunk || !got.DefaultThreshold || got.Tag {
		t.Fatalf("policy %+v", got.SpamPolicy)
	}
}

// TestStopsAndClients: the scan stops of the account only; the client
// settings name every listener that is on.
func TestStopsAndClients(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	testutil.Must(t, e.st.RecordStop(ctx, store.Stop{Time: time.Now(), QueueID: "Q1", Direction: "inbound", Sender: "a@remote.test",
		Recipients: []string{bobAddr}, Domains: []string{"example.com"}, Reasons: []string{"virus"}, Virus: "Eicar-Test-Signature", Action: "discarded"}))
	testutil.Must(t, e.st.RecordStop(ctx, store.Stop{Time: time.Now(), QueueID: "Q2", Direction: "inbound", Sender: "a@remote.test",
		Recipients: []string{adminAddr}, Domains: []string{"example.com"}, Reasons: []string{"virus"}, Virus: "Not-Bobs", Action: "discarded"}))
	b := e.browser()
	b.login(bobAddr, bobPW)
	a := b.get(mail(bobAddr, "stops"))
	if !strings.Contains(a.body, "Eicar-Test-Signature") || strings.Contains(a.body, "Not-Bobs") {
		t.Errorf("stops page:\n%s", a.body)
	}
	if a := b.get(mail(bobAddr, "stops") + "?days=0"); a.status != http.StatusBadRequest || !strings.Contains(a.body, `id="days-error"`) {
		t.Errorf("days=0: %d", a.status)
	}
	a = b.get(mail(bobAddr, "clients"))
	for _, want := range []string{"mail.example.com", "993", "143", "995", "465", "587", bobAddr} {
		if !strings.Contains(a.body, want) {
			t.Errorf("client settings lack %s", want)
		}
	}
	if strings.Contains(a.body, ">110<") {
		t.Errorf("client settings show POP3 110, which is off")
	}
}
