package queue

import (
	"bytes"
	"context"
	"crypto/tls"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"yubin/forward"
	"yubin/forward/srs"
	"yubin/internal/auth"
	"yubin/internal/delivery"
	"yubin/internal/spool"
	"yubin/internal/testutil"
	"yubin/internal/testutil/teststore"
	"yubin/internal/testutil/tlstest"
	"yubin/smtpd"
	"yubin/store"
)

// The whole path: a user submits to a remote address through smtpd (465),
// the runner delivers it to the remote MX, DKIM-signed; mail for a local
// account that forwards to a remote address leaves with an SRS sender; the
// remote side's bounce to that SRS address is accepted on port 25 and goes
// back to the original sender.
func TestSubmissionForwardAndSRSBounce(t *testing.T) {
	e := newEnv(t)
	hash := teststore.PasswordHash(t, "pw-123456")
	teststore.Add(t, e.st, teststore.Options{Accounts: []store.Account{{Address: "bob@example.com", PasswordHash: hash}}})
	testutil.Must(t, e.st.SetPasswordHash(ctx, "info@example.com", hash))
	_, err := e.st.SetForward(ctx, "bob@example.com", []string{"x@remote.test"}, false)
	testutil.Must(t, err)

	remote, origin := newSink(t, true), newSink(t, true)
	e.route("remote.test", remote)
	e.route("sender.test", origin)

	fs, err := forward.NewStage(ctx, e.st, nil)
	testutil.Must(t, err)
	d := delivery.New(e.st, nil, fs)
	sp, err := spool.Open(t.TempDir(), 0, 0)
	testutil.Must(t, err)
	srv := smtpd.New(smtpd.Config{Hostname: "mail.example.com", Deliverer: d, Spool: sp, Outbound: true, ReverseSRS: fs.SRS.Reverse},
		e.st, auth.New(e.st, auth.Policy{}, nil), nil)
	addrs := testutil.Serve(t, srv, tlstest.SelfSigned(t, "mail.example.com").Server, smtpd.MX, smtpd.Submissions).Addrs
	mx, subs := addrs[0], addrs[1]

	r := e.runner(Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	// Submission to a remote address.
	c, err := smtp.DialTLS(subs, &tls.Config{InsecureSkipVerify: true})
	testutil.Must(t, err)
	testutil.Must(t, c.Auth(sasl.NewPlainClient("", "info@example.com", "pw-123456")))
	testutil.Must(t, c.SendMail("info@example.com", []string{"carol@remote.test"}, bytes.NewReader(testMsg)))
	c.Quit()
	m := remote.Next()
	if m.From != "info@example.com" || m.To[0] != "carol@remote.test" || !m.TLS {
		t.Fatalf("received %+v", m)
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(m.Data), &dkim.VerifyOptions{LookupTXT: dkimLookup(t, e.st)})
	if err != nil || len(vs) != 2 || vs[0].Err != nil || vs[1].Err != nil {
		t.Fatalf("DKIM: %v %+v", err, vs)
	}
	if !bytes.Contains(m.Data, []byte("ESMTPSA id")) {
		t.Fatalf("no Received header of the submission:\n%s", m.Data)
	}

	// Inbound to bob, forwarded to x@remote.test with an SRS sender.
	in := []byte("From: s@sender.test\r\nTo: bob@example.com\r\nSubject: for bob\r\n\r\nhi\r\n")
	testutil.Must(t, send25(t, mx, "s@sender.test", []string{"bob@example.com"}, bytes.NewReader(in)))
	m = remote.Next()
	if !srs.IsSRS(m.From) || !strings.HasSuffix(m.From, "@example.com") || m.To[0] != "x@remote.test" {
		t.Fatalf("forwarded %+v", m)
	}
	if !bytes.Contains(m.Data, []byte("Delivered-To: bob@example.com\r\n")) {
		t.Fatalf("forwarded copy:\n%s", m.Data)
	}
	if vs, err := dkim.VerifyWithOptions(bytes.NewReader(m.Data), &dkim.VerifyOptions{LookupTXT: dkimLookup(t, e.st)}); err != nil || len(vs) != 2 || vs[0].Err != nil {
		t.Fatalf("forward DKIM: %v %+v", err, vs)
	}
	if msgs, _, _ := e.st.Messages(ctx, "bob@example.com", "INBOX"); len(msgs) != 0 {
		t.Fatal("bob kept a copy without keep-copy")
	}

	// The remote side bounces to the SRS address: back to s@sender.test.
	bounce := []byte("From: MAILER-DAEMON@mx.remote.test\r\nSubject: Undelivered\r\n\r\nsorry\r\n")
	testutil.Must(t, send25(t, mx, "", []string{strings.ToUpper(m.From)}, bytes.NewReader(bounce)))
	b := origin.Next()
	if b.From != "" || b.To[0] != "s@sender.test" || !bytes.HasSuffix(b.Data, bounce) {
		t.Fatalf("bounce %+v", b)
	}
	// A forged SRS address is refused, and port 25 is still no open relay.
	forged := strings.Replace(m.From, "sender.test", "victim.test", 1)
	err = send25(t, mx, "", []string{forged}, bytes.NewReader(bounce))
	if se, ok := err.(*smtp.SMTPError); !ok || se.Code != 550 {
		t.Fatalf("forged SRS: %v", err)
	}
	err = send25(t, mx, "x@y.test", []string{"someone@remote.test"}, bytes.NewReader(bounce))
	if se, ok := err.(*smtp.SMTPError); !ok || se.Code != 550 {
		t.Fatalf("relay on 25: %v", err)
	}
	e.verify()
}

// send25 sends in the clear, like a remote MTA without TLS would.
func send25(t *testing.T, addr, from string, to []string, r *bytes.Reader) error {
	c, err := smtp.Dial(addr)
	testutil.Must(t, err)
	defer c.Close()
	return c.SendMail(from, to, r)
}
