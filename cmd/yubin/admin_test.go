package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"yubin/admin"
	"yubin/internal/testutil"
	"yubin/internal/testutil/teststore"
	"yubin/store"
	"yubin/store/bolt"
)

type cliResult struct {
	out, err string
	code     int
}

// cli runs "yubin ARGS --data DIR" in-process with stdin.
func cli(t *testing.T, dir, stdin string, args ...string) cliResult {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}
	code := run(e, append(args, "--data", dir))
	return cliResult{out.String(), errb.String(), code}
}

func mustCLI(t *testing.T, dir, stdin string, args ...string) string {
	t.Helper()
	r := cli(t, dir, stdin, args...)
	if r.code != 0 {
		t.Fatalf("yubin %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r.out
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("output is not JSON (%v): %s", err, s)
	}
	return v
}

// state is everything the CLI can see, as JSON, for "nothing changed".
func state(t *testing.T, dir string) string {
	t.Helper()
	s := mustCLI(t, dir, "", "domain", "list", "--json")
	as := mustCLI(t, dir, "", "account", "list", "--json")
	s += as
	for _, a := range decode[[]admin.Account](t, as) {
		s += mustCLI(t, dir, "", "account", "show", a.Address, "--json")
	}
	return s
}

func setupCLI(t *testing.T, dir string) {
	t.Helper()
	mustCLI(t, dir, "", "domain", "add", "example.com")
	mustCLI(t, dir, "", "domain", "add", "www.example.com", "--parent", "example.com")
	mustCLI(t, dir, "", "domain", "add", "other.test")
	mustCLI(t, dir, "pw-info\n", "account", "add", "info@example.com", "--role", "admin", "--password-stdin")
	mustCLI(t, dir, "pw-bob\n", "account", "add", "bob@example.com", "--quota", "500M", "--password-stdin")
	mustCLI(t, dir, "pw-carol\n", "account", "add", "carol@other.test", "--password-stdin")
}

// testCLI runs every subcommand on dir; st, when not nil, is the store
// (held by a server) to check the effects on.
func testCLI(t *testing.T, dir string, st store.Store) {
	out := mustCLI(t, dir, "", "domain", "add", "Example.COM")
	if out != "added domain example.com\n" {
		t.Errorf("domain add: %q", out)
	}
	d := decode[admin.Domain](t, mustCLI(t, dir, "", "domain", "add", "--json", "www.example.com", "--parent", "example.com"))
	if d.Name != "www.example.com" || d.Parent != "example.com" {
		t.Errorf("domain add --json: %+v", d)
	}
	out = mustCLI(t, dir, "", "domain", "add", "other.test")
	if !strings.Contains(out, "other.test") {
		t.Errorf("domain add: %q", out)
	}

	out = mustCLI(t, dir, "pw-info\n", "account", "add", "Info@Example.com", "--role", "admin", "--password-stdin")
	if out != "added account info@example.com (admin, quota 1.0 GiB)\n" {
		t.Errorf("account add: %q", out)
	}
	a := decode[admin.Account](t, mustCLI(t, dir, "pw-bob\r\n", "account", "add", "bob@example.com", "--quota", "500M", "--password-stdin", "--json"))
	if a.Address != "bob@example.com" || a.Quota != 500<<20 || a.Role != "user" {
		t.Errorf("account add --json: %+v", a)
	}
	mustCLI(t, dir, "pw-carol", "account", "add", "--password-stdin", "carol@other.test", "--quota", "0")

	// domain list: a table, and JSON.
	out = mustCLI(t, dir, "", "domain", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "DOMAIN") || !strings.HasPrefix(lines[1], "example.com ") || !strings.Contains(lines[3], "example.com") {
		t.Errorf("domain list:\n%s", out)
	}
	// The columns line up.
	if col := strings.Index(lines[0], "PARENT"); col < 0 || strings.LastIndex(lines[3], "example.com") != col {
		t.Errorf("domain list is not aligned:\n%s", out)
	}
	ds := decode[[]admin.Domain](t, mustCLI(t, dir, "", "domain", "list", "--json"))
	if len(ds) != 3 || ds[0].Accounts != 2 || len(ds[0].Children) != 1 || ds[2].Parent != "example.com" {
		t.Errorf("domain list --json: %+v", ds)
	}

	// account list, all and by domain.
	out = mustCLI(t, dir, "", "account", "list")
	if !strings.Contains(out, "ADDRESS") || !strings.Contains(out, "0 B of 500.0 MiB (0%)") || !strings.Contains(out, "0 B (no quota)") || strings.Count(out, "\n") != 4 {
		t.Errorf("account list:\n%s", out)
	}
	as := decode[[]admin.Account](t, mustCLI(t, dir, "", "account", "list", "example.com", "--json"))
	if len(as) != 2 || as[0].Address != "bob@example.com" || as[1].Address != "info@example.com" {
		t.Errorf("account list example.com --json: %+v", as)
	}
	as = decode[[]admin.Account](t, mustCLI(t, dir, "", "account", "list", "--json"))
	if len(as) != 3 {
		t.Errorf("account list --json: %+v", as)
	}

	// passwd, from stdin.
	out = mustCLI(t, dir, "new-pw\n", "account", "passwd", "bob@example.com", "--password-stdin")
	if out != "changed the password of bob@example.com\n" {
		t.Errorf("passwd: %q", out)
	}
	if st != nil {
		sa, _ := st.Account(t.Context(), "bob@example.com")
		if bcrypt.CompareHashAndPassword([]byte(sa.PasswordHash), []byte("new-pw")) != nil {
			t.Error("passwd did not change the password")
		}
	}
	pw := decode[map[string]any](t, mustCLI(t, dir, "pw2\n", "account", "passwd", "bob@example.com", "--password-stdin", "--json"))
	if pw["address"] != "bob@example.com" || pw["password_changed"] != true {
		t.Errorf("passwd --json: %v", pw)
	}

	// quota, in human units.
	out = mustCLI(t, dir, "", "account", "quota", "bob@example.com", "2G")
	if out != "set the quota of bob@example.com to 2.0 GiB; usage: 0 B of 2.0 GiB (0%)\n" {
		t.Errorf("quota: %q", out)
	}
	a = decode[admin.Account](t, mustCLI(t, dir, "", "account", "quota", "bob@example.com", "unlimited", "--json"))
	if a.Quota != 0 {
		t.Errorf("quota --json: %+v", a)
	}
	a = decode[admin.Account](t, mustCLI(t, dir, "", "account", "quota", "bob@example.com", "1048576", "--json"))
	if a.Quota != 1<<20 {
		t.Errorf("quota in bytes: %+v", a)
	}

	// show.
	if st != nil {
		if _, err := st.Deliver(context.Background(), store.Delivery{Recipients: []string{"info@example.com"}, Message: []byte("Subject: x\r\n\r\n" + strings.Repeat("y", 2000) + "\r\n")}); err != nil {
			t.Fatal(err)
		}
	}
	out = mustCLI(t, dir, "", "account", "show", "INFO@example.com")
	for _, want := range []string{"Address:", "info@example.com", "admin", "info@www.example.com", "MAILBOX", "INBOX", "Sent", "Drafts", "Trash", "Junk", " of 1.0 GiB (0%)"} {
		if !strings.Contains(out, want) {
			t.Errorf("account show lacks %q:\n%s", want, out)
		}
	}
	det := decode[admin.AccountDetail](t, mustCLI(t, dir, "", "account", "show", "info@example.com", "--json"))
	if det.Address != "info@example.com" || len(det.Mailboxes) != 5 || len(det.Addresses) != 2 {
		t.Errorf("account show --json: %+v", det)
	}
	if st != nil && (det.Used == 0 || det.Mailboxes[0].Messages != 1) {
		t.Errorf("account show after a delivery: %+v", det)
	}
	if st != nil && !strings.Contains(out, "INBOX") {
		t.Error("no INBOX")
	}
	for _, s := range []string{out, state(t, dir)} {
		if strings.Contains(s, "$2a$") || strings.Contains(s, "hash") {
			t.Errorf("output shows the password hash: %s", s)
		}
	}

	// remove.
	out = mustCLI(t, dir, "", "account", "remove", "Bob@example.com")
	if out != "removed account bob@example.com and all its mail\n" {
		t.Errorf("account remove: %q", out)
	}
	rm := decode[map[string]string](t, mustCLI(t, dir, "", "account", "remove", "carol@other.test", "--json"))
	if rm["removed"] != "carol@other.test" {
		t.Errorf("account remove --json: %v", rm)
	}
	out = mustCLI(t, dir, "", "domain", "remove", "other.test")
	if out != "removed domain other.test\n" {
		t.Errorf("domain remove: %q", out)
	}
	rm = decode[map[string]string](t, mustCLI(t, dir, "", "domain", "remove", "www.example.com", "--json"))
	if rm["removed"] != "www.example.com" {
		t.Errorf("domain remove --json: %v", rm)
	}
	as = decode[[]admin.Account](t, mustCLI(t, dir, "", "account", "list", "--json"))
	if len(as) != 1 || as[0].Address != "info@example.com" {
		t.Errorf("accounts after removal: %+v", as)
	}
	if st != nil {
		if _, err := st.Account(t.Context(), "bob@example.com"); !errors.Is(err, store.ErrNoSuchAccount) {
			t.Errorf("bob still in the store: %v", err)
		}
	}

	// Inbound scanning policy: defaults, a partial change, bad values.
	out = mustCLI(t, dir, "", "scan", "show", "INFO@example.com")
	for _, want := range []string{"info@example.com", "oversize      discard", "encrypted     accept"} {
		if !strings.Contains(out, want) {
			t.Errorf("scan show lacks %q:\n%s", want, out)
		}
	}
	p := decode[admin.ScanPolicy](t, mustCLI(t, dir, "", "scan", "policy", "info@example.com", "--oversize=accept", "--encrypted=reject", "--json"))
	if p.Oversize != "accept" || p.Encrypted != "reject" || p.Depth != "discard" || p.Partial != "discard" || p.ExtractSize != "discard" {
		t.Errorf("scan policy --json: %+v", p)
	}
	mustCLI(t, dir, "", "scan", "policy", "info@example.com", "--depth", "accept")
	p = decode[admin.ScanPolicy](t, mustCLI(t, dir, "", "scan", "show", "info@example.com", "--json"))
	if p.Oversize != "accept" || p.Depth != "accept" || p.Encrypted != "reject" {
		t.Errorf("second change lost the first: %+v", p)
	}
	before := mustCLI(t, dir, "", "scan", "show", "info@example.com", "--json")
	for _, bad := range [][]string{
		{"scan", "policy", "info@example.com", "--partial=maybe"},
		{"scan", "policy", "info@example.com", "--encrypted=discard"},
		{"scan", "policy", "info@example.com"},
		{"scan", "policy", "nobody@example.com", "--depth=accept"},
		{"scan", "show", "not-an-address"},
	} {
		r := cli(t, dir, "", bad...)
		if r.code != 1 || strings.Count(r.err, "\n") != 1 || !strings.HasPrefix(r.err, "yubin: ") {
			t.Errorf("%v: exit %d, stderr %q", bad, r.code, r.err)
		}
	}
	if after := mustCLI(t, dir, "", "scan", "show", "info@example.com", "--json"); after != before {
		t.Errorf("a refused scan policy changed something:\n%s\n%s", before, after)
	}
	if st != nil {
		if a, _ := st.Account(t.Context(), "info@example.com"); a.Scan.Depth != store.ScanAccept {
			t.Errorf("policy not in the store: %+v", a.Scan)
		}
	}
}

func TestCLIAdmin(t *testing.T) {
	testCLI(t, testutil.ShortDir(t), nil)
}

func TestCLIEmptyLists(t *testing.T) {
	dir := testutil.ShortDir(t)
	if out := mustCLI(t, dir, "", "domain", "list"); !strings.Contains(out, "no domains") {
		t.Errorf("empty domain list: %q", out)
	}
	if out := mustCLI(t, dir, "", "domain", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("empty domain list --json: %q", out)
	}
	if out := mustCLI(t, dir, "", "account", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("empty account list --json: %q", out)
	}
}

func TestCLIDefaultQuotaFromConfig(t *testing.T) {
	dir, cfg := testutil.DataDir(t, "[store]\ndefault_quota = 1048576\n")
	mustCLI(t, dir, "", "domain", "add", "example.com", "--config", cfg)
	a := decode[admin.Account](t, mustCLI(t, dir, "pw\n", "account", "add", "x@example.com", "--password-stdin", "--json", "--config", cfg))
	if a.Quota != 1<<20 {
		t.Errorf("default quota = %d, want the config's 1 MiB", a.Quota)
	}
}

func TestCLIErrors(t *testing.T) {
	dir := testutil.ShortDir(t)
	setupCLI(t, dir)
	before := state(t, dir)
	for _, c := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"domain", "add", "example.com"}, "domain example.com already exists"},
		{"", []string{"domain", "add", "a.www.example.com", "--parent", "www.example.com"}, "a child domain cannot have children"},
		{"", []string{"domain", "add", "x.nowhere.test", "--parent", "nowhere.test"}, "unknown parent domain nowhere.test"},
		{"", []string{"domain", "add", "bad..name"}, "invalid domain name"},
		{"", []string{"domain", "add", "localhost"}, "not fully qualified"},
		{"", []string{"domain", "remove", "nowhere.test"}, "unknown domain nowhere.test"},
		{"", []string{"domain", "remove", "example.com"}, "child domains"},
		{"", []string{"domain", "remove", "other.test", "--json"}, "domain other.test has 1 account(s)"},
		{"pw\n", []string{"account", "add", "info@example.com", "--password-stdin"}, "account info@example.com already exists"},
		{"pw\n", []string{"account", "add", "x@nowhere.test", "--password-stdin"}, "unknown domain nowhere.test"},
		{"pw\n", []string{"account", "add", "x@www.example.com", "--password-stdin"}, "child domain of example.com"},
		{"pw\n", []string{"account", "add", "not-an-address", "--password-stdin"}, "invalid address"},
		{"pw\n", []string{"account", "add", "a%b@example.com", "--password-stdin"}, "invalid address"},
		{"pw\n", []string{"account", "add", "x@example.com", "--role", "boss", "--password-stdin"}, `invalid role "boss"`},
		{"pw\n", []string{"account", "add", "x@example.com", "--quota", "lots", "--password-stdin"}, `invalid quota "lots"`},
		{"pw\n", []string{"account", "add", "x@example.com", "--quota", "-1G", "--password-stdin"}, "invalid quota"},
		{"\n", []string{"account", "add", "x@example.com", "--password-stdin"}, "password is empty"},
		{"", []string{"account", "add", "x@example.com", "--password-stdin"}, "no password on stdin"},
		{strings.Repeat("p", 80) + "\n", []string{"account", "add", "x@example.com", "--password-stdin"}, "longer than 72"},
		{"", []string{"account", "add", "x@example.com"}, "--password-stdin"}, // no terminal to prompt on
		{"pw\n", []string{"account", "passwd", "nobody@example.com", "--password-stdin"}, "unknown account nobody@example.com"},
		{"", []string{"account", "passwd", "info@example.com"}, "not a terminal"},
		{"\n", []string{"account", "passwd", "info@example.com", "--password-stdin"}, "password is empty"},
		{"", []string{"account", "quota", "info@example.com", "12Q"}, "invalid quota"},
		{"", []string{"account", "quota", "info@example.com", "-5", "--json"}, "cannot be negative"},
		{"", []string{"account", "quota", "-1G", "info@example.com"}, `invalid quota "info@example.com"`},
		{"", []string{"account", "quota", "-1@example.com", "1G"}, "unknown account -1@example.com"},
		{"", []string{"account", "quota", "nobody@example.com", "1G"}, "unknown account"},
		{"", []string{"account", "list", "nowhere.test"}, "unknown domain"},
		{"", []string{"account", "show", "nobody@example.com"}, "unknown account nobody@example.com"},
		{"", []string{"account", "show", "garbage"}, "invalid address"},
		{"", []string{"account", "remove", "nobody@example.com"}, "unknown account"},
		{"", []string{"domain", "list", "--config", "/nonexistent/yubin.toml"}, "nonexistent"},
	} {
		r := cli(t, dir, c.stdin, c.args...)
		name := strings.Join(c.args, " ")
		if r.code != 1 {
			t.Errorf("%s: exit %d, want 1 (stderr %q)", name, r.code, r.err)
		}
		if !strings.HasPrefix(r.err, "yubin: ") || strings.Count(r.err, "\n") != 1 || !strings.Contains(r.err, c.want) {
			t.Errorf("%s: stderr %q, want one line containing %q", name, r.err, c.want)
		}
		if r.out != "" {
			t.Errorf("%s: stdout %q", name, r.out)
		}
		if after := state(t, dir); after != before {
			t.Fatalf("%s changed the state:\nbefore %s\nafter  %s", name, before, after)
		}
	}
}

