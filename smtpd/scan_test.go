package smtpd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"yubin/internal/delivery"
	"yubin/internal/notify"
	"yubin/internal/testutil"
	"yubin/internal/testutil/scantest"
	"yubin/scan"
	"yubin/store"
)

// scanEnv is a server whose delivery path scans with the built-in engine
// (or the given engines).
func scanEnv(t *testing.T, engines ...scan.Engine) *testEnv {
	t.Helper()
	return newEnv(t, envOptions{deliverer: scanDeliverer(t, engines...)})
}

// scanDeliverer makes a delivery path with the scan stage.
func scanDeliverer(t testing.TB, engines ...scan.Engine) func(st store.Store) *delivery.Deliverer {
	t.Helper()
	if len(engines) == 0 {
		b, err := scan.NewBuiltin("", nil)
		testutil.Must(t, err)
		engines = []scan.Engine{b}
	}
	s, err := scan.New(scan.Config{Engines: engines})
	testutil.Must(t, err)
	return func(st store.Store) *delivery.Deliverer {
		return delivery.New(st, nil, &delivery.ScanStage{Scanner: s, Store: st, Notifier: notify.New(st, testHost, nil)})
	}
}

// submit sends msg on 587 (STARTTLS) as admin@example.com to rcpt and
// returns the reply text.
func submit(t *testing.T, e *testEnv, rcpt string, msg []byte, code int, enh string) string {
	t.Helper()
	c := loginSubmission(t, e, userAdmin)
	c.cmd("MAIL FROM:<admin@example.com>", 250, "")
	c.cmd("RCPT TO:<"+rcpt+">", 250, "")
	return c.data(string(msg), code, enh)
}

// inbound sends msg on port 25 from sender@remote.test to rcpts.
func inbound(t *testing.T, e *testEnv, rcpts []string, msg []byte, code int, enh string) string {
	t.Helper()
	c := dialRaw(t, e.mx)
	c.cmd("EHLO mx.remote.test", 250, "")
	c.cmd("MAIL FROM:<sender@remote.test>", 250, "")
	for _, r := range rcpts {
		c.cmd("RCPT TO:<"+r+">", 250, "")
	}
	return c.data(string(msg), code, enh)
}

type scanCase struct {
	name string
	msg  []byte
	// submission (587/465): reply code, enhanced code, text
	subCode int
	subEnh  string
	subText string
	// inbound (25) to bob@example.com: reply, and what bob's INBOX gets:
	// "clean", "stripped" (+ warning), "report" (report only), "unchecked"
	inCode int
	inEnh  string
	inGets string
}

