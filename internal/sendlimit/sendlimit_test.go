package sendlimit

import (
	"testing"
	"time"
)

// clock is a Limiter's time, moved by the test.
func clocked(lim Limits) (*Limiter, *time.Time) {
	l := New(lim)
	now := time.Date(2026, 5, 1, 9, 0, 30, 0, time.UTC)
	l.now = func() time.Time { return now }
	return l, &now
}

func TestMessages(t *testing.T) {
	l, now := clocked(Limits{Messages: 3})
	for i := range 3 {
		if r := l.Message("a@example.com"); !r.OK {
			t.Fatalf("message %d: %+v", i+1, r)
		}
		for j := range 5 { // recipients are not limited
			if r := l.Recipient("a@example.com", j == 0); !r.OK || r.Messages != i+1 {
				t.Fatalf("message %d rcpt %d: %+v", i+1, j+1, r)
			}
		}
		*now = now.Add(10 * time.Minute)
	}
	// The fourth: refused, with one warning; another account is not.
	if r := l.Message("a@example.com"); r.OK || !r.Warn || r.Messages != 3 || r.Recipients != 15 {
		t.Fatalf("4th message: %+v", r)
	}
	if r := l.Recipient("a@example.com", true); r.OK || r.Warn {
		t.Fatalf("4th message's recipient: %+v", r)
	}
	if r := l.Message("b@example.com"); !r.OK {
		t.Fatalf("another account: %+v", r)
	}
	// The hour slides: the first message (at 9:00) leaves the count at
	// 10:00, the second at 10:10.
	*now = time.Date(2026, 5, 1, 9, 59, 59, 0, time.UTC)
	if r := l.Message("a@example.com"); r.OK {
		t.Fatalf("at 9:59:59: %+v", r)
	}
	*now = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	if r := l.Recipient("a@example.com", true); !r.OK || r.Messages != 3 {
		t.Fatalf("at 10:00: %+v", r)
	}
	if r := l.Recipient("a@example.com", true); r.OK || r.Warn {
		t.Fatalf("again at 10:00 (warned less than an hour ago): %+v", r)
	}
	// Warned again an hour after the first warning (9:30:30), if over.
	*now = time.Date(2026, 5, 1, 10, 30, 29, 0, time.UTC)
	for want := 2; want <= 3; want++ { // 9:10 and 9:20 are gone: 10:00 and these
		if r := l.Recipient("a@example.com", true); !r.OK || r.Messages != want {
			t.Fatalf("at 10:30:29: %+v", r)
		}
	}
	if r := l.Recipient("a@example.com", true); r.OK || r.Warn {
		t.Fatalf("again at 10:30:29: %+v", r)
	}
	*now = time.Date(2026, 5, 1, 10, 30, 30, 0, time.UTC)
	if r := l.Recipient("a@example.com", true); r.OK || !r.Warn {
		t.Fatalf("at 10:30:30: %+v", r)
	}
}

func TestRecipients(t *testing.T) {
	l, _ := clocked(Limits{Messages: 100, Recipients: 5})
	for i := range 5 {
		if r := l.Recipient("a@example.com", i%2 == 0); !r.OK {
			t.Fatalf("rcpt %d: %+v", i+1, r)
		}
	}
	if r := l.Recipient("a@example.com", false); r.OK || !r.Warn || r.Recipients != 5 || r.Messages != 3 {
		t.Fatalf("6th rcpt: %+v", r)
	}
	// No recipient left: no message may start either.
	if r := l.Message("a@example.com"); r.OK {
		t.Fatalf("message: %+v", r)
	}
}

func TestNoLimit(t *testing.T) {
	if New(Limits{}) != nil {
		t.Fatal("a Limiter without limits")
	}
	var l *Limiter
	if !l.Message("a@example.com").OK || !l.Recipient("a@example.com", true).OK || l.Limits() != (Limits{}) {
		t.Fatal("a nil Limiter limits")
	}
}

// Accounts idle for an hour are dropped; warned ones once the warning is
// an hour old.
func TestBounded(t *testing.T) {
	l, now := clocked(Limits{Messages: 1})
	l.Recipient("a@example.com", true)
	l.Message("a@example.com") // over: warned
	l.Recipient("b@example.com", true)
	*now = now.Add(30 * time.Minute)
	l.Recipient("c@example.com", true)
	if n := l.size(); n != 3 {
		t.Fatalf("%d accounts kept, want 3", n)
	}
	*now = now.Add(31 * time.Minute)
	l.Message("c@example.com")
	if n := l.size(); n != 1 {
		t.Fatalf("%d accounts kept, want 1", n)
	}
}
