package tlsutil

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
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
