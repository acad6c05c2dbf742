package tlsutil_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"yubin/internal/config"
	"yubin/internal/server"
	"yubin/internal/testutil/acmetest"
)

// A whole server with tls.acme: its POP3S listener presents a certificate
// Pebble issued after checking http-01 on the server's listen.http, and
// shutting down stops the HTTP listener too.
func TestACMEServerRun(t *testing.T) {
	httpPort := acmetest.FreePort(t)
	ca := acmetest.Start(t, map[string]string{acmeHost: "127.0.0.1"}, httpPort)

	cfg := config.Default()
	cfg.Hostname = acmeHost
	cfg.DataDir = t.TempDir()
	for _, p := range []*string{&cfg.Listen.SMTP, &cfg.Listen.Submission, &cfg.Listen.Submissions, &cfg.Listen.POP3, &cfg.Listen.IMAP, &cfg.Listen.IMAPS, &cfg.Listen.Web} {
		*p = "off"
	}
	pop3s := fmt.Sprintf("127.0.0.1:%d", acmetest.FreePort(t))
	cfg.Listen.POP3S = pop3s
	cfg.Listen.HTTP = fmt.Sprintf("127.0.0.1:%d", httpPort)
	cfg.TLS.ACME = true
	cfg.TLS.ACMEEmail = "admin@example.com"
	cfg.TLS.ACMEDirectory = ca.DirectoryURL
	cfg.TLS.ACMEDirectoryCA = ca.DirectoryCA
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	stopped := false
	defer func() {
		cancel()
		if stopped {
			return
		}
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Error("server did not stop")
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", cfg.Listen.HTTP)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("server.Run: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the HTTP listener did not come up")
		}
		time.Sleep(20 * time.Millisecond)
	}

	chain, err := handshake(pop3s, acmeHost, acmeHost, ca.Roots)
	if err != nil {
		t.Fatalf("POP3S handshake: %v", err)
	}
	if !slices.Contains(chain[0].DNSNames, acmeHost) {
		t.Fatalf("certificate for %v", chain[0].DNSNames)
	}
	if _, err := handshake(pop3s, "", acmeHost, ca.Roots); err != nil {
		t.Fatalf("POP3S handshake without SNI: %v", err)
	}
	if m, err := filepath.Glob(filepath.Join(cfg.DataDir, "acme", acmeHost)); err != nil || len(m) != 1 {
		t.Errorf("certificate not cached in data_dir/acme: %v %v", m, err)
	}

	cancel()
	select {
	case err := <-done:
		stopped = true
		if err != nil {
			t.Fatalf("server.Run: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("server did not stop")
	}
	if c, err := net.Dial("tcp", cfg.Listen.HTTP); err == nil {
		c.Close()
		t.Error("the HTTP listener still accepts after shutdown")
	}
}