func scanCases() []scanCase {
	vc := func(n, text string) string { return "VC0" + n + " " + text }
	virus := vc("1", "Virus Check Service found VIRUS in your email.")
	eicar := scantest.File{Name: "eicar.com", Data: []byte(scantest.EICAR)}
	return []scanCase{
		{"clean", scantest.Mail("hello", []scantest.File{{Name: "notes.txt", Data: []byte("just notes")}}), 250, "2.0.0", "", 250, "2.0.0", "clean"},
		{"eicar-body", scantest.Plain(scantest.EICAR), 554, "5.6.5", virus, 554, "5.6.5", "report"},
		{"eicar-html-body", scantest.HTMLMail(scantest.EICAR), 554, "5.6.5", virus, 554, "5.6.5", "report"},
		{"eicar-attachment", scantest.Mail("see attached", []scantest.File{eicar}), 554, "5.6.5", virus, 250, "2.0.0", "stripped"},
		// Over the spool's memory: scanned and stripped from the spool file.
		{"eicar-attachment-spooled", scantest.Mail("see attached", []scantest.File{{Name: "notes.txt", Data: bytes.Repeat([]byte("notes notes\r\n"), 300<<10/13)}, eicar}), 554, "5.6.5", virus, 250, "2.0.0", "stripped"},
		{"eicar-in-zip", scantest.Mail("zip", []scantest.File{{Name: "invoice.zip", Data: scantest.Zip(eicar)}}), 554, "5.6.5", virus, 250, "2.0.0", "stripped"},
		{"zip-in-tar.gz", scantest.Mail("tgz", []scantest.File{{Name: "bundle.tar.gz", Data: scantest.Gzip(scantest.Tar(scantest.File{Name: "inner.zip", Data: scantest.Zip(eicar)}))}}), 554, "5.6.5", virus, 250, "2.0.0", "stripped"},
		{"depth-9", scantest.Mail("deep", []scantest.File{{Name: "deep.zip", Data: scantest.NestedZip(9, scantest.File{Name: "a.txt", Data: []byte("ok")})}}), 250, "2.0.0", "", 250, "2.0.0", "clean"},
		{"depth-10", scantest.Mail("deeper", []scantest.File{{Name: "deep.zip", Data: scantest.NestedZip(10, scantest.File{Name: "a.txt", Data: []byte("ok")})}}), 554, "5.6.5", vc("3", "Attachment exceeds maximum extract depth."), 554, "5.6.5", "report"},
		{"depth-11", scantest.Mail("deepest", []scantest.File{{Name: "deep.zip", Data: scantest.NestedZip(11, scantest.File{Name: "a.txt", Data: []byte("ok")})}}), 554, "5.6.5", vc("3", "Attachment exceeds maximum extract depth."), 554, "5.6.5", "report"},
		{"extract-100MiB+1", scantest.Mail("big inside", []scantest.File{{Name: "zeros.zip", Data: scantest.ZipOfZeros("zeros.bin", 100<<20+1)}}), 554, "5.6.5", vc("4", "Attachment exceeds maximum extract size."), 554, "5.6.5", "report"},
		{"partial", scantest.Partial(), 554, "5.6.5", vc("2", "Partial message."), 554, "5.6.5", "report"},
		{"5MiB+1", scantest.Big(5<<20 + 1), 552, "5.2.3", "Message exceeds maximum size.", 552, "5.2.3", "report"},
		{"encrypted-zip", scantest.Mail("secret", []scantest.File{{Name: "secret.zip", Data: scantest.EncryptedZip("plan.doc")}}), 250, "2.0.0", "", 250, "2.0.0", "encrypted"},
		{"malformed-no-end-boundary", []byte("From: sender@remote.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"X\"\r\n\r\n--X\r\nContent-Type: text/plain\r\n\r\nunterminated\r\n"), 250, "2.0.0", "", 250, "2.0.0", "clean"},
		{"malformed-bad-base64", []byte("From: sender@remote.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"X\"\r\n\r\n--X\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"x.bin\"\r\n\r\n!!!not base64???\r\n--X--\r\n"), 250, "2.0.0", "", 250, "2.0.0", "clean"},
	}
}

func TestScanOnSubmissionAndInbound(t *testing.T) {
	e := scanEnv(t)
	for _, c := range scanCases() {
		t.Run(c.name, func(t *testing.T) {
			before := len(e.inbox(userBob))
			text := submit(t, e, userBob, c.msg, c.subCode, c.subEnh)
			if c.subText != "" && !strings.HasSuffix(text, c.subText) {
				t.Errorf("submission reply %q, want text %q", text, c.subText)
			}
			got := e.inbox(userBob)[before:]
			if c.subCode == 250 {
				if len(got) != 1 || !bytes.Contains(got[0], []byte("X-Yubin-Scan: clean; engines=builtin")) {
					t.Fatalf("submission: bob got %d messages, want 1 with a clean verdict header", len(got))
				}
			} else if len(got) != 1 || !bytes.Contains(got[0], []byte("Auto-Submitted: auto-generated")) {
				// bob is on the sender's domain: a warning, never the message.
				t.Fatalf("submission refused: bob got %d messages, want only the warning", len(got))
			}

			before = len(e.inbox(userBob))
			inbound(t, e, []string{userBob}, c.msg, c.inCode, c.inEnh)
			got = e.inbox(userBob)[before:]
			checkLanded(t, c.inGets, got)
		})
	}
	// Every refusal and strip is on record for reports.
	stops, err := e.store.Stops(t.Context(), time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "example.com")
	testutil.Must(t, err)
	var out, in int
	for _, s := range stops {
		if s.Direction == "outbound" {
			out++
		} else {
			in++
		}
	}
	if out != 11 || in != 11 {
		t.Errorf("stop records: %d outbound, %d inbound; want 11 and 11", out, in)
	}
	e.verify()
}

