package tlsutil

import (
	"bytes"
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
)

// A Pair serves the files as they were at the last good Reload.
func TestPairReload(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if _, err := SelfSigned(a, "a.example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := SelfSigned(b, "b.example.com"); err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	use := func(from string) {
		for _, f := range []string{"cert.pem", "key.pem"} {
			data, err := os.ReadFile(filepath.Join(from, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, f), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	served := func(p *Pair) string {
		c, err := p.TLSConfig().GetCertificate(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c.Certificate[0], p.Certificate().Certificate[0]) {
			t.Fatal("Certificate() is not what is served")
		}
		// What monitoring reports (metrics, yubin status) is what is served.
		if cs := p.Certificates(SourceConfigured)(t.Context()); len(cs) != 1 || cs[0].Name != c.Leaf.DNSNames[0] || !cs[0].NotAfter.Equal(c.Leaf.NotAfter) {
			t.Fatalf("Certificates() = %+v, serving %v until %v", cs, c.Leaf.DNSNames, c.Leaf.NotAfter)
		}
		return c.Leaf.Subject.CommonName
	}
	use(a)
	p, err := LoadPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	if got := served(p); got != "a.example.com" {
		t.Fatalf("serving %s", got)
	}
	use(b)
	if got := served(p); got != "a.example.com" {
		t.Fatalf("changed before Reload: %s", got)
	}
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := served(p); got != "b.example.com" {
		t.Fatalf("after Reload: %s", got)
	}
	// A certificate with another's key, then no file: errors, b stays.
	data, _ := os.ReadFile(filepath.Join(a, "key.pem"))
	os.WriteFile(key, data, 0o600)
	if err := p.Reload(); err == nil {
		t.Error("mismatched key: no error")
	}
	os.Remove(cert)
	if err := p.Reload(); err == nil {
		t.Error("missing certificate: no error")
	}
	if got := served(p); got != "b.example.com" {
		t.Fatalf("after failed reloads: %s", got)
	}
	if _, err := LoadPair(cert, key); err == nil {
		t.Error("LoadPair of a missing file: no error")
	}
}
