package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"yubin/internal/config"
	"yubin/internal/dist"
)

const serviceSynopsis = "yubin service install [--config FILE] [--data DIR] [--root DIR]"

const serviceHelp = `Usage: ` + serviceSynopsis + `

Installs Yubin as a hardened systemd service (internal/dist/systemd/yubin.service);
run it as root. Safe to run again: what is in place is kept, what is missing
is made, ownership and modes are set again. It
  - creates the system user and group yubin (useradd) unless they exist;
  - makes /etc/yubin (root:yubin 0750) and /var/lib/yubin, the data dir
    (yubin:yubin 0700), and gives everything in the data dir to yubin (what
    root made there, e.g. with yubin quickstart, the service could not open);
  - writes /etc/yubin/yubin.toml from "yubin config example" (data_dir
    /var/lib/yubin) unless it exists, and makes it root:yubin 0640;
  - copies this binary to /usr/local/bin/yubin and the unit to
    /etc/systemd/system/yubin.service, and runs systemctl daemon-reload.
It neither enables nor starts the service: it prints how.

  --config FILE  the config the service runs with (default /etc/yubin/yubin.toml);
                 its directory is made root:yubin 0750 if it is new
  --data DIR     the data dir (default /var/lib/yubin): absent, empty, or
                 holding a store (yubin.db); the unit's ReadWritePaths
  --root DIR     install under DIR instead of / (an image being built): the
                 user is made with useradd --root DIR, systemctl is not run
Paths are absolute, and not where the unit's sandbox hides them (/home,
/root, /run/user: ProtectHome; /tmp, /var/tmp: PrivateTmp).
`

func cmdService(e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprintf(e.stderr, "usage: %s\n", serviceSynopsis)
		return 2
	}
	switch args[0] {
	case "install":
	case "help", "-h", "-help", "--help":
		fmt.Fprint(e.stdout, serviceHelp)
		return 0
	default:
		fmt.Fprintf(e.stderr, "yubin: unknown service command %q\nusage: %s\n", args[0], serviceSynopsis)
		return 2
	}
	fset := flag.NewFlagSet("service install", flag.ContinueOnError)
	var c common
	c.register(fset, false)
	root := fset.String("root", "/", "install under `DIR` instead of /")
	pos, err := parseArgs(fset, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(e.stdout, serviceHelp)
		return 0
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "yubin: %v\nusage: %s\n", err, serviceSynopsis)
		return 2
	}
	if len(pos) > 0 {
		fmt.Fprintf(e.stderr, "yubin: unexpected argument %q\nusage: %s\n", pos[0], serviceSynopsis)
		return 2
	}
	in := &installer{e: e, configPath: dist.ConfigPath, dataDir: dist.DataDir}
	if c.configPath != "" {
		in.configPath = filepath.Clean(c.configPath)
	}
	if c.dataDir != "" {
		in.dataDir = filepath.Clean(c.dataDir)
	}
	for _, p := range []struct{ flag, path string }{{"--config", in.configPath}, {"--data", in.dataDir}} {
		if err := servicePath(p.path); err != nil {
			return fail(e, "service install: %s %s: %v", p.flag, p.path, err)
		}
	}
	if in.dataDir == "/" || in.configPath == in.dataDir || strings.HasPrefix(in.configPath, in.dataDir+"/") {
		return fail(e, "service install: the config %s must be outside the data dir %s (the service may write there)", in.configPath, in.dataDir)
	}
	if os.Geteuid() != 0 {
		return fail(e, "service install: run it as root (sudo yubin service install): it creates a user and writes to /etc, /usr/local and /var/lib")
	}
	r, err := filepath.Abs(*root)
	if err != nil {
		return fail(e, "%v", err)
	}
	if st, err := os.Stat(r); err != nil || !st.IsDir() {
		return fail(e, "service install: --root %s: not a directory", *root)
	}
	in.root = r
	if err := in.run(); err != nil {
		table(e.stdout, in.rows)
		return fail(e, "service install: %v", err)
	}
	table(e.stdout, in.rows)
	fmt.Fprintf(e.stdout, `
Next:
  edit %[1]s (hostname, TLS), or make it with
      yubin quickstart ADDRESS --config %[1]s --data %[2]s
  and then run yubin service install again; then
      systemctl enable --now yubin
      systemctl status yubin            # "serving: smtp ...", the listeners
  Admin commands take the same flags, before or after the command words:
      yubin --config %[1]s --data %[2]s domain list
`, in.configPath, in.dataDir)
	return 0
}

type installer struct {
	root                string
	configPath, dataDir string // as the service sees them (without root)
	e                   *env
	rows                [][]string
	uid, gid            int
}