func TestCLIUsage(t *testing.T) {
	dir := testutil.ShortDir(t)
	for _, args := range [][]string{
		{"domain"}, {"domain", "frob"}, {"domain", "add"}, {"domain", "add", "a.test", "b.test"},
		{"domain", "list", "extra"}, {"domain", "remove"}, {"domain", "add", "a.test", "--bogus"},
		{"account"}, {"account", "frob"}, {"account", "add"}, {"account", "passwd"}, {"account", "quota", "x@example.com"},
		{"account", "list", "a.test", "b.test"}, {"account", "show"}, {"account", "remove"}, {"account", "remove", "a@b.c", "d@e.f"},
	} {
		var out, errb bytes.Buffer
		code := run(&env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}, args)
		if code != 2 || !strings.Contains(errb.String(), "usage: yubin") || out.Len() != 0 {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want 2 and a usage line", args, code, errb.String(), out.String())
		}
	}
	for _, args := range [][]string{
		{"domain", "add", "--help"}, {"domain", "list", "-h"}, {"domain", "remove", "--help"},
		{"account", "add", "--help"}, {"account", "passwd", "--help"}, {"account", "quota", "--help"},
		{"account", "list", "--help"}, {"account", "show", "--help"}, {"account", "remove", "--help"},
	} {
		r := cli(t, dir, "", args...)
		if r.code != 0 || !strings.Contains(r.out, "Usage: yubin "+args[0]) || !strings.Contains(r.out, "-json") || !strings.Contains(r.out, "-data") {
			t.Errorf("%v: exit %d, stdout %q", args, r.code, r.out)
		}
	}
	r := cli(t, dir, "", "account", "add", "--help")
	for _, f := range []string{"-role", "-quota", "-password-stdin"} {
		if !strings.Contains(r.out, f) {
			t.Errorf("account add --help lacks %s:\n%s", f, r.out)
		}
	}
	for _, args := range [][]string{{"domain", "--help"}, {"account", "help"}} {
		var out bytes.Buffer
		if code := run(&env{stdout: &out, stderr: &out}, args); code != 0 || !strings.Contains(out.String(), "Usage: yubin "+args[0]) {
			t.Errorf("%v: exit %d, %q", args, code, out.String())
		}
	}
	// Usage errors change nothing either: no store was even created.
	if _, err := os.Stat(bolt.PathIn(dir)); err == nil {
		t.Error("a usage error created the store")
	}
}

