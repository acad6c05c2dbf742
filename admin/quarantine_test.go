package admin

import (
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"yubin/internal/testutil"
	"yubin/store"
)

// holdMessage puts raw into the quarantine of account, as the spam stage
// does, and returns the entry's id.
func holdMessage(t *testing.T, st store.Store, account, raw string) string {
	t.Helper()
	d, err := st.Deliver(ctx, store.Delivery{Recipients: []string{account}, Message: []byte(raw),
		Quarantine: &store.QuarantineHold{QueueID: "Q1", Sender: "x@spam.test", From: "Spammer <x@spam.test>",
			Subject: "cheap pills", Score: 0.97, Signals: []string{"bayes-domain:0.97"}}})
	testutil.Must(t, err)
	if len(d) != 1 || d[0].Quarantine == "" {
		t.Fatalf("not held: %+v", d)
	}
	return d[0].Quarantine
}

func entryIDs(es []QuarantineEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.ID)
	}
	slices.Sort(out)
	return out
}

func sorted(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

// TestQuarantineScopes: a user sees and touches only their own held mail,
// a domain admin only their domain's, the server's owner everything; what
// is outside a scope is answered like what does not exist.
func TestQuarantineScopes(t *testing.T) {
	svc, st := newService(t)
	populate(t, svc)
	_, err := Do(ctx, svc, OpDomainAdd, NewDomain{Name: "ample.com"}) // a suffix of example.com
	testutil.Must(t, err)
	_, err = Do(ctx, svc, OpAccountAdd, NewAccount{Address: "eve@ample.com", Password: "pw"})
	testutil.Must(t, err)
	info := holdMessage(t, st, "info@example.com", "Subject: a\r\n\r\na\r\n")
	bob := holdMessage(t, st, "bob@example.com", "Subject: b\r\n\r\nb\r\n")
	carol := holdMessage(t, st, "carol@other.test", "Subject: c\r\n\r\nc\r\n")
	eve := holdMessage(t, st, "eve@ample.com", "Subject: e\r\n\r\ne\r\n")

	userScope, err := svc.QuarantineScopeOf(ctx, "Bob@Example.com")
	testutil.Must(t, err)
	adminScope, err := svc.QuarantineScopeOf(ctx, "info@example.com")
	testutil.Must(t, err)
	if userScope != (QuarantineScope{Account: "bob@example.com"}) || adminScope != (QuarantineScope{Domain: "example.com"}) {
		t.Fatalf("scopes: user %+v, admin %+v", userScope, adminScope)
	}
	owner := QuarantineScope{}

	list := func(sc QuarantineScope, of string) ([]string, error) {
		es, err := Do(ctx, svc, OpQuarantineList, QuarantineList{Of: of, Scope: sc})
		return entryIDs(es), err
	}
	for _, c := range []struct {
		scope QuarantineScope
		of    string
		want  []string
		kind  error
	}{
		{owner, "example.com", sorted(info, bob), nil},
		{owner, "www.example.com", sorted(info, bob), nil}, // a child: its parent's accounts
		{owner, "ample.com", []string{eve}, nil},
		{owner, "carol@other.test", []string{carol}, nil},
		{owner, "nobody@other.test", nil, store.ErrNoSuchAccount},
		{owner, "nowhere.test", nil, store.ErrNoSuchDomain},
		{adminScope, "example.com", sorted(info, bob), nil},
		{adminScope, "www.example.com", sorted(info, bob), nil},
		{adminScope, "bob@example.com", []string{bob}, nil},
		{adminScope, "other.test", nil, ErrDenied},
		{adminScope, "ample.com", nil, ErrDenied},
		{adminScope, "carol@other.test", nil, ErrDenied},
		{adminScope, "nobody@other.test", nil, ErrDenied}, // not "unknown account": not the admin's business
		{adminScope, "nowhere.test", nil, ErrDenied},
		{userScope, "bob@example.com", []string{bob}, nil},
		{userScope, "BOB@example.com", []string{bob}, nil},
		{userScope, "info@example.com", nil, ErrDenied},
		{userScope, "example.com", nil, ErrDenied},
		{QuarantineScope{Account: "bob@example.com", Domain: "example.com"}, "bob@example.com", nil, store.ErrInvalid},
	} {
		got, err := list(c.scope, c.of)
		if c.kind != nil {
			if !errors.Is(err, c.kind) {
				t.Errorf("%+v lists %s: %v, %v; want %v", c.scope, c.of, got, err, c.kind)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%+v lists %s: %v, %v; want %v", c.scope, c.of, got, err, c.want)
		}
	}

	// Out of scope: show, release and delete find nothing, and change nothing.
	for _, c := range []struct {
		scope QuarantineScope
		id    string
	}{{userScope, info}, {userScope, carol}, {adminScope, carol}, {adminScope, eve}, {owner, "nosuchid"}} {
		if _, err := Do(ctx, svc, OpQuarantineShow, QuarantineShow{ID: c.id, Scope: c.scope}); !errors.Is(err, store.ErrNoSuchMessage) || err.Error() != "no quarantined message "+c.id {
			t.Errorf("%+v shows %s: %v", c.scope, c.id, err)
		}
		if _, err := Do(ctx, svc, OpQuarantineRelease, QuarantineIDs{IDs: []string{bob, c.id}, Scope: c.scope}); !errors.Is(err, store.ErrNoSuchMessage) {
			t.Errorf("%+v releases %s: %v", c.scope, c.id, err)
		}
		if n, err := Do(ctx, svc, OpQuarantineDelete, QuarantineIDs{IDs: []string{c.id}, Scope: c.scope}); n != 0 || !errors.Is(err, store.ErrNoSuchMessage) {
			t.Errorf("%+v deletes %s: %d, %v", c.scope, c.id, n, err)
		}
	}
	if got, _ := list(owner, "example.com"); !slices.Equal(got, sorted(info, bob)) {
		t.Fatalf("after refused operations example.com holds %v", got)
	}
	if got, _ := list(owner, "other.test"); !slices.Equal(got, []string{carol}) {
		t.Fatalf("after refused operations other.test holds %v", got)
	}

	// In scope they work.
	if m, err := Do(ctx, svc, OpQuarantineShow, QuarantineShow{ID: bob, Scope: userScope}); err != nil || m.Account != "bob@example.com" || m.Text != "b\n" {
		t.Errorf("bob shows his own: %+v, %v", m, err)
	}
	if r, err := Do(ctx, svc, OpQuarantineRelease, QuarantineIDs{IDs: []string{bob}, Scope: adminScope}); err != nil || len(r) != 1 || r[0].Account != "bob@example.com" || r[0].Mailbox != "INBOX" {
		t.Errorf("the admin releases bob's: %+v, %v", r, err)
	}
	if n, err := Do(ctx, svc, OpQuarantineDelete, QuarantineIDs{IDs: []string{carol, carol}}); n != 1 || err != nil {
		t.Errorf("the owner deletes carol's (named twice): %d, %v", n, err)
	}
	if got, _ := list(owner, "example.com"); !slices.Equal(got, []string{info}) {
		t.Errorf("example.com holds %v, want only info's", got)
	}
}

// TestQuarantineReleaseOnce: a release delivers the message to INBOX byte
// for byte and learns it as ham; releasing again, or many times at once,
// delivers it once.
func TestQuarantineReleaseOnce(t *testing.T) {
	svc, st := newService(t)
	populate(t, svc)
	raw := "From: Shop <shop@spam.test>\r\nSubject: =?UTF-8?B?5pel5pys?=\r\n\r\nnot spam after all\r\n\x00odd bytes \xff kept\r\n"
	id := holdMessage(t, st, "bob@example.com", raw)

	var wg sync.WaitGroup
	var mu sync.Mutex
	var released []QuarantineReleased
	var errs []error
	for range 8 {
		wg.Go(func() {
			r, err := Do(ctx, svc, OpQuarantineRelease, QuarantineIDs{IDs: []string{id}})
			mu.Lock()
			defer mu.Unlock()
			released = append(released, r...)
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	if len(released) != 1 || len(errs) != 7 {
		t.Fatalf("8 releases at once: %d released, errors %v", len(released), errs)
	}
	for _, err := range errs {
		if !errors.Is(err, store.ErrNoSuchMessage) {
			t.Errorf("a second release: %v", err)
		}
	}
	if _, err := Do(ctx, svc, OpQuarantineRelease, QuarantineIDs{IDs: []string{id}}); !errors.Is(err, store.ErrNoSuchMessage) || err.Error() != "no quarantined message "+id {
		t.Errorf("releasing again: %v", err)
	}
	msgs, _, err := st.Messages(ctx, "bob@example.com", "INBOX")
	testutil.Must(t, err)
	if len(msgs) != 1 {
		t.Fatalf("INBOX holds %d messages, want 1", len(msgs))
	}
	r, _, err := st.OpenMessage(ctx, "bob@example.com", "INBOX", msgs[0].UID)
	testutil.Must(t, err)
	got, _ := io.ReadAll(r)
	r.Close()
	if got := string(got); got != raw {
		t.Errorf("released message:\n%q\nwant byte for byte\n%q", got, raw)
	}
	if c, err := st.SpamTrained(ctx, store.MessageRef{Account: "bob@example.com", Mailbox: "INBOX", UID: msgs[0].UID}); c != store.Ham || err != nil {
		t.Errorf("the released message was trained as %v, %v; want ham", c, err)
	}
	if tot, _ := st.SpamTotals(ctx, "example.com"); tot.Ham != 1 {
		t.Errorf("the domain's model: %+v, want 1 ham", tot)
	}

	// Several ids, one of them unknown: nothing is released.
	a := holdMessage(t, st, "bob@example.com", "Subject: a\r\n\r\na\r\n")
	if _, err := Do(ctx, svc, OpQuarantineRelease, QuarantineIDs{IDs: []string{a, id}}); !errors.Is(err, store.ErrNoSuchMessage) {
		t.Fatalf("release with an unknown id: %v", err)
	}
	if held, _ := Do(ctx, svc, OpQuarantineList, QuarantineList{Of: "bob@example.com"}); len(held) != 1 {
		t.Errorf("held after a refused release: %v", entryIDs(held))
	}
	// A release that does not fit the quota keeps the entry.
	testutil.Must(t, st.SetQuota(ctx, "bob@example.com", 10))
	if _, err := Do(ctx, svc, OpQuarantineRelease, QuarantineIDs{IDs: []string{a}}); err == nil || !strings.Contains(err.Error(), "not released") {
		t.Errorf("release over quota: %v", err)
	}
	if held, _ := Do(ctx, svc, OpQuarantineList, QuarantineList{Of: "bob@example.com"}); len(held) != 1 {
		t.Errorf("held after a release over quota: %v", entryIDs(held))
	}
	if _, err := Do(ctx, svc, OpQuarantineRelease, QuarantineIDs{}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("release without ids: %v", err)
	}
}

// TestQuarantineShowNoActiveHTML: a held HTML message is shown as text,
// without its scripts, and its JSON carries no markup either.
func TestQuarantineShowNoActiveHTML(t *testing.T) {
	svc, st := newService(t)
	populate(t, svc)
	id := holdMessage(t, st, "bob@example.com", "From: x@spam.test\r\nSubject: <script>alert('subject')</script>win\r\n"+
		"Content-Type: text/html\r\n\r\n"+
		"<html><body onload=\"x()\"><script>alert('body')</script><p>You <b>won</b>!</p>"+
		"<a href=\"http://phish.test/\">claim</a><iframe src=\"http://evil.test/\"></iframe></body></html>\r\n")
	m, err := Do(ctx, svc, OpQuarantineShow, QuarantineShow{ID: id})
	testutil.Must(t, err)
	if m.Text != "You won!\n\nclaim [http://phish.test/]\n" {
		t.Errorf("text %q", m.Text)
	}
	if strings.Contains(m.View.String(), "alert('body')") || strings.Contains(m.View.String(), "<p>") {
		t.Errorf("shown:\n%s", m.View)
	}
	b, err := json.Marshal(m)
	testutil.Must(t, err)
	if strings.ContainsAny(string(b), "<>") {
		t.Errorf("JSON with markup: %s", b)
	}
	if m.Subject != "cheap pills" || m.Score != 0.97 || len(m.Parts) != 1 {
		t.Errorf("entry %+v", m)
	}
}
