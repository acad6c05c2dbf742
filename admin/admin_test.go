package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"yubin/internal/testutil"
	"yubin/internal/testutil/teststore"
	"yubin/store"
)

var ctx = context.Background()

func newService(t *testing.T) (*Service, store.Store) {
	st := teststore.New(t, teststore.Options{})
	return NewService(st, 1<<30), st
}

func i64(v int64) *int64 { return &v }

// errOnly is the error of an operation whose result does not matter.
func errOnly[T any](_ T, err error) error { return err }

// snapshot is the whole admin-visible state, for "nothing changed" checks.
func snapshot(t *testing.T, api API) string {
	t.Helper()
	ds, err := Do(ctx, api, OpDomainList, None{})
	testutil.Must(t, err)
	as, err := Do(ctx, api, OpAccountList, "")
	testutil.Must(t, err)
	var details []AccountDetail
	for _, a := range as {
		d, err := Do(ctx, api, OpAccountShow, a.Address)
		testutil.Must(t, err)
		details = append(details, d)
	}
	b, _ := json.Marshal([]any{ds, details})
	return string(b)
}

func populate(t *testing.T, api API) {
	t.Helper()
	_, err := Do(ctx, api, OpDomainAdd, NewDomain{Name: "Example.COM"})
	testutil.Must(t, err)
	_, err = Do(ctx, api, OpDomainAdd, NewDomain{Name: "www.example.com", Parent: "example.com"})
	testutil.Must(t, err)
	_, err = Do(ctx, api, OpDomainAdd, NewDomain{Name: "other.test"})
	testutil.Must(t, err)
	_, err = Do(ctx, api, OpAccountAdd, NewAccount{Address: "Info@Example.com", Password: "secret1", Role: "admin"})
	testutil.Must(t, err)
	_, err = Do(ctx, api, OpAccountAdd, NewAccount{Address: "bob@example.com", Password: "secret2", Quota: i64(500 << 20)})
	testutil.Must(t, err)
	_, err = Do(ctx, api, OpAccountAdd, NewAccount{Address: "carol@other.test", Password: "secret3", Quota: i64(0)})
	testutil.Must(t, err)
}

// expectError checks err's kind and message and that the state is unchanged.
func expectError(t *testing.T, api API, before string, err error, kind error, contains string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", contains)
	}
	if kind != nil && !errors.Is(err, kind) {
		t.Errorf("error %q is not %v", err, kind)
	}
	if !strings.Contains(err.Error(), contains) {
		t.Errorf("error %q does not contain %q", err, contains)
	}
	if strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "invalid request") {
		t.Errorf("error %q is not one clean line", err)
	}
	if after := snapshot(t, api); after != before {
		t.Errorf("state changed after error %q:\nbefore %s\nafter  %s", err, before, after)
	}
}

