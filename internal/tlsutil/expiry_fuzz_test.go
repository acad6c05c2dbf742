package tlsutil

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzCertFiles: whatever a certificate file or an ACME cache entry holds,
// reading its expiry never panics, and a certificate it finds is one the
// file's first CERTIFICATE block holds.
func FuzzCertFiles(f *testing.F) {
	dir := filepath.Join(f.TempDir(), "tls")
	if _, err := SelfSigned(dir, "mail.example.com"); err != nil {
		f.Fatal(err)
	}
	cert, _ := os.ReadFile(SelfSignedCert(dir))
	key, _ := os.ReadFile(SelfSignedKey(dir))
	f.Add(cert)
	f.Add(append(append([]byte{}, key...), cert...)) // autocert's cache: the key, then the chain
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := firstCert(data)
		if err == nil && c == nil {
			t.Fatal("no certificate and no error")
		}
		cache := t.TempDir()
		if err := os.WriteFile(filepath.Join(cache, "mail.example.com"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		got := ACMECached(cache, []string{"mail.example.com"})
		if (err == nil) != (len(got) == 1) {
			t.Fatalf("firstCert error %v, ACMECached %+v", err, got)
		}
		if err == nil && !got[0].NotAfter.Equal(c.NotAfter) {
			t.Fatalf("ACMECached %v, the certificate %v", got[0].NotAfter, c.NotAfter)
		}
	})
}
