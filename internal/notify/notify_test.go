package notify

import (
	"bytes"
	"context"
	"mime"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"yubin/internal/testutil"
	"yubin/internal/testutil/teststore"
	"yubin/store"
)

func newTestStore(t testing.TB) store.Store {
	t.Helper()
	return teststore.New(t, teststore.Options{NoSync: true,
		Domains: []teststore.Domain{{Name: "example.com"}, {Name: "www.example.com", Parent: "example.com"}, {Name: "other.test"}},
		Accounts: []store.Account{{Address: "a@example.com"}, {Address: "b@example.com"}, {Address: "boss@example.com", Role: store.RoleAdmin},
			{Address: "c@other.test"}, {Address: "root@other.test", Role: store.RoleAdmin}}})
}

// got returns the accounts whose INBOX holds a warning, with the messages.
func got(t testing.TB, st store.Store) map[string][][]byte {
	t.Helper()
	out := map[string][][]byte{}
	accts, _ := st.Accounts(t.Context(), "")
	for _, a := range accts {
		msgs, _, _ := st.Messages(t.Context(), a.Address, "INBOX")
		for _, m := range msgs {
			raw, _ := st.ReadMessage(t.Context(), a.Address, "INBOX", m.UID)
			out[a.Address] = append(out[a.Address], raw)
		}
	}
	return out
}

func keys(m map[string][][]byte) []string {
	var k []string
	for a := range m {
		k = append(k, a)
	}
	slices.Sort(k)
	return k
}

var hdrs = []byte("From: x@outside.test\r\nReply-To: y@outside.test\r\nSender: z@outside.test\r\nReturn-Path: <w@outside.test>\r\nSubject: invoice\r\n\r\n")

func TestWarnOutboundRecipients(t *testing.T) {
	st := newTestStore(t)
	n := New(st, "mx.example.com", nil)
	ev := Event{Kind: OutboundRejected, Sender: "a@example.com", Findings: []Finding{{Reason: "a virus was found", ReasonJA: "ウイルスが検出されました", Virus: "Eicar-Test-Signature", File: "eicar.com"}}, OriginalHeaders: hdrs}
	sent, err := n.WarnOutbound(context.Background(), "a@example.com", []string{"b@www.example.com", "c@other.test", "d@outside.test"}, ev)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a@example.com", "b@example.com", "boss@example.com"}
	if !slices.Equal(sent, want) || !slices.Equal(keys(got(t, st)), want) {
		t.Fatalf("warned %v / mailboxes %v, want %v", sent, keys(got(t, st)), want)
	}
	msg := got(t, st)["b@example.com"][0]
	checkWarning(t, msg, "b@example.com", []string{"Eicar-Test-Signature", "eicar.com", "a@example.com", "The message was refused", "メールの送信を拒否しました", "判断理由:         ウイルスが検出されました"})
}

func TestWarnInboundIgnoresOutsideHeaders(t *testing.T) {
	st := newTestStore(t)
	n := New(st, "mx.example.com", nil)
	ev := Event{Kind: InboundDiscarded, Sender: "x@outside.test", Findings: []Finding{{Reason: "a virus was found", Virus: "Eicar-Test-Signature"}}, OriginalHeaders: hdrs}
	sent, err := n.WarnInbound(context.Background(), []string{"a@example.com"}, ev)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a@example.com", "boss@example.com"}; !slices.Equal(sent, want) {
		t.Fatalf("warned %v, want %v", sent, want)
	}
	// Outside addresses named directly are refused by the one rule.
	sent, _ = n.Send(context.Background(), []string{"x@outside.test", "y@outside.test", "nobody@example.com", "a@example.com.", "a%outside.test@example.com"}, ev)
	if len(sent) != 0 {
		t.Fatalf("sent to %v", sent)
	}
}

func TestNoWarningAboutAWarning(t *testing.T) {
	st := newTestStore(t)
	n := New(st, "mx.example.com", nil)
	ev := Event{Kind: InboundDiscarded, OriginalHeaders: []byte("Auto-Submitted: auto-generated\r\nSubject: x\r\n\r\n")}
	if sent, _ := n.WarnInbound(context.Background(), []string{"a@example.com"}, ev); len(sent) != 0 {
		t.Fatalf("warned about an auto-generated message: %v", sent)
	}
}