func testValidation(t *testing.T, api API) {
	populate(t, api)
	before := snapshot(t, api)

	_, err := Do(ctx, api, OpDomainAdd, NewDomain{Name: "example.com"})
	expectError(t, api, before, err, store.ErrExists, "domain example.com already exists")
	_, err = Do(ctx, api, OpDomainAdd, NewDomain{Name: "a.www.example.com", Parent: "www.example.com"})
	expectError(t, api, before, err, store.ErrInvalid, "child domain cannot have children")
	_, err = Do(ctx, api, OpDomainAdd, NewDomain{Name: "x.example.org", Parent: "example.org"})
	expectError(t, api, before, err, store.ErrNoSuchDomain, "unknown parent domain example.org")
	_, err = Do(ctx, api, OpDomainAdd, NewDomain{Name: "self.test", Parent: "self.test"})
	expectError(t, api, before, err, store.ErrInvalid, "own parent")
	_, err = Do(ctx, api, OpDomainAdd, NewDomain{Name: "bad..domain"})
	expectError(t, api, before, err, store.ErrInvalid, "invalid domain name")
	_, err = Do(ctx, api, OpDomainAdd, NewDomain{Name: "nodot"})
	expectError(t, api, before, err, store.ErrInvalid, "not fully qualified")
	_, err = Do(ctx, api, OpDomainAdd, NewDomain{Name: ""})
	expectError(t, api, before, err, store.ErrInvalid, "empty domain")
	err = errOnly(Do(ctx, api, OpDomainRemove, "example.com"))
	expectError(t, api, before, err, store.ErrInvalid, "child domains")
	err = errOnly(Do(ctx, api, OpDomainRemove, "other.test"))
	expectError(t, api, before, err, store.ErrInvalid, "1 account(s)")
	err = errOnly(Do(ctx, api, OpDomainRemove, "nowhere.test"))
	expectError(t, api, before, err, store.ErrNoSuchDomain, "unknown domain nowhere.test")

	add := func(na NewAccount) error { _, err := Do(ctx, api, OpAccountAdd, na); return err }
	expectError(t, api, before, add(NewAccount{Address: "INFO@example.com", Password: "x"}), store.ErrExists, "account info@example.com already exists")
	expectError(t, api, before, add(NewAccount{Address: "dave@nowhere.test", Password: "x"}), store.ErrNoSuchDomain, "unknown domain nowhere.test")
	expectError(t, api, before, add(NewAccount{Address: "dave@www.example.com", Password: "x"}), store.ErrInvalid, "child domain of example.com")
	expectError(t, api, before, add(NewAccount{Address: "dave", Password: "x"}), store.ErrInvalid, `invalid address "dave"`)
	expectError(t, api, before, add(NewAccount{Address: "a%b@example.com", Password: "x"}), store.ErrInvalid, "invalid address")
	expectError(t, api, before, add(NewAccount{Address: "", Password: "x"}), store.ErrInvalid, "invalid address")
	long := strings.Repeat("v", 65) + "@example.com" // a valid envelope address, too long for an account
	expectError(t, api, before, add(NewAccount{Address: long, Password: "x"}), store.ErrInvalid,
		fmt.Sprintf("invalid address %q: an account's local part may have at most 64 characters (RFC 5321)", long))
	expectError(t, api, before, add(NewAccount{Address: "dave@example.com", Password: "x", Role: "root"}), store.ErrInvalid, `invalid role "root"`)
	expectError(t, api, before, add(NewAccount{Address: "dave@example.com", Password: "x", Quota: i64(-1)}), store.ErrInvalid, "invalid quota")
	expectError(t, api, before, add(NewAccount{Address: "dave@example.com"}), store.ErrInvalid, "password is empty")
	expectError(t, api, before, add(NewAccount{Address: "dave@example.com", Password: strings.Repeat("x", 73)}), store.ErrInvalid, "longer than 72")
	expectError(t, api, before, add(NewAccount{Address: "dave@example.com", Password: "a\nb"}), store.ErrInvalid, "line break")

	// A dry run validates and writes nothing.
	a, err := Do(ctx, api, OpAccountAdd, NewAccount{Address: "Dave@example.com", DryRun: true})
	testutil.Must(t, err)
	if a.Address != "dave@example.com" || a.Quota != 1<<30 || a.Role != "user" {
		t.Errorf("dry run = %+v", a)
	}
	_, err = Do(ctx, api, OpAccountAdd, NewAccount{Address: "dave@example.com", Password: "ok", DryRun: true})
	testutil.Must(t, err)
	expectError(t, api, before, add(NewAccount{Address: "info@example.com", DryRun: true}), store.ErrExists, "already exists")
	if after := snapshot(t, api); after != before {
		t.Error("dry run changed the state")
	}

	expectError(t, api, before, errOnly(Do(ctx, api, OpAccountPasswd, PasswordChange{Address: "nobody@example.com", Password: "x"})), store.ErrNoSuchAccount, "unknown account nobody@example.com")
	expectError(t, api, before, errOnly(Do(ctx, api, OpAccountPasswd, PasswordChange{Address: "bob@example.com", Password: ""})), store.ErrInvalid, "password is empty")
	_, err = Do(ctx, api, OpAccountQuota, QuotaChange{Address: "bob@example.com", Quota: -5})
	expectError(t, api, before, err, store.ErrInvalid, "invalid quota")
	_, err = Do(ctx, api, OpAccountQuota, QuotaChange{Address: "nobody@example.com", Quota: 5})
	expectError(t, api, before, err, store.ErrNoSuchAccount, "unknown account")
	_, err = Do(ctx, api, OpAccountList, "nowhere.test")
	expectError(t, api, before, err, store.ErrNoSuchDomain, "unknown domain")
	_, err = Do(ctx, api, OpAccountShow, "nobody@example.com")
	expectError(t, api, before, err, store.ErrNoSuchAccount, "unknown account")
	_, err = Do(ctx, api, OpAccountShow, "not an address")
	expectError(t, api, before, err, store.ErrInvalid, "invalid address")
	expectError(t, api, before, errOnly(Do(ctx, api, OpAccountRemove, "nobody@example.com")), store.ErrNoSuchAccount, "unknown account")
}

