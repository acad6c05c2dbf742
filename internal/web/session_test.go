package web

import (
	"testing"
	"time"
)

// TestSessionBounds: one account holds at most maxPerAccount sessions and
// all at most max; the oldest goes first, and the others' stay.
func TestSessionBounds(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { now = now.Add(time.Second); return now }
	ss := newSessions(time.Hour, 10*time.Hour, 30, clock)
	other, _ := ss.start("other@example.com", "s")
	var ids []string
	for range maxPerAccount + 5 {
		id, _ := ss.start("bob@example.com", "s")
		ids = append(ids, id)
	}
	if ss.get(other) == nil {
		t.Fatal("another account's session was pushed out")
	}
	if ss.get(ids[0]) != nil || ss.get(ids[4]) != nil || ss.get(ids[5]) == nil || ss.get(ids[len(ids)-1]) == nil {
		t.Fatal("not the oldest of the account went")
	}
	if n := ss.count(); n != maxPerAccount+1 {
		t.Fatalf("%d sessions", n)
	}
	for i := range 20 {
		ss.start("u"+string(rune('a'+i))+"@example.com", "s")
	}
	if n := ss.count(); n != 30 {
		t.Fatalf("%d sessions, want the bound 30", n)
	}
	if ss.get("") != nil || ss.get("nonsense") != nil {
		t.Fatal("a session for no id")
	}
}