// checkLanded checks what one inbound delivery put into a mailbox.
func checkLanded(t *testing.T, want string, got [][]byte) {
	t.Helper()
	isReport := func(m []byte) bool {
		return bytes.Contains(m, []byte("Auto-Submitted: auto-generated")) && bytes.Contains(m, []byte("text/rfc822-headers"))
	}
	switch want {
	case "clean", "encrypted", "unchecked":
		if len(got) != 1 || isReport(got[0]) {
			t.Fatalf("want one delivered message, got %d", len(got))
		}
		hdr := map[string]string{"clean": "X-Yubin-Scan: clean;", "encrypted": "X-Yubin-Scan: clean; engines=builtin; encrypted=", "unchecked": "X-Yubin-Scan: unchecked;"}[want]
		if !bytes.HasPrefix(got[0], []byte(hdr)) {
			t.Fatalf("verdict header: %q", firstLine(got[0]))
		}
	case "stripped":
		if len(got) != 2 {
			t.Fatalf("want the stripped message and a warning, got %d messages", len(got))
		}
		var msg, warn []byte
		for _, m := range got {
			if isReport(m) {
				warn = m
			} else {
				msg = m
			}
		}
		if msg == nil || warn == nil {
			t.Fatal("missing stripped message or warning")
		}
		if !bytes.HasPrefix(msg, []byte("X-Yubin-Scan: stripped;")) || bytes.Contains(msg, []byte(scantest.B64Lines([]byte(scantest.EICAR))[:40])) {
			t.Fatalf("not stripped:\n%s", msg)
		}
		if !strings.Contains(testutil.MessageText(t, warn), "Eicar") || strings.Contains(string(warn), "EICAR-STANDARD") {
			t.Errorf("warning does not name the virus:\n%s", testutil.MessageText(t, warn))
		}
	case "report":
		if len(got) != 1 || !isReport(got[0]) {
			t.Fatalf("want only a report, got %d messages", len(got))
		}
		text := testutil.MessageText(t, got[0])
		if strings.Contains(text, "EICAR-STANDARD") {
			t.Errorf("the report carries the virus:\n%s", text)
		}
		for _, w := range []string{"sender@remote.test", "Everything but the headers was discarded", "メールヘッダー以外を破棄しました", "text/rfc822-headers", "Received: from"} {
			if !strings.Contains(text, w) {
				t.Errorf("report lacks %q:\n%s", w, text)
			}
		}
	default:
		t.Fatalf("bad case %q", want)
	}
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}

// Per-account policy: one recipient accepts "too deep" unchecked, the other
// keeps the default (discard): the message is accepted (250), one copy
// lands unchecked, the other recipient gets only the report.
func TestScanPolicyPerRecipient(t *testing.T) {
	e := scanEnv(t)
	testutil.Must(t, e.store.SetScanPolicy(t.Context(), userBob, store.ScanPolicy{Depth: store.ScanAccept, Oversize: store.ScanAccept}))
	msg := scantest.Mail("deeper", []scantest.File{{Name: "deep.zip", Data: scantest.NestedZip(10, scantest.File{Name: "a.txt", Data: []byte("ok")})}})
	inbound(t, e, []string{userBob, userAdmin}, msg, 250, "2.0.0")
	checkLanded(t, "unchecked", e.inbox(userBob))
	checkLanded(t, "report", e.inbox(userAdmin))
	// Oversize accepted unchecked for bob alone.
	before := len(e.inbox(userBob))
	inbound(t, e, []string{userBob}, scantest.Big(5<<20+1), 250, "2.0.0")
	checkLanded(t, "unchecked", e.inbox(userBob)[before:])
	e.verify()
}

