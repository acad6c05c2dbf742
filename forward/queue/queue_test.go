package queue

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"
	"github.com/foxcpp/go-mockdns"

	"yubin/internal/dkimkey"
	"yubin/internal/testutil"
	"yubin/internal/testutil/smtpsink"
	"yubin/internal/testutil/teststore"
	"yubin/store"
)

var ctx = context.Background()

func dkimLookup(t *testing.T, st store.Store) func(string) ([]string, error) {
	return func(name string) ([]string, error) {
		name = strings.TrimSuffix(name, ".")
		at := strings.Index(name, "._domainkey.")
		if at < 0 {
			return nil, fmt.Errorf("bad name %s", name)
		}
		keys, err := dkimkey.ForDomain(ctx, st, name[at+len("._domainkey."):])
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if k.DNSName() == name {
				txt, err := k.TXT()
				return []string{txt}, err
			}
		}
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
}

// Delivery over STARTTLS, DKIM-signed with both keys and verified by
// go-msgauth on the receiving side; the entry is gone afterwards.
func TestDeliverSTARTTLSAndDKIM(t *testing.T) {
	e := newEnv(t)
	sk := newSink(t, true)
	e.route("remote.test", sk)
	id := e.enqueue(store.Outbound{QueueID: "A1", From: "info@example.com", ReturnPath: "info@example.com",
		Recipients: []string{"bob@remote.test", "carol@remote.test"}, Message: testMsg})
	e.runner(Config{}).RunDue(ctx)

	m := sk.Next()
	if !m.TLS || m.From != "info@example.com" || strings.Join(m.To, ",") != "bob@remote.test,carol@remote.test" {
		t.Fatalf("received %+v", m)
	}
	if !bytes.HasSuffix(m.Data, testMsg) {
		t.Fatalf("body changed:\n%s", m.Data)
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(m.Data), &dkim.VerifyOptions{LookupTXT: dkimLookup(t, e.st)})
	if err != nil || len(vs) != 2 {
		t.Fatalf("verify: %v, %d signatures", err, len(vs))
	}
	for _, v := range vs {
		if v.Err != nil || v.Domain != "example.com" {
			t.Fatalf("signature %+v", v)
		}
	}
	if _, err := e.st.QueueEntry(ctx, id); err == nil || e.queueLen() != 0 {
		t.Fatal("entry still queued after delivery")
	}
	e.verify()
}

// A 4xx is retried after the backoff (injected clock) and then succeeds;
// nothing is sent twice.
func TestTempFailureThenRetry(t *testing.T) {
	e := newEnv(t)
	sk := newSink(t, true)
	e.route("remote.test", sk)
	fail := true
	sk.Rcpt = func(to string) error {
		if fail {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "greylisted, try again"}
		}
		return nil
	}
	id := e.enqueue(store.Outbound{From: "info@example.com", ReturnPath: "info@example.com", Recipients: []string{"bob@remote.test"}, Message: testMsg})
	r := e.runner(Config{})
	r.RunDue(ctx)
	sk.None()
	q, err := e.st.QueueEntry(ctx, id)
	testutil.Must(t, err)
	if q.Attempts != 1 || !strings.Contains(q.LastError, "451 4.7.1 greylisted") || !q.NextAttempt.Equal(e.clock.Now().Add(DefaultRetryInitial)) {
		t.Fatalf("after 451: %+v", q)
	}
	// Not due yet: nothing happens.
	fail = false
	r.RunDue(ctx)
	sk.None()
	e.clock.Add(DefaultRetryInitial)
	r.RunDue(ctx)
	if m := sk.Next(); m.To[0] != "bob@remote.test" {
		t.Fatalf("got %+v", m)
	}
	r.RunDue(ctx)
	sk.None()
	if e.queueLen() != 0 {
		t.Fatal("still queued")
	}
	if len(e.inbox("info@example.com")) != 0 {
		t.Fatal("a DSN was sent for a delivered message")
	}
	e.verify()
}

