package delivery

import (
	"context"
	"errors"
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
