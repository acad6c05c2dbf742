package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A smart host password file every user can read: the server starts, with
// a warning naming the file and its mode, and "yubin config check" reports
// it (exit status 0); once fixed, neither says anything.
func TestExposedPasswordFileWarned(t *testing.T) {
	data, cfg := newDataDir(t)
	pw := filepath.Join(data, "relay-password")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(pw, 0o644) // whatever the umask
	appendConfig(t, cfg, "[outbound]\nsmart_host = \"127.0.0.1:1\"\nsmart_host_user = \"relay\"\nsmart_host_password_file = \""+pw+"\"\n")
	flags := []string{"--config", cfg, "--data", data}

	out := mustCLI(t, "", append([]string{"config", "check"}, flags...)...)
	want := "warning: outbound.smart_host_password_file " + pw + " is open to every user on this machine (mode 0644): chmod o-rwx " + pw + "\n"
	if !strings.HasPrefix(out, want) || !strings.HasSuffix(out, "ok, with 1 warning\n") {
		t.Fatalf("config check:\n%s", out)
	}
	srv := startServer(t, data, cfg)
	line := `level=WARN msg="a file holding a secret is open to every user on this machine" what=outbound.smart_host_password_file file=` + pw + " mode=0644"
	if !strings.Contains(srv.log.String(), line) {
		t.Fatalf("no warning %q in the log:\n%s", line, srv.log.String())
	}
	srv.stop(t)

	if err := os.Chmod(pw, 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mustCLI(t, "", append([]string{"config", "check"}, flags...)...); out != "config "+cfg+": ok\n" {
		t.Fatalf("config check after chmod:\n%s", out)
	}
	srv = startServer(t, data, cfg)
	if strings.Contains(srv.log.String(), "open to every user") {
		t.Fatalf("warned after chmod:\n%s", srv.log.String())
	}
	srv.stop(t)

	// A password file that cannot be read stops the server; config check says so.
	os.Remove(pw)
	if _, errs, code := cli(t, "", append([]string{"config", "check"}, flags...)...); code != 1 || !strings.Contains(errs, "outbound.smart_host_password_file: open "+pw) {
		t.Fatalf("config check without the password file: exit %d, %s", code, errs)
	}
}