func TestWarningsOffAndLanguage(t *testing.T) {
	st := newTestStore(t)
	n := New(st, "mx.example.com", nil)
	ev := Event{Kind: InboundStripped, Sender: "x@outside.test", Findings: []Finding{{Reason: "a virus was found", ReasonJA: "ウイルスが検出されました", Virus: "V"}}, OriginalHeaders: hdrs}
	st.SetDomainSettings(t.Context(), "other.test", store.DomainSettings{Language: "ja"})
	st.SetDomainSettings(t.Context(), "example.com", store.DomainSettings{Language: "en"})
	n.Send(context.Background(), []string{"c@other.test", "a@example.com"}, ev)
	g := got(t, st)
	ja, en := testutil.MessageText(t, g["c@other.test"][0]), testutil.MessageText(t, g["a@example.com"][0])
	if strings.Contains(ja, "Virus:") || !strings.Contains(ja, "感染ウイルス名称") {
		t.Errorf("ja warning:\n%s", ja)
	}
	if strings.Contains(en, "感染") || !strings.Contains(en, "Virus:") {
		t.Errorf("en warning:\n%s", en)
	}
	st.SetDomainSettings(t.Context(), "example.com", store.DomainSettings{WarningsOff: true})
	if sent, _ := n.WarnInbound(context.Background(), []string{"b@example.com"}, ev); len(sent) != 0 {
		t.Fatalf("warnings off, yet sent to %v", sent)
	}
}

func TestQuotaWarning(t *testing.T) {
	st := newTestStore(t)
	n := New(st, "mx.example.com", nil)
	ctx := context.Background()
	st.SetQuota(ctx, "a@example.com", 1000000)
	deliver := func(size int) {
		if _, err := st.Deliver(ctx, store.Delivery{Recipients: []string{"a@example.com"}, Message: bytes.Repeat([]byte("x"), size)}); err != nil {
			t.Fatal(err)
		}
		if err := n.CheckQuota(ctx, "a@example.com"); err != nil {
			t.Fatal(err)
		}
	}
	deliver(800000)
	deliver(80000) // 88 %
	if len(got(t, st)["a@example.com"]) != 2 {
		t.Fatal("warned below 90 %")
	}
	deliver(30000) // 91 %: the warning arrives (and itself counts in the usage)
	deliver(1000)
	var warnings int
	for _, m := range got(t, st)["a@example.com"] {
		if bytes.Contains(m, []byte("Auto-Submitted: auto-generated")) {
			warnings++
			if !strings.Contains(testutil.MessageText(t, m), "91%") {
				t.Errorf("quota warning text:\n%s", testutil.MessageText(t, m))
			}
		}
	}
	if warnings != 1 {
		t.Fatalf("%d quota warnings, want 1", warnings)
	}
}

// checkWarning checks the MIME structure of a warning and its text.
func checkWarning(t *testing.T, raw []byte, to string, want []string) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get("Auto-Submitted") != "auto-generated" || m.Header.Get("To") != "<"+to+">" || !strings.HasSuffix(m.Header.Get("From"), "@example.com>") {
		t.Errorf("headers: %v", m.Header)
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil || !strings.Contains(subj, "ウイルス") {
		t.Errorf("subject %q %v", subj, err)
	}
	text := testutil.MessageText(t, raw)
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("warning lacks %q:\n%s", w, text)
		}
	}
	if !strings.Contains(text, "text/rfc822-headers") || !strings.Contains(text, "Reply-To: y@outside.test") {
		t.Errorf("original headers not attached:\n%s", text)
	}
}

