package main

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"yubin/internal/config"
	"yubin/internal/testutil"
)

// fakeLookup makes every host name resolve to ip (nil: not at all).
func fakeLookup(t *testing.T, ip net.IP) {
	old := lookupIPAddr
	lookupIPAddr = func(ctx context.Context, host string) ([]net.IPAddr, error) {
		if ip == nil {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		return []net.IPAddr{{IP: ip}}, nil
	}
	t.Cleanup(func() { lookupIPAddr = old })
}

// The host name resolves to this machine: the config gets ACME.
func TestQuickstartACME(t *testing.T) {
	fakeLookup(t, net.IPv4(127, 0, 0, 1)) // an address of the loopback interface
	if w, err := hostWhere("mail.example.test"); w != hostHere {
		t.Skipf("127.0.0.1 is not an interface address here (%d, %v)", w, err)
	}
	dir := filepath.Join(testutil.ShortDir(t), "data")
	args := []string{"quickstart", "admin@example.test", "--hostname", "mail.example.test", "--ipv4", "203.0.113.7", "--ipv6", "none"}
	out := mustCLI(t, dir, "", args...)
	for _, want := range []string{
		"tls.acme set (mail.example.test resolves to this machine)",
		"TLS certificate: ACME (tls.acme = true), from " + config.DefaultACMEDirectory,
		`(listen.http = "0.0.0.0:80") open to the Internet`,
		filepath.Join(dir, "acme"),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "self-signed") {
		t.Errorf("output mentions a self-signed certificate:\n%s", out)
	}
	cfg, err := config.Load(filepath.Join(dir, "yubin.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.TLS.ACME || cfg.Listen.HTTP != "0.0.0.0:80" || cfg.TLS.ACMEEmail != "admin@example.test" || cfg.TLS.Cert != "" {
		t.Errorf("config: %+v %+v", cfg.TLS, cfg.Listen)
	}
	if _, err := os.Stat(filepath.Join(dir, "tls", "cert.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a self-signed certificate was made too: %v", err)
	}

	// Again: kept.
	out2 := mustCLI(t, dir, "", args...)
	if !strings.Contains(out2, "ACME for mail.example.test") || !strings.Contains(out2, "configured (tls.acme), kept") {
		t.Errorf("second run:\n%s", out2)
	}
}

// The host name resolves elsewhere, or not at all: self-signed, and the
// advice says how to switch to ACME.
func TestQuickstartSelfSignedAdvice(t *testing.T) {
	for name, ip := range map[string]net.IP{"elsewhere": net.ParseIP("192.0.2.1"), "unresolved": nil} {
		t.Run(name, func(t *testing.T) {
			fakeLookup(t, ip)
			dir := filepath.Join(testutil.ShortDir(t), "data")
			out := mustCLI(t, dir, "", "quickstart", "admin@example.test", "--ipv4", "none", "--ipv6", "none")
			for _, want := range []string{"created (self-signed for mail.example.test)", "set tls.acme = true and listen.http = \"0.0.0.0:80\""} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			cfg, err := config.Load(filepath.Join(dir, "yubin.toml"))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.TLS.ACME || !config.Off(cfg.Listen.HTTP) {
				t.Errorf("config: %+v %+v", cfg.TLS, cfg.Listen)
			}
		})
	}
}
