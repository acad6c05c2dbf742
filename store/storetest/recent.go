package storetest

import (
	"fmt"
	"testing"

	"yubin/internal/testutil"
	"yubin/store"
)

// \Recent (RFC 3501 2.3.2): a message is recent in exactly one session,
// the first to claim the mailbox's recent messages after it came.
var recentTests = []test{
	{"claim", testClaimRecent},
	{"concurrent claimers", testClaimRecentConcurrent},
	{"restart", testClaimRecentRestart},
}

// claim is ClaimRecent, failing the test on an error: the UIDs it claimed,
// from first up to UIDNEXT, and the mailbox.
func (e *env) claim(account, box string) (uint32, store.Mailbox) {
	e.t.Helper()
	first, m, err := e.s.ClaimRecent(e.t.Context(), account, box)
	testutil.Must(e.t, err)
	if first == 0 || first > m.UIDNext || m.FirstRecent != m.UIDNext {
		e.t.Fatalf("ClaimRecent(%s) claimed from %d, leaving %+v", box, first, m)
	}
	return first, m
}

func testClaimRecent(t *testing.T, e *env) {
	ctx := t.Context()
	// wantClaim claims and checks the range claimed: [from, to).
	wantClaim := func(what, box string, from, to uint32) {
		t.Helper()
		first, m := e.claim(info, box)
		if first != from || m.UIDNext != to {
			t.Errorf("%s: claimed [%d, %d), want [%d, %d)", what, first, m.UIDNext, from, to)
		}
	}
	if m := e.mailbox(info, "INBOX"); m.FirstRecent != 1 {
		t.Errorf("a new mailbox's FirstRecent %d, want 1", m.FirstRecent)
	}
	wantClaim("empty mailbox", "INBOX", 1, 1)
	e.deliverN(info, "", 3)
	if m := e.mailbox(info, "INBOX"); m.FirstRecent != 1 {
		t.Errorf("after 3 deliveries, FirstRecent %d, want 1", m.FirstRecent)
	}
	highest := e.mailbox(info, "INBOX").HighestModSeq
	wantClaim("3 delivered", "INBOX", 1, 4)
	wantClaim("claimed again", "INBOX", 4, 4)
	if m := e.mailbox(info, "INBOX"); m.FirstRecent != 4 || m.HighestModSeq != highest {
		t.Errorf("after the claim: %+v (a claim changes no message: HighestModSeq was %d)", m, highest)
	}
	// What comes later is recent to the next claimer, however it came;
	// expunged or not.
	e.deliverN(info, "", 2)
	_, err := e.s.Expunge(ctx, info, "INBOX", []uint32{5})
	testutil.Must(t, err)
	e.deliverN(info, "Junk", 2)
	_, err = e.s.CopyMessages(ctx, info, "Junk", "INBOX", []uint32{1})
	testutil.Must(t, err)
	_, err = e.s.MoveMessages(ctx, info, "Junk", "INBOX", []uint32{2})
	testutil.Must(t, err)
	wantClaim("delivered, copied and moved in", "INBOX", 4, 8)
	// Per mailbox and per account.
	wantClaim("Junk", "Junk", 1, 3)
	if first, m := e.claim(bob, "INBOX"); first != 1 || m.UIDNext != 1 {
		t.Errorf("bob's INBOX: claimed [%d, %d)", first, m.UIDNext)
	}
	// Renaming INBOX takes what is recent along, and leaves INBOX as it was.
	e.deliverN(info, "", 2)
	testutil.Must(t, e.s.RenameMailbox(ctx, info, "INBOX", "Old"))
	wantClaim("the mailbox INBOX became", "Old", 8, 10)
	wantClaim("INBOX renamed away", "INBOX", 8, 10)
	runErrCases(t, e, []errCase{
		{"unknown mailbox", func(e *env) error { _, _, err := e.s.ClaimRecent(e.t.Context(), info, "Nope"); return err }, store.ErrNoSuchMailbox},
		{"unknown account", func(e *env) error {
			_, _, err := e.s.ClaimRecent(e.t.Context(), "nobody@example.com", "INBOX")
			return err
		}, store.ErrNoSuchAccount},
	})
}

// Eight sessions claiming while mail comes in: every message is recent in
// exactly one of them.
func testClaimRecentConcurrent(t *testing.T, e *env) {
	ctx := t.Context()
	testutil.Must(t, e.s.SetQuota(ctx, info, 0))
	const claimers, mails = 8, 60
	done := make(chan struct{})
	claimed := make([][][2]uint32, claimers)
	errs := parallel(claimers+1, func(i int) error {
		if i == claimers {
			defer close(done)
			for n := range mails {
				if _, err := e.s.Deliver(ctx, store.Delivery{Recipients: []string{info}, Message: body(n)}); err != nil {
					return err
				}
			}
			return nil
		}
		for last := false; !last; {
			select {
			case <-done:
				last = true // one more round after the last delivery
			default:
			}
			first, m, err := e.s.ClaimRecent(ctx, info, "INBOX")
			if err != nil {
				return err
			}
			if first > m.UIDNext || m.FirstRecent != m.UIDNext {
				return fmt.Errorf("claimed from %d, leaving %+v", first, m)
			}
			if first < m.UIDNext {
				claimed[i] = append(claimed[i], [2]uint32{first, m.UIDNext})
			}
		}
		return nil
	})
	for _, err := range errs {
		testutil.Must(t, err)
	}
	times := make([]int, mails+1)
	for _, ranges := range claimed {
		for _, r := range ranges {
			for uid := r[0]; uid < r[1]; uid++ {
				times[uid]++
			}
		}
	}
	for uid := 1; uid <= mails; uid++ {
		if times[uid] != 1 {
			t.Errorf("UID %d was claimed as recent %d times, want once (claims: %v)", uid, times[uid], claimed)
		}
	}
}

// What was claimed stays claimed across a restart, and what was not stays
// recent.
func testClaimRecentRestart(t *testing.T, e *env) {
	e.deliverN(info, "", 3)
	e.claim(info, "INBOX")
	e.deliverN(info, "", 2)
	e.restart()
	if m := e.mailbox(info, "INBOX"); m.FirstRecent != 4 {
		t.Errorf("after a restart, FirstRecent %d, want 4", m.FirstRecent)
	}
	if first, m := e.claim(info, "INBOX"); first != 4 || m.UIDNext != 6 {
		t.Errorf("after a restart, claimed [%d, %d), want [4, 6)", first, m.UIDNext)
	}
}