func testOperations(t *testing.T, api API, st store.Store) {
	populate(t, api)

	ds, err := Do(ctx, api, OpDomainList, None{})
	testutil.Must(t, err)
	want := []Domain{
		{Name: "example.com", Children: []string{"www.example.com"}, Accounts: 2},
		{Name: "other.test", Accounts: 1},
		{Name: "www.example.com", Parent: "example.com"},
	}
	if len(ds) != len(want) {
		t.Fatalf("domains = %+v", ds)
	}
	for i := range want {
		d := ds[i]
		if d.Name != want[i].Name || d.Parent != want[i].Parent || strings.Join(d.Children, ",") != strings.Join(want[i].Children, ",") || d.Accounts != want[i].Accounts || d.Created.IsZero() {
			t.Errorf("domain %d = %+v, want %+v", i, d, want[i])
		}
	}

	as, err := Do(ctx, api, OpAccountList, "EXAMPLE.com")
	testutil.Must(t, err)
	if len(as) != 2 || as[0].Address != "bob@example.com" || as[1].Address != "info@example.com" {
		t.Fatalf("accounts = %+v", as)
	}
	if as[0].Quota != 500<<20 || as[0].Role != "user" || as[1].Quota != 1<<30 || as[1].Role != "admin" {
		t.Errorf("accounts = %+v", as)
	}
	child, err := Do(ctx, api, OpAccountList, "www.example.com")
	testutil.Must(t, err)
	if len(child) != 2 {
		t.Errorf("accounts of the child domain = %+v, want the parent's", child)
	}
	all, err := Do(ctx, api, OpAccountList, "")
	testutil.Must(t, err)
	if len(all) != 3 || all[2].Address != "carol@other.test" || all[2].Quota != 0 {
		t.Errorf("all accounts = %+v", all)
	}

	// Put a message in, so show reports usage and counts.
	if st != nil {
		_, err := st.Deliver(ctx, store.Delivery{Recipients: []string{"info@example.com"}, Message: []byte("Subject: hi\r\n\r\nhello\r\n")})
		testutil.Must(t, err)
	}
	det, err := Do(ctx, api, OpAccountShow, "info@EXAMPLE.com")
	testutil.Must(t, err)
	if det.Address != "info@example.com" || det.Role != "admin" || len(det.Mailboxes) != 5 || det.Mailboxes[0].Name != "INBOX" {
		t.Errorf("show = %+v", det)
	}
	if strings.Join(det.Addresses, ",") != "info@example.com,info@www.example.com" {
		t.Errorf("addresses = %v", det.Addresses)
	}
	if st != nil && (det.Mailboxes[0].Messages != 1 || det.Used == 0 || det.Mailboxes[0].Size != det.Used) {
		t.Errorf("show after delivery = %+v", det)
	}

	// No output ever carries the password hash.
	for _, v := range []any{ds, as, all, det} {
		b, _ := json.Marshal(v)
		if strings.Contains(string(b), "$2a$") || strings.Contains(string(b), "password") {
			t.Errorf("output carries a password: %s", b)
		}
	}

	testutil.Must(t, errOnly(Do(ctx, api, OpAccountPasswd, PasswordChange{Address: "bob@example.com", Password: "new password"})))
	if st != nil {
		sa, _ := st.Account(ctx, "bob@example.com")
		if bcrypt.CompareHashAndPassword([]byte(sa.PasswordHash), []byte("new password")) != nil {
			t.Error("password not changed")
		}
	}
	a, err := Do(ctx, api, OpAccountQuota, QuotaChange{Address: "BOB@example.com", Quota: 0})
	testutil.Must(t, err)
	if a.Quota != 0 || a.Address != "bob@example.com" {
		t.Errorf("after quota: %+v", a)
	}

	testutil.Must(t, errOnly(Do(ctx, api, OpAccountRemove, "bob@example.com")))
	if _, err := Do(ctx, api, OpAccountShow, "bob@example.com"); !errors.Is(err, store.ErrNoSuchAccount) {
		t.Errorf("removed account: %v", err)
	}
	testutil.Must(t, errOnly(Do(ctx, api, OpDomainRemove, "www.example.com")))
	testutil.Must(t, errOnly(Do(ctx, api, OpAccountRemove, "carol@other.test")))
	testutil.Must(t, errOnly(Do(ctx, api, OpDomainRemove, "other.test")))
	ds, err = Do(ctx, api, OpDomainList, None{})
	testutil.Must(t, err)
	if len(ds) != 1 || ds[0].Name != "example.com" || len(ds[0].Children) != 0 {
		t.Errorf("domains after removal = %+v", ds)
	}
}

