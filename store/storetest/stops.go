package storetest

import (
	"testing"
	"time"

	"yubin/internal/testutil"
	"yubin/store"
)

// Stops: the records of what scanning stopped, by time and domain.
var stopTests = []test{
	{"record and list", testStops},
	{"prune", testPruneStops},
}

// recordStops records a stop an hour for each domain given, from start.
func (e *env) recordStops(domains ...string) {
	e.t.Helper()
	for i, d := range domains {
		testutil.Must(e.t, e.s.RecordStop(e.t.Context(), store.Stop{Time: start.Add(time.Duration(i) * time.Hour), QueueID: d, Direction: "inbound",
			Recipients: []string{"info@" + d}, Domains: []string{d}, Reasons: []string{"virus"}, Virus: "Eicar-Test-Signature", Action: "rejected"}))
	}
}

func testStops(t *testing.T, e *env) {
	ctx := t.Context()
	e.recordStops("example.com", "other.test", "example.com", "example.com")
	for _, c := range []struct {
		name         string
		since, until time.Time
		domain       string
		want         []time.Duration // times after start, oldest first
	}{
		{"one domain, any case", start, start.Add(24 * time.Hour), "EXAMPLE.com", []time.Duration{0, 2 * time.Hour, 3 * time.Hour}},
		{"every domain", time.Time{}, start.Add(24 * time.Hour), "", []time.Duration{0, time.Hour, 2 * time.Hour, 3 * time.Hour}},
		{"since is inclusive, until exclusive", start.Add(time.Hour), start.Add(3 * time.Hour), "", []time.Duration{time.Hour, 2 * time.Hour}},
		{"a minute in", start.Add(time.Minute), start.Add(2 * time.Hour), "", []time.Duration{time.Hour}},
		{"unknown domain", start, start.Add(24 * time.Hour), "nope.test", nil},
		{"empty window", start.Add(time.Hour), start.Add(time.Hour), "", nil},
	} {
		got, err := e.s.Stops(ctx, c.since, c.until, c.domain)
		testutil.Must(t, err)
		ok := len(got) == len(c.want)
		for i := 0; ok && i < len(got); i++ {
			ok = got[i].Time.Equal(start.Add(c.want[i]))
		}
		if !ok {
			t.Errorf("%s: got %+v, want stops at %v after %v", c.name, got, c.want, start)
		}
	}
	got, err := e.s.Stops(ctx, start, start.Add(time.Second), "")
	testutil.Must(t, err)
	want := store.Stop{Time: start, QueueID: "example.com", Direction: "inbound", Recipients: []string{"info@example.com"}, Domains: []string{"example.com"},
		Reasons: []string{"virus"}, Virus: "Eicar-Test-Signature", Action: "rejected"}
	if len(got) != 1 || !got[0].Time.Equal(want.Time) || got[0].QueueID != want.QueueID || got[0].Virus != want.Virus || got[0].Action != want.Action ||
		got[0].Direction != want.Direction || len(got[0].Recipients) != 1 || len(got[0].Domains) != 1 || len(got[0].Reasons) != 1 {
		t.Errorf("stop read back %+v, want %+v", got, want)
	}
	// Without a time, a stop is recorded at the store's clock.
	e.clock.Advance(10 * time.Hour)
	testutil.Must(t, e.s.RecordStop(ctx, store.Stop{QueueID: "now", Domains: []string{"other.test"}}))
	if got, _ := e.s.Stops(ctx, start.Add(10*time.Hour), start.Add(11*time.Hour), "other.test"); len(got) != 1 || !got[0].Time.Equal(start.Add(10*time.Hour)) {
		t.Errorf("stop without a time: %+v", got)
	}
	e.restart()
	if got, _ := e.s.Stops(ctx, time.Time{}, start.Add(24*time.Hour), ""); len(got) != 5 {
		t.Errorf("%d stops after restart, want 5", len(got))
	}
}

func testPruneStops(t *testing.T, e *env) {
	ctx := t.Context()
	e.recordStops("example.com", "other.test", "example.com")
	n, err := e.s.PruneStops(ctx, start.Add(90*time.Minute))
	testutil.Must(t, err)
	all, err := e.s.Stops(ctx, time.Time{}, start.Add(48*time.Hour), "")
	testutil.Must(t, err)
	if n != 2 || len(all) != 1 || !all[0].Time.Equal(start.Add(2*time.Hour)) {
		t.Errorf("pruned %d, left %+v", n, all)
	}
	if n, err := e.s.PruneStops(ctx, start.Add(90*time.Minute)); n != 0 || err != nil {
		t.Errorf("pruned again: %d %v", n, err)
	}
}
