package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"yubin/admin"
	"yubin/internal/testutil"
	"yubin/internal/testutil/teststore"
	"yubin/store"
)

func testForwardAndQueueCLI(t *testing.T, dir string, enqueue func()) {
	mustCLI(t, dir, "", "domain", "add", "example.com")
	mustCLI(t, dir, "", "domain", "add", "sales.example.com", "--parent", "example.com")
	mustCLI(t, dir, "pw-1234567\n", "account", "add", "a@example.com", "--password-stdin")
	mustCLI(t, dir, "pw-1234567\n", "account", "add", "b@example.com", "--password-stdin")

	var ten []string
	for i := range 10 {
		ten = append(ten, fmt.Sprintf("t%d@remote.test", i))
	}
	f := decode[admin.Forwarding](t, mustCLI(t, dir, "", append([]string{"forward", "set", "A@example.com", "--keep-copy", "--json", "b@example.com"}, ten[:9]...)...))
	if f.Address != "a@example.com" || len(f.Targets) != 10 || !f.KeepCopy {
		t.Fatalf("set: %+v", f)
	}
	before := mustCLI(t, dir, "", "forward", "show", "a@example.com", "--json")
	for name, args := range map[string][]string{
		"eleven":      append([]string{"forward", "set", "a@example.com"}, append(ten, "x@remote.test")...),
		"malformed":   {"forward", "set", "a@example.com", "not-an-address"},
		"itself":      {"forward", "set", "a@example.com", "b@example.com", "a@sales.example.com"},
		"no such":     {"forward", "set", "a@example.com", "nobody@example.com"},
		"routing":     {"forward", "set", "a@example.com", "x%y@remote.test"},
		"bad account": {"forward", "set", "zz@example.com", "b@example.com"},
	} {
		r := cli(t, dir, "", args...)
		if r.code != 1 || strings.Count(r.err, "\n") != 1 || !strings.HasPrefix(r.err, "yubin: ") {
			t.Errorf("%s: %+v", name, r)
		}
		if name == "eleven" && !strings.Contains(r.err, "at most 10") {
			t.Errorf("eleven: %q", r.err)
		}
		if name == "itself" && !strings.Contains(r.err, "itself") {
			t.Errorf("itself: %q", r.err)
		}
	}
	if after := mustCLI(t, dir, "", "forward", "show", "a@example.com", "--json"); after != before {
		t.Fatalf("a refused set changed the rule:\n%s\n%s", before, after)
	}
	out := mustCLI(t, dir, "", "forward", "show", "a@example.com")
	if !strings.Contains(out, "forwards to 10 address(es); a copy stays in the INBOX") || !strings.Contains(out, "t8@remote.test") {
		t.Fatalf("show: %s", out)
	}
	if out := mustCLI(t, dir, "", "forward", "clear", "a@example.com"); !strings.Contains(out, "does not forward") {
		t.Fatalf("clear: %s", out)
	}
	if r := cli(t, dir, "", "forward", "set", "a@example.com"); r.code != 2 {
		t.Errorf("set without targets: %+v", r)
	}

	// The queue.
	if out := mustCLI(t, dir, "", "queue", "list"); !strings.Contains(out, "empty") {
		t.Fatalf("list: %s", out)
	}
	enqueue()
	q := decode[[]admin.QueueEntry](t, mustCLI(t, dir, "", "queue", "list", "--json"))
	if len(q) != 2 {
		t.Fatalf("queue %+v", q)
	}
	if out := mustCLI(t, dir, "", "queue", "list"); !strings.Contains(out, q[0].ID) || !strings.Contains(out, "x@remote.test") {
		t.Fatalf("list: %s", out)
	}
	if out := mustCLI(t, dir, "", "queue", "show", q[0].ID); !strings.Contains(out, "Subject: queued") || !strings.Contains(out, "pending") {
		t.Fatalf("show: %s", out)
	}
	if r := cli(t, dir, "", "queue", "show", "nope"); r.code != 1 || !strings.Contains(r.err, "nope") {
		t.Errorf("show unknown: %+v", r)
	}
	if r := cli(t, dir, "", "queue", "retry"); r.code != 1 || !strings.Contains(r.err, "--all") {
		t.Errorf("retry without ids: %+v", r)
	}
	if out := mustCLI(t, dir, "", "queue", "retry", "--all"); !strings.Contains(out, "2 queue entries will be retried") {
		t.Fatalf("retry: %s", out)
	}
	if r := cli(t, dir, "", "queue", "drop", q[0].ID, "nope"); r.code != 1 {
		t.Errorf("drop with an unknown id: %+v", r)
	}
	if out := mustCLI(t, dir, "", "queue", "drop", q[0].ID); !strings.Contains(out, "1 queue entry dropped") {
		t.Fatalf("drop: %s", out)
	}
	if q := decode[[]admin.QueueEntry](t, mustCLI(t, dir, "", "queue", "list", "--json")); len(q) != 1 {
		t.Fatalf("after drop %+v", q)
	}
}

func enqueueTwo(t *testing.T, st store.Store) {
	_, err := st.Enqueue(context.Background(), store.Outbound{QueueID: "Q", From: "a@example.com", ReturnPath: "a@example.com",
		Recipients: []string{"x@remote.test", "y@far.test"}, Origin: store.OriginSubmission,
		Message: []byte("Subject: queued\r\n\r\nbody\r\n")})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCLIForwardAndQueue(t *testing.T) {
	dir := testutil.ShortDir(t)
	testForwardAndQueueCLI(t, dir, func() {
		st := teststore.OpenDir(t, dir, teststore.Options{})
		defer st.Close()
		enqueueTwo(t, st)
	})
}

func TestCLIForwardAndQueueWhileServing(t *testing.T) {
	dir := testutil.ShortDir(t)
	st := teststore.OpenDir(t, dir, teststore.Options{})
	stop := serveControl(t, dir, st)
	testForwardAndQueueCLI(t, dir, func() { enqueueTwo(t, st) })
	testutil.Must(t, stop())
}
