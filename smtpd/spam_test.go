package smtpd

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"yubin/internal/delivery"
	"yubin/internal/spam"
	"yubin/internal/testutil"
	"yubin/internal/testutil/mailgen"
	"yubin/store"
)

// spamMsg and hamMsg are messages the tests train the domain model with
// and then send: variants of an offer and of a colleague's note.
func spamMsg(i int) []byte {
	return fmt.Appendf(nil, "From: Best Deals <deals@promo.test>\r\nTo: bob@example.com\r\nSubject: Cheap pills discount %d\r\n"+
		"Message-ID: <%d.deal@promo.test>\r\nDate: %s\r\n\r\n"+
		"Buy cheap pills now! Click http://pills.promo.test/buy?id=%d for a discount on viagra. Limited offer, unsubscribe here.\r\n",
		i, i, time.Now().Format(time.RFC1123Z), i)
}

func hamMsg(i int) []byte {
	return fmt.Appendf(nil, "From: Alice <alice@partner.test>\r\nTo: bob@example.com\r\nSubject: Project review agenda %d\r\n"+
		"Message-ID: <%d.alice@partner.test>\r\nDate: %s\r\n\r\n"+
		"Hi Bob, here is the agenda for Thursday's project review meeting (item %d). Let me know what you think. Regards, Alice\r\n",
		i, i, time.Now().Format(time.RFC1123Z), i)
}

// spamDeliverer is the delivery path with the spam filter, on a store
// whose example.com model has been trained with spamMsg and hamMsg.
func spamDeliverer(t testing.TB) func(st store.Store) *delivery.Deliverer {
	return func(st store.Store) *delivery.Deliverer {
		for i := range spam.MinTraining {
			for class, msg := range map[store.SpamClass][]byte{store.Spam: spamMsg(100 + i), store.Ham: hamMsg(100 + i)} {
				_, err := st.TrainSpam(t.Context(), store.SpamTraining{Owners: []string{"example.com"}, Tokens: spam.Tokenize(msg), Class: class})
				testutil.Must(t, err)
			}
		}
		return delivery.New(st, nil, &delivery.SpamStage{Store: st})
	}
}

func (e *testEnv) mailbox(account, box string) [][]byte {
	e.t.Helper()
	msgs, _, err := e.store.Messages(e.t.Context(), account, box)
	testutil.Must(e.t, err)
	var out [][]byte
	for _, m := range msgs {
		b, err := e.store.ReadMessage(e.t.Context(), account, box, m.UID)
		testutil.Must(e.t, err)
		out = append(out, b)
	}
	return out
}

// spamHeader returns the X-Yubin-Spam fields of a message.
func spamHeader(msg []byte) []string {
	var out []string
	hdr, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	for _, l := range strings.Split(string(hdr), "\r\n") {
		if v, ok := strings.CutPrefix(l, spam.HeaderName+": "); ok {
			out = append(out, v)
		}
	}
	return out
}

func TestSpamJunkAndInbox(t *testing.T) {
	e := newEnv(t, envOptions{deliverer: spamDeliverer(t)})
	forged := append([]byte(spam.HeaderName+": no; score=0.00; forged\r\n"), spamMsg(1)...)
	inbound(t, e, []string{userBob}, forged, 250, "2.0.0")
	ham := hamMsg(1)
	inbound(t, e, []string{userBob}, ham, 250, "2.0.0")
	junk, inbox := e.mailbox(userBob, "Junk"), e.mailbox(userBob, "INBOX")
	if len(junk) != 1 || len(inbox) != 1 {
		t.Fatalf("Junk holds %d, INBOX %d; want one each", len(junk), len(inbox))
	}
	h := spamHeader(junk[0])
	if len(h) != 1 || !strings.HasPrefix(h[0], "yes; score=") || !strings.Contains(h[0], "threshold=0.50; signals=bayes-domain:") {
		t.Errorf("spam got %q (the forged field must be gone)", h)
	}
	if !bytes.Contains(junk[0], []byte("Subject: Cheap pills discount 1\r\n")) {
		t.Errorf("subject tagged without being asked:\n%s", junk[0])
	}
	if h := spamHeader(inbox[0]); len(h) != 1 || !strings.HasPrefix(h[0], "no; score=0.") {
		t.Errorf("ham got %q", h)
	}
	// Scoring reads the message and changes nothing of it.
	if !bytes.HasSuffix(inbox[0], ham) || !bytes.HasSuffix(junk[0], spamMsg(1)[bytes.Index(spamMsg(1), []byte("\r\n\r\n")):]) {
		t.Errorf("delivered messages differ from what was sent:\n%q\n%q", inbox[0], junk[0])
	}
	e.verify()
}