func TestServiceValidation(t *testing.T) {
	s, _ := newService(t)
	testValidation(t, s)
}

func TestServiceOperations(t *testing.T) {
	s, st := newService(t)
	testOperations(t, s, st)
}

func TestPasswordHashed(t *testing.T) {
	s, st := newService(t)
	populate(t, s)
	sa, err := st.Account(ctx, "info@example.com")
	testutil.Must(t, err)
	if !strings.HasPrefix(sa.PasswordHash, "$2") || bcrypt.CompareHashAndPassword([]byte(sa.PasswordHash), []byte("secret1")) != nil {
		t.Errorf("stored hash %q", sa.PasswordHash)
	}
}

func TestParseQuota(t *testing.T) {
	good := map[string]int64{
		"0": 0, "unlimited": 0, "none": 0, "1073741824": 1 << 30, "1024b": 1024,
		"1G": 1 << 30, "1g": 1 << 30, "1GiB": 1 << 30, "1GB": 1 << 30, "1Gi": 1 << 30, " 500M ": 500 << 20,
		"500 MiB": 500 << 20, "1.5G": 3 << 29, "10k": 10 << 10, "2T": 2 << 40, "0.5m": 512 << 10,
	}
	for in, want := range good {
		got, err := ParseQuota(in)
		if err != nil || got != want {
			t.Errorf("ParseQuota(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "-1G", "1X", "G", "1.5", "abc", "1..5G", "99999999999T", "1e9", "1 G B", "1i"} {
		if got, err := ParseQuota(in); err == nil {
			t.Errorf("ParseQuota(%q) = %d, want an error", in, got)
		} else if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "invalid quota") {
			t.Errorf("ParseQuota(%q) error %q", in, err)
		}
	}
}

func TestFormat(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 12_900_000: "12.3 MiB",
		1 << 30: "1.0 GiB", 1<<20 - 1: "1.0 MiB", 5 << 40: "5.0 TiB",
	} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
	if got := FormatUsage(12_900_000, 1<<30); got != "12.3 MiB of 1.0 GiB (1%)" {
		t.Errorf("FormatUsage = %q", got)
	}
	if got := FormatUsage(2<<30, 1<<30); got != "2.0 GiB of 1.0 GiB (200%)" {
		t.Errorf("FormatUsage over quota = %q", got)
	}
	if got := FormatUsage(100, 0); got != "100 B (no quota)" {
		t.Errorf("FormatUsage unlimited = %q", got)
	}
	if FormatQuota(0) != "unlimited" || FormatQuota(1<<30) != "1.0 GiB" {
		t.Error("FormatQuota")
	}
}

// serve starts a Service on a control socket in dir and returns its
// client; the server stops at the end of the test.
func serve(t *testing.T, dir string) (*Client, store.Store, string) {
	t.Helper()
	st := teststore.OpenDir(t, dir, teststore.Options{})
	sock := filepath.Join(dir, "control.sock")
	return serveService(t, NewService(st, 1<<30), sock), st, sock
}

// serveService serves s on a control socket at sock until the end of the
// test and returns its client.
func serveService(t *testing.T, s *Service, sock string) *Client {
	t.Helper()
	ln, err := ListenControl(sock)
	testutil.Must(t, err)
	testutil.Go(t, func(ctx context.Context) error { return s.ServeControl(ctx, ln) })
	return NewClient(sock)
}

