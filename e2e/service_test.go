package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"yubin/internal/config"
	"yubin/internal/dist"
	"yubin/internal/testutil"
)

// TestServiceInstall runs "yubin service install --root DIR" twice into a
// root dir with its own /etc/passwd (useradd --root makes the user there):
// the user, the dirs, the config, the binary and the unit are in place
// with their owners and modes; the second run keeps what is there, makes
// nothing twice, and gives the data dir back to the user.
func TestServiceInstall(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP: service install creates a user and sets owners: needs root")
	}
	testutil.NeedCommand(t, "useradd")
	root := fakeRoot(t)
	at := func(p string) string { return filepath.Join(root, p) }

	out := mustCLI(t, "", "service", "install", "--root", root)
	for _, want := range []string{
		`user +yubin \(uid \d+, gid \d+\) +created`,
		`directory +/etc/yubin +created \(root:yubin, 0750\)`,
		`directory +/var/lib/yubin +created \(yubin:yubin, 0700\)`,
		`config +/etc/yubin/yubin.toml +created from yubin config example`,
		`binary +/usr/local/bin/yubin +installed`,
		`unit +/etc/systemd/system/yubin.service +installed`,
		`systemctl daemon-reload +not run \(--root\)`,
		`systemctl enable --now yubin`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("first install: no %q in\n%s", want, out)
		}
	}
	passwd, _ := os.ReadFile(at("/etc/passwd"))
	m := regexp.MustCompile(`(?m)^yubin:x:(\d+):(\d+):[^:]*:/var/lib/yubin:/usr/sbin/nologin$`).FindStringSubmatch(string(passwd))
	if m == nil {
		t.Fatalf("no system user yubin in /etc/passwd:\n%s", passwd)
	}
	uid, gid := atoi(t, m[1]), atoi(t, m[2])
	check := func(p string, mode os.FileMode, u, g int) {
		t.Helper()
		st, err := os.Lstat(at(p))
		if err != nil {
			t.Fatal(err)
		}
		s := st.Sys().(*syscall.Stat_t)
		if st.Mode().Perm() != mode || int(s.Uid) != u || int(s.Gid) != g {
			t.Errorf("%s: mode %04o owner %d:%d, want %04o %d:%d", p, st.Mode().Perm(), s.Uid, s.Gid, mode, u, g)
		}
	}
	check("/etc/yubin", 0o750, 0, gid)
	check("/etc/yubin/yubin.toml", 0o640, 0, gid)
	check("/var/lib/yubin", 0o700, uid, gid)
	check("/var/lib", 0o755, 0, 0)
	check("/usr/local/bin/yubin", 0o755, 0, 0)
	check("/etc/systemd/system/yubin.service", 0o644, 0, 0)
	if unit, _ := os.ReadFile(at(dist.UnitPath)); string(unit) != dist.SystemdUnit {
		t.Error("the unit installed is not internal/dist/systemd/yubin.service")
	}
	self, _ := os.ReadFile(yubinBin)
	if bin, _ := os.ReadFile(at(dist.BinPath)); !bytes.Equal(bin, self) {
		t.Error("the binary installed is not the one run")
	}
	c, err := config.Load(at(dist.ConfigPath))
	if err != nil || c.DataDir != dist.DataDir {
		t.Errorf("the config written: data_dir %q, %v", c.DataDir, err)
	}

	// As root made them (yubin quickstart run with sudo): a file in the
	// data dir, and an edited config.
	if err := os.MkdirAll(at("/var/lib/yubin/tls"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(at("/var/lib/yubin/tls/key.pem"), []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	edited := []byte("hostname = \"mail.example.com\"\n")
	if err := os.WriteFile(at(dist.ConfigPath), edited, 0o600); err != nil {
		t.Fatal(err)
	}
	out = mustCLI(t, "", "service", "install", "--root", root)
	for _, want := range []string{
		`user +yubin \(uid \d+, gid \d+\) +exists`,
		`directory +/etc/yubin +exists`,
		`data +/var/lib/yubin +2 file\(s\) given to yubin`,
		`config +/etc/yubin/yubin.toml +exists, kept`,
		`binary +/usr/local/bin/yubin +unchanged`,
		`unit +/etc/systemd/system/yubin.service +unchanged`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("second install: no %q in\n%s", want, out)
		}
	}
	passwd2, _ := os.ReadFile(at("/etc/passwd"))
	if !bytes.Equal(passwd, passwd2) {
		t.Errorf("the second run changed /etc/passwd:\n%s", passwd2)
	}
	if b, _ := os.ReadFile(at(dist.ConfigPath)); !bytes.Equal(b, edited) {
		t.Error("the second run wrote over the config")
	}
	check("/etc/yubin/yubin.toml", 0o640, 0, gid)
	check("/var/lib/yubin/tls", 0o700, uid, gid)
	check("/var/lib/yubin/tls/key.pem", 0o600, uid, gid)

	// Not as root: refused (the binary copied where nobody may run it).
	pub := testutil.ShortDir(t)
	if err := os.Chmod(pub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pub, "yubin"), self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(pub, "yubin"), "service", "install", "--root", pub)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Run(); err == nil || !strings.Contains(errb.String(), "run it as root") {
		t.Errorf("as nobody: %v %q", err, errb.String())
	}
	if _, errs, code := cli(t, "", "service", "instal"); code != 2 || !strings.Contains(errs, `unknown service command "instal"`) {
		t.Errorf("service instal: exit %d %q", code, errs)
	}

	// Another config and data dir: the unit runs with them. A data dir
	// holding something else than a store is not given to yubin.
	root2 := fakeRoot(t)
	if err := os.MkdirAll(filepath.Join(root2, "srv/other"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root2, "srv/other/index.html"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--data", "/srv/other"}, "--data /srv/other holds files but no store (yubin.db), and is not yubin's: not giving it to yubin"},
		{[]string{"--data", "/tmp/mail"}, "--data /tmp/mail: the service does not see /tmp (PrivateTmp in the unit)"},
		{[]string{"--config", "/home/me/yubin.toml"}, "--config /home/me/yubin.toml: the service does not see /home (ProtectHome in the unit)"},
		{[]string{"--data", "srv/mail"}, "--data srv/mail: not an absolute path"},
		{[]string{"--config", "/srv/mail/yubin.toml", "--data", "/srv/mail"}, "the config /srv/mail/yubin.toml must be outside the data dir /srv/mail"},
	} {
		_, errs, code := cli(t, "", append([]string{"service", "install", "--root", root2}, c.args...)...)
		if code != 1 || !strings.Contains(errs, c.want) {
			t.Errorf("service install %v: exit %d %q, want 1 and %q", c.args, code, errs, c.want)
		}
	}
	if st, _ := os.Stat(filepath.Join(root2, "srv/other")); st.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Error("the refused data dir was given away")
	}
	out = mustCLI(t, "", "--config", "/etc/mail/yubin.toml", "service", "install", "--root", root2, "--data", "/srv/mail")
	if !regexp.MustCompile(`directory +/srv/mail +created \(yubin:yubin, 0700\)`).MatchString(out) {
		t.Errorf("custom paths:\n%s", out)
	}
	unit, _ := os.ReadFile(filepath.Join(root2, dist.UnitPath))
	want := strings.NewReplacer(
		"--config /etc/yubin/yubin.toml --data /var/lib/yubin\n", "--config /etc/mail/yubin.toml --data /srv/mail\n",
		"ReadWritePaths=/var/lib/yubin\n", "ReadWritePaths=/srv/mail\n").Replace(dist.SystemdUnit)
	if string(unit) != want || !strings.Contains(want, "ReadWritePaths=/srv/mail\n") {
		t.Errorf("the unit for /etc/mail/yubin.toml and /srv/mail:\n%s", unit)
	}
	if c, err := config.Load(filepath.Join(root2, "/etc/mail/yubin.toml")); err != nil || c.DataDir != "/srv/mail" {
		t.Errorf("the config written: data_dir %q, %v", c.DataDir, err)
	}
}

// fakeRoot is a root dir with the files useradd --root needs.
func fakeRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{
		"passwd": "root:x:0:0:root:/root:/bin/sh\n", "group": "root:x:0:\n",
		"shadow": "root:*:19000:0:99999:7:::\n", "gshadow": "root:*::\n",
	} {
		if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}