func TestSpamPolicies(t *testing.T) {
	e := newEnv(t, envOptions{deliverer: spamDeliverer(t)})
	ctx := t.Context()
	testutil.Must(t, e.store.SetSpamPolicy(ctx, userBob, store.SpamPolicy{Action: store.SpamQuarantine}))
	testutil.Must(t, e.store.SetSpamPolicy(ctx, userInfo, store.SpamPolicy{Tag: true}))
	testutil.Must(t, e.store.SetSpamPolicy(ctx, userAdmin, store.SpamPolicy{Action: store.SpamOff}))
	testutil.Must(t, e.store.SetSpamPolicy(ctx, userCarol, store.SpamPolicy{Tag: true, Threshold: 1}))
	inbound(t, e, []string{userBob, userInfo, userAdmin, userCarol}, spamMsg(1), 250, "2.0.0")

	// quarantine: held, in no mailbox.
	if n := len(e.mailbox(userBob, "INBOX")) + len(e.mailbox(userBob, "Junk")); n != 0 {
		t.Errorf("bob's mailboxes hold %d", n)
	}
	q, err := e.store.Quarantined(ctx, store.QuarantineFilter{Account: userBob})
	testutil.Must(t, err)
	if len(q) != 1 || q[0].Subject != "Cheap pills discount 1" || q[0].From != "Best Deals <deals@promo.test>" ||
		q[0].Sender != "sender@remote.test" || q[0].Score < 0.5 || len(q[0].Signals) == 0 {
		t.Fatalf("bob's quarantine %+v", q)
	}
	// Released, it is what the others got, byte for byte (bar the tag).
	rel, err := e.store.ReleaseQuarantined(ctx, q[0].ID)
	testutil.Must(t, err)
	released, err := e.store.ReadMessage(ctx, userBob, "INBOX", rel.UID)
	testutil.Must(t, err)
	if h := spamHeader(released); len(h) != 1 || !strings.HasPrefix(h[0], "yes;") {
		t.Errorf("released message %q", released)
	}

	// junk with a tag.
	junk := e.mailbox(userInfo, "Junk")
	if len(junk) != 1 || !bytes.Contains(junk[0], []byte("Subject: [SPAM] Cheap pills discount 1\r\n")) {
		t.Errorf("info's Junk: %q", junk)
	}
	// off: delivered as usual, the header says what was found.
	inbox := e.mailbox(userAdmin, "INBOX")
	if len(inbox) != 1 || !strings.HasPrefix(spamHeader(inbox[0])[0], "yes;") || bytes.Contains(inbox[0], []byte("[SPAM]")) {
		t.Errorf("admin's INBOX: %q", inbox)
	}
	// A threshold of 1 and an untrained other.test: not spam for carol.
	inbox = e.mailbox(userCarol, "INBOX")
	if len(inbox) != 1 || !strings.HasPrefix(spamHeader(inbox[0])[0], "no;") || !strings.Contains(spamHeader(inbox[0])[0], "bayes:untrained") {
		t.Errorf("carol's INBOX: %q", inbox)
	}
	e.verify()
}

