package spam_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/smtp"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"yubin/imapd"
	"yubin/internal/auth"
	"yubin/internal/delivery"
	"yubin/internal/netserve"
	"yubin/internal/spam"
	"yubin/internal/spool"
	"yubin/internal/testutil"
	"yubin/internal/testutil/teststore"
	"yubin/internal/testutil/tlstest"
	"yubin/smtpd"
	"yubin/store"
)

const (
	bob      = "bob@example.com"
	password = "pw-bob"
)

// server is port 25 with the spam stage and IMAP with training, over one
// store, as internal/server puts them together.
type server struct {
	st      store.Store
	trainer *spam.Trainer
	mx      string
	imaps   string
}

func newServer(t *testing.T) *server {
	st := teststore.New(t, teststore.Options{Password: password, Accounts: []store.Account{{Address: bob}, {Address: "alice@example.com"}}})
	cert := tlstest.SelfSigned(t, "mx.example.com")
	au := auth.New(st, auth.Policy{MaxFailures: 50}, nil)
	trainer := spam.NewTrainer(st, nil)
	stop := testutil.Go(t, func(ctx context.Context) error { trainer.Run(ctx); return nil })
	t.Cleanup(func() { stop() })
	sp, err := spool.Open(filepath.Join(t.TempDir(), "spool"), 0, 0)
	testutil.Must(t, err)
	mx := smtpd.New(smtpd.Config{Hostname: "mx.example.com", Spool: sp, Deliverer: delivery.New(st, nil, &delivery.SpamStage{Store: st})}, st, au, nil)
	im := imapd.New(imapd.Config{Hostname: "mx.example.com", Spool: sp, Train: func(tr imapd.Training) {
		class := store.Ham
		if tr.Spam {
			class = store.Spam
		}
		trainer.Enqueue(tr.Account, tr.Mailbox, tr.UIDs, class)
	}}, st, au, nil)
	return &server{st: st, trainer: trainer,
		mx:    testutil.Serve(t, mx, cert.Server, smtpd.MX).Addrs[0],
		imaps: testutil.Serve(t, im, cert.Server, netserve.Implicit).Addrs[0]}
}

// send delivers msg over port 25 (in plain text: STARTTLS is no matter here).
func (s *server) send(t *testing.T, to string, msg []byte) {
	t.Helper()
	c, err := smtp.Dial(s.mx)
	testutil.Must(t, err)
	defer c.Close()
	testutil.Must(t, c.Hello("mx.remote.test"))
	testutil.Must(t, c.Mail("sender@remote.test"))
	testutil.Must(t, c.Rcpt(to))
	w, err := c.Data()
	testutil.Must(t, err)
	_, err = w.Write(msg)
	testutil.Must(t, err)
	testutil.Must(t, w.Close())
	testutil.Must(t, c.Quit())
}

// flush waits for the trainer to have done what was asked so far.
func (s *server) flush(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	testutil.Must(t, s.trainer.Flush(ctx))
}

func (s *server) subjects(t *testing.T, account, box string) []string {
	t.Helper()
	msgs, _, err := s.st.Messages(t.Context(), account, box)
	testutil.Must(t, err)
	var out []string
	for _, m := range msgs {
		raw, err := s.st.ReadMessage(t.Context(), account, box, m.UID)
		testutil.Must(t, err)
		_, after, _ := bytes.Cut(raw, []byte("\r\nSubject: "))
		subj, _, _ := bytes.Cut(after, []byte("\r\n"))
		out = append(out, string(subj))
	}
	return out
}

func (s *server) totals(t *testing.T, owner string) store.SpamTotals {
	t.Helper()
	tot, err := s.st.SpamTotals(t.Context(), owner)
	testutil.Must(t, err)
	return tot
}

