package postgres_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"yubin/internal/testutil"
	"yubin/internal/testutil/pgtest"
	"yubin/store"
	"yubin/store/postgres"
)

// nodes opens n stores on one schema, as n Yubin nodes on one database,
// with the domain example.com and the account info@example.com (quota).
func nodes(t *testing.T, n int, quota int64) []*postgres.Store {
	t.Helper()
	url := schema(t)
	var out []*postgres.Store
	for range n {
		s, err := postgres.Open(t.Context(), url, postgres.Options{MaxConns: 8})
		testutil.Must(t, err)
		t.Cleanup(func() { s.Close() })
		out = append(out, s)
	}
	ctx := t.Context()
	testutil.Must(t, out[0].AddDomain(ctx, "example.com", ""))
	testutil.Must(t, out[0].AddAccount(ctx, store.Account{Address: "info@example.com", PasswordHash: "x", Quota: quota}))
	return out
}

// TestFeedAcrossNodes: a subscriber on one node gets what another node
// commits, in commit order, within a second.
func TestFeedAcrossNodes(t *testing.T) {
	n := nodes(t, 2, 0)
	ctx := t.Context()
	sub := n[1].Subscribe(ctx, "info@example.com", 100)
	defer sub.Close()
	var want []string
	for i := range 5 {
		d, err := n[0].Deliver(ctx, store.Delivery{Recipients: []string{"info@example.com"}, Message: fmt.Appendf(nil, "Subject: %d\r\n\r\n.\r\n", i)})
		testutil.Must(t, err)
		want = append(want, fmt.Sprintf("new INBOX %d", d[0].UID))
	}
	if _, err := n[0].Expunge(ctx, "info@example.com", "INBOX", []uint32{2}); err != nil {
		t.Fatal(err)
	}
	want = append(want, "expunge INBOX 2")
	var got []string
	deadline := time.After(time.Second)
	for len(got) < len(want) {
		select {
		case ev := <-sub.C:
			got = append(got, fmt.Sprintf("%s %s %d", ev.Kind, ev.Mailbox, ev.UID))
		case <-deadline:
			t.Fatalf("after a second node B has seen %v of node A's %v", got, want)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("node B saw %v, want %v", got, want)
	}
}

// TestQuotaAcrossNodes: deliveries racing on two nodes never go over the
// quota, the usage stays exact and no UID is handed out twice.
func TestQuotaAcrossNodes(t *testing.T) {
	const size, fit = 100, 30
	n := nodes(t, 2, size*fit)
	ctx := t.Context()
	msg := make([]byte, size)
	copy(msg, "Subject: x\r\n\r\n")
	var mu sync.Mutex
	uids := map[uint32]bool{}
	ok, full := 0, 0
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for range 6 {
				d, err := n[w%2].Deliver(ctx, store.Delivery{Recipients: []string{"info@example.com"}, Message: msg})
				mu.Lock()
				var qe *store.QuotaError
				switch {
				case err == nil:
					ok++
					if uids[d[0].UID] {
						t.Errorf("UID %d handed out twice", d[0].UID)
					}
					uids[d[0].UID] = true
				case errors.As(err, &qe):
					full++
				default:
					t.Error(err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	a, err := n[1].Account(ctx, "info@example.com")
	testutil.Must(t, err)
	if ok != fit || full != 48-fit || a.Used != size*fit {
		t.Errorf("%d delivered, %d refused, usage %d; want %d, %d, %d", ok, full, a.Used, fit, 48-fit, size*fit)
	}
	problems, err := n[0].Verify(ctx)
	testutil.Must(t, err)
	if len(problems) > 0 {
		t.Errorf("Verify: %v", problems)
	}
}

// TestLeaseAcrossNodes: nodes racing for the same due entries each get a
// disjoint share, and every entry goes to one of them.
func TestLeaseAcrossNodes(t *testing.T) {
	n := nodes(t, 3, 0)
	ctx := t.Context()
	var ids []string
	for i := range 20 {
		got, err := n[0].Enqueue(ctx, store.Outbound{QueueID: "q", From: "info@example.com", Recipients: []string{fmt.Sprintf("r@d%d.test", i)}, Origin: store.OriginSubmission, Message: []byte("Subject: x\r\n\r\n.\r\n")})
		testutil.Must(t, err)
		ids = append(ids, got...)
	}
	now := time.Now()
	var mu sync.Mutex
	holder := map[string]int{}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			for range 5 {
				got, err := n[i].LeaseQueued(ctx, ids, fmt.Sprint("node", i), now, now.Add(time.Minute))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, e := range got {
					if h, ok := holder[e.ID]; ok && h != i {
						t.Errorf("entry %s leased by node %d and node %d", e.ID, h, i)
					}
					holder[e.ID] = i
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(holder) != len(ids) {
		t.Errorf("%d of %d entries leased", len(holder), len(ids))
	}
	// A lease that ran out (its node died) is claimed by another.
	later := now.Add(2 * time.Minute)
	got, err := n[1].LeaseQueued(ctx, ids[:1], "node-late", later, later.Add(time.Minute))
	testutil.Must(t, err)
	if len(got) != 1 {
		t.Errorf("an expired lease was not taken over: %v", got)
	}
}

// TestNewerSchemaRefused: a database a newer Yubin migrated is refused
// with a message that says so, and nothing is changed.
func TestNewerSchemaRefused(t *testing.T) {
	url := schema(t)
	s, err := postgres.Open(t.Context(), url, postgres.Options{})
	testutil.Must(t, err)
	s.Close()
	conn, err := pgx.Connect(t.Context(), url)
	testutil.Must(t, err)
	defer conn.Close(t.Context())
	_, err = conn.Exec(t.Context(), `INSERT INTO schema_version (version) VALUES ($1)`, postgres.SchemaVersion+1)
	testutil.Must(t, err)
	_, err = postgres.Open(t.Context(), url, postgres.Options{})
	if !errors.Is(err, postgres.ErrNewerSchema) {
		t.Fatalf("opening a schema of version %d: %v, want ErrNewerSchema", postgres.SchemaVersion+1, err)
	}
	t.Log(err)
	// The spare schema must not go back with the newer version in it.
	_, err = conn.Exec(t.Context(), `DELETE FROM schema_version WHERE version > $1`, postgres.SchemaVersion)
	testutil.Must(t, err)
}

// TestMaildropLockAcrossNodes: a POP3 maildrop locked on one node is
// locked on the others, until released or its node is gone.
func TestMaildropLockAcrossNodes(t *testing.T) {
	n := nodes(t, 3, 0)
	ctx := t.Context()
	release, ok, err := n[0].LockMaildrop(ctx, "info@example.com")
	if err != nil || !ok {
		t.Fatalf("lock on node A: %v %v", ok, err)
	}
	if _, ok, err := n[1].LockMaildrop(ctx, "info@example.com"); err != nil || ok {
		t.Fatalf("node B locked a maildrop node A holds: %v %v", ok, err)
	}
	release()
	r2, ok, err := n[1].LockMaildrop(ctx, "info@example.com")
	if err != nil || !ok {
		t.Fatalf("node B cannot lock a maildrop node A released: %v %v", ok, err)
	}
	// Node B goes away with the lock held: node C gets it.
	n[1].Close()
	_ = r2
	if _, ok, err := n[2].LockMaildrop(ctx, "info@example.com"); err != nil || !ok {
		t.Fatalf("the lock of a node that is gone still holds: %v %v", ok, err)
	}
}

// TestDatabaseGoesAway: while the database is down, writes fail with
// ErrUnavailable (SMTP answers 451 4.3.0 to that); when it is back, both
// nodes carry on by themselves: writes succeed and the change feed from
// the other node flows again.
func TestDatabaseGoesAway(t *testing.T) {
	c, err := pgtest.Start(pgtest.Options{})
	if err != nil {
		t.Skip("SKIP: " + err.Error())
	}
	defer c.Stop()
	ctx := t.Context()
	_, url, err := c.CreateDatabase(ctx, "")
	testutil.Must(t, err)
	var n []*postgres.Store
	for range 2 {
		s, err := postgres.Open(ctx, url, postgres.Options{})
		testutil.Must(t, err)
		defer s.Close()
		n = append(n, s)
	}
	testutil.Must(t, n[0].AddDomain(ctx, "example.com", ""))
	testutil.Must(t, n[0].AddAccount(ctx, store.Account{Address: "info@example.com", PasswordHash: "x"}))
	d := store.Delivery{Recipients: []string{"info@example.com"}, Message: []byte("Subject: x\r\n\r\n.\r\n")}
	_, err = n[0].Deliver(ctx, d)
	testutil.Must(t, err)

	c.Kill()
	if _, err := n[0].Deliver(ctx, d); !errors.Is(err, postgres.ErrUnavailable) {
		t.Fatalf("a delivery with the database gone: %v, want ErrUnavailable", err)
	}
	testutil.Must(t, c.Restart())
	// The pool notices dead connections as it uses them: a write may fail
	// once or twice before a fresh connection is made.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := n[0].Deliver(ctx, d)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries still fail 10 s after the database came back: %v", err)
		}
	}
	sub := n[1].Subscribe(ctx, "info@example.com", 10)
	defer sub.Close()
	// Node B's listener reconnects within about a second of its own.
	deadline = time.Now().Add(10 * time.Second)
	for {
		got, err := n[0].Deliver(ctx, d)
		testutil.Must(t, err)
		select {
		case ev := <-sub.C:
			if ev.UID != got[0].UID {
				t.Errorf("node B heard of UID %d, node A delivered %d", ev.UID, got[0].UID)
			}
			msgs, _, err := n[1].Messages(ctx, "info@example.com", "INBOX")
			testutil.Must(t, err)
			if len(msgs) < 3 {
				t.Errorf("%d messages after the outage", len(msgs))
			}
			return
		case <-time.After(time.Second):
		}
		if time.Now().After(deadline) {
			t.Fatal("node B hears nothing of node A's deliveries 10 s after the database came back")
		}
	}
}