func TestCLIPrompt(t *testing.T) {
	dir := testutil.ShortDir(t)
	mustCLI(t, dir, "", "domain", "add", "example.com")
	var answers []string
	saved := promptPassword
	t.Cleanup(func() { promptPassword = saved })
	promptPassword = func(e *env) (string, error) {
		if len(answers) == 0 {
			return "", errors.New("no more answers")
		}
		a := answers[0]
		answers = answers[1:]
		return a, nil
	}
	runTTY := func(args ...string) cliResult {
		var out, errb bytes.Buffer
		code := run(&env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, stdinIsTerminal: true}, append(args, "--data", dir))
		return cliResult{out.String(), errb.String(), code}
	}

	answers = []string{"one", "two"}
	before := state(t, dir)
	r := runTTY("account", "add", "x@example.com")
	if r.code != 1 || !strings.Contains(r.err, "do not match") {
		t.Errorf("mismatch: %+v", r)
	}
	if state(t, dir) != before {
		t.Error("a mismatched password changed the state")
	}

	answers = []string{"", ""}
	if r := runTTY("account", "add", "x@example.com"); r.code != 1 || !strings.Contains(r.err, "empty") {
		t.Errorf("empty: %+v", r)
	}

	answers = []string{"s3cret", "s3cret"}
	r = runTTY("account", "add", "x@example.com")
	if r.code != 0 || !strings.Contains(r.err, "New password for x@example.com: ") || !strings.Contains(r.err, "Repeat") || strings.Contains(r.err, "s3cret") {
		t.Errorf("prompted add: %+v", r)
	}
	answers = []string{"other", "other"}
	if r := runTTY("account", "passwd", "x@example.com"); r.code != 0 {
		t.Errorf("prompted passwd: %+v", r)
	}
	// The prompt is never reached for an account that does not exist.
	answers = nil
	if r := runTTY("account", "passwd", "nobody@example.com"); r.code != 1 || !strings.Contains(r.err, "unknown account") || strings.Contains(r.err, "password for") {
		t.Errorf("passwd of a missing account: %+v", r)
	}
	st := teststore.OpenDir(t, dir, teststore.Options{})
	defer st.Close()
	sa, _ := st.Account(t.Context(), "x@example.com")
	if bcrypt.CompareHashAndPassword([]byte(sa.PasswordHash), []byte("other")) != nil {
		t.Error("prompted password not stored")
	}
}