// Property: whatever the envelope and headers, a warning only ever goes
// to our own accounts, and only to those the rules name: outbound to the
// sender, recipients on the sender's domain and its admins; inbound to the
// local recipients and their admins.
func FuzzWarningsStayHome(f *testing.F) {
	f.Add("a@example.com", "b@www.example.com,c@other.test,d@outside.test", "x@outside.test", "y@outside.test")
	f.Add("x@outside.test", "a@example.com", "a@example.com", "boss@example.com")
	f.Add("", "A@EXAMPLE.COM.,a%b@example.com,\"a\"@example.com", "", "")
	st := newTestStore(f)
	n := New(st, "mx.example.com", nil)
	domainOfAcct := map[string]string{"a@example.com": "example.com", "b@example.com": "example.com", "boss@example.com": "example.com", "c@other.test": "other.test", "root@other.test": "other.test"}
	admins := map[string]string{"example.com": "boss@example.com", "other.test": "root@other.test"}
	f.Fuzz(func(t *testing.T, sender, rcpts, from, replyTo string) {
		hdr := []byte("From: " + from + "\r\nReply-To: " + replyTo + "\r\n\r\n")
		ctx := context.Background()
		list := strings.Split(rcpts, ",")
		sent, err := n.WarnOutbound(ctx, sender, list, Event{Kind: OutboundRejected, Sender: sender, OriginalHeaders: hdr})
		if err != nil {
			t.Fatal(err)
		}
		if len(sent) > 0 {
			sacct, _ := n.Allowed(ctx, sender)
			dom := domainOfAcct[sacct]
			for _, a := range sent {
				if domainOfAcct[a] != dom {
					t.Fatalf("outbound warning from %q went to %s on another domain", sender, a)
				}
			}
		}
		var local []string
		for _, r := range list {
			if a, ok := n.Allowed(ctx, r); ok {
				local = append(local, a)
			}
		}
		sent, err = n.WarnInbound(ctx, local, Event{Kind: InboundDiscarded, Sender: sender, OriginalHeaders: hdr})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range sent {
			if !slices.Contains(local, a) && a != admins[domainOfAcct[a]] {
				t.Fatalf("inbound warning went to %s, not a recipient or admin", a)
			}
		}
		sent, _ = n.Send(ctx, append(list, sender, from, replyTo), Event{Kind: InboundDiscarded, OriginalHeaders: hdr})
		for _, a := range sent {
			if _, ours := domainOfAcct[a]; !ours {
				t.Fatalf("a warning went to %s, not one of our accounts", a)
			}
		}
	})
}

func TestDailyReport(t *testing.T) {
	st := newTestStore(t)
	n := New(st, "mx.example.com", nil)
	ctx := context.Background()
	tokyo := time.FixedZone("JST", 9*3600)
	r, err := NewReporter(n, "07:00", tokyo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewReporter(n, "7am", tokyo); err == nil {
		t.Fatal("bad time accepted")
	}
	day := func(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, tokyo) }
	record := func(at time.Time, virus string) {
		st.RecordStop(ctx, store.Stop{Time: at, Direction: "inbound", Sender: "x@outside.test", Recipients: []string{"a@example.com"}, Domains: []string{"example.com"}, Reasons: []string{"virus"}, Virus: virus, Action: "discarded"})
	}
	record(day(23, 12, 0), "TooOld")
	record(day(24, 9, 0), "Virus-One")
	record(day(25, 6, 30), "Virus-Two")
	record(day(25, 8, 0), "Virus-Three")
	st.RecordStop(ctx, store.Stop{Time: day(25, 1, 0), Direction: "inbound", Domains: []string{"other.test"}, Virus: "NotOurs"})

	if err := st.SetDomainSettings(ctx, "example.com", store.DomainSettings{ReportTo: "boss@www.example.com"}); err != nil {
		t.Fatal(err)
	}
	run := func(at time.Time) []string {
		t.Helper()
		sent, err := r.RunOnce(ctx, at)
		if err != nil {
			t.Fatal(err)
		}
		return sent
	}
	reports := func() [][]byte { return got(t, st)["boss@example.com"] }

	if sent := run(day(25, 7, 5)); !slices.Equal(sent, []string{"example.com"}) {
		t.Fatalf("sent %v", sent)
	}
	text := testutil.MessageText(t, reports()[0])
	for _, w := range []string{"Virus-One", "Virus-Two", "example.com", "x@outside.test", "a@example.com", "virus", "discarded", "ウイルスチェック日次報告"} {
		if !strings.Contains(text, w) {
			t.Errorf("report lacks %q:\n%s", w, text)
		}
	}
	for _, w := range []string{"TooOld", "Virus-Three", "NotOurs"} {
		if strings.Contains(text, w) {
			t.Errorf("report has %q:\n%s", w, text)
		}
	}
	// Never twice for the same day: later the same day, or after a restart.
	run(day(25, 12, 0))
	r2, _ := NewReporter(New(st, "mx.example.com", nil), "07:00", tokyo)
	r2.RunOnce(ctx, day(26, 6, 59))
	if len(reports()) != 1 {
		t.Fatalf("%d reports after re-runs", len(reports()))
	}
	// The server was down at 07:00 on the 26th: the report goes out at the next start.
	if sent, _ := r2.RunOnce(ctx, day(26, 9, 30)); len(sent) != 1 || len(reports()) != 2 || !strings.Contains(testutil.MessageText(t, reports()[1]), "Virus-Three") {
		t.Fatalf("missed report not sent on restart: %v", sent)
	}
	// Warnings off: no report.
	st.SetDomainSettings(ctx, "example.com", store.DomainSettings{ReportTo: "boss@example.com", WarningsOff: true})
	if sent := run(day(27, 7, 0)); len(sent) != 0 || len(reports()) != 2 {
		t.Fatalf("report sent with warnings off: %v", sent)
	}
}

