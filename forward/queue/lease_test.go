package queue

import (
	"testing"
	"time"

	"yubin/internal/testutil"
	"yubin/store"
)

// Two runners on one store: an entry another node holds is not delivered
// until its lease ends; a runner that starts again ends its own leases at
// once (it crashed holding them) instead of waiting for them to expire.
func TestLeasesAcrossRunners(t *testing.T) {
	e := newEnv(t)
	sk := newSink(t, false)
	e.route("remote.test", sk)
	id := e.enqueue(store.Outbound{QueueID: "L1", From: "info@example.com", ReturnPath: "info@example.com",
		Recipients: []string{"bob@remote.test"}, Message: testMsg})
	now := e.clock.Now()
	_, err := e.st.LeaseQueued(ctx, []string{id}, "other-node", now, now.Add(time.Hour))
	testutil.Must(t, err)

	r := e.runner(Config{Node: "this-node"})
	r.RunDue(ctx)
	sk.None()
	if q, err := e.st.QueueEntry(ctx, id); err != nil || q.LeaseHolder != "other-node" || q.Attempts != 0 {
		t.Fatalf("entry held by another node: %+v %v", q, err)
	}

	// The other node died: once its lease is over, this one delivers.
	e.clock.Add(time.Hour + time.Second)
	r.RunDue(ctx)
	if m := sk.Next(); m.From != "info@example.com" {
		t.Fatalf("received %+v", m)
	}
	if e.queueLen() != 0 {
		t.Fatal("entry still queued")
	}

	// A lease this node held when it stopped ends when it runs again.
	id = e.enqueue(store.Outbound{QueueID: "L2", From: "info@example.com", ReturnPath: "info@example.com",
		Recipients: []string{"carol@remote.test"}, Message: testMsg})
	now = e.clock.Now()
	_, err = e.st.LeaseQueued(ctx, []string{id}, "this-node", now, now.Add(time.Hour))
	testutil.Must(t, err)
	r.releaseOwnLeases(ctx)
	r.RunDue(ctx)
	if m := sk.Next(); len(m.To) != 1 || m.To[0] != "carol@remote.test" {
		t.Fatalf("received %+v", m)
	}
	e.verify()
}
