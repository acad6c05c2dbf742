package server_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"net/smtp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"yubin/internal/config"
	"yubin/internal/server"
	"yubin/internal/testutil"
	"yubin/internal/testutil/scantest"
	"yubin/internal/testutil/teststore"
	"yubin/store"
)

// listenLog is a log handler that keeps the address of every listener and
// says when the server is ready.
type listenLog struct {
	mu    *sync.Mutex
	addrs map[string]string
	ready chan struct{}
}

func (l listenLog) Enabled(context.Context, slog.Level) bool { return true }
func (l listenLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l listenLog) WithGroup(string) slog.Handler            { return l }

func (l listenLog) Handle(_ context.Context, r slog.Record) error {
	attrs := map[string]string{}
	r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
	l.mu.Lock()
	defer l.mu.Unlock()
	switch r.Message {
	case "listening":
		l.addrs[attrs["listener"]] = attrs["addr"]
	case "yubin ready":
		close(l.ready)
	}
	return nil
}

// runServer runs a server on dir with cfg's listeners and returns their
// addresses; it is stopped at cleanup.
func runServer(t *testing.T, cfg config.Config) map[string]string {
	t.Helper()
	testutil.Must(t, cfg.Validate())
	l := listenLog{mu: new(sync.Mutex), addrs: map[string]string{}, ready: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, cfg, slog.New(l)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			testutil.Must(t, err)
		case <-time.After(time.Minute):
			t.Error("the server did not stop")
		}
	})
	select {
	case <-l.ready:
	case err := <-done:
		t.Fatalf("server.Run: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the server did not start")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.addrs
}

// scrape fetches /metrics and returns every sample of Yubin's by its
// name and labels: `yubin_deliveries_total{verdict="clean"}`.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	testutil.Must(t, err)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	testutil.Must(t, err)
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			sort.Strings(labels)
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[key+"_count"] = float64(m.Histogram.GetSampleCount())
			case m.Untyped != nil:
				out[key] = m.Untyped.GetValue()
			}
		}
	}
	return out
}

// waitMetric scrapes until the sample has want, for what the server does
// after its reply (closing a connection, an outbound attempt).
func waitMetric(t *testing.T, addr, key string, want func(float64) bool) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := scrape(t, addr)
		if want(m[key]) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v after 30s", key, m[key])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// diff is what changed between two scrapes of Yubin's samples (the Go
// runtime's and the process's left out, and the ages, which move with
// the clock).
func diff(before, after map[string]float64) map[string]float64 {
	d := map[string]float64{}
	for k, v := range after {
		if strings.HasPrefix(k, "yubin_tls_certificate_days_left") || k == "yubin_outbound_queue_oldest_age_seconds" {
			continue
		}
		if strings.HasPrefix(k, "yubin_") && v != before[k] {
			d[k] = v - before[k]
		}
	}
	return d
}

func checkDiff(t *testing.T, what string, got, want map[string]float64) {
	t.Helper()
	var bad []string
	for k, v := range want {
		if got[k] != v {
			bad = append(bad, fmt.Sprintf("%s changed by %v, want %v", k, got[k], v))
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			bad = append(bad, fmt.Sprintf("%s changed by %v, want no change", k, v))
		}
	}
	slices.Sort(bad)
	if len(bad) > 0 {
		t.Errorf("after %s:\n  %s", what, strings.Join(bad, "\n  "))
	}
}

