package bolt

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"yubin/store"
)

func verifyClean(t *testing.T, s *Store) {
	t.Helper()
	problems, err := s.Verify(t.Context())
	must(t, err)
	if len(problems) > 0 {
		t.Fatalf("Verify:\n%s", strings.Join(problems, "\n"))
	}
}

func TestQueueWithDelivery(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "y.db")
	s, err := Open(path, Options{})
	must(t, err)
	setup(t, s)
	msg := []byte("Subject: hi\r\n\r\nbody\r\n")
	d, ids, err := s.DeliverAndQueue(ctx, []store.Delivery{{Recipients: []string{"info@example.com"}, Message: msg}},
		[]store.Outbound{{QueueID: "Q1", From: "info@example.com", ReturnPath: "info@example.com", Origin: store.OriginSubmission,
			Recipients: []string{"a@remote.test", "B@Remote.test", "c@far.test", "a@remote.test"}, Message: msg}})
	must(t, err)
	if len(d) != 1 || len(ids) != 2 {
		t.Fatalf("delivered %v, queued %v", d, ids)
	}
	select {
	case <-s.QueueChanged():
	default:
		t.Fatal("queue change not signalled")
	}
	verifyClean(t, s)

	all, err := s.QueueEntries(ctx)
	must(t, err)
	if len(all) != 2 || all[0].Domain != "remote.test" || len(all[0].Recipients) != 2 || all[1].Domain != "far.test" {
		t.Fatalf("entries %+v", all)
	}
	due, err := s.QueueDue(ctx, time.Now(), 0)
	must(t, err)
	if len(due) != 2 {
		t.Fatalf("due %d", len(due))
	}
	raw, e, err := s.ReadQueued(ctx, ids[0])
	must(t, err)
	if string(raw) != string(msg) || e.From != "info@example.com" {
		t.Fatalf("read %q %+v", raw, e)
	}

	// A temporary failure for one recipient, success for the other.
	later := time.Now().Add(time.Hour)
	must(t, s.SettleQueued(ctx, ids[0], func(e *store.QueueEntry) error {
		e.Recipients[0].Status = store.RcptSent
		e.Recipients[1].Error = "451 try later"
		e.Attempts++
		e.NextAttempt = later
		return nil
	}, nil, nil))
	verifyClean(t, s)
	if due, _ := s.QueueDue(ctx, time.Now(), 0); len(due) != 1 || due[0].ID != ids[1] {
		t.Fatalf("due after settle %+v", due)
	}
	if next, ok, _ := s.QueueNextAttempt(ctx); !ok || next.After(time.Now()) {
		t.Fatalf("next %v %v", next, ok)
	}

	// Restart: the queue survives.
	must(t, s.Close())
	s, err = Open(path, Options{})
	must(t, err)
	defer s.Close()
	e, err = s.QueueEntry(ctx, ids[0])
	must(t, err)
	if e.Attempts != 1 || len(e.Pending()) != 1 || e.Pending()[0] != "B@remote.test" || !e.NextAttempt.Equal(later.UTC()) {
		t.Fatalf("after restart %+v", e)
	}

	// A bounce in the same transaction as the last failure removes the entry.
	dsn := []byte("Subject: failed\r\n\r\nx\r\n")
	must(t, s.SettleQueued(ctx, ids[0], func(e *store.QueueEntry) error {
		e.Recipients[1].Status = store.RcptFailed
		return nil
	}, []store.Delivery{{Recipients: []string{"info@example.com"}, Message: dsn}}, nil))
	if _, err := s.QueueEntry(ctx, ids[0]); !errors.Is(err, store.ErrNoSuchMessage) {
		t.Fatalf("settled entry still there: %v", err)
	}
	if msgs, _, _ := s.Messages(ctx, "info@example.com", "INBOX"); len(msgs) != 2 {
		t.Fatalf("inbox has %d", len(msgs))
	}
	verifyClean(t, s)

	// Retry and drop.
	n, err := s.RetryQueued(ctx, nil)
	if err != nil || n != 1 {
		t.Fatalf("retry %d %v", n, err)
	}
	if _, err := s.DropQueued(ctx, []string{"nope"}); !errors.Is(err, store.ErrNoSuchMessage) {
		t.Fatalf("drop unknown: %v", err)
	}
	if n, err := s.DropQueued(ctx, []string{ids[1]}); err != nil || n != 1 {
		t.Fatalf("drop %d %v", n, err)
	}
	if all, _ := s.QueueEntries(ctx); len(all) != 0 {
		t.Fatalf("left %+v", all)
	}
	verifyClean(t, s)
	if err := s.SettleQueued(ctx, ids[1], func(*store.QueueEntry) error { return nil }, nil, nil); !errors.Is(err, store.ErrNoSuchMessage) {
		t.Fatalf("settle dropped: %v", err)
	}
}