// A 5xx bounces at once with a valid RFC 3464 DSN to the (local) sender;
// the other recipient is delivered.
func TestPermanentFailureDSN(t *testing.T) {
	e := newEnv(t)
	sk := newSink(t, true)
	e.route("remote.test", sk)
	sk.Rcpt = func(to string) error {
		if to == "nobody@remote.test" {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	}
	e.enqueue(store.Outbound{QueueID: "B1", From: "info@example.com", ReturnPath: "info@example.com",
		Recipients: []string{"nobody@remote.test", "bob@remote.test"}, Message: testMsg})
	e.runner(Config{}).RunDue(ctx)
	if m := sk.Next(); strings.Join(m.To, ",") != "bob@remote.test" {
		t.Fatalf("got %+v", m)
	}
	inbox := e.inbox("info@example.com")
	if len(inbox) != 1 || e.queueLen() != 0 {
		t.Fatalf("%d DSNs, %d queued", len(inbox), e.queueLen())
	}
	checkDSN(t, inbox[0], "nobody@remote.test", "5.1.1", "550 5.1.1 no such user")
	e.verify()
}

// checkDSN parses a DSN and checks its structure and one recipient's fields.
func checkDSN(t *testing.T, raw []byte, rcpt, status, diag string) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("content type %q %v %v", mt, params, err)
	}
	if msg.Header.Get("Auto-Submitted") != "auto-replied" {
		t.Error("no Auto-Submitted")
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var types []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		types = append(types, ct)
		body, _ := io.ReadAll(p)
		switch ct {
		case "message/delivery-status":
			tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(body)))
			perMsg, err := tp.ReadMIMEHeader()
			if err != nil || !strings.HasPrefix(perMsg.Get("Reporting-MTA"), "dns; ") {
				t.Fatalf("per-message fields %v %v", perMsg, err)
			}
			found := false
			for {
				f, err := tp.ReadMIMEHeader()
				if len(f) == 0 {
					break
				}
				if f.Get("Final-Recipient") == "rfc822; "+rcpt {
					found = true
					if f.Get("Action") != "failed" || f.Get("Status") != status || !strings.Contains(f.Get("Diagnostic-Code"), diag) {
						t.Fatalf("recipient fields %v", f)
					}
				}
				if err != nil {
					break
				}
			}
			if !found {
				t.Fatalf("no fields for %s in\n%s", rcpt, body)
			}
		case "text/rfc822-headers":
			if !bytes.Contains(body, []byte("Subject: hello")) || bytes.Contains(body, []byte("Hello there")) {
				t.Fatalf("headers part:\n%s", body)
			}
		}
	}
	if strings.Join(types, ",") != "text/plain,message/delivery-status,text/rfc822-headers" {
		t.Fatalf("parts %v", types)
	}
}

// A server that accepts the connection but never greets: the attempt
// times out and is retried later; a null sender gets no DSN ever.
func TestTimeoutAndNullSender(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testutil.Must(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // silent until the test ends
		}
	}()
	e.route("slow.test", &smtpsink.Sink{Addr: ln.Addr().String()})
	id := e.enqueue(store.Outbound{From: "", Recipients: []string{"x@slow.test"}, Message: testMsg})
	r := e.runner(Config{CommandTimeout: 200 * time.Millisecond, RetryFor: time.Hour})
	start := time.Now()
	r.RunDue(ctx)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %v", took)
	}
	q, err := e.st.QueueEntry(ctx, id)
	testutil.Must(t, err)
	if q.Attempts != 1 || !strings.Contains(q.LastError, "timeout") {
		t.Fatalf("after timeout: %+v", q)
	}
	// Expired: dropped without a DSN (null sender).
	e.clock.Add(2 * time.Hour)
	r.RunDue(ctx)
	if e.queueLen() != 0 || len(e.inbox("info@example.com")) != 0 {
		t.Fatal("null-sender message not dropped, or a DSN was made")
	}
	e.verify()
}

// Temporary failures for a day (injected clock), then a DSN with 5.4.7.
func TestExpiry(t *testing.T) {
	e := newEnv(t)
	sk := newSink(t, false)
	e.route("remote.test", sk)
	sk.Rcpt = func(string) error {
		return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
	}
	id := e.enqueue(store.Outbound{From: "info@example.com", ReturnPath: "info@example.com", Recipients: []string{"bob@remote.test"}, Message: testMsg})
	r := e.runner(Config{})
	created := e.clock.Now()
	attempts := 0
	for e.queueLen() > 0 && attempts < 100 {
		r.RunDue(ctx)
		attempts++
		q, err := e.st.QueueEntry(ctx, id)
		if err != nil {
			break
		}
		if q.NextAttempt.After(created.Add(DefaultRetryFor)) {
			t.Fatalf("next attempt %v after the deadline", q.NextAttempt)
		}
		if len(e.inbox("info@example.com")) > 0 {
			t.Fatalf("bounced early at attempt %d", attempts)
		}
		e.clock.Add(q.NextAttempt.Sub(e.clock.Now()))
	}
	if e.clock.Now().Sub(created) != DefaultRetryFor {
		t.Fatalf("gave up after %v", e.clock.Now().Sub(created))
	}
	// 5m, 10m, 20m, 40m, then hourly: 4 + 23 attempts, plus the last one.
	if attempts < 20 || attempts > 30 {
		t.Fatalf("%d attempts", attempts)
	}
	inbox := e.inbox("info@example.com")
	if len(inbox) != 1 {
		t.Fatalf("%d DSNs", len(inbox))
	}
	checkDSN(t, inbox[0], "bob@remote.test", "5.4.7", "452 4.2.2 mailbox full")
	e.verify()
}

