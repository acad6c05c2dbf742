package dist

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// The unit has the settings the service relies on, and agrees with the
// paths "yubin service install" uses.
func TestUnitSettings(t *testing.T) {
	for _, line := range []string{
		"Type=notify",
		"User=" + User,
		"Group=" + User,
		"ExecStart=" + BinPath + " serve --config " + ConfigPath + " --data " + DataDir,
		"ExecReload=/bin/kill -HUP $MAINPID",
		"AmbientCapabilities=CAP_NET_BIND_SERVICE",
		"CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
		"NoNewPrivileges=yes",
		"ProtectSystem=strict",
		"ProtectHome=yes",
		"PrivateTmp=yes",
		"ReadWritePaths=" + DataDir,
		"WantedBy=multi-user.target",
	} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(line) + `$`).MatchString(SystemdUnit) {
			t.Errorf("the unit has no line %q", line)
		}
	}
	// No other capability anywhere.
	for _, m := range regexp.MustCompile(`(?m)^(\w*Capabilit\w*)=(.*)$`).FindAllStringSubmatch(SystemdUnit, -1) {
		if m[2] != "CAP_NET_BIND_SERVICE" {
			t.Errorf("%s=%s: only CAP_NET_BIND_SERVICE", m[1], m[2])
		}
	}
}

// systemd-analyze verify finds nothing to say about the unit (in a root
// dir holding it, an executable in place of the binary, /bin/kill and
// systemd's own units), and its exposure stays low.
func TestUnitVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd): the unit is not verified")
	}
	root := t.TempDir()
	units := "/usr/lib/systemd/system"
	if _, err := os.Stat(filepath.Join(units, "multi-user.target")); err != nil {
		t.Skipf("no systemd units in %s to verify against: %v", units, err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, self, filepath.Join(root, BinPath), 0o755)
	copyFile(t, "/bin/kill", filepath.Join(root, "bin/kill"), 0o755)
	ents, err := os.ReadDir(units)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Type().IsRegular() {
			copyFile(t, filepath.Join(units, e.Name()), filepath.Join(root, units, e.Name()), 0o644)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, filepath.Dir(UnitPath)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, UnitPath), []byte(SystemdUnit), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sa, "verify", "--root="+root, "yubin.service")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || out.Len() > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out.String())
	}

	out.Reset()
	cmd = exec.Command(sa, "security", "--offline=true", "--root="+root, "yubin.service")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Logf("systemd-analyze security (systemd 250 and later): %v\n%s", err, out.String())
		return
	}
	m := regexp.MustCompile(`Overall exposure level for yubin.service: ([0-9.]+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no exposure level:\n%s", out.String())
	}
	level, _ := strconv.ParseFloat(m[1], 64)
	t.Logf("systemd-analyze security: exposure %s (0 = locked down, 10 = not at all)", m[1])
	if level > 2.0 {
		t.Errorf("exposure %v, more than 2.0:\n%s", level, out.String())
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}