// servicePath checks a path for the unit: absolute, plain (no quoting
// needed in ExecStart), and visible in the unit's sandbox.
func servicePath(p string) error {
	if !filepath.IsAbs(p) {
		return errors.New("not an absolute path")
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._+-@", r)) {
			return fmt.Errorf("%q in the path: only letters, digits and / . _ + - @", r)
		}
	}
	for _, hidden := range []struct{ dir, why string }{
		{"/home", "ProtectHome"}, {"/root", "ProtectHome"}, {"/run/user", "ProtectHome"},
		{"/tmp", "PrivateTmp"}, {"/var/tmp", "PrivateTmp"},
	} {
		if p == hidden.dir || strings.HasPrefix(p, hidden.dir+"/") {
			return fmt.Errorf("the service does not see %s (%s in the unit)", hidden.dir, hidden.why)
		}
	}
	return nil
}

// unit is the unit with the config and data dir in place of the defaults.
func (in *installer) unit() string {
	u := strings.ReplaceAll(dist.SystemdUnit, " --config "+dist.ConfigPath+" --data "+dist.DataDir+"\n", " --config "+in.configPath+" --data "+in.dataDir+"\n")
	return strings.ReplaceAll(u, "\nReadWritePaths="+dist.DataDir+"\n", "\nReadWritePaths="+in.dataDir+"\n")
}

func (in *installer) path(p string) string { return filepath.Join(in.root, p) }

func (in *installer) step(what, which, outcome string) {
	in.rows = append(in.rows, []string{"  " + what, which, outcome})
}

func (in *installer) run() error {
	if err := in.user(); err != nil {
		return err
	}
	if err := in.checkDataDir(); err != nil {
		return err
	}
	// /etc/yubin: root:yubin 0750 (the config may name secrets). Another
	// directory that exists is left as it is.
	cdir := filepath.Dir(in.configPath)
	if _, err := os.Stat(in.path(cdir)); cdir == dist.ConfigDir || errors.Is(err, fs.ErrNotExist) {
		if err := in.dir(cdir, 0, in.gid, 0o750); err != nil {
			return err
		}
	}
	if err := in.dir(in.dataDir, in.uid, in.gid, 0o700); err != nil {
		return err
	}
	if err := in.dataOwner(); err != nil {
		return err
	}
	if err := in.config(); err != nil {
		return err
	}
	if err := in.binary(); err != nil {
		return err
	}
	changed, err := in.file(dist.UnitPath, []byte(in.unit()), 0o644)
	if err != nil {
		return err
	}
	in.step("unit", dist.UnitPath, changed)
	return in.daemonReload()
}

// user creates the system user and group unless the user exists.
func (in *installer) user() error {
	passwd := in.path("/etc/passwd")
	b, err := os.ReadFile(passwd)
	if err != nil {
		return err
	}
	outcome := "exists"
	uid, gid, ok := lookupPasswd(b, dist.User)
	if !ok {
		args := []string{"--system", "--user-group", "--home-dir", in.dataDir, "--no-create-home",
			"--shell", "/usr/sbin/nologin", "--comment", "Yubin mail server"}
		if in.root != "/" {
			args = append(args, "--root", in.root)
		}
		out, err := exec.Command("useradd", append(args, dist.User)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("useradd: %v: %s", err, strings.TrimSpace(string(out)))
		}
		if b, err = os.ReadFile(passwd); err != nil {
			return err
		}
		if uid, gid, ok = lookupPasswd(b, dist.User); !ok {
			return fmt.Errorf("useradd made no user %s in %s", dist.User, passwd)
		}
		outcome = "created"
	}
	in.uid, in.gid = uid, gid
	in.step("user", fmt.Sprintf("%s (uid %d, gid %d)", dist.User, uid, gid), outcome)
	return nil
}

// dir makes p with its owner and mode, or sets them again.
func (in *installer) dir(p string, uid, gid int, mode fs.FileMode) error {
	full := in.path(p)
	outcome := "exists"
	if _, err := os.Stat(full); errors.Is(err, fs.ErrNotExist) {
		outcome = "created"
	}
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(full, mode); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if err := os.Chown(full, uid, gid); err != nil {
		return err
	}
	if err := os.Chmod(full, mode); err != nil {
		return err
	}
	in.step("directory", p, fmt.Sprintf("%s (%s, %04o)", outcome, in.owner(uid, gid), mode))
	return nil
}

func (in *installer) owner(uid, gid int) string {
	u, g := strconv.Itoa(uid), strconv.Itoa(gid)
	if uid == 0 {
		u = "root"
	} else if uid == in.uid {
		u = dist.User
	}
	if gid == 0 {
		g = "root"
	} else if gid == in.gid {
		g = dist.User
	}
	return u + ":" + g
}

