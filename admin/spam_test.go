package admin

import (
	"errors"
	"strings"
	"testing"

	"yubin/internal/spam"
	"yubin/internal/testutil"
	"yubin/store"
)

func TestSpamPolicy(t *testing.T) {
	svc, _ := newService(t)
	populate(t, svc)
	show := func() SpamState {
		t.Helper()
		s, err := Do(ctx, svc, OpSpamShow, "bob@example.com")
		testutil.Must(t, err)
		return s
	}
	if p := show().SpamPolicy; p != (SpamPolicy{Address: "bob@example.com", Action: store.SpamJunk, Threshold: store.DefaultSpamThreshold, DefaultThreshold: true}) {
		t.Errorf("default policy %+v", p)
	}
	p, err := Do(ctx, svc, OpSpamPolicy, SpamPolicyChange{Address: "Bob@Example.com", Action: "Quarantine", Threshold: "0.8", Tag: "on"})
	testutil.Must(t, err)
	want := SpamPolicy{Address: "bob@example.com", Action: store.SpamQuarantine, Threshold: 0.8, Tag: true}
	if p != want || show().SpamPolicy != want {
		t.Errorf("policy %+v, shown %+v; want %+v", p, show().SpamPolicy, want)
	}
	// Only what is given changes.
	p, err = Do(ctx, svc, OpSpamPolicy, SpamPolicyChange{Address: "bob@example.com", Tag: "off"})
	testutil.Must(t, err)
	if want.Tag = false; p != want {
		t.Errorf("after --tag=off: %+v", p)
	}
	for _, c := range []struct {
		change SpamPolicyChange
		kind   error
		msg    string
	}{
		{SpamPolicyChange{Address: "bob@example.com"}, store.ErrInvalid, "nothing to change (give an action, a threshold or a tag setting)"},
		{SpamPolicyChange{Address: "bob@example.com", Action: "delete"}, store.ErrInvalid, `spam action must be off, junk or quarantine, not "delete"`},
		{SpamPolicyChange{Address: "bob@example.com", Action: "off", Threshold: "0"}, store.ErrInvalid, `spam threshold must be a number above 0 and at most 1 (e.g. 0.7), not "0"`},
		{SpamPolicyChange{Address: "bob@example.com", Threshold: "1.01"}, store.ErrInvalid, `spam threshold must be a number above 0 and at most 1 (e.g. 0.7), not "1.01"`},
		{SpamPolicyChange{Address: "bob@example.com", Threshold: "NaN"}, store.ErrInvalid, `spam threshold must be a number above 0 and at most 1 (e.g. 0.7), not "NaN"`},
		{SpamPolicyChange{Address: "bob@example.com", Action: "off", Tag: "yes"}, store.ErrInvalid, `spam tag must be on or off, not "yes"`},
		{SpamPolicyChange{Address: "nobody@example.com", Action: "off"}, store.ErrNoSuchAccount, "unknown account nobody@example.com"},
		{SpamPolicyChange{Address: "not an address", Action: "off"}, store.ErrInvalid, `invalid address "not an address"`},
	} {
		_, err := Do(ctx, svc, OpSpamPolicy, c.change)
		if !errors.Is(err, c.kind) || !strings.HasPrefix(err.Error(), c.msg) {
			t.Errorf("%+v: %v, want %q", c.change, err, c.msg)
		}
	}
	if got := show().SpamPolicy; got != want {
		t.Errorf("refused changes changed the policy: %+v", got)
	}
	p, err = Do(ctx, svc, OpSpamPolicy, SpamPolicyChange{Address: "bob@example.com", Threshold: "default"})
	testutil.Must(t, err)
	if p.Threshold != store.DefaultSpamThreshold || !p.DefaultThreshold {
		t.Errorf("threshold back to the default: %+v", p)
	}
	if _, err := Do(ctx, svc, OpSpamShow, "nobody@example.com"); !errors.Is(err, store.ErrNoSuchAccount) {
		t.Errorf("show of an unknown account: %v", err)
	}
}

