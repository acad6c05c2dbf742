package mailimport

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"yubin/admin"
	"yubin/internal/testutil"
	"yubin/internal/testutil/dovecottest"
	"yubin/internal/testutil/teststore"
	"yubin/store"
)

// oldMail fills Dovecot, the old provider, with messages whose flags and
// internal dates must come over: INBOX, "Sent Messages" (special use
// \Sent: our Sent), Work.2024 (Dovecot's separator is "."), a name that is
// modified UTF-7 on the wire, and an empty mailbox.
func oldMail(t *testing.T, d *dovecottest.Server, user string) (want []string) {
	t.Helper()
	date := func(day int) time.Time { return time.Date(2019, 6, day, 10, 11, 12, 0, time.FixedZone("", 2*3600)) }
	m := func(subj string, day int, flags ...imap.Flag) dovecottest.Message {
		raw := fmt.Sprintf("From: alice@old.example\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%d@old.example>\r\n\r\n%s body\r\n", user, subj, day, subj)
		return dovecottest.Message{Flags: flags, Date: date(day), Raw: []byte(raw)}
	}
	d.Append(t, user, "INBOX", m("unread", 1), m("read", 2, imap.FlagSeen), m("replied and flagged", 3, imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged), m("keyword", 4, "$Label1", imap.FlagDeleted))
	d.Append(t, user, "Sent Messages", m("sent", 5, imap.FlagSeen))
	d.Append(t, user, "Work.2024", m("work", 6, imap.FlagDraft))
	d.Append(t, user, "Entwürfe", m("umlaut", 7))
	d.Append(t, user, "Empty")
	line := func(box, flags string, day int, subj string) string {
		return strings.Join([]string{box, flags, date(day).UTC().Format(time.RFC3339), subj, subj + " body"}, " | ")
	}
	want = []string{
		line("INBOX", "", 1, "unread"),
		line("INBOX", `\Seen`, 2, "read"),
		line("INBOX", `\Answered \Flagged \Seen`, 3, "replied and flagged"),
		line("INBOX", `$Label1 \Deleted`, 4, "keyword"),
		line("Sent", `\Seen`, 5, "sent"),
		line("Work/2024", `\Draft`, 6, "work"),
		line("Entwürfe", "", 7, "umlaut"),
	}
	slices.Sort(want)
	return want
}

// TestIMAPFromDovecot pulls every mailbox from a real Dovecot with flags
// and internal dates, over implicit TLS and over STARTTLS; a second run,
// by either, imports nothing; Dovecot's messages are left as they were
// (read only: no \Seen set by the import).
func TestIMAPFromDovecot(t *testing.T) {
	t.Parallel()
	d := dovecottest.Start(t, map[string]string{"old@old.example": "old-pw"})
	want := oldMail(t, d, "old@old.example")
	st, svc := newStore(t, 0)

	dial := func(scheme, addr, pw string) (*IMAP, error) {
		u, err := IMAPURL(scheme + "://old@old.example@" + addr)
		testutil.Must(t, err)
		return DialIMAP(t.Context(), u, pw, d.TLS)
	}
	src, err := dial("imaps", d.IMAPS, "old-pw")
	testutil.Must(t, err)
	res, err := Run(t.Context(), svc, src, Options{Address: account})
	testutil.Must(t, err)
	testutil.Must(t, src.Close())
	if got := contents(t, st); !slices.Equal(got, want) {
		t.Fatalf("the account holds:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if res.Imported != len(want) || !slices.Contains(res.Created, "Empty") || !slices.Contains(res.Created, "Work/2024") {
		t.Fatalf("result %+v, created %q", res.Counts, res.Created)
	}
	// The text came over byte for byte.
	msgs, _, err := st.Messages(t.Context(), account, "Sent")
	testutil.Must(t, err)
	raw, err := st.ReadMessage(t.Context(), account, "Sent", msgs[0].UID)
	testutil.Must(t, err)
	if want := "From: alice@old.example\r\nTo: old@old.example\r\nSubject: sent\r\nMessage-ID: <5@old.example>\r\n\r\nsent body\r\n"; string(raw) != want {
		t.Fatalf("Sent message:\n%q\nwant\n%q", raw, want)
	}

	// Again, over STARTTLS: the same server, nothing new.
	src, err = dial("imap", d.IMAP, "old-pw")
	testutil.Must(t, err)
	res, err = Run(t.Context(), svc, src, Options{Address: account})
	testutil.Must(t, err)
	src.Close()
	if res.Imported != 0 || res.Skipped != len(want) {
		t.Fatalf("second run: %+v", res.Counts)
	}
	if got := contents(t, st); !slices.Equal(got, want) {
		t.Fatalf("after a second run:\n%s", strings.Join(got, "\n"))
	}

	// The old INBOX's unread message is still unread there.
	src, err = dial("imaps", d.IMAPS, "old-pw")
	testutil.Must(t, err)
	defer src.Close()
	sel, err := src.c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	testutil.Must(t, err)
	got, err := src.c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true}).Collect()
	testutil.Must(t, err)
	if sel.NumMessages != 4 || len(got) != 1 || slices.Contains(got[0].Flags, imap.FlagSeen) {
		t.Fatalf("the old server's INBOX changed: %d messages, %+v", sel.NumMessages, got)
	}

	// A wrong password is a clear error.
	if _, err := dial("imaps", d.IMAPS, "wrong"); !errors.Is(err, ErrLogin) || !strings.Contains(err.Error(), "login failed for old@old.example") {
		t.Fatalf("wrong password: %v", err)
	}
}