func TestSpamTagJapanese(t *testing.T) {
	e := newEnv(t, envOptions{deliverer: spamDeliverer(t)})
	ctx := t.Context()
	testutil.Must(t, e.store.SetDomainSettings(ctx, "example.com", store.DomainSettings{Language: "ja"}))
	testutil.Must(t, e.store.SetSpamPolicy(ctx, userBob, store.SpamPolicy{Tag: true}))
	inbound(t, e, []string{userBob}, spamMsg(1), 250, "2.0.0")
	junk := e.mailbox(userBob, "Junk")
	if len(junk) != 1 || !bytes.Contains(junk[0], []byte("Subject: =?UTF-8?b?W+i/t+aDkeODoeODvOODq10=?= Cheap pills discount 1\r\n")) {
		t.Errorf("Junk: %q", junk)
	}
	if got := testutil.MessageText(t, junk[0]); !strings.Contains(got, "Buy cheap pills") {
		t.Errorf("body changed: %q", got)
	}
}

func TestSpamRejectScore(t *testing.T) {
	e := newEnv(t, envOptions{deliverer: spamDeliverer(t)})
	ctx := t.Context()
	testutil.Must(t, e.store.SetDomainSettings(ctx, "example.com", store.DomainSettings{SpamRejectScore: 0.9}))
	// Every recipient's domain refuses it: 550, nothing stored.
	inbound(t, e, []string{userBob, userInfo}, spamMsg(1), 550, "5.7.1")
	if n := len(e.mailbox(userBob, "Junk")) + len(e.mailbox(userInfo, "Junk")); n != 0 {
		t.Errorf("refused message stored %d times", n)
	}
	// One recipient on a domain without a reject score: delivered to all.
	inbound(t, e, []string{userBob, userCarol}, spamMsg(2), 250, "2.0.0")
	if len(e.mailbox(userBob, "Junk")) != 1 || len(e.mailbox(userCarol, "INBOX")) != 1 {
		t.Error("spam for bob and carol: not delivered to both")
	}
	// Ham passes.
	inbound(t, e, []string{userBob}, hamMsg(1), 250, "2.0.0")
	e.verify()
}

func TestSpamUntrainedRules(t *testing.T) {
	e := newEnv(t, envOptions{deliverer: func(st store.Store) *delivery.Deliverer {
		return delivery.New(st, nil, &delivery.SpamStage{Store: st})
	}})
	// No Date and no Message-ID alone do not make spam of a message
	// while no model is trained ...
	inbound(t, e, []string{userBob}, []byte("From: a@remote.test\r\nSubject: hi\r\n\r\nhello\r\n"), 250, "2.0.0")
	inbox := e.mailbox(userBob, "INBOX")
	if len(inbox) != 1 || spamHeader(inbox[0])[0] != "no; score=0.25; threshold=0.50; signals=bayes:untrained,no-message-id:+0.15,no-date:+0.10" {
		t.Errorf("INBOX %q", inbox)
	}
	// ... a From name showing our address from elsewhere, with them, does.
	inbound(t, e, []string{userBob}, []byte("From: \"admin@example.com\" <phish@remote.test>\r\nSubject: password\r\n\r\nlog in\r\n"), 250, "2.0.0")
	junk := e.mailbox(userBob, "Junk")
	if len(junk) != 1 || !strings.HasPrefix(spamHeader(junk[0])[0], "yes; score=0.65; threshold=0.50; signals=bayes:untrained,no-message-id:+0.15,no-date:+0.10,from-spoof:+0.40") {
		t.Errorf("Junk %q", junk)
	}
}

func TestSpamNotOnSubmission(t *testing.T) {
	e := newEnv(t, envOptions{deliverer: spamDeliverer(t)})
	submit(t, e, userBob, spamMsg(1), 250, "2.0.0")
	inbox := e.mailbox(userBob, "INBOX")
	if len(inbox) != 1 || len(spamHeader(inbox[0])) != 0 {
		t.Errorf("submitted mail was filtered: %q", inbox)
	}
}