// Encrypted members with policy reject are refused on submission and
// discarded inbound.
func TestScanEncryptedReject(t *testing.T) {
	e := scanEnv(t)
	testutil.Must(t, e.store.SetScanPolicy(t.Context(), userAdmin, store.ScanPolicy{Encrypted: store.ScanReject}))
	testutil.Must(t, e.store.SetScanPolicy(t.Context(), userBob, store.ScanPolicy{Encrypted: store.ScanReject}))
	msg := scantest.Mail("secret", []scantest.File{{Name: "secret.zip", Data: scantest.EncryptedZip("plan.doc")}})
	submit(t, e, userBob, msg, 554, "5.6.5") // bob, on the sender's domain, is warned
	before := len(e.inbox(userBob))
	inbound(t, e, []string{userBob}, msg, 554, "5.6.5")
	checkLanded(t, "report", e.inbox(userBob)[before:])
}

// A forged verdict header from outside is removed before ours is added.
func TestScanRemovesForgedVerdict(t *testing.T) {
	e := scanEnv(t)
	msg := []byte("X-Yubin-Scan: clean; engines=forged\r\n" + string(scantest.Mail("see attached", []scantest.File{{Name: "eicar.com", Data: []byte(scantest.EICAR)}})))
	inbound(t, e, []string{userBob}, msg, 250, "2.0.0")
	for _, m := range e.inbox(userBob) {
		if bytes.Contains(m, []byte("engines=forged")) {
			t.Fatal("forged verdict header kept")
		}
	}
}

// deadEngine fails like a clamd that is down.
type deadEngine struct{}

func (deadEngine) Name() string { return "clamd" }
func (deadEngine) Open(ctx context.Context, name string) (scan.Stream, error) {
	return nil, scan.ErrUnavailable
}

// If an engine is down, mail is never delivered unscanned: 451 4.7.1.
func TestScanEngineDown(t *testing.T) {
	b, err := scan.NewBuiltin("", nil)
	testutil.Must(t, err)
	e := scanEnv(t, b, deadEngine{})
	msg := scantest.Plain("hello")
	text := submit(t, e, userBob, msg, 451, "4.7.1")
	if !strings.Contains(text, "try again later") {
		t.Errorf("reply %q", text)
	}
	inbound(t, e, []string{userBob}, msg, 451, "4.7.1")
	if n := len(e.inbox(userBob)); n != 0 {
		t.Fatalf("delivered %d messages unscanned", n)
	}
}

// warned returns the accounts that have a warning in their INBOX.
func warned(t *testing.T, e *testEnv) []string {
	t.Helper()
	var out []string
	for _, a := range []string{userInfo, userBob, userAdmin, userCarol} {
		for _, m := range e.inbox(a) {
			if bytes.Contains(m, []byte("Auto-Submitted: auto-generated")) {
				out = append(out, a)
				break
			}
		}
	}
	return out
}