// A quota failure of the local part queues nothing.
func TestQueueAllOrNothing(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	big := make([]byte, 2<<20)
	_, _, err := s.DeliverAndQueue(context.Background(), []store.Delivery{{Recipients: []string{"bob@example.com"}, Message: big}},
		[]store.Outbound{{From: "bob@example.com", Recipients: []string{"x@remote.test"}, Message: big}})
	var qe *store.QuotaError
	if !errors.As(err, &qe) {
		t.Fatalf("got %v", err)
	}
	if all, _ := s.QueueEntries(t.Context()); len(all) != 0 {
		t.Fatalf("queued %+v", all)
	}
	verifyClean(t, s)
}

func TestForwardRules(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	var ten []string
	for i := range 10 {
		ten = append(ten, "t"+string(rune('a'+i))+"@remote.test")
	}
	f, err := s.SetForward(t.Context(), "info@example.com", append(ten, "ta@remote.test"), true)
	must(t, err)
	if len(f.Targets) != 10 || !f.KeepCopy {
		t.Fatalf("%+v", f)
	}
	for name, targets := range map[string][]string{
		"eleven":    append(append([]string(nil), ten...), "k@remote.test"),
		"malformed": {"not an address"},
		"itself":    {"INFO@child.example.com"},
		"no user":   {"nobody@example.com"},
		"routing":   {"a%b@remote.test"},
	} {
		if _, err := s.SetForward(t.Context(), "info@example.com", targets, false); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	got, err := s.GetForward(t.Context(), "info@example.com")
	must(t, err)
	if len(got.Targets) != 10 || !got.KeepCopy {
		t.Fatalf("rule changed by a refused set: %+v", got)
	}
	must(t, s.ClearForward(t.Context(), "info@example.com"))
	if got, _ := s.GetForward(t.Context(), "info@example.com"); len(got.Targets) != 0 {
		t.Fatalf("not cleared: %+v", got)
	}
	if _, err := s.SetForward(t.Context(), "nobody@example.com", ten, false); !errors.Is(err, store.ErrNoSuchAccount) {
		t.Fatalf("unknown account: %v", err)
	}
	// Removing the account removes its rule.
	_, err = s.SetForward(t.Context(), "bob@example.com", []string{"info@example.com"}, false)
	must(t, err)
	must(t, s.RemoveAccount(t.Context(), "bob@example.com"))
	must(t, s.AddAccount(t.Context(), store.Account{Address: "bob@example.com", PasswordHash: "x"}))
	if got, _ := s.GetForward(t.Context(), "bob@example.com"); len(got.Targets) != 0 {
		t.Fatalf("rule survived removal: %+v", got)
	}

	k1, err := s.SRSSecret(t.Context())
	must(t, err)
	k2, _ := s.SRSSecret(t.Context())
	if len(k1) != 32 || string(k1) != string(k2) {
		t.Fatal("SRS secret not stable")
	}
}