// checkDataDir refuses a data dir that holds something else than a store:
// everything in it is given to the user.
func (in *installer) checkDataDir() error {
	full := in.path(in.dataDir)
	st, err := os.Stat(full)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("--data %s is not a directory", in.dataDir)
	}
	if uid, _, ok := fileOwner(st); ok && uid == in.uid && uid != 0 {
		return nil
	}
	ents, err := os.ReadDir(full)
	if err != nil {
		return err
	}
	if len(ents) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(full, "yubin.db")); err == nil {
		return nil
	}
	return fmt.Errorf("--data %s holds files but no store (yubin.db), and is not %s's: not giving it to %s", in.dataDir, dist.User, dist.User)
}

// dataOwner gives everything in the data dir to the user.
func (in *installer) dataOwner() error {
	n := 0
	err := filepath.WalkDir(in.path(in.dataDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if uid, gid, ok := fileOwner(info); ok && (uid != in.uid || gid != in.gid) {
			if err := os.Lchown(p, in.uid, in.gid); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n > 0 {
		in.step("data", in.dataDir, fmt.Sprintf("%d file(s) given to %s", n, dist.User))
	}
	return nil
}

// config writes the example config (data_dir set) unless there is one,
// and lets the group read it.
func (in *installer) config() error {
	full := in.path(in.configPath)
	outcome := "exists, kept"
	if _, err := os.Stat(full); errors.Is(err, fs.ErrNotExist) {
		text, err := setKey(config.Example, "", "data_dir", tomlString(in.dataDir))
		if err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(text), 0o640); err != nil {
			return err
		}
		outcome = "created from yubin config example: edit hostname and TLS"
	} else if err != nil {
		return err
	}
	if err := os.Chown(full, 0, in.gid); err != nil {
		return err
	}
	if err := os.Chmod(full, 0o640); err != nil {
		return err
	}
	in.step("config", in.configPath, outcome+" ("+in.owner(0, in.gid)+", 0640)")
	return nil
}

// binary copies the running binary into place.
func (in *installer) binary() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if self, err = filepath.EvalSymlinks(self); err != nil {
		return err
	}
	full := in.path(dist.BinPath)
	if a, err := os.Stat(self); err == nil {
		if b, err := os.Stat(full); err == nil && os.SameFile(a, b) {
			in.step("binary", dist.BinPath, "this binary, unchanged")
			return nil
		}
	}
	b, err := os.ReadFile(self)
	if err != nil {
		return err
	}
	outcome, err := in.file(dist.BinPath, b, 0o755)
	if err != nil {
		return err
	}
	in.step("binary", dist.BinPath, outcome)
	return nil
}

// file writes content to p (root-owned, mode) unless it holds it already;
// through a temporary file and a rename, so that a running binary is not
// written over.
func (in *installer) file(p string, content []byte, mode fs.FileMode) (string, error) {
	full := in.path(p)
	old, err := os.ReadFile(full)
	outcome := "installed"
	switch {
	case err == nil && bytes.Equal(old, content):
		if err := os.Chmod(full, mode); err != nil {
			return "", err
		}
		return "unchanged", os.Chown(full, 0, 0)
	case err == nil:
		outcome = "updated"
	case !errors.Is(err, fs.ErrNotExist):
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return "", err
	}
	tmp := full + ".yubin-new"
	if err := os.WriteFile(tmp, content, mode); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		os.Remove(tmp)
		return "", err
	}
	if err := os.Rename(tmp, full); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return outcome, os.Chown(full, 0, 0)
}

// daemonReload tells systemd about the unit, when it runs this machine.
func (in *installer) daemonReload() error {
	if in.root != "/" {
		in.step("systemd", "systemctl daemon-reload", "not run (--root)")
		return nil
	}
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		in.step("systemd", "systemctl daemon-reload", "not run: systemd does not run this machine")
		return nil
	}
	out, err := exec.Command("systemctl", "daemon-reload").CombinedOutput()
	if err != nil {
		return fmt.Errorf("systemctl daemon-reload: %v: %s", err, strings.TrimSpace(string(out)))
	}
	in.step("systemd", "systemctl daemon-reload", "done")
	return nil
}

// lookupPasswd finds a user in the text of /etc/passwd
// (name:password:uid:gid:gecos:home:shell, one a line).
func lookupPasswd(passwd []byte, name string) (uid, gid int, ok bool) {
	for line := range strings.SplitSeq(string(passwd), "\n") {
		f := strings.Split(strings.TrimSuffix(line, "\r"), ":")
		if len(f) < 4 || f[0] != name {
			continue
		}
		u, err1 := strconv.Atoi(f[2])
		g, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || u < 0 || g < 0 {
			continue
		}
		return u, g, true
	}
	return 0, 0, false
}

// fileOwner is the owner of a file (Linux, Unix).
func fileOwner(info fs.FileInfo) (uid, gid int, ok bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}