func TestControlSocket(t *testing.T) {
	dir := testutil.ShortDir(t)
	client, st, sock := serve(t, dir)

	fi, err := os.Lstat(sock)
	testutil.Must(t, err)
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, want a socket with 0600", fi.Mode())
	}
	if ln, err := ListenControl(sock); err == nil || !strings.Contains(err.Error(), "another yubin server is running") {
		if ln != nil {
			ln.Close()
		}
		t.Errorf("second ListenControl: %v", err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".ctl*")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
	testutil.Must(t, client.Ping(ctx))

	t.Run("operations", func(t *testing.T) { testOperations(t, client, st) })
	for _, a := range []string{"info@example.com"} {
		testutil.Must(t, errOnly(Do(ctx, client, OpAccountRemove, a)))
	}
	testutil.Must(t, errOnly(Do(ctx, client, OpDomainRemove, "example.com")))
	t.Run("validation", func(t *testing.T) { testValidation(t, client) })

	// Many clients at once.
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := Do(ctx, client, OpDomainList, None{}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()

	// Garbage and unknown operations get a clear answer.
	for _, req := range []string{"nonsense\n", `{"op":"frobnicate"}` + "\n"} {
		c, err := net.Dial("unix", sock)
		testutil.Must(t, err)
		c.Write([]byte(req))
		var resp response
		testutil.Must(t, json.NewDecoder(c).Decode(&resp))
		c.Close()
		if resp.OK || resp.Kind != "invalid" || resp.Error == "" {
			t.Errorf("answer to %q: %+v", req, resp)
		}
	}
}

func TestControlSocketStopRemovesFile(t *testing.T) {
	dir := testutil.ShortDir(t)
	st := teststore.OpenDir(t, dir, teststore.Options{})
	sock := filepath.Join(dir, "control.sock")
	ln, err := ListenControl(sock)
	testutil.Must(t, err)
	c, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- NewService(st, 0).ServeControl(c, ln) }()
	testutil.Must(t, NewClient(sock).Ping(ctx))
	cancel()
	select {
	case err := <-done:
		testutil.Must(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("ServeControl did not return")
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file still there after stop: %v", err)
	}
	if err := NewClient(sock).Ping(ctx); err == nil {
		t.Error("ping after stop succeeded")
	}
}

func TestListenControlStaleAndForeign(t *testing.T) {
	dir := testutil.ShortDir(t)
	sock := filepath.Join(dir, "control.sock")
	// A socket left behind by a crashed server.
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	testutil.Must(t, err)
	ul.SetUnlinkOnClose(false)
	ul.Close()
	if _, err := os.Lstat(sock); err != nil {
		t.Fatal("stale socket not left behind")
	}
	ln, err := ListenControl(sock)
	testutil.Must(t, err)
	testutil.Must(t, ln.Close())
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Close did not remove the socket: %v", err)
	}

	// A regular file in the way is not removed.
	testutil.Must(t, os.WriteFile(sock, []byte("x"), 0o600))
	if _, err := ListenControl(sock); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("ListenControl over a file: %v", err)
	}
	if b, _ := os.ReadFile(sock); string(b) != "x" {
		t.Error("file was touched")
	}

	// Too long a path is a clear error.
	long := filepath.Join(dir, strings.Repeat("d", 120), "control.sock")
	if _, err := ListenControl(long); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Errorf("long path: %v", err)
	}
}

func TestOpen(t *testing.T) {
	dir := testutil.ShortDir(t)
	sock := filepath.Join(dir, "control.sock")

	// No server: the store directly.
	api, release, err := OpenPaths(sock, dir, 123)
	testutil.Must(t, err)
	if _, ok := api.(*Service); !ok {
		t.Errorf("without a server Open gave %T", api)
	}
	_, err = Do(ctx, api, OpDomainAdd, NewDomain{Name: "example.com"})
	testutil.Must(t, err)
	a, err := Do(ctx, api, OpAccountAdd, NewAccount{Address: "x@example.com", Password: "pw"})
	testutil.Must(t, err)
	if a.Quota != 123 {
		t.Errorf("default quota = %d", a.Quota)
	}
	testutil.Must(t, release())

	// The store is locked by a "server" without a socket: a clear error.
	st := teststore.OpenDir(t, dir, teststore.Options{})
	_, _, err = OpenPaths(sock, dir, 0)
	if !errors.Is(err, store.ErrInUse) || !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), "control socket") {
		t.Errorf("locked store, no socket: %v", err)
	}

	// The server serves the socket: the client.
	ln, err := ListenControl(sock)
	testutil.Must(t, err)
	c, cancel := context.WithCancel(ctx)
	defer cancel()
	go NewService(st, 0).ServeControl(c, ln)
	api, release, err = OpenPaths(sock, dir, 0)
	testutil.Must(t, err)
	defer release()
	if _, ok := api.(*Client); !ok {
		t.Errorf("with a server Open gave %T", api)
	}
	as, err := Do(ctx, api, OpAccountList, "")
	testutil.Must(t, err)
	if len(as) != 1 || as[0].Address != "x@example.com" {
		t.Errorf("accounts through the socket = %+v", as)
	}
}