func TestTagSubject(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Subject: hi\r\n\r\nbody", "Subject: [SPAM] hi\r\n\r\nbody"},
		{"SUBJECT:hi\r\n\r\nSubject: body", "SUBJECT: [SPAM] hi\r\n\r\nSubject: body"},
		{"From: a\r\n\r\nSubject: in the body", "From: a\r\nSubject: [SPAM]\r\n\r\nSubject: in the body"},
		{"\r\nbody", "Subject: [SPAM]\r\n\r\nbody"},
		{"From: a", "From: a\r\nSubject: [SPAM]\r\n"},
		{"", "Subject: [SPAM]\r\n"},
	} {
		if got := string(delivery.TagSubject([]byte(c.in), delivery.SpamTag)); got != c.want {
			t.Errorf("TagSubject(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// A message spooled to disk (over 128 KiB) is scored on what training
// reads of it, stored whole, held and released whole; its Subject is not
// tagged.
func TestSpamSpooled(t *testing.T) {
	e := newEnv(t, envOptions{deliverer: spamDeliverer(t)})
	ctx := t.Context()
	testutil.Must(t, e.store.SetSpamPolicy(ctx, userInfo, store.SpamPolicy{Tag: true}))
	testutil.Must(t, e.store.SetQuota(ctx, userInfo, 0))
	testutil.Must(t, e.store.SetSpamPolicy(ctx, userBob, store.SpamPolicy{Action: store.SpamQuarantine}))
	big := append(spamMsg(1), bytes.Repeat([]byte("Buy cheap pills now, discount viagra offers, click here.\r\n"), 4000)...)
	inbound(t, e, []string{userInfo, userBob}, big, 250, "2.0.0")
	junk := e.mailbox(userInfo, "Junk")
	if len(junk) != 1 || !bytes.HasSuffix(junk[0], big) || !strings.HasPrefix(spamHeader(junk[0])[0], "yes;") {
		t.Fatalf("info's Junk: %d messages; the spooled spam must be there whole, untagged, with the verdict", len(junk))
	}
	q, err := e.store.Quarantined(ctx, store.QuarantineFilter{Account: userBob})
	testutil.Must(t, err)
	if len(q) != 1 || q[0].Size <= int64(len(big)) {
		t.Fatalf("bob's quarantine %+v", q)
	}
	d, err := e.store.ReleaseQuarantined(ctx, q[0].ID)
	testutil.Must(t, err)
	released, err := e.store.ReadMessage(ctx, userBob, "INBOX", d.UID)
	testutil.Must(t, err)
	if !bytes.HasSuffix(released, big) {
		t.Error("released spooled message differs from what was sent")
	}
	e.verify()
}

// The model BenchmarkIngestSpam trains tells mailgen's ham from its spam:
// the benchmark's message is scored by the domain model, with clues, and
// filed as ham, a new spam message goes to Junk.
func TestIngestSpamBenchModel(t *testing.T) {
	e := newEnv(t, envOptions{noSync: true, deliverer: func(st store.Store) *delivery.Deliverer {
		trainRealistic(t, st, 300)
		return delivery.New(st, nil, &delivery.SpamStage{Store: st})
	}})
	inbound(t, e, []string{userBob}, mailgen.New(1).Message(false, 10<<10), 250, "2.0.0")
	inbound(t, e, []string{userBob}, mailgen.New(3).Message(true, 10<<10), 250, "2.0.0")
	inbox, junk := e.mailbox(userBob, "INBOX"), e.mailbox(userBob, "Junk")
	if len(inbox) != 1 || len(junk) != 1 {
		t.Fatalf("INBOX holds %d, Junk %d; want one each", len(inbox), len(junk))
	}
	for _, m := range [][]byte{inbox[0], junk[0]} {
		if h := spamHeader(m); len(h) != 1 || !strings.Contains(h[0], "bayes-domain:") || strings.Contains(h[0], "bayes-domain:unknown") {
			t.Errorf("got %q, want the domain model's verdict, with clues", h)
		}
	}
}