// serveControl serves the control socket in dir on st, as a running
// server does, until stop.
func serveControl(t *testing.T, dir string, st store.Store) (stop func() error) {
	t.Helper()
	ln, err := admin.ListenControl(filepath.Join(dir, "control.sock"))
	testutil.Must(t, err)
	return testutil.Go(t, func(ctx context.Context) error { return admin.NewService(st, 1<<30).ServeControl(ctx, ln) })
}

// TestCLIWhileServing: a "server" holds the store (and its file lock) and
// serves the control socket in the data dir; the CLI goes through it.
func TestCLIWhileServing(t *testing.T) {
	dir := testutil.ShortDir(t)
	st := teststore.OpenDir(t, dir, teststore.Options{})
	stop := serveControl(t, dir, st)

	testCLI(t, dir, st)

	// Errors come back through the socket as one line, exit 1.
	r := cli(t, dir, "pw\n", "account", "add", "info@example.com", "--password-stdin")
	if r.code != 1 || r.err != "yubin: account info@example.com already exists\n" {
		t.Errorf("duplicate through the socket: %+v", r)
	}

	testutil.Must(t, stop())

	// The store is still locked, and nothing answers: a clear error.
	r = cli(t, dir, "", "domain", "list")
	if r.code != 1 || !strings.Contains(r.err, "in use") || strings.Count(r.err, "\n") != 1 {
		t.Errorf("locked store without a server: %+v", r)
	}
}