func TestSpamRejectScore(t *testing.T) {
	svc, _ := newService(t)
	populate(t, svc)
	set := func(domain, v string) (DomainSettings, error) {
		return Do(ctx, svc, OpSettingsUpdate, SettingsUpdate{Domain: domain, Change: SettingsChange{SpamRejectScore: &v}})
	}
	ds, err := set("example.com", "0.95")
	testutil.Must(t, err)
	if ds.SpamRejectScore != 0.95 {
		t.Errorf("settings %+v", ds)
	}
	if s, _ := Do(ctx, svc, OpSpamShow, "bob@example.com"); s.RejectScore != 0.95 {
		t.Errorf("spam show: reject score %v", s.RejectScore)
	}
	for v, msg := range map[string]string{
		"0.5":  `the spam reject score must be a number above 0.5 and at most 1 (e.g. 0.7), not "0.5", or off`,
		"2":    `the spam reject score must be a number above 0.5 and at most 1 (e.g. 0.7), not "2", or off`,
		"high": `the spam reject score must be a number above 0.5 and at most 1 (e.g. 0.7), not "high", or off`,
	} {
		if _, err := set("example.com", v); !errors.Is(err, store.ErrInvalid) || err.Error() != msg {
			t.Errorf("reject score %s: %v", v, err)
		}
	}
	if _, err := set("www.example.com", "0.9"); err == nil || err.Error() != "www.example.com is a child domain of example.com: it follows example.com's settings" {
		t.Errorf("on a child domain: %v", err)
	}
	if ds, err := set("example.com", "off"); err != nil || ds.SpamRejectScore != 0 {
		t.Errorf("off: %+v, %v", ds, err)
	}
}

func TestTrainSpam(t *testing.T) {
	svc, _ := newService(t)
	populate(t, svc)
	batch := func(class string, n int, word string) SpamTrainBatch {
		b := SpamTrainBatch{Domain: "Example.com", Class: class}
		for i := range n {
			b.Messages = append(b.Messages, spam.Tokenize([]byte("Subject: "+word+"\r\n\r\n"+word+" number "+string(rune('a'+i))+"\r\n")))
		}
		return b
	}
	if s, _ := Do(ctx, svc, OpSpamShow, "bob@example.com"); s.Model != spam.ModelNone || s.DomainModel != (store.SpamTotals{}) {
		t.Fatalf("before training: %+v", s)
	}
	r, err := Do(ctx, svc, OpSpamTrain, batch("spam", 10, "viagra"))
	testutil.Must(t, err)
	if r.Domain != "example.com" || r.Class != "spam" || r.Trained != 10 || r.Model.Spam != 10 || r.Model.Tokens == 0 {
		t.Errorf("result %+v", r)
	}
	_, err = Do(ctx, svc, OpSpamTrain, batch("ham", 10, "meeting"))
	testutil.Must(t, err)
	s, err := Do(ctx, svc, OpSpamShow, "bob@example.com")
	testutil.Must(t, err)
	if s.Model != spam.ModelDomain || s.DomainModel.Spam != 10 || s.DomainModel.Ham != 10 || s.OwnModel != (store.SpamTotals{}) || s.Domain != "example.com" {
		t.Errorf("after training: %+v", s)
	}

	tooMany := batch("spam", MaxTrainBatch+1, "x")
	longToken := SpamTrainBatch{Domain: "example.com", Class: "ham", Messages: [][]string{{"ok"}, {strings.Repeat("x", 161)}}}
	for _, c := range []struct {
		b    SpamTrainBatch
		kind error
		msg  string
	}{
		{tooMany, store.ErrInvalid, "a training batch holds at most 500 messages, not 501"},
		{longToken, store.ErrInvalid, "message 2 of the batch has a token of 161 bytes (1 to 160)"},
		{SpamTrainBatch{Domain: "example.com", Class: "eggs"}, store.ErrInvalid, `train as spam or ham, not "eggs"`},
		{SpamTrainBatch{Domain: "www.example.com", Class: "spam"}, store.ErrInvalid, "www.example.com is a child domain of example.com: its spam model is example.com's: train example.com"},
		{SpamTrainBatch{Domain: "nowhere.test", Class: "spam"}, store.ErrNoSuchDomain, "unknown domain nowhere.test"},
	} {
		if _, err := Do(ctx, svc, OpSpamTrain, c.b); !errors.Is(err, c.kind) || err.Error() != c.msg {
			t.Errorf("%s: %v", c.msg, err)
		}
	}
	if s, _ := Do(ctx, svc, OpSpamShow, "bob@example.com"); s.DomainModel.Spam != 10 || s.DomainModel.Ham != 10 {
		t.Errorf("refused batches trained: %+v", s.DomainModel)
	}
}