func login(t *testing.T, addr string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialTLS(addr, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	testutil.Must(t, err)
	t.Cleanup(func() { c.Close() })
	testutil.Must(t, c.Login(bob, password).Wait())
	return c
}

// offer and note are the spam and the ham of these tests: each a few
// variants, sharing their kind's words.
var (
	offerWords = []string{"cheap", "pills", "discount", "viagra", "casino", "bonus", "winner", "prize", "offer", "unsubscribe"}
	noteWords  = []string{"meeting", "agenda", "project", "review", "thursday", "minutes", "budget", "draft", "schedule", "team"}
)

func offer(i int) []byte {
	return fmt.Appendf(nil, "From: Deals <deals%d@promo.test>\r\nTo: %s\r\nSubject: offer %d\r\nMessage-ID: <o%d@promo.test>\r\n"+
		"Date: %s\r\n\r\nGet your %s %s now at http://shop%d.promo.test/ and %s your %s!\r\n",
		i, bob, i, i, time.Now().Format(time.RFC1123Z), offerWords[i%10], offerWords[(i+3)%10], i, offerWords[(i+5)%10], offerWords[(i+7)%10])
}

func note(i int) []byte {
	return fmt.Appendf(nil, "From: Alice <alice@partner.test>\r\nTo: %s\r\nSubject: note %d\r\nMessage-ID: <n%d@partner.test>\r\n"+
		"Date: %s\r\n\r\nHi Bob, about the %s %s: the %s is attached, and the %s is on the wiki. Alice\r\n",
		bob, i, i, time.Now().Format(time.RFC1123Z), noteWords[i%10], noteWords[(i+3)%10], noteWords[(i+5)%10], noteWords[(i+7)%10])
}

// TestTrainingThroughIMAP delivers spam and ham over port 25 to an
// untrained filter, trains it only by what a user does over IMAP (moving
// spam into Junk, reading ham), and checks that the models learned and
// that later mail is filed accordingly; then the user changes their mind
// and uses $Junk, and quarantined mail released is learned as ham.
func TestTrainingThroughIMAP(t *testing.T) {
	s := newServer(t)
	n := spam.MinTraining
	for i := range n {
		s.send(t, bob, offer(i))
	}
	for i := range n {
		s.send(t, bob, note(i))
	}
	if got := s.subjects(t, bob, "INBOX"); len(got) != 2*n {
		t.Fatalf("untrained: INBOX holds %q, want everything", got)
	}

	c := login(t, s.imaps)
	_, err := c.Select("INBOX", nil).Wait()
	testutil.Must(t, err)
	var spamUIDs, hamUIDs imap.UIDSet
	spamUIDs.AddRange(1, imap.UID(n))
	hamUIDs.AddRange(imap.UID(n+1), imap.UID(2*n))
	_, err = c.Move(spamUIDs, "Junk").Wait()
	testutil.Must(t, err)
	_, err = c.Fetch(hamUIDs, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{}}}).Collect()
	testutil.Must(t, err)
	s.flush(t)
	want := store.SpamTotals{Spam: int64(n), Ham: int64(n)}
	for _, owner := range []string{bob, "example.com"} {
		if got := s.totals(t, owner); got.Spam != want.Spam || got.Ham != want.Ham || got.Tokens == 0 {
			t.Errorf("%s's model: %+v, want %d spam and %d ham", owner, got, n, n)
		}
	}

	// New mail is filed by what was learned: the domain's model speaks
	// for bob (not trained enough yet) and for alice (not trained at all).
	s.send(t, bob, offer(n+1))
	s.send(t, bob, note(n+1))
	s.send(t, "alice@example.com", offer(n+2))
	junk := s.subjects(t, bob, "Junk")
	if len(junk) != n+1 || junk[n] != fmt.Sprintf("offer %d", n+1) {
		t.Errorf("bob's Junk: %q", junk)
	}
	if inbox := s.subjects(t, bob, "INBOX"); len(inbox) != n+1 || inbox[n] != fmt.Sprintf("note %d", n+1) {
		t.Errorf("bob's INBOX: %q", inbox)
	}
	if junk := s.subjects(t, "alice@example.com", "Junk"); len(junk) != 1 {
		t.Errorf("alice's Junk: %q", junk)
	}

	// A change of mind: an offer moved back out of Junk is ham now, once.
	_, err = c.Select("Junk", nil).Wait()
	testutil.Must(t, err)
	_, err = c.Move(imap.UIDSetNum(1), "INBOX").Wait()
	testutil.Must(t, err)
	// A note flagged $Junk in INBOX is spam now.
	_, err = c.Select("INBOX", nil).Wait()
	testutil.Must(t, err)
	err = c.Store(imap.UIDSetNum(imap.UID(n+1)), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imapd.KeywordJunk}}, nil).Close()
	testutil.Must(t, err)
	s.flush(t)
	if got := s.totals(t, "example.com"); got.Spam != int64(n) || got.Ham != int64(n) {
		t.Errorf("after one of each changed sides: %+v, want %d and %d still", got, n, n)
	}
	msgs, _, err := s.st.Messages(t.Context(), bob, "INBOX")
	testutil.Must(t, err)
	moved := msgs[len(msgs)-1] // the offer moved out of Junk, the latest there
	for uid, want := range map[uint32]store.SpamClass{moved.UID: store.Ham, uint32(n + 1): store.Spam, uint32(n + 2): store.Ham} {
		if got, err := s.st.SpamTrained(t.Context(), store.MessageRef{Account: bob, Mailbox: "INBOX", UID: uid}); err != nil || got != want {
			t.Errorf("INBOX uid %d trained as %v, %v; want %v", uid, got, err, want)
		}
	}

	// Released from the quarantine: ham.
	testutil.Must(t, s.st.SetSpamPolicy(t.Context(), bob, store.SpamPolicy{Action: store.SpamQuarantine}))
	s.send(t, bob, offer(n+3))
	held, err := s.st.Quarantined(t.Context(), store.QuarantineFilter{Account: bob})
	testutil.Must(t, err)
	if len(held) != 1 || held[0].Subject != fmt.Sprintf("offer %d", n+3) {
		t.Fatalf("quarantine %+v", held)
	}
	d, err := s.trainer.Release(t.Context(), held[0].ID)
	testutil.Must(t, err)
	if got, err := s.st.SpamTrained(t.Context(), store.MessageRef{Account: bob, Mailbox: d.Mailbox, UID: d.UID}); err != nil || got != store.Ham {
		t.Errorf("released message trained as %v, %v", got, err)
	}
	if _, err := s.trainer.Release(t.Context(), held[0].ID); err == nil {
		t.Error("released twice")
	}
	if got := s.subjects(t, bob, "INBOX"); !strings.Contains(strings.Join(got, ","), fmt.Sprintf("offer %d", n+3)) {
		t.Errorf("released message not in INBOX: %q", got)
	}
}

// A message that cannot be parsed trains on what can be found in it, and
// training never fails for it.
func TestTrainMalformed(t *testing.T) {
	st := teststore.New(t, teststore.Options{Accounts: []store.Account{{Address: bob}}})
	tr := spam.NewTrainer(st, nil)
	for i, raw := range []string{"", "\x00\xff garbage", "Content-Type: multipart/mixed; boundary=\"\r\n\r\n--\r\n--", "Subject: =?x?q?bad?=\r\n\r\n\xff\xfe"} {
		d, err := st.Deliver(t.Context(), store.Delivery{Recipients: []string{bob}, Message: []byte(raw)})
		testutil.Must(t, err)
		changed, err := tr.Train(t.Context(), store.MessageRef{Account: bob, Mailbox: "INBOX", UID: d[0].UID}, store.Spam)
		if err != nil || !changed {
			t.Errorf("message %d: trained %v, %v", i, changed, err)
		}
	}
	if got, _ := st.SpamTotals(t.Context(), "example.com"); got.Spam != 4 {
		t.Errorf("domain model %+v", got)
	}
}
