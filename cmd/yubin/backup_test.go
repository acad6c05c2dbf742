package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"yubin/admin"
)

// The backup and restore commands on a stopped store, in-process: what
// they print, --json, and their refusals (e2e/backup_test.go runs them
// against a running server under load).
func TestBackupRestoreCommands(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	mustCLI(t, data, "", "domain", "add", "example.com")
	mustCLI(t, data, "pw\n", "account", "add", "info@example.com", "--password-stdin")
	file := filepath.Join(dir, "b.ybk")

	out := mustCLI(t, data, "", "backup", file)
	if !strings.HasPrefix(out, "backup of "+data+" written to "+file+": ") || !strings.Contains(out, "1 domain, 1 account, 0 messages") {
		t.Errorf("backup says %q", out)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file: %v %v", fi, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".b.ybk.tmp-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	// --json
	var res admin.BackupResult
	if err := json.Unmarshal([]byte(mustCLI(t, data, "", "backup", file, "--json")), &res); err != nil || res.Trailer.Accounts != 1 || res.FileSize == 0 {
		t.Errorf("backup --json: %+v %v", res, err)
	}

	restored := filepath.Join(dir, "restored")
	var rr admin.RestoreResult
	out = mustCLI(t, restored, "", "restore", file, "--json")
	if err := json.Unmarshal([]byte(out), &rr); err != nil || !rr.Installed || rr.Found.Accounts != 1 {
		t.Errorf("restore --json: %+v %v", rr, err)
	}
	if out := mustCLI(t, restored, "", "account", "list"); !strings.Contains(out, "info@example.com") {
		t.Errorf("the restored store lists %q", out)
	}

	// Backup to stdout, restore from stdin.
	var stdout, stderr bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}
	if code := run(e, []string{"backup", "-", "--data", data}); code != 0 || !strings.Contains(stderr.String(), "written to standard output") {
		t.Fatalf("backup -: exit %d, %s", code, stderr.String())
	}
	fromStdin := filepath.Join(dir, "from-stdin")
	e = &env{stdin: bytes.NewReader(stdout.Bytes()), stdout: &bytes.Buffer{}, stderr: &stderr}
	if code := run(e, []string{"restore", "-", "--data", fromStdin}); code != 0 {
		t.Fatalf("restore -: exit %d, %s", code, stderr.String())
	}

	for _, c := range []struct {
		name     string
		dir      string
		args     []string
		terminal bool
		code     int
		msg      string
	}{
		{"backup without a file", data, []string{"backup"}, false, 2, "usage: yubin backup FILE|-"},
		{"backup of no store", filepath.Join(dir, "none"), []string{"backup", file}, false, 1, "has no store"},
		{"backup to a terminal", data, []string{"backup", "-"}, true, 1, "refusing to write a backup to a terminal"},
		{"backup into a directory", data, []string{"backup", dir}, false, 1, "is a directory"},
		{"restore over a store", data, []string{"restore", file}, false, 1, "already has a store"},
		{"restore from a terminal", filepath.Join(dir, "t"), []string{"restore", "-"}, true, 1, "refusing to read a backup from a terminal"},
		{"restore of no file", filepath.Join(dir, "t"), []string{"restore", filepath.Join(dir, "nope.ybk")}, false, 1, "no such file"},
		{"restore of a non-backup", filepath.Join(dir, "t"), []string{"restore", filepath.Join(data, "yubin.db")}, false, 1, "not a yubin backup"},
	} {
		var out, errb bytes.Buffer
		e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, stdinIsTerminal: c.terminal, stdoutIsTerminal: c.terminal}
		code := run(e, append(c.args, "--data", c.dir))
		if code != c.code || !strings.Contains(errb.String(), c.msg) {
			t.Errorf("%s: exit %d, %q", c.name, code, errb.String())
		}
		if code == 1 && strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("%s: more than one line: %q", c.name, errb.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "none")); !os.IsNotExist(err) {
		t.Errorf("backup of no store made a data dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "t")); !os.IsNotExist(err) {
		t.Errorf("a refused restore made a data dir: %v", err)
	}
}