func TestHeaderSection(t *testing.T) {
	for in, want := range map[string]string{
		"A: b\r\nC: d\r\n\r\nbody":           "A: b\r\nC: d\r\n\r\n",
		"A: b\r\n folded\r\n\r\nbody":        "A: b\r\n folded\r\n\r\n",
		"Received: x\r\nX5O!P%@AP[4\r\nmore": "Received: x\r\n",
		"no header at all\r\n\r\nbody":       "",
		" leading space\r\n":                 "",
		"A: b\n\nlf only":                    "A: b\n\n",
		"A: b":                               "A: b",
		"Bad Name: x\r\n\r\n":                "",
	} {
		if got := string(HeaderSection([]byte(in))); got != want {
			t.Errorf("HeaderSection(%q) = %q, want %q", in, got, want)
		}
	}
}

// A rate-limit warning goes to the admins of the account's domain only.
func TestWarnRateLimited(t *testing.T) {
	st := newTestStore(t)
	n := New(st, "mx.example.com", nil)
	rate := Rate{Messages: 200, Recipients: 731, MaxMessages: 200, MaxRecipients: 1000}
	sent, err := n.WarnRateLimited(t.Context(), "A@www.example.com", rate)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"boss@example.com"}; !slices.Equal(sent, want) || !slices.Equal(keys(got(t, st)), want) {
		t.Fatalf("warned %v / mailboxes %v, want %v", sent, keys(got(t, st)), want)
	}
	raw := got(t, st)["boss@example.com"][0]
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	testutil.Must(t, err)
	subj, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if subj != "Sending limit reached: a@example.com / 送信数の上限に達しました: a@example.com" || m.Header.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("subject %q, headers %v", subj, m.Header)
	}
	text := testutil.MessageText(t, raw)
	for _, w := range []string{"The account a@example.com has reached its sending limit (200 messages and 1000 recipients per hour)",
		"it submitted 200 messages to 731 recipients in the last hour", "451 4.7.0", "yubin account passwd a@example.com",
		"アカウント a@example.com が送信数の上限 (1時間あたり 200 通・宛先 1000 件) に達しました", "直近1時間の送信: 200 通、宛先 731 件"} {
		if !strings.Contains(text, w) {
			t.Errorf("warning lacks %q:\n%s", w, text)
		}
	}
	// Not ours, or no admin: nobody.
	for _, a := range []string{"x@outside.test", "nobody@example.com"} {
		if sent, _ := n.WarnRateLimited(t.Context(), a, rate); len(sent) != 0 {
			t.Errorf("%s: warned %v", a, sent)
		}
	}
	st.SetDomainSettings(t.Context(), "other.test", store.DomainSettings{Language: "ja"})
	sent, _ = n.WarnRateLimited(t.Context(), "c@other.test", Rate{Messages: 3, Recipients: 3, MaxMessages: 3})
	if !slices.Equal(sent, []string{"root@other.test"}) {
		t.Fatalf("warned %v", sent)
	}
	if text := testutil.MessageText(t, got(t, st)["root@other.test"][0]); strings.Contains(text, "sending limit") || !strings.Contains(text, "上限 (1時間あたり 3 通)") {
		t.Errorf("ja warning:\n%s", text)
	}
}