// The metrics of a real server, scraped over HTTP, move with what clients
// do: a delivery on port 25, a recipient refused, a virus stripped, a
// submission refused for a virus and one queued, failed logins on SMTP,
// POP3 and IMAP, IMAP sessions open and closed, an outbound attempt
// deferred. Each step changes exactly the samples it should.
func TestMetrics(t *testing.T) {
	const (
		bob = "bob@example.com"
		pw  = "pw-bob"
	)
	dir := testutil.ShortDir(t)
	st := teststore.OpenDir(t, dir, teststore.Options{Password: pw, Accounts: []store.Account{{Address: bob}}})
	testutil.Must(t, st.Close())

	cfg := config.Default()
	cfg.Hostname = "mx.example.com"
	cfg.DataDir = dir
	for _, p := range []*string{&cfg.Listen.SMTP, &cfg.Listen.Submission, &cfg.Listen.POP3S, &cfg.Listen.IMAPS, &cfg.Listen.Metrics} {
		*p = "127.0.0.1:0"
	}
	for _, p := range []*string{&cfg.Listen.Submissions, &cfg.Listen.POP3, &cfg.Listen.IMAP, &cfg.Listen.HTTP, &cfg.Listen.Web} {
		*p = "off"
	}
	cfg.DNS.CheckInbound = false // no DNS here
	cfg.Auth.FailureDelay.Duration = 0
	// Outbound mail goes to a smart host that refuses connections: every
	// attempt is deferred, and nothing asks DNS.
	cfg.Outbound.SmartHost = "127.0.0.1:1"
	cfg.Outbound.SmartHostTLS = config.SmartHostNoTLS
	addrs := runServer(t, cfg)
	ma := addrs["metrics"]
	if ma == "" {
		t.Fatalf("no metrics listener among %v", addrs)
	}
	tlsConf := &tls.Config{InsecureSkipVerify: true}

	m0 := scrape(t, ma)
	for _, k := range []string{`yubin_smtp_transactions_total{class="2xx",listener="mx"}`, `yubin_deliveries_total{verdict="quarantined"}`,
		`yubin_auth_failures_total{protocol="pop3",reason="locked_out"}`, `yubin_outbound_recipients_total{result="bounced"}`,
		`yubin_open_sessions{protocol="imap"}`, `yubin_outbound_queue_entries`, `yubin_build_info{version="dev"}`} {
		if _, ok := m0[k]; !ok {
			t.Errorf("%s is not there before anything happened", k)
		}
	}
	if m0[`yubin_build_info{version="dev"}`] != 1 {
		t.Errorf("build info %v", m0[`yubin_build_info{version="dev"}`])
	}
	if d := m0[`yubin_tls_certificate_days_left{name="mx.example.com"}`]; d < 3600 || d > 3700 {
		t.Errorf("the self-signed certificate has %v days left, want about 10 years", d)
	}
	if m0["go_goroutines"] == 0 || m0["process_resident_memory_bytes"] == 0 {
		t.Errorf("no Go runtime or process metrics: go_goroutines %v, process_resident_memory_bytes %v", m0["go_goroutines"], m0["process_resident_memory_bytes"])
	}

	// Port 25: one message delivered, one recipient refused (the client
	// gives up with RSET), one message with a virus in an attachment.
	c, err := smtp.Dial(addrs["smtp"])
	testutil.Must(t, err)
	send := func(from, to string, msg []byte) {
		t.Helper()
		testutil.Must(t, c.Mail(from))
		testutil.Must(t, c.Rcpt(to))
		w, err := c.Data()
		testutil.Must(t, err)
		_, err = w.Write(msg)
		testutil.Must(t, err)
		testutil.Must(t, w.Close())
	}
	send("alice@remote.test", bob, []byte("Subject: hi\r\n\r\nhello\r\n"))
	m1 := scrape(t, ma)
	checkDiff(t, "a delivery on port 25", diff(m0, m1), map[string]float64{
		`yubin_smtp_transactions_total{class="2xx",listener="mx"}`: 1,
		`yubin_deliveries_total{verdict="clean"}`:                  1,
		`yubin_scan_duration_seconds_count`:                        1,
		`yubin_store_commit_duration_seconds_count`:                1,
	})
	testutil.Must(t, c.Mail("alice@remote.test"))
	if err := c.Rcpt("nobody@example.com"); err == nil || !strings.HasPrefix(err.Error(), "550") {
		t.Fatalf("RCPT of an unknown user: %v", err)
	}
	testutil.Must(t, c.Reset())
	m2 := scrape(t, ma)
	checkDiff(t, "a recipient refused", diff(m1, m2), map[string]float64{
		`yubin_smtp_transactions_total{class="5xx",listener="mx"}`: 1,
	})
	send("alice@remote.test", bob, scantest.Mail("see attached", []scantest.File{{Name: "eicar.com", Data: []byte(scantest.EICAR)}}))
	testutil.Must(t, c.Quit())
	m3 := scrape(t, ma)
	checkDiff(t, "a virus stripped", diff(m2, m3), map[string]float64{
		`yubin_smtp_transactions_total{class="2xx",listener="mx"}`: 1,
		`yubin_deliveries_total{verdict="stripped"}`:               1,
		`yubin_scan_duration_seconds_count`:                        1,
		`yubin_store_commit_duration_seconds_count`:                1,
	})

	// Submission: a wrong password, then a message with a virus
	// (refused) and one to a remote address (queued).
	sub := func(pass string) (*smtp.Client, error) {
		c, err := smtp.Dial(addrs["submission"])
		testutil.Must(t, err)
		testutil.Must(t, c.StartTLS(tlsConf))
		return c, c.Auth(smtp.PlainAuth("", bob, pass, "127.0.0.1"))
	}
	bad, err := sub("wrong")
	if err == nil || !strings.HasPrefix(err.Error(), "535") {
		t.Fatalf("AUTH with a wrong password: %v", err)
	}
	bad.Close()
	m4 := scrape(t, ma)
	checkDiff(t, "a failed SMTP login", diff(m3, m4), map[string]float64{
		`yubin_auth_failures_total{protocol="smtp",reason="bad_credentials"}`: 1,
	})
	c, err = sub(pw)
	testutil.Must(t, err)
	testutil.Must(t, c.Mail(bob))
	testutil.Must(t, c.Rcpt("carol@remote.test"))
	w, err := c.Data()
	testutil.Must(t, err)
	_, err = w.Write(scantest.Mail("oops", []scantest.File{{Name: "eicar.com", Data: []byte(scantest.EICAR)}}))
	testutil.Must(t, err)
	if err := w.Close(); err == nil || !strings.HasPrefix(err.Error(), "554") {
		t.Fatalf("a virus submitted: %v", err)
	}
	m5 := scrape(t, ma)
	checkDiff(t, "a submission refused", diff(m4, m5), map[string]float64{
		`yubin_smtp_transactions_total{class="5xx",listener="submission"}`: 1,
		`yubin_deliveries_total{verdict="rejected"}`:                       1,
		`yubin_scan_duration_seconds_count`:                                1,
	})
	send("bob@example.com", "carol@remote.test", []byte("Subject: out\r\n\r\nto the world\r\n"))
	testutil.Must(t, c.Quit())
	// The queue holds it until the smart host's refusal defers it.
	m6 := waitMetric(t, ma, `yubin_outbound_recipients_total{result="deferred"}`, func(v float64) bool { return v == 1 })
	checkDiff(t, "a submission queued and deferred", diff(m5, m6), map[string]float64{
		`yubin_smtp_transactions_total{class="2xx",listener="submission"}`: 1,
		`yubin_deliveries_total{verdict="clean"}`:                          1,
		`yubin_scan_duration_seconds_count`:                                1,
		`yubin_store_commit_duration_seconds_count`:                        1,
		`yubin_outbound_queue_entries`:                                     1,
		`yubin_outbound_recipients_total{result="deferred"}`:               1,
	})
	if age := m6[`yubin_outbound_queue_oldest_age_seconds`]; age <= 0 || age > 60 {
		t.Errorf("the oldest entry is %v s old", age)
	}
	if m5[`yubin_outbound_queue_oldest_age_seconds`] != 0 {
		t.Errorf("the empty queue's oldest entry is %v s old", m5[`yubin_outbound_queue_oldest_age_seconds`])
	}

	// POP3: a wrong password.
	p := testutil.Dial(t, addrs["pop3s"], tlsConf)
	p.Line()
	p.Send("USER " + bob + "\r\n")
	p.Line()
	p.Send("PASS wrong\r\n")
	if l := p.Line(); !strings.HasPrefix(l, "-ERR [AUTH]") {
		t.Fatalf("PASS wrong: %q", l)
	}
	m7 := scrape(t, ma)
	checkDiff(t, "a failed POP3 login", diff(m6, m7), map[string]float64{
		`yubin_auth_failures_total{protocol="pop3",reason="bad_credentials"}`: 1,
		`yubin_open_sessions{protocol="pop3"}`:                                1,
	})
	p.Close()
	waitMetric(t, ma, `yubin_open_sessions{protocol="pop3"}`, func(v float64) bool { return v == 0 })

	// IMAP: one login, one failed; both sessions counted while open.
	ic, err := imapclient.DialTLS(addrs["imaps"], &imapclient.Options{TLSConfig: tlsConf})
	testutil.Must(t, err)
	testutil.Must(t, ic.Login(bob, pw).Wait())
	ib, err := imapclient.DialTLS(addrs["imaps"], &imapclient.Options{TLSConfig: tlsConf})
	testutil.Must(t, err)
	if err := ib.Login(bob, "wrong").Wait(); err == nil {
		t.Fatal("IMAP login with a wrong password succeeded")
	}
	m8 := scrape(t, ma)
	if d := diff(m7, m8); d[`yubin_auth_failures_total{protocol="imap",reason="bad_credentials"}`] != 1 || m8[`yubin_open_sessions{protocol="imap"}`] != 2 ||
		d[`yubin_auth_failures_total{protocol="imap",reason="locked_out"}`] != 0 {
		t.Errorf("after an IMAP login and a failed one: %v", d)
	}
	ic.Logout().Wait()
	ic.Close()
	ib.Close()
	waitMetric(t, ma, `yubin_open_sessions{protocol="imap"}`, func(v float64) bool { return v == 0 })
}

// Without listen.metrics (the default) nothing listens for them.
func TestMetricsOffByDefault(t *testing.T) {
	if d := config.Default().Listen.Metrics; !config.Off(d) {
		t.Fatalf("listen.metrics defaults to %q", d)
	}
	cfg := config.Default()
	cfg.Hostname = "mx.example.com"
	cfg.DataDir = testutil.ShortDir(t)
	for _, p := range []*string{&cfg.Listen.SMTP, &cfg.Listen.Submission, &cfg.Listen.Submissions, &cfg.Listen.POP3, &cfg.Listen.POP3S, &cfg.Listen.IMAP, &cfg.Listen.HTTP, &cfg.Listen.Web} {
		*p = "off"
	}
	cfg.Listen.IMAPS = "127.0.0.1:0"
	addrs := runServer(t, cfg)
	if _, ok := addrs["metrics"]; ok || len(addrs) != 1 {
		t.Errorf("listening on %v, want imaps only", addrs)
	}
}