// The queue survives a restart, and several messages for one domain share
// one connection.
func TestRestartAndConnectionReuse(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	st := teststore.OpenDir(t, dir, teststore.Options{Now: clk.Now, Domains: []teststore.Domain{{Name: "example.com"}}})
	for i := range 5 {
		_, err := st.Enqueue(ctx, store.Outbound{From: "info@example.com", ReturnPath: "info@example.com",
			Recipients: []string{fmt.Sprintf("u%d@remote.test", i)}, Message: testMsg})
		testutil.Must(t, err)
	}
	testutil.Must(t, st.Close())

	e := &env{t: t, clock: clk, zones: map[string]mockdns.Zone{}, hosts: map[string]string{}}
	e.st = teststore.OpenDir(t, dir, teststore.Options{Now: clk.Now})
	sk := newSink(t, true)
	e.route("remote.test", sk)
	if e.queueLen() != 5 {
		t.Fatalf("%d after restart", e.queueLen())
	}
	e.runner(Config{}).RunDue(ctx)
	for range 5 {
		sk.Next()
	}
	if n := sk.Conns.Load(); n != 1 {
		t.Fatalf("%d connections for 5 messages", n)
	}
	if e.queueLen() != 0 {
		t.Fatal("still queued")
	}
	e.verify()
}

// No MX: the domain's A record (RFC 5321 5.1); a null MX bounces at once;
// an unknown domain bounces.
func TestMXFallbackAndNullMX(t *testing.T) {
	e := newEnv(t)
	sk := newSink(t, false)
	e.zones["plain.test."] = mockdns.Zone{A: []string{"192.0.2.77"}}
	e.hosts["192.0.2.77:25"] = sk.Addr
	e.zones["nomail.test."] = mockdns.Zone{MX: []net.MX{{Host: ".", Pref: 0}}}
	e.enqueue(store.Outbound{From: "info@example.com", ReturnPath: "info@example.com", Recipients: []string{"a@plain.test", "b@nomail.test", "c@nxdomain.test"}, Message: testMsg})
	e.runner(Config{}).RunDue(ctx)
	if m := sk.Next(); m.To[0] != "a@plain.test" || m.TLS {
		t.Fatalf("got %+v", m)
	}
	inbox := e.inbox("info@example.com")
	if len(inbox) != 2 || e.queueLen() != 0 {
		t.Fatalf("%d DSNs, %d queued", len(inbox), e.queueLen())
	}
	all := string(inbox[0]) + string(inbox[1])
	if !strings.Contains(all, "Status: 5.1.10") || !strings.Contains(all, "Status: 5.1.2") {
		t.Fatalf("DSNs:\n%s", all)
	}
	e.verify()
}

// The smart host gets everything, with AUTH PLAIN over STARTTLS.
func TestSmartHost(t *testing.T) {
	e := newEnv(t)
	sk := newSink(t, true)
	sk.User, sk.Pass = "relayuser", "s3cret"
	e.enqueue(store.Outbound{From: "info@example.com", ReturnPath: "info@example.com", Recipients: []string{"a@one.test", "b@two.test"}, Message: testMsg})
	r := e.runner(Config{SmartHost: sk.Addr, SmartHostUser: "relayuser", SmartHostPassword: "s3cret"})
	r.RunDue(ctx)
	got := map[string]bool{}
	for range 2 {
		m := sk.Next()
		if m.User != "relayuser" || !m.TLS {
			t.Fatalf("got %+v", m)
		}
		got[m.To[0]] = true
	}
	if !got["a@one.test"] || !got["b@two.test"] || sk.Conns.Load() != 1 || e.queueLen() != 0 {
		t.Fatalf("got %v over %d connections, %d queued", got, sk.Conns.Load(), e.queueLen())
	}
	// Wrong password: kept for later, not bounced.
	e.enqueue(store.Outbound{From: "info@example.com", ReturnPath: "info@example.com", Recipients: []string{"a@one.test"}, Message: testMsg})
	e.runner(Config{SmartHost: sk.Addr, SmartHostUser: "relayuser", SmartHostPassword: "wrong"}).RunDue(ctx)
	if e.queueLen() != 1 || len(e.inbox("info@example.com")) != 0 {
		t.Fatal("auth failure bounced or lost the message")
	}
}

// Run picks up new entries by itself and stops cleanly.
func TestRunLoop(t *testing.T) {
	e := newEnv(t)
	sk := newSink(t, true)
	e.route("remote.test", sk)
	r := e.runner(Config{})
	c, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- r.Run(c) }()
	e.enqueue(store.Outbound{From: "info@example.com", Recipients: []string{"bob@remote.test"}, Message: testMsg})
	sk.Next()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if e.queueLen() != 0 {
		t.Fatal("still queued")
	}
}
