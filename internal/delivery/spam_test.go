package delivery

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"yubin/internal/spam"

	"yubin/internal/dnsbl"
	"yubin/internal/testutil"
	"yubin/internal/testutil/teststore"
	"yubin/store"
)

// The client's DNSBL listings and the authentication results are signals
// of every recipient's score, each named once in X-Yubin-Spam; with no
// model trained, together they reach the default threshold.
func TestSpamSignals(t *testing.T) {
	st := teststore.New(t, teststore.Options{Accounts: []store.Account{{Address: "a@example.com"}}})
	auth := StageFunc("auth", func(ctx context.Context, m *Message) error {
		m.Auth = AuthResults{SPF: "softfail", DKIM: "fail", DMARC: "none"}
		return nil
	})
	d := New(st, nil, auth, &SpamStage{Store: st})
	env := Envelope{Source: MX, Recipients: []string{"a@example.com"},
		DNSBL: []dnsbl.Hit{{Zone: "zen.test", Answers: []string{"127.0.0.2"}}, {Zone: "zen.test", Answers: []string{"127.0.0.4"}}}}
	res, err := d.Deliver(t.Context(), env, []byte("Message-ID: <1@x.test>\r\nDate: Mon, 2 Jan 2006 15:04:05 -0700\r\nSubject: x\r\n\r\nbody\r\n"))
	testutil.Must(t, err)
	if len(res.Delivered) != 1 || res.Delivered[0].Mailbox != "Junk" {
		t.Fatalf("delivered %+v", res.Delivered)
	}
	msg, err := st.ReadMessage(t.Context(), "a@example.com", "Junk", res.Delivered[0].UID)
	testutil.Must(t, err)
	want := "X-Yubin-Spam: yes; score=0.50; threshold=0.50; signals=bayes:untrained,spf-softfail:+0.05,dkim-fail:+0.10,dnsbl:zen.test:+0.35\r\n"
	if !strings.HasPrefix(string(msg), want) {
		t.Errorf("message starts %q, want %q", msg, want)
	}
}

// A From the model knows only from ham lowers the score ("known-sender"),
// when it is authenticated: not when DMARC fails for it.
func TestSpamKnownSender(t *testing.T) {
	st := teststore.New(t, teststore.Options{Accounts: []store.Account{{Address: "a@example.com"}}})
	for i := range spam.MinTraining {
		_, err := st.TrainSpam(t.Context(), store.SpamTraining{Owners: []string{"example.com"}, Class: store.Spam,
			Tokens: []string{"subject:offer", "cheap", fmt.Sprint("n", i)}})
		testutil.Must(t, err)
		_, err = st.TrainSpam(t.Context(), store.SpamTraining{Owners: []string{"example.com"}, Class: store.Ham,
			Tokens: []string{"from:addr:news@shop.test", "from:dom:shop.test", "meeting", fmt.Sprint("n", i)}})
		testutil.Must(t, err)
	}
	raw := []byte("From: Shop <news@shop.test>\r\nMessage-ID: <1@shop.test>\r\nDate: Mon, 2 Jan 2006 15:04:05 -0700\r\nSubject: offer\r\n\r\ncheap\r\n")
	for _, c := range []struct {
		dmarc string
		known bool
	}{{"pass", true}, {"fail", false}} {
		auth := StageFunc("auth", func(ctx context.Context, m *Message) error {
			m.Auth = AuthResults{SPF: "pass", DKIM: "pass", DMARC: c.dmarc}
			return nil
		})
		d := New(st, nil, auth, &SpamStage{Store: st})
		res, err := d.Deliver(t.Context(), Envelope{Source: MX, From: "bounce@shop.test", Recipients: []string{"a@example.com"}}, raw)
		testutil.Must(t, err)
		r := res.Delivered[0]
		msg, err := st.ReadMessage(t.Context(), "a@example.com", r.Mailbox, r.UID)
		testutil.Must(t, err)
		hdr := string(msg[:strings.Index(string(msg), "\r\n")])
		if got := strings.Contains(hdr, "known-sender:-0.50"); got != c.known {
			t.Errorf("dmarc=%s: %q, want known-sender %v", c.dmarc, hdr, c.known)
		}
	}
}
