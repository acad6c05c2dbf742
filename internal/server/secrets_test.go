package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"yubin/internal/config"
	"yubin/internal/testutil"
	"yubin/internal/testutil/tlstest"
	"yubin/internal/tlsutil"
)

// Files holding secrets that every user may read or write are reported
// with their mode; the owner's and the group's access are not (a key
// shared through a group is fine); files not made yet are skipped.
func TestExposedSecrets(t *testing.T) {
	dir := t.TempDir()
	cert := tlstest.SelfSigned(t, "mail.example.com").File
	key := tlsutil.SelfSignedKey(filepath.Dir(cert))
	pw := filepath.Join(dir, "relay-password")
	testutil.Must(t, os.WriteFile(pw, []byte("s3cret\n"), 0o600))
	cfg := config.Default()
	cfg.DataDir = filepath.Join(dir, "data") // no store yet
	cfg.TLS.Cert, cfg.TLS.Key = cert, key
	cfg.Outbound.SmartHostUser, cfg.Outbound.SmartHostPasswordFile = "relay", pw

	report := func() string {
		var s []string
		for _, x := range ExposedSecrets(cfg) {
			s = append(s, x.String())
		}
		return strings.Join(s, "\n")
	}
	if got := report(); got != "" {
		t.Fatalf("mode 0600 reported:\n%s", got)
	}
	testutil.Must(t, os.Chmod(key, 0o640))
	testutil.Must(t, os.Chmod(pw, 0o604))
	want := "outbound.smart_host_password_file " + pw + " is open to every user on this machine (mode 0604): chmod o-rwx " + pw
	if got := report(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	testutil.Must(t, os.Chmod(key, 0o644))
	testutil.Must(t, os.Chmod(pw, 0o602))
	if got := report(); !strings.Contains(got, "tls.key "+key+" is open to every user on this machine (mode 0644)") || !strings.Contains(got, "(mode 0602)") {
		t.Fatalf("got\n%s", got)
	}

	// Without a configured pair: the self-signed key in the data dir, and the store.
	cfg.TLS.Cert, cfg.TLS.Key = "", ""
	cfg.Outbound.SmartHostUser, cfg.Outbound.SmartHostPasswordFile = "", ""
	tlsDir := filepath.Join(cfg.DataDir, "tls")
	_, err := tlsutil.SelfSigned(tlsDir, "mail.example.com")
	testutil.Must(t, err)
	store := filepath.Join(cfg.DataDir, "yubin.db")
	testutil.Must(t, os.WriteFile(store, nil, 0o644))
	testutil.Must(t, os.Chmod(tlsutil.SelfSignedKey(tlsDir), 0o666))
	if got := report(); !strings.Contains(got, "the self-signed TLS key "+tlsutil.SelfSignedKey(tlsDir)+" is open to every user on this machine (mode 0666)") ||
		!strings.Contains(got, "the store "+store+" is open") {
		t.Fatalf("got\n%s", got)
	}
}

// CheckFiles finds what would stop the server: a key that does not load, a
// password file that cannot be read.
func TestCheckFiles(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	if errs := CheckFiles(cfg); len(errs) != 0 {
		t.Fatalf("defaults: %v", errs)
	}
	cfg.TLS.Cert, cfg.TLS.Key = filepath.Join(cfg.DataDir, "none.pem"), filepath.Join(cfg.DataDir, "none.key")
	cfg.Outbound.SmartHostPasswordFile = filepath.Join(cfg.DataDir, "no-password")
	errs := CheckFiles(cfg)
	if len(errs) != 2 || !strings.HasPrefix(errs[0].Error(), "tls.cert, tls.key: ") || !strings.HasPrefix(errs[1].Error(), "outbound.smart_host_password_file: ") {
		t.Fatalf("got %v", errs)
	}
}
