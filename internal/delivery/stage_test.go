package delivery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"yubin/internal/testutil/teststore"
	"yubin/store"
)

func TestStages(t *testing.T) {
	st := teststore.New(t, teststore.Options{Accounts: []store.Account{{Address: "a@example.com"}, {Address: "b@example.com"}, {Address: "c@example.com"}}})
	var committed bool
	rewrite := StageFunc("rewrite", func(ctx context.Context, m *Message) error {
		for _, r := range m.Local {
			switch r.Account {
			case "b@example.com":
				r.Body = &Body{Raw: []byte("X-Only: b\r\n\r\nstripped\r\n")}
			case "c@example.com":
				r.Drop, r.Why = true, "discarded"
			}
		}
		m.PrependHeader("X-Test: seen")
		m.Verdict = "tested"
		m.Stops = append(m.Stops, store.Stop{Direction: "inbound", Domains: []string{"example.com"}, Reasons: []string{"virus"}})
		m.AfterCommit(func(context.Context) { committed = true })
		return nil
	})
	d := New(st, nil, rewrite)
	res, err := d.Deliver(context.Background(), Envelope{Recipients: []string{"a@example.com", "b@example.com", "c@example.com"}}, []byte("Subject: x\r\n\r\nbody\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Delivered) != 2 || !committed {
		t.Fatalf("delivered %+v, after-commit ran: %v", res.Delivered, committed)
	}
	a, _ := st.ReadMessage(t.Context(), "a@example.com", "INBOX", 1)
	b, _ := st.ReadMessage(t.Context(), "b@example.com", "INBOX", 1)
	if string(a) != "X-Test: seen\r\nSubject: x\r\n\r\nbody\r\n" || string(b) != "X-Test: seen\r\nX-Only: b\r\n\r\nstripped\r\n" {
		t.Fatalf("a %q, b %q", a, b)
	}
	if msgs, _, _ := st.Messages(t.Context(), "c@example.com", "INBOX"); len(msgs) != 0 {
		t.Fatal("dropped recipient got mail")
	}
	if stops, _ := st.Stops(t.Context(), time.Time{}, time.Now().Add(time.Hour), "example.com"); len(stops) != 1 {
		t.Fatalf("stops %+v", stops)
	}

	// A refusal stores nothing and runs no after-commit hook.
	committed = false
	refuse := StageFunc("refuse", func(ctx context.Context, m *Message) error {
		m.AfterCommit(func(context.Context) { committed = true })
		return &Reject{Code: 554, Enhanced: [3]int{5, 6, 5}, Text: "VC01 Virus Check Service found VIRUS in your email."}
	})
	d = New(st, nil, refuse)
	_, err = d.Deliver(context.Background(), Envelope{Recipients: []string{"a@example.com"}}, []byte("Subject: y\r\n\r\n"))
	var rj *Reject
	if !errors.As(err, &rj) || rj.Code != 554 || !strings.Contains(err.Error(), "5.6.5 VC01") || committed {
		t.Fatalf("refusal: %v, hook ran: %v", err, committed)
	}
	if msgs, _, _ := st.Messages(t.Context(), "a@example.com", "INBOX"); len(msgs) != 1 {
		t.Fatal("refused message stored")
	}
}

// countMetrics records what the Deliverer counts.
type countMetrics struct {
	verdicts map[string]int
	commits  int
}

func (c *countMetrics) Deliveries(v string, n int)   { c.verdicts[v] += n }
func (c *countMetrics) ScanDuration(time.Duration)   {}
func (c *countMetrics) CommitDuration(time.Duration) { c.commits++ }
func (c *countMetrics) reset()                       { c.verdicts, c.commits = map[string]int{}, 0 }
func (c *countMetrics) want(t *testing.T, what string, commits int, verdicts map[string]int) {
	t.Helper()
	if c.commits != commits || len(c.verdicts) != len(verdicts) {
		t.Errorf("%s: counted %v and %d commits, want %v and %d", what, c.verdicts, c.commits, verdicts, commits)
		return
	}
	for v, n := range verdicts {
		if c.verdicts[v] != n {
			t.Errorf("%s: counted %v, want %v", what, c.verdicts, verdicts)
		}
	}
}

// Each recipient is counted once, by what it got: the first of dropped,
// held, Junk, stripped, as it came; remote recipients as clean; every
// recipient of a message refused with a 5xx as rejected; nothing for a
// 4xx refusal.
func TestDeliveryCounts(t *testing.T) {
	accts := []string{"a@example.com", "b@example.com", "c@example.com", "d@example.com", "e@example.com"}
	var as []store.Account
	for _, a := range accts {
		as = append(as, store.Account{Address: a})
	}
	st := teststore.New(t, teststore.Options{Accounts: as})
	fate := StageFunc("fate", func(ctx context.Context, m *Message) error {
		for _, r := range m.Local {
			switch r.Account {
			case "b@example.com": // stripped, then spam: Junk is where it went
				r.Body, r.Stripped, r.Mailbox = &Body{Raw: []byte("Subject: x\r\n\r\nstripped\r\n")}, true, "Junk"
			case "c@example.com":
				r.Drop = true
			case "d@example.com":
				r.Body, r.Stripped = &Body{Raw: []byte("Subject: x\r\n\r\nstripped\r\n")}, true
			case "e@example.com":
				r.Quarantine = &store.QuarantineHold{}
			}
		}
		return nil
	})
	m := &countMetrics{}
	m.reset()
	d := New(st, nil, fate)
	d.SetMetrics(m)
	env := Envelope{Recipients: accts, Remote: []string{"x@remote.test", "y@far.test"}, Source: Submission, From: "a@example.com"}
	if _, err := d.Deliver(t.Context(), env, []byte("Subject: x\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	m.want(t, "a delivery", 1, map[string]int{"clean": 3, "junk": 1, "discarded": 1, "stripped": 1, "quarantined": 1})

	for _, c := range []struct {
		code int
		want map[string]int
	}{{554, map[string]int{"rejected": 7}}, {451, map[string]int{}}} {
		m.reset()
		d := New(st, nil, StageFunc("refuse", func(context.Context, *Message) error {
			return &Reject{Code: c.code, Enhanced: [3]int{c.code / 100, 0, 0}, Text: "no"}
		}))
		d.SetMetrics(m)
		if _, err := d.Deliver(t.Context(), env, []byte("Subject: y\r\n\r\n")); err == nil {
			t.Fatal("refused message delivered")
		}
		m.want(t, fmt.Sprintf("a %d refusal", c.code), 0, c.want)
	}
}

// The envelope summary goes with the deliveries whose header section it
// is: the message as received under header fields that leave it as it
// is; not a recipient's own body, nor under fields that change it. It is
// parsed once per Raw.
func TestBatchSummary(t *testing.T) {
	m := &Message{Raw: []byte("Subject: hello\r\nFrom: a@example.org\r\n\r\nbody\r\n")}
	m.Local = []*Recipient{
		{Account: "a@example.com", Header: []byte("X-Spam: no\r\n")},
		{Account: "b@example.com", Header: []byte("Subject: [tagged]\r\n")},
		{Account: "c@example.com", Body: &Body{Raw: []byte("Subject: other\r\n\r\nx\r\n")}},
	}
	ds := m.batch()
	if len(ds) != 3 {
		t.Fatalf("%d deliveries", len(ds))
	}
	if ds[0].Summary == nil || ds[0].Summary.Subject != "hello" || len(ds[0].Summary.From) != 1 {
		t.Errorf("as received: %+v", ds[0].Summary)
	}
	if ds[1].Summary != nil || ds[2].Summary != nil {
		t.Errorf("changed header or body: %+v, %+v", ds[1].Summary, ds[2].Summary)
	}
	if m.Summary() != ds[0].Summary {
		t.Error("parsed again for the same Raw")
	}
	m.Raw = []byte("Subject: replaced\r\n\r\nbody\r\n")
	if s := m.Summary().Subject; s != "replaced" {
		t.Errorf("after Raw was replaced: %q", s)
	}
}
