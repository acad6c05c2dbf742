package postgres_test

import (
	"path/filepath"
	"strings"
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
	// The state only store.Transfer lists.
	ref := store.MessageRef{Account: "info@example.com", Mailbox: "Work/2026", UID: 1}
	_, err = src.TrainSpam(ctx, store.SpamTraining{Owners: []string{"info@example.com", "example.com"}, Tokens: []string{"cheap", "pills"}, Class: store.Spam, Message: &ref})
	testutil.Must(t, err)
	_, err = src.TrainSpam(ctx, store.SpamTraining{Owners: []string{"example.com"}, Tokens: []string{"meeting"}, Class: store.Ham})
	testutil.Must(t, err)
	_, err = src.Import(ctx, "bob@example.com", []store.ImportMessage{{Key: "mbox/1", Message: []byte("Subject: imported\r\n\r\n.\r\n")}})
	testutil.Must(t, err)
	if ok, err := src.DeliverOnce(ctx, "report/example.com/2026-11-30", store.Delivery{Recipients: []string{"info@example.com"}, Message: []byte("Subject: report\r\n\r\n.\r\n")}); !ok || err != nil {
		t.Fatalf("DeliverOnce: %v %v", ok, err)
	}
	testutil.Must(t, src.SetQuotaWarned(ctx, "info@example.com", true))
	testutil.Must(t, src.SetSpamPolicy(ctx, "bob@example.com", store.SpamPolicy{Action: store.SpamQuarantine, Threshold: 0.8}))
	_, err = src.EnsureDKIMKeys(ctx, "example.com", func() ([]store.DKIMKey, error) {
		return []store.DKIMKey{{Selector: "s1", Algorithm: "ed25519", PrivateKey: []byte("key"), Created: time.Now()}}, nil
	})
	testutil.Must(t, err)
	testutil.Must(t, src.SetLastBackup(ctx, store.LastBackup{Time: time.Now(), Size: 123, File: "/b.yubin", Messages: 11}))
	gone, err := src.RememberedExpunges(ctx, "bob@example.com", "INBOX")
	testutil.Must(t, err)
	if len(gone.Expunges) != 1 {
		t.Fatalf("bob's INBOX remembers %+v", gone)
	}

	dst, err := postgres.Open(ctx, schema(t), postgres.Options{})
	testutil.Must(t, err)
	defer dst.Close()
	rep, err := postgres.Copy(ctx, src, dst, nil)
	testutil.Must(t, err)
	if rep.Domains != 2 || rep.Accounts != 2 || rep.Messages != 13 || rep.Queue != 1 || rep.Quarantine != 1 || rep.Stops != 1 ||
		rep.SpamModels != 2 || rep.SpamTokens != 5 || rep.SpamTrained != 1 || rep.ImportKeys != 1 || rep.OnceKeys != 1 || rep.Expunges != 3 || rep.QuotaWarned != 1 {
		t.Errorf("copied %+v", rep)
	}
	problems, n, _, err := postgres.VerifyCopy(ctx, src, dst)
	testutil.Must(t, err)
	if len(problems) > 0 || n != 13 {
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
	// The expunge is remembered as it was: exactly, since just before it.
	if uids, err := dst.Expunged(ctx, "bob@example.com", "INBOX", gone.Expunges[0].ModSeq-1); err != nil || len(uids) != 1 || uids[0] != 4 {
		t.Errorf("Expunged after the copy: %v %v (want UID 4)", uids, err)
	}
	if uids, _ := dst.Expunged(ctx, "bob@example.com", "INBOX", gone.Expunges[0].ModSeq); len(uids) != 0 {
		t.Errorf("Expunged since the expunge: %v, want none (it is remembered, not guessed)", uids)
	}
	if c, err := dst.SpamTrained(ctx, ref); err != nil || c != store.Spam {
		t.Errorf("trained as %v %v after the copy", c, err)
	}
	if tot, counts, _ := dst.SpamCounts(ctx, "example.com", []string{"pills", "meeting"}); tot != (store.SpamTotals{Spam: 1, Ham: 1, Tokens: 3}) || counts[0].Spam != 1 || counts[1].Ham != 1 {
		t.Errorf("the domain's spam model after the copy: %+v %+v", tot, counts)
	}
	if got, _ := dst.Imported(ctx, "bob@example.com", []string{"mbox/1"}); !got[0] {
		t.Error("the import key was not copied")
	}
	if ok, err := dst.DeliverOnce(ctx, "report/example.com/2026-11-30", store.Delivery{Recipients: []string{"info@example.com"}, Message: []byte("Subject: again\r\n\r\n.\r\n")}); ok || err != nil {
		t.Errorf("the daily report went out again after the copy: %v %v", ok, err)
	}
	if crossed, _, _ := dst.CheckQuotaWarning(ctx, "info@example.com", 0); crossed {
		t.Error("the quota warning given before the copy was given again")
	}
}

// TestVerifyCopyFinds: VerifyCopy reports each part of the state that the
// copy does not hold as the original does.
func TestVerifyCopyFinds(t *testing.T) {
	ctx := t.Context()
	src, err := bolt.Open(filepath.Join(t.TempDir(), bolt.FileName), bolt.Options{})
	testutil.Must(t, err)
	defer src.Close()
	testutil.Must(t, src.AddDomain(ctx, "example.com", ""))
	testutil.Must(t, src.AddAccount(ctx, store.Account{Address: "info@example.com", PasswordHash: "h1"}))
	d, err := src.Deliver(ctx, store.Delivery{Recipients: []string{"info@example.com"}, Message: []byte("Subject: m\r\n\r\n1\r\n")})
	testutil.Must(t, err)
	src.Deliver(ctx, store.Delivery{Recipients: []string{"info@example.com"}, Message: []byte("Subject: m\r\n\r\n2\r\n")})
	_, err = src.Expunge(ctx, "info@example.com", "INBOX", []uint32{2})
	testutil.Must(t, err)
	ref := store.MessageRef{Account: "info@example.com", Mailbox: "INBOX", UID: d[0].UID}
	_, err = src.TrainSpam(ctx, store.SpamTraining{Owners: []string{"info@example.com"}, Tokens: []string{"a", "b"}, Class: store.Spam, Message: &ref})
	testutil.Must(t, err)
	_, err = src.Import(ctx, "info@example.com", []store.ImportMessage{{Key: "k", Message: []byte("Subject: i\r\n\r\n.\r\n")}})
	testutil.Must(t, err)
	_, err = src.DeliverOnce(ctx, "once", store.Delivery{Recipients: []string{"info@example.com"}, Message: []byte("Subject: o\r\n\r\n.\r\n")})
	testutil.Must(t, err)
	testutil.Must(t, src.SetQuotaWarned(ctx, "info@example.com", true))

	for _, c := range []struct {
		name, want string
		spoil      func(dst *postgres.Store) error
	}{
		{"spam token", "spam model of info@example.com", func(dst *postgres.Store) error {
			return dst.LoadSpamModel(ctx, "info@example.com", store.SpamTotals{Spam: 1, Tokens: 2}, []store.SpamToken{{Token: "a", Spam: 1}, {Token: "c", Spam: 1}})
		}},
		{"spam model extra", "owners of spam models", func(dst *postgres.Store) error {
			return dst.LoadSpamModel(ctx, "other.test", store.SpamTotals{}, nil)
		}},
		{"trained", "trained as spam or ham", func(dst *postgres.Store) error {
			return dst.LoadSpamTrained(ctx, "info@example.com", []store.SpamTrainedMessage{{Mailbox: "INBOX", UID: 1, Class: store.Ham}})
		}},
		{"import key", "import keys", func(dst *postgres.Store) error { return dst.LoadImportKeys(ctx, "info@example.com", []string{"extra"}) }},
		{"once key", "once keys", func(dst *postgres.Store) error {
			return dst.LoadOnceKeys(ctx, []store.OnceKey{{Key: "more", At: time.Now()}})
		}},
		{"quota warning", "quota warning", func(dst *postgres.Store) error { return dst.SetQuotaWarned(ctx, "info@example.com", false) }},
		{"expunges", "remembered expunges", func(dst *postgres.Store) error {
			return dst.LoadRememberedExpunges(ctx, "info@example.com", "INBOX", store.RememberedExpunges{Floor: 2})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst, err := postgres.Open(ctx, schema(t), postgres.Options{})
			testutil.Must(t, err)
			defer dst.Close()
			_, err = postgres.Copy(ctx, src, dst, nil)
			testutil.Must(t, err)
			if p, _, _, err := postgres.VerifyCopy(ctx, src, dst); err != nil || len(p) > 0 {
				t.Fatalf("before spoiling: %v %v", p, err)
			}
			testutil.Must(t, c.spoil(dst))
			p, _, _, err := postgres.VerifyCopy(ctx, src, dst)
			testutil.Must(t, err)
			if len(p) != 1 || !strings.Contains(p[0], c.want) {
				t.Errorf("VerifyCopy after spoiling the %s: %q, want one difference about %q", c.name, p, c.want)
			}
		})
	}
}
