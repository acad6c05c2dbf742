package tlsutil_test

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"yubin/internal/testutil"
	"yubin/internal/testutil/acmetest"
	"yubin/internal/tlsutil"
)

// fakeClock is the cooldowns' clock, moved by the test.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestACMECooldownSchedule(t *testing.T) {
	want := []time.Duration{time.Minute, 3 * time.Minute, 9 * time.Minute, 27 * time.Minute, 81 * time.Minute, 4 * time.Hour, 4 * time.Hour}
	for i, w := range want {
		if got := tlsutil.ACMECooldown(i + 1); got != w {
			t.Errorf("ACMECooldown(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := tlsutil.ACMECooldown(1000); got != tlsutil.ACMECooldownMax {
		t.Errorf("ACMECooldown(1000) = %v", got)
	}
	// Let's Encrypt allows 5 failed validations per name an hour: no
	// hour of back-to-back failures holds more.
	var at []time.Duration
	var t0 time.Duration
	for i := 1; i <= 12; i++ {
		at = append(at, t0)
		t0 += tlsutil.ACMECooldown(i)
	}
	for i := range at {
		n := 0
		for _, x := range at[i:] {
			if x-at[i] < time.Hour {
				n++
			}
		}
		if n > 5 {
			t.Errorf("%d attempts in the hour from %v", n, at[i])
		}
	}
}

// A failed issuance is not retried by the handshakes that follow: however
// many there are, the CA sees one validation until the cooldown is over (on the
// injected clock), then one more; the cooldown grows; a certificate comes
// once the http-01 challenge can be answered; ResetCooldown retries at once.
func TestACMECooldown(t *testing.T) {
	httpPort := acmetest.FreePort(t)
	ca := acmetest.Start(t, map[string]string{acmeHost: "127.0.0.1", acmeMX: "127.0.0.1"}, httpPort)
	clock := &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	logs := &testutil.Buffer{}
	a, err := tlsutil.NewACME(tlsutil.ACMEConfig{
		Hosts: []string{acmeHost, acmeMX}, DirectoryURL: ca.DirectoryURL, CacheDir: filepath.Join(t.TempDir(), "acme"),
		HTTPClient: ca.Client, Now: clock.Now, Log: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, a.TLSConfig())
	// An attempt is a challenge answered: one validation by the CA (after
	// it fails autocert makes one more order, finds no other challenge
	// type it may use, and gives up).
	orders := func() int { return strings.Count(ca.Logs(), "POST /chalZ/") }
	// Nothing answers on the http-01 port yet: every validation fails.
	fails := func(what string, n int) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := handshake(addr, acmeHost, acmeHost, ca.Roots)
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err == nil {
				t.Fatalf("%s: a handshake succeeded without a certificate", what)
			}
		}
	}

	fails("first handshakes", 5) // 5 at once: they share the one attempt
	if n := orders(); n != 1 {
		t.Fatalf("5 handshakes at once made %d validations, want 1", n)
	}
	if !strings.Contains(logs.String(), "ACME: could not get a certificate") || !strings.Contains(logs.String(), "failures=1") {
		t.Errorf("the failure is not logged:\n%s", logs.String())
	}
	fails("in the cooldown", 5)
	clock.Add(59 * time.Second)
	fails("1s before the cooldown ends", 3)
	if n := orders(); n != 1 {
		t.Fatalf("13 handshakes within the first minute made %d validations, want 1", n)
	}
	// The handshake's error says why and until when.
	_, err = a.GetCertificate(&tls.ClientHelloInfo{ServerName: acmeHost, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}})
	if err == nil || !strings.Contains(err.Error(), "next attempt after 2030-01-01T00:01:00Z") {
		t.Errorf("error in the cooldown: %v", err)
	}

	clock.Add(time.Second) // 1 minute: one more attempt, which fails too
	fails("after the first cooldown", 4)
	if n := orders(); n != 2 {
		t.Fatalf("after the first cooldown: %d validations, want 2", n)
	}
	clock.Add(3*time.Minute - time.Second) // the second cooldown is 3 minutes
	fails("in the second cooldown", 3)
	if n := orders(); n != 2 {
		t.Fatalf("in the second cooldown: %d validations, want 2", n)
	}

	// Port 80 fixed: the attempt after the cooldown gets the certificate.
	hln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", httpPort))
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: a.HTTPHandler(), ErrorLog: nil}
	go hs.Serve(hln)
	defer hs.Close()
	clock.Add(time.Second)
	if _, err := handshake(addr, acmeHost, acmeHost, ca.Roots); err != nil {
		t.Fatalf("after the second cooldown, with port 80 answering: %v", err)
	}
	if n := orders(); n != 3 {
		t.Fatalf("%d validations, want 3", n)
	}
	if _, err := handshake(addr, acmeHost, acmeHost, ca.Roots); err != nil {
		t.Fatal(err)
	}
	if n := orders(); n != 3 {
		t.Fatalf("a handshake with the certificate made a validation (%d)", n)
	}

	// An RSA-only client needs a certificate of its own; its failure does
	// not stop the ECDSA one from being served.
	hs.Close()
	rsaOnly := func() error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Minute}, "tcp", addr, &tls.Config{
			ServerName: acmeHost, RootCAs: ca.Roots, MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256},
		})
		if err == nil {
			c.Close()
		}
		return err
	}
	if rsaOnly() == nil || rsaOnly() == nil {
		t.Fatal("RSA handshake succeeded with nothing on port 80")
	}
	if n := orders(); n != 4 {
		t.Fatalf("two RSA handshakes: %d validations, want 4", n)
	}
	if _, err := handshake(addr, acmeHost, acmeHost, ca.Roots); err != nil {
		t.Fatalf("ECDSA certificate while the RSA one cools down: %v", err)
	}

	// ResetCooldown (SIGHUP): the RSA certificate is tried again at once.
	a.ResetCooldown()
	if rsaOnly() == nil {
		t.Fatal("RSA handshake succeeded with nothing on port 80")
	}
	if n := orders(); n != 5 {
		t.Fatalf("after ResetCooldown: %d validations, want 5", n)
	}
}
