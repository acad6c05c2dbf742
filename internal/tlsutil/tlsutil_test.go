package tlsutil

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSelfSignedKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	c1, err := SelfSigned(dir, "mail.example.com")
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "key.pem"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	c2, err := SelfSigned(dir, "other")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c1.Certificates[0].Certificate[0], c2.Certificates[0].Certificate[0]) {
		t.Fatal("certificate regenerated instead of kept")
	}
}

// The expiry reported for a configured or self-signed pair is the one
// served, and the file says the same.
func TestCertExpiry(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	p, err := SelfSignedPair(dir, "mail.example.com")
	if err != nil {
		t.Fatal(err)
	}
	cs := p.Certificates(SourceSelfSigned)(t.Context())
	if len(cs) != 1 || cs[0].Name != "mail.example.com" || cs[0].Source != SourceSelfSigned {
		t.Fatalf("Certificates = %+v", cs)
	}
	if left := time.Until(cs[0].NotAfter); left < 9*365*24*time.Hour || left > 10*366*24*time.Hour {
		t.Errorf("self-signed certificate valid for %v more, want about 10 years", left)
	}
	fc, err := FileCert(SelfSignedCert(dir), SourceSelfSigned)
	if err != nil || fc != cs[0] {
		t.Errorf("FileCert = %+v, %v; want %+v", fc, err, cs[0])
	}
	if _, err := FileCert(SelfSignedKey(dir), SourceSelfSigned); err == nil {
		t.Error("FileCert found a certificate in the key file")
	}
}