// The quota stops an IMAP import too; with room, the rest comes.
func TestIMAPQuota(t *testing.T) {
	t.Parallel()
	d := dovecottest.Start(t, map[string]string{"q@old.example": "pw"})
	want := oldMail(t, d, "q@old.example")
	st, svc := newStore(t, 400)
	u, err := IMAPURL("imaps://q%40old.example@" + d.IMAPS)
	testutil.Must(t, err)
	src, err := DialIMAP(t.Context(), u, "pw", d.TLS)
	testutil.Must(t, err)
	res, err := Run(t.Context(), svc, src, Options{Address: account})
	src.Close()
	var full *FullError
	if !errors.As(err, &full) || res.Imported == 0 || res.Imported+full.Left != len(want) {
		t.Fatalf("over quota: %v, %+v", err, res.Counts)
	}
	testutil.Must(t, st.SetQuota(t.Context(), account, 0))
	src, err = DialIMAP(t.Context(), u, "pw", d.TLS)
	testutil.Must(t, err)
	defer src.Close()
	_, err = Run(t.Context(), svc, src, Options{Address: account})
	testutil.Must(t, err)
	if got := contents(t, st); !slices.Equal(got, want) {
		t.Fatalf("the account holds:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestIMAPURL(t *testing.T) {
	for in, want := range map[string]string{
		"imaps://user@host":                         "host:993",
		"imap://user@host":                          "host:143",
		"imaps://user@host:1993":                    "host:1993",
		"imaps://info@example.com@imap.old.example": "imap.old.example:993",
		"imaps://info%40example.com@[::1]:993/":     "[::1]:993",
	} {
		u, err := IMAPURL(in)
		if err != nil || Address(u) != want {
			t.Errorf("IMAPURL(%q): %v, %v; want %s", in, u, err, want)
		}
	}
	u, _ := IMAPURL("imaps://info@example.com@imap.old.example")
	if u.User.Username() != "info@example.com" {
		t.Errorf("user %q", u.User.Username())
	}
	for in, why := range map[string]string{
		"http://user@host":        "not an imaps://",
		"imaps://host":            "no user name",
		"imaps://user:pw@host":    "the password does not go in the URL",
		"imaps://user@host/INBOX": "no path",
		"imaps://user@host:99999": "bad port",
		"imaps://user@":           "no host",
		"imaps://user@host?x=1":   "no path, query",
	} {
		if _, err := IMAPURL(in); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("IMAPURL(%q) = %v, want %q", in, err, why)
		}
		if _, err := IMAPURL(in); err != nil && strings.Contains(err.Error(), ":pw@") {
			t.Errorf("the password is shown: %v", err)
		}
	}
}

// BenchmarkIMAPImport pulls 1,000 messages of 10 KiB from Dovecot into a
// store with fsync on (go test -run NONE -bench IMAPImport
// ./internal/mailimport/); it reports messages a second.
func BenchmarkIMAPImport(b *testing.B) {
	d := dovecottest.Start(b, map[string]string{"old@old.example": "pw"})
	const n = 1000
	body := strings.Repeat("0123456789abcdef", 640)
	var msgs []dovecottest.Message
	for i := range n {
		msgs = append(msgs, dovecottest.Message{Flags: []imap.Flag{imap.FlagSeen}, Date: time.Unix(1500000000+int64(i), 0),
			Raw: []byte(fmt.Sprintf("Subject: %d\r\n\r\n%s\r\n", i, body))})
	}
	d.Append(b, "old@old.example", "INBOX", msgs...)
	u, err := IMAPURL("imaps://old@old.example@" + d.IMAPS)
	testutil.Must(b, err)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		st := teststore.New(b, teststore.Options{Accounts: []store.Account{{Address: account}}})
		svc := admin.NewService(st, 0)
		b.StartTimer()
		src, err := DialIMAP(b.Context(), u, "pw", d.TLS)
		testutil.Must(b, err)
		res, err := Run(b.Context(), svc, src, Options{Address: account})
		testutil.Must(b, err)
		src.Close()
		if res.Imported != n {
			b.Fatalf("imported %d", res.Imported)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msg/s")
}
