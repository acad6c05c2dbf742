package e2e

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"yubin/internal/testutil/smtpsink"
)

// Submission to a remote address through the real binary, relayed through
// a smart host: deferred on 451, still queued after a restart, and sent
// when "yubin queue retry" asks (through the control socket).
func TestOutboundThroughSmartHost(t *testing.T) {
	data, cfg := newDataDir(t)
	sink := smtpsink.New(t, "relay.test", true) // the smart host
	var accept atomic.Bool
	sink.Rcpt = func(string) error {
		if !accept.Load() {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "not now"}
		}
		return nil
	}
	appendConfig(t, cfg, "[outbound]\nsmart_host = \""+sink.Addr+"\"\nsmart_host_verify_tls = false\nretry_initial = \"1h\"\n")
	flags := []string{"--config", cfg, "--data", data}

	srv := startServer(t, data, cfg)
	msg := "From: info@example.com\r\nTo: friend@elsewhere.test\r\nSubject: out\r\n\r\nhello\r\n"
	submitMail(t, srv.addrs["submission"], "info@example.com", "secret-pw", "friend@elsewhere.test", msg)
	srv.log.WaitFor(t, "outcome=deferred", 20*time.Second)

	list := func() []map[string]any {
		var q []map[string]any
		if err := json.Unmarshal([]byte(mustCLI(t, "", append([]string{"queue", "list", "--json"}, flags...)...)), &q); err != nil {
			t.Fatal(err)
		}
		return q
	}
	if q := list(); len(q) != 1 || !strings.Contains(q[0]["last_error"].(string), "451") {
		t.Fatalf("queue %v", q)
	}
	srv.stop(t)

	// Restart with the message in the queue; retry through the socket.
	srv = startServer(t, data, cfg)
	if q := list(); len(q) != 1 {
		t.Fatalf("after restart: %v", q)
	}
	accept.Store(true)
	if out := mustCLI(t, "", append([]string{"queue", "retry", "--all"}, flags...)...); !strings.Contains(out, "1 queue entry") {
		t.Fatalf("retry: %s", out)
	}
	select {
	case m := <-sink.Got:
		if got := m.Data; !bytes.HasSuffix(got, []byte(msg)) || !bytes.Contains(got, []byte("DKIM-Signature: ")) {
			t.Fatalf("relayed:\n%s", got)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("not relayed:\n%s", srv.log.String())
	}
	srv.log.WaitFor(t, "outcome=sent", 20*time.Second)
	if q := list(); len(q) != 0 {
		t.Fatalf("still queued: %v", q)
	}
	srv.stop(t)
}

// With the default smart_host_tls ("starttls"), a smart host that offers no
// STARTTLS gets nothing through the real binary: a warning in the log, the
// message stays in the queue with the reason.
func TestSmartHostWithoutTLSGetsNothing(t *testing.T) {
	data, cfg := newDataDir(t)
	sink := smtpsink.New(t, "relay.test", false)
	appendConfig(t, cfg, "[outbound]\nsmart_host = \""+sink.Addr+"\"\nretry_initial = \"1h\"\n")
	srv := startServer(t, data, cfg)
	submitMail(t, srv.addrs["submission"], "info@example.com", "secret-pw", "friend@elsewhere.test",
		"From: info@example.com\r\nTo: friend@elsewhere.test\r\nSubject: secret\r\n\r\nnot in the clear\r\n")
	srv.log.WaitFor(t, "outcome=deferred", 20*time.Second)
	if !strings.Contains(srv.log.String(), `level=WARN msg="smart host without TLS: nothing sent`) {
		t.Fatalf("no warning:\n%s", srv.log.String())
	}
	var q []struct {
		LastError string `json:"last_error"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, "", "queue", "list", "--json", "--config", cfg, "--data", data)), &q); err != nil {
		t.Fatal(err)
	}
	if len(q) != 1 || !strings.Contains(q[0].LastError, "offers no STARTTLS") {
		t.Fatalf("queue %+v", q)
	}
	if n := sink.Mails.Load(); n != 0 {
		t.Fatalf("%d MAIL commands in the clear", n)
	}
	srv.stop(t)
}
