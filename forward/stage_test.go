package forward

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"yubin/forward/srs"
	"yubin/internal/delivery"
	"yubin/internal/testutil/teststore"
	"yubin/store"
)

func forwardEnv(t *testing.T) (store.Store, *delivery.Deliverer, *Stage) {
	t.Helper()
	st := teststore.New(t, teststore.Options{Accounts: []store.Account{
		{Address: "a@example.com"}, {Address: "b@example.com"}, {Address: "c@example.com"}, {Address: "d@example.net"}}})
	fs, err := NewStage(t.Context(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st, delivery.New(st, nil, fs), fs
}

func setFwd(t *testing.T, st store.Store, addr string, keep bool, targets ...string) {
	t.Helper()
	if _, err := st.SetForward(t.Context(), addr, targets, keep); err != nil {
		t.Fatal(err)
	}
}

func inbox(t *testing.T, st store.Store, acct string) []string {
	t.Helper()
	msgs, _, err := st.Messages(t.Context(), acct, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		b, _ := st.ReadMessage(t.Context(), acct, "INBOX", m.UID)
		out = append(out, string(b))
	}
	return out
}

func queued(t *testing.T, st store.Store) []store.QueueEntry {
	all, err := st.QueueEntries(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func verify(t *testing.T, st store.Store) {
	t.Helper()
	if p, err := st.Verify(t.Context()); err != nil || len(p) > 0 {
		t.Fatalf("Verify: %v %v", p, err)
	}
}

var fwdMsg = []byte("Received: from x by y; Sun, 1 Mar 2026 09:00:00 +0000\r\nFrom: s@sender.test\r\nSubject: fwd\r\n\r\nbody\r\n")

// Keep-copy on: the account keeps it, a local and a remote target get a
// copy with Delivered-To, the remote one with an SRS sender that reverses
// to the original sender.
func TestForwardKeepCopy(t *testing.T) {
	st, d, fs := forwardEnv(t)
	setFwd(t, st, "a@example.com", true, "b@example.com", "x@remote.test", "y@remote.test", "z@far.test")
	res, err := d.Deliver(context.Background(), delivery.Envelope{From: "s@sender.test", Recipients: []string{"a@example.com"}}, fwdMsg)
	if err != nil {
		t.Fatal(err)
	}
	if a := inbox(t, st, "a@example.com"); len(a) != 1 || a[0] != string(fwdMsg) {
		t.Fatalf("a: %q", a)
	}
	b := inbox(t, st, "b@example.com")
	if len(b) != 1 || !strings.HasPrefix(b[0], "Delivered-To: a@example.com\r\n") || !strings.HasSuffix(b[0], string(fwdMsg)) {
		t.Fatalf("b: %q", b)
	}
	q := queued(t, st)
	if len(q) != 2 || len(res.Queued) != 2 || q[0].Domain != "remote.test" || len(q[0].Recipients) != 2 || q[1].Domain != "far.test" {
		t.Fatalf("queued %+v", q)
	}
	if q[0].Origin != store.OriginForward || !srs.IsSRS(q[0].From) || !strings.HasSuffix(q[0].From, "@example.com") || q[0].ReturnPath != "s@sender.test" {
		t.Fatalf("entry %+v", q[0])
	}
	if orig, err := fs.SRS.Reverse(q[0].From); err != nil || orig != "s@sender.test" {
		t.Fatalf("SRS reverse %q %v", orig, err)
	}
	raw, _, _ := st.ReadQueued(t.Context(), q[0].ID)
	if string(raw) != b[0] {
		t.Fatalf("remote copy differs from the local one:\n%s", raw)
	}
	verify(t, st)
}

// A sender whose local part is too long for an SRS address within RFC
// 5321's 64 octets (a VERP list sender) is forwarded with the account as
// the sender; a forward target may have a long local part too.
func TestForwardLongSender(t *testing.T) {
	st, d, _ := forwardEnv(t)
	target := "tracker+" + strings.Repeat("t", 100) + "@remote.test"
	setFwd(t, st, "a@example.com", false, target)
	verp := "list-bounces+" + strings.Repeat("v", 130) + "=example.org@lists.sender.test"
	if _, err := d.Deliver(context.Background(), delivery.Envelope{From: verp, Recipients: []string{"a@example.com"}}, fwdMsg); err != nil {
		t.Fatal(err)
	}
	q := queued(t, st)
	if len(q) != 1 || len(q[0].Pending()) != 1 || q[0].Pending()[0] != target {
		t.Fatalf("queued %+v", q)
	}
	if q[0].From != "a@example.com" || q[0].ReturnPath != "a@example.com" {
		t.Fatalf("sender %q, return path %q; want the account for both", q[0].From, q[0].ReturnPath)
	}
	verify(t, st)
}

// Keep-copy off: nothing in the account's mailbox; a local sender is not
// rewritten; a chain a -> c -> d@example.net follows the rules of each.
func TestForwardNoCopyAndChain(t *testing.T) {
	st, d, _ := forwardEnv(t)
	setFwd(t, st, "a@example.com", false, "c@example.com")
	setFwd(t, st, "c@example.com", false, "d@example.net", "x@remote.test")
	_, err := d.Deliver(context.Background(), delivery.Envelope{From: "b@example.com", Source: delivery.Submission, Recipients: []string{"a@example.com"}}, fwdMsg)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(inbox(t, st, "a@example.com")) + len(inbox(t, st, "c@example.com")); n != 0 {
		t.Fatalf("%d copies kept", n)
	}
	dd := inbox(t, st, "d@example.net")
	if len(dd) != 1 || !strings.HasPrefix(dd[0], "Delivered-To: c@example.com\r\nDelivered-To: a@example.com\r\n") {
		t.Fatalf("d: %q", dd)
	}
	q := queued(t, st)
	if len(q) != 1 || q[0].From != "b@example.com" {
		t.Fatalf("queued %+v", q)
	}
	verify(t, st)
}

// A loop a -> b -> a ends in a mailbox, once; a message that comes back
// with a's Delivered-To is not forwarded again.
func TestForwardLoop(t *testing.T) {
	st, d, _ := forwardEnv(t)
	setFwd(t, st, "a@example.com", false, "b@example.com")
	setFwd(t, st, "b@example.com", false, "a@example.com")
	if _, err := d.Deliver(context.Background(), delivery.Envelope{From: "s@sender.test", Recipients: []string{"a@example.com"}}, fwdMsg); err != nil {
		t.Fatal(err)
	}
	a, b := inbox(t, st, "a@example.com"), inbox(t, st, "b@example.com")
	if len(a)+len(b) != 1 || len(queued(t, st)) != 0 {
		t.Fatalf("a %d, b %d, queued %d", len(a), len(b), len(queued(t, st)))
	}

	// Back from outside (a forwards to a remote address that forwards back).
	setFwd(t, st, "b@example.com", false)
	setFwd(t, st, "a@example.com", false, "x@remote.test")
	back := append([]byte("Received: from remote\r\nDelivered-To: a@example.com\r\n"), fwdMsg...)
	if _, err := d.Deliver(context.Background(), delivery.Envelope{From: "s@sender.test", Recipients: []string{"a@example.com"}}, back); err != nil {
		t.Fatal(err)
	}
	if a := inbox(t, st, "a@example.com"); len(a) != 2 || len(queued(t, st)) != 0 {
		t.Fatalf("loop from outside: a has %d, queued %d", len(a), len(queued(t, st)))
	}
	// Too many hops.
	many := append(bytes.Repeat([]byte("Received: from hop\r\n"), DefaultMaxHops), fwdMsg...)
	if _, err := d.Deliver(context.Background(), delivery.Envelope{From: "s@sender.test", Recipients: []string{"a@example.com"}}, many); err != nil {
		t.Fatal(err)
	}
	if a := inbox(t, st, "a@example.com"); len(a) != 3 || len(queued(t, st)) != 0 {
		t.Fatalf("hops: a has %d, queued %d", len(a), len(queued(t, st)))
	}
	verify(t, st)
}

// Ten targets are all served; a discarded copy forwards nothing; a
// stripped copy is what is forwarded.
func TestForwardTenTargetsAndScan(t *testing.T) {
	st, _, fs := forwardEnv(t)
	var ten []string
	for i := range 10 {
		ten = append(ten, "t"+string(rune('a'+i))+"@remote.test")
	}
	setFwd(t, st, "a@example.com", false, ten...)
	if _, err := st.SetForward(t.Context(), "a@example.com", append(ten, "k@remote.test"), false); err == nil {
		t.Fatal("11th target accepted")
	}
	setFwd(t, st, "b@example.com", false, "x@remote.test")
	scanLike := delivery.StageFunc("scan", func(ctx context.Context, m *delivery.Message) error {
		for _, r := range m.Local {
			switch r.Account {
			case "a@example.com":
				r.Body = &delivery.Body{Raw: []byte("X-Stripped: yes\r\n\r\nclean part\r\n")}
			case "b@example.com":
				r.Drop, r.Why = true, "discarded"
			}
		}
		return nil
	})
	d := delivery.New(st, nil, scanLike, fs)
	if _, err := d.Deliver(context.Background(), delivery.Envelope{From: "s@sender.test", Recipients: []string{"a@example.com", "b@example.com"}}, fwdMsg); err != nil {
		t.Fatal(err)
	}
	q := queued(t, st)
	if len(q) != 1 || len(q[0].Recipients) != 10 {
		t.Fatalf("queued %+v", q)
	}
	raw, _, _ := st.ReadQueued(t.Context(), q[0].ID)
	if string(raw) != "Delivered-To: a@example.com\r\nX-Stripped: yes\r\n\r\nclean part\r\n" {
		t.Fatalf("forwarded %q", raw)
	}
	verify(t, st)
}
