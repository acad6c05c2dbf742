package notify

import (
	"context"
	"mime"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"yubin/internal/testutil"
	"yubin/internal/testutil/teststore"
	"yubin/store"
)

// clock is a store clock the test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// TestQuarantineDigest: a digest a day to each account with newly held
// mail, listing what arrived since its last digest; never twice a day,
// also after a restart; a missed day goes out at the next start; nothing
// for warnings off, an empty list, or what was deleted first.
func TestQuarantineDigest(t *testing.T) {
	tokyo := time.FixedZone("JST", 9*3600)
	day := func(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, tokyo) }
	clk := &clock{t: day(20, 0, 0)}
	st := teststore.New(t, teststore.Options{NoSync: true, Now: clk.now,
		Domains: []teststore.Domain{{Name: "example.com"}, {Name: "www.example.com", Parent: "example.com"}, {Name: "other.test"}},
		Accounts: []store.Account{{Address: "a@example.com"}, {Address: "boss@example.com", Role: store.RoleAdmin},
			{Address: "c@other.test"}}})
	ctx := context.Background()
	hold := func(at time.Time, account, subject string) string {
		t.Helper()
		clk.set(at)
		d, err := st.Deliver(ctx, store.Delivery{Recipients: []string{account}, Message: []byte("Subject: " + subject + "\r\n\r\nx\r\n"),
			Quarantine: &store.QuarantineHold{Sender: "s@spam.test", From: "Spammer <s@spam.test>", Subject: subject, Score: 0.93}})
		testutil.Must(t, err)
		return d[0].Quarantine
	}
	a1 := hold(day(24, 12, 0), "a@example.com", "Cheap pills")
	a2 := hold(day(25, 6, 0), "a@example.com", "=?bad \x1b[2Jescape")
	a3 := hold(day(25, 8, 0), "a@example.com", "After the digest")
	c1 := hold(day(25, 5, 0), "c@other.test", "For carol")

	dg, err := NewDigest(New(st, "mx.example.com", nil), st, "07:00", tokyo)
	testutil.Must(t, err)
	if _, err := NewDigest(New(st, "mx.example.com", nil), st, "25:00", tokyo); err == nil {
		t.Fatal("a bad time accepted")
	}
	run := func(d *Digest, at time.Time) []string {
		t.Helper()
		clk.set(at)
		sent, err := d.RunOnce(ctx, at)
		testutil.Must(t, err)
		return sent
	}
	digests := func(account string) []string {
		t.Helper()
		var out []string
		for _, raw := range got(t, st)[account] {
			m, err := mail.ReadMessage(strings.NewReader(string(raw)))
			testutil.Must(t, err)
			subj, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
			if m.Header.Get("Auto-Submitted") != "auto-generated" || m.Header.Get("From") != "Yubin <mailer-daemon@"+account[strings.IndexByte(account, '@')+1:]+">" ||
				m.Header.Get("To") != "<"+account+">" {
				t.Errorf("digest header %v", m.Header)
			}
			out = append(out, subj+"\n"+testutil.MessageText(t, raw))
		}
		return out
	}

	if sent := run(dg, day(25, 7, 5)); !slices.Equal(sent, []string{"a@example.com", "c@other.test"}) {
		t.Fatalf("sent to %v", sent)
	}
	d := digests("a@example.com")
	if len(d) != 1 {
		t.Fatalf("%d digests", len(d))
	}
	for _, w := range []string{"Spam quarantine: 2 messages held / 迷惑メール隔離: 2 通", "2 messages for a@example.com were held", a1, a2,
		"Cheap pills", "Spammer <s@spam.test>", "0.93", "11-24 12:00", "yubin quarantine release ID", "迷惑メールとして隔離しました"} {
		if !strings.Contains(d[0], w) {
			t.Errorf("digest lacks %q:\n%s", w, d[0])
		}
	}
	if strings.Contains(d[0], a3) || strings.ContainsRune(d[0], 0x1b) {
		t.Errorf("digest lists mail after its time, or an escape:\n%s", d[0])
	}
	if d := digests("c@other.test"); len(d) != 1 || !strings.Contains(d[0], c1) || !strings.Contains(d[0], "1 message for c@other.test was held") {
		t.Errorf("carol's digest: %q", d)
	}
	if d := digests("boss@example.com"); len(d) != 0 {
		t.Errorf("boss got %d digests with nothing held", len(d))
	}

	// Never twice a day: later the same day, or after a restart.
	if sent := run(dg, day(25, 23, 0)); len(sent) != 0 {
		t.Errorf("sent again the same day: %v", sent)
	}
	dg2, _ := NewDigest(New(st, "mx.example.com", nil), st, "07:00", tokyo)
	if sent := run(dg2, day(26, 6, 59)); len(sent) != 0 {
		t.Errorf("sent again after a restart: %v", sent)
	}

	// The server is down on the 26th at 07:00; the 27th's digest lists what
	// came since the 25th's time, the 26th's mail with it.
	a4 := hold(day(26, 10, 0), "a@example.com", "On the 26th")
	if sent := run(dg2, day(27, 9, 30)); !slices.Equal(sent, []string{"a@example.com"}) {
		t.Fatalf("the 27th: sent to %v", sent)
	}
	d = digests("a@example.com")
	if len(d) != 2 || !strings.Contains(d[1], a3) || !strings.Contains(d[1], a4) || strings.Contains(d[1], a1) || strings.Contains(d[1], a2) {
		t.Fatalf("the 27th's digest:\n%s", d[len(d)-1])
	}

	// Deleted before the digest: nothing to say. Warnings off: nothing.
	a5 := hold(day(27, 12, 0), "a@example.com", "Deleted")
	if _, err := st.DeleteQuarantined(ctx, []string{a5}); err != nil {
		t.Fatal(err)
	}
	hold(day(27, 12, 0), "c@other.test", "Warnings off")
	testutil.Must(t, st.SetDomainSettings(ctx, "other.test", store.DomainSettings{WarningsOff: true}))
	if sent := run(dg2, day(28, 7, 0)); len(sent) != 0 {
		t.Fatalf("the 28th: sent to %v", sent)
	}

	// Japanese only, and a full mailbox waits for room.
	testutil.Must(t, st.SetDomainSettings(ctx, "example.com", store.DomainSettings{Language: "ja"}))
	hold(day(28, 12, 0), "a@example.com", "Japanese")
	testutil.Must(t, st.SetQuota(ctx, "a@example.com", 1))
	if sent := run(dg2, day(29, 7, 0)); len(sent) != 0 {
		t.Fatalf("the 29th with a full mailbox: sent to %v", sent)
	}
	testutil.Must(t, st.SetQuota(ctx, "a@example.com", 0))
	if sent := run(dg2, day(29, 8, 0)); !slices.Equal(sent, []string{"a@example.com"}) {
		t.Fatalf("the 29th with room: sent to %v", sent)
	}
	d = digests("a@example.com")
	if last := d[len(d)-1]; !strings.HasPrefix(last, "迷惑メール隔離: 1 通") || strings.Contains(last, "held as spam") || !strings.Contains(last, "Japanese") {
		t.Errorf("Japanese digest:\n%s", last)
	}
}
