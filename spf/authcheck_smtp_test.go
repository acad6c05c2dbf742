package spf

import (
	"errors"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"yubin/internal/delivery"
	"yubin/internal/spool"
	"yubin/internal/testutil"
	"yubin/internal/testutil/dnstest"
	"yubin/internal/testutil/teststore"
	"yubin/smtpd"
	"yubin/store"
)

// TestThroughSMTP runs the check as the server does: the real smtpd on
// 127.0.0.1 with the stage in its delivery path.
func TestThroughSMTP(t *testing.T) {
	st := teststore.New(t, teststore.Options{NoSync: true, Accounts: []store.Account{{Address: "info@example.com"}}})
	dns := dnstest.NewServerFromFiles(t, "testdata/auth.zone")
	chk := &Checker{Hostname: host, Resolver: dns.NewResolver(), Timeout: 10 * time.Second}
	sp, serr := spool.Open(t.TempDir(), 0, 0)
	if serr != nil {
		t.Fatal(serr)
	}
	srv := smtpd.New(smtpd.Config{Hostname: host, Deliverer: delivery.New(st, nil, chk), Spool: sp}, st, nil, nil)
	mx := testutil.Serve(t, srv, nil, smtpd.MX).Addrs[0]

	send := func(from, headerFrom string) error {
		c, err := smtp.Dial(mx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Hello("client.test"); err != nil {
			return err
		}
		if err := c.Mail(from); err != nil {
			return err
		}
		if err := c.Rcpt("info@example.com"); err != nil {
			return err
		}
		w, err := c.Data()
		if err != nil {
			return err
		}
		w.Write([]byte("From: <" + headerFrom + ">\r\nSubject: test\r\n\r\nbody\r\n"))
		return w.Close()
	}
	count := func(mailbox string) int {
		msgs, _, err := st.Messages(t.Context(), "info@example.com", mailbox)
		if err != nil {
			t.Fatal(err)
		}
		return len(msgs)
	}

	// p=reject, SPF fails (127.0.0.1 is not reject.test's), no DKIM.
	err := send("bob@reject.test", "bob@reject.test")
	if !isReply(err, 550, "5.7.1") {
		t.Fatalf("DMARC reject: %v, want 550 5.7.1", err)
	}
	// p=quarantine: accepted, into Junk.
	if err := send("bob@quarantine.test", "bob@quarantine.test"); err != nil {
		t.Fatalf("DMARC quarantine: %v", err)
	}
	// pass.test allows 127.0.0.1: INBOX, with our header.
	if err := send("bob@pass.test", "bob@pass.test"); err != nil {
		t.Fatalf("DMARC pass: %v", err)
	}
	// DNS failure: 451, nothing stored.
	err = send("bob@spftemp.test", "bob@spftemp.test")
	if !isReply(err, 451, "4.4.3") {
		t.Fatalf("SPF temperror: %v, want 451 4.4.3", err)
	}
	if j, in := count("Junk"), count("INBOX"); j != 1 || in != 1 {
		t.Fatalf("Junk %d, INBOX %d; want 1 and 1", j, in)
	}
	junk, _, _ := st.Messages(t.Context(), "info@example.com", "Junk")
	raw, err := st.ReadMessage(t.Context(), "info@example.com", "Junk", junk[0].UID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(raw), "Authentication-Results: "+host+";\r\n\tspf=fail smtp.mailfrom=bob@quarantine.test;") ||
		!strings.Contains(string(raw), "dmarc=fail reason=\"p=quarantine\" header.from=quarantine.test\r\nReceived: from client.test") {
		t.Fatalf("quarantined message:\n%s", raw)
	}
}

func isReply(err error, code int, enhanced string) bool {
	var te *textproto.Error
	return errors.As(err, &te) && te.Code == code && strings.HasPrefix(te.Msg, enhanced+" ")
}
