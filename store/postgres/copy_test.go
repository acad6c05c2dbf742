package postgres_test

import (
	"path/filepath"
	"testing"
	"time"

	"yubin/internal/testutil"
	"yubin/store"
	"yubin/store/bolt"
	"yubin/store/postgres"
)

// TestCopy copies a bbolt store with a bit of everything into PostgreSQL
// and checks that VerifyCopy finds them the same, that the copy keeps the
// store's promises, and that it goes on from where the old store was.
func TestCopy(t *testing.T) {
	ctx := t.Context()
	src, err := bolt.Open(filepath.Join(t.TempDir(), bolt.FileName), bolt.Options{})
	testutil.Must(t, err)
	defer src.Close()
	testutil.Must(t, src.AddDomain(ctx, "example.com", ""))
	testutil.Must(t, src.AddDomain(ctx, "child.example.com", "example.com"))
	testutil.Must(t, src.AddAccount(ctx, store.Account{Address: "info@example.com", PasswordHash: "h1", Quota: 1 << 20, Role: store.RoleAdmin}))
	testutil.Must(t, src.AddAccount(ctx, store.Account{Address: "bob@example.com", PasswordHash: "h2"}))
	testutil.Must(t, src.SetDomainSettings(ctx, "example.com", store.DomainSettings{Language: "ja", ReportTo: "info@example.com"}))
	_, err = src.SetForward(ctx, "bob@example.com", []string{"bob@elsewhere.test"}, true)
	testutil.Must(t, err)
	_, err = src.CreateMailbox(ctx, "info@example.com", "Work/2026")
	testutil.Must(t, err)
	testutil.Must(t, src.DeleteMailbox(ctx, "bob@example.com", "Junk"))
	testutil.Must(t, src.SetSubscribed(ctx, "info@example.com", "Work/2026", true))
	for i := range 6 {
		_, err := src.Deliver(ctx, store.Delivery{Recipients: []string{"info@example.com", "bob@example.com"}, Flags: []string{`\Seen`}[:i%2],
			Message: []byte("Subject: m\r\nFrom: a@b.test\r\n\r\nbody " + string(rune('a'+i)) + "\r\n")})
		testutil.Must(t, err)
	}
	_, err = src.MoveMessages(ctx, "info@example.com", "INBOX", "Work/2026", []uint32{2, 3})
	testutil.Must(t, err)
	_, err = src.Expunge(ctx, "bob@example.com", "INBOX", []uint32{4})
	testutil.Must(t, err)
	_, err = src.Deliver(ctx, store.Delivery{Recipients: []string{"bob@example.com"}, Message: []byte("Subject: held\r\n\r\nspam\r\n"),
		Quarantine: &store.QuarantineHold{Sender: "s@spam.test", Subject: "held", Score: 0.99}})
	testutil.Must(t, err)
	_, err = src.Enqueue(ctx, store.Outbound{QueueID: "Q1", From: "info@example.com", Recipients: []string{"x@remote.test"}, Origin: store.OriginSubmission, Message: []byte("Subject: out\r\n\r\n.\r\n")})
	testutil.Must(t, err)
	testutil.Must(t, src.RecordStop(ctx, store.Stop{Time: time.Now(), QueueID: "Q2", Direction: "inbound", Domains: []string{"example.com"}, Reasons: []string{"virus"}, Action: "rejected"}))

	dst, err := postgres.Open(ctx, schema(t), postgres.Options{})
	testutil.Must(t, err)
	defer dst.Close()
	rep, err := postgres.Copy(ctx, src, dst, nil)
	testutil.Must(t, err)
	if rep.Domains != 2 || rep.Accounts != 2 || rep.Messages != 11 || rep.Queue != 1 || rep.Quarantine != 1 || rep.Stops != 1 {
		t.Errorf("copied %+v", rep)
	}
	problems, n, _, err := postgres.VerifyCopy(ctx, src, dst)
	testutil.Must(t, err)
	if len(problems) > 0 || n != 11 {
		t.Errorf("VerifyCopy compared %d messages: %v", n, problems)
	}
	if p, err := dst.Verify(ctx); err != nil || len(p) > 0 {
		t.Errorf("Verify of the copy: %v %v", p, err)
	}
	if _, err := postgres.Copy(ctx, src, dst, nil); err == nil {
		t.Error("a second copy into a store that is not empty went ahead")
	}
	if subs, _ := dst.Subscriptions(ctx, "info@example.com"); len(subs) != 6 {
		t.Errorf("subscriptions %v", subs)
	}
	if f, _ := dst.GetForward(ctx, "bob@example.com"); len(f.Targets) != 1 || !f.KeepCopy {
		t.Errorf("forward %+v", f)
	}
	if ds, _ := dst.DomainSettings(ctx, "example.com"); ds.Language != "ja" {
		t.Errorf("domain settings %+v", ds)
	}
	// The copy goes on where the old store stopped.
	before, _ := src.Mailbox(ctx, "bob@example.com", "INBOX")
	d, err := dst.Deliver(ctx, store.Delivery{Recipients: []string{"bob@example.com"}, Message: []byte("Subject: after\r\n\r\n.\r\n")})
	testutil.Must(t, err)
	if d[0].UID != before.UIDNext || d[0].UIDValidity != before.UIDValidity {
		t.Errorf("the first delivery after the copy got UID %d/%d, want %d/%d", d[0].UIDValidity, d[0].UID, before.UIDValidity, before.UIDNext)
	}
	if gone, err := dst.Expunged(ctx, "bob@example.com", "INBOX", 1); err != nil || len(gone) != 1 || gone[0] != 4 {
		t.Errorf("Expunged after the copy: %v %v (want UID 4, as not there)", gone, err)
	}
}