// An infected submission from bob@example.com to info@example.com (same
// domain), carol@other.test (another of our domains) and an outside
// address warns bob, info and the domain's admin — nobody else.
func TestWarningsOnInfectedSubmission(t *testing.T) {
	e := scanEnv(t)
	c := dialRawTLS(t, e.subs, e.client)
	c.cmd("EHLO laptop", 250, "")
	c.cmd("AUTH PLAIN "+plainIR(userBob, testPassword), 235, "2.0.0")
	c.cmd("MAIL FROM:<bob@example.com>", 250, "")
	c.cmd("RCPT TO:<info@child.example.com>", 250, "")
	c.cmd("RCPT TO:<carol@other.test>", 250, "")
	c.Send("RCPT TO:<d@outside.test>\r\n")
	c.reply() // refused until outbound delivery exists; accepted after
	msg := scantest.Mail("see attached", []scantest.File{{Name: "eicar.com", Data: []byte(scantest.EICAR)}},
		"Reply-To: y@outside.test", "Sender: z@outside.test")
	c.data(string(msg), 554, "5.6.5")
	got := warned(t, e)
	want := []string{userInfo, userBob, userAdmin}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("warned %v, want %v", got, want)
	}
	if q, err := e.store.QueueEntries(t.Context()); err != nil || len(q) != 0 {
		t.Fatalf("outbound queue after a refused submission: %+v %v", q, err)
	}
}

// An infected inbound message whose headers name outside addresses warns
// only the local recipient (and the domain's admin).
func TestWarningsOnInfectedInbound(t *testing.T) {
	e := scanEnv(t)
	msg := []byte("From: x@outside.test\r\nReply-To: y@outside.test\r\nReturn-Path: <w@outside.test>\r\nSubject: invoice\r\n\r\n" + scantest.EICAR + "\r\n")
	inbound(t, e, []string{userInfo}, msg, 554, "5.6.5")
	got := warned(t, e)
	if strings.Join(got, ",") != userInfo+","+userAdmin {
		t.Fatalf("warned %v", got)
	}
	// Warnings off for the domain: nothing.
	testutil.Must(t, e.store.SetDomainSettings(t.Context(), "other.test", store.DomainSettings{WarningsOff: true}))
	inbound(t, e, []string{userCarol}, msg, 554, "5.6.5")
	if n := len(e.inbox(userCarol)); n != 0 {
		t.Fatalf("warnings off, yet carol got %d messages", n)
	}
}

// The malformed-MIME corpus of the scanner (scan/testdata: a new case is a
// new file) goes over SMTP too: the reply on 587 and on 25, and what lands.
func TestScanCorpusOverSMTP(t *testing.T) {
	e := scanEnv(t)
	files, err := filepath.Glob("../scan/testdata/*.eml")
	testutil.Must(t, err)
	if len(files) < 10 {
		t.Fatalf("only %d corpus files", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			testutil.Must(t, err)
			exp, err := os.ReadFile(strings.TrimSuffix(f, ".eml") + ".expected")
			testutil.Must(t, err)
			var sub, in string
			for _, l := range strings.Split(string(exp), "\n") {
				if v, ok := strings.CutPrefix(l, "submission: "); ok {
					sub = v
				}
				if v, ok := strings.CutPrefix(l, "inbound: "); ok {
					in = v
				}
			}
			msg := bytes.ReplaceAll(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
			fields := strings.Fields(sub)
			code, _ := strconv.Atoi(fields[0])
			enh := "2.0.0"
			if code != 250 {
				enh = fields[1]
			}
			text := submit(t, e, userBob, msg, code, enh)
			if code != 250 && !strings.HasSuffix(sub, text) {
				t.Errorf("submission reply %q, want %q", text, sub)
			}
			before := len(e.inbox(userBob))
			switch in {
			case "deliver":
				inbound(t, e, []string{userBob}, msg, 250, "2.0.0")
				checkLanded(t, "clean", e.inbox(userBob)[before:])
			case "stripped":
				inbound(t, e, []string{userBob}, msg, 250, "2.0.0")
				checkLanded(t, "stripped", e.inbox(userBob)[before:])
			case "discard":
				inbound(t, e, []string{userBob}, msg, code, enh)
				checkLanded(t, "report", e.inbox(userBob)[before:])
			default:
				t.Fatalf("unknown inbound outcome %q", in)
			}
		})
	}
	e.verify()
}
