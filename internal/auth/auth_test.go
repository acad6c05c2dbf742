package auth_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"yubin/internal/auth"
	"yubin/internal/testutil/teststore"
	"yubin/store"
)

func TestAuthenticateAndLockout(t *testing.T) {
	st := teststore.New(t, teststore.Options{Domains: []teststore.Domain{{Name: "example.com"}}})
	h, err := auth.HashPassword("right")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h, "right") || !strings.HasPrefix(h, "$2") {
		t.Fatalf("not a bcrypt hash: %q", h)
	}
	if err := st.AddAccount(t.Context(), store.Account{Address: "info@example.com", PasswordHash: h}); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	a := auth.New(st, auth.Policy{MaxFailures: 3, Window: time.Minute, Lockout: 10 * time.Minute}, func() time.Time { return now })
	ctx := context.Background()
	ip1 := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1000}
	ip2 := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 1000}

	if acct, err := a.Authenticate(ctx, ip1, "INFO@example.com", "right"); err != nil || acct.Address != "info@example.com" {
		t.Fatalf("good login: %v %v", acct, err)
	}
	for _, c := range []struct{ user, pw string }{{"info@example.com", "wrong"}, {"nobody@example.com", "right"}, {"info@example.com", ""}} {
		if _, err := a.Authenticate(ctx, ip1, c.user, c.pw); !errors.Is(err, auth.ErrBadCredentials) {
			t.Fatalf("%v: %v", c, err)
		}
	}
	// Three failures: ip1 is locked out, even with the right password ...
	if _, err := a.Authenticate(ctx, ip1, "info@example.com", "right"); !errors.Is(err, auth.ErrTooManyFailures) {
		t.Fatalf("locked out: %v", err)
	}
	// ... but another address is not.
	if _, err := a.Authenticate(ctx, ip2, "info@example.com", "right"); err != nil {
		t.Fatalf("other ip: %v", err)
	}
	now = now.Add(11 * time.Minute)
	if _, err := a.Authenticate(ctx, ip1, "info@example.com", "right"); err != nil {
		t.Fatalf("after the lockout: %v", err)
	}
	if _, err := auth.HashPassword(strings.Repeat("x", 73)); err == nil {
		t.Fatal("73-byte password accepted (bcrypt would truncate it)")
	}
	if _, err := auth.HashPassword(""); err == nil {
		t.Fatal("empty password accepted")
	}
}

// Guesses sent in parallel from one address: at most MaxFailures of them
// are checked, so the right one among 100 does not get through.
func TestParallelGuessesAreCounted(t *testing.T) {
	st := teststore.New(t, teststore.Options{Password: "right", Accounts: []store.Account{{Address: "info@example.com"}}})
	a := auth.New(st, auth.Policy{MaxFailures: 10}, nil)
	ip := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 9), Port: 1000}
	const n = 100
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		pw := "wrong"
		if i == n-1 {
			pw = "right"
		}
		go func() {
			<-start
			_, err := a.Authenticate(context.Background(), ip, "info@example.com", pw)
			errs <- err
		}()
	}
	close(start)
	var checked, refused, ok int
	for range n {
		switch err := <-errs; {
		case err == nil:
			ok++
		case errors.Is(err, auth.ErrBadCredentials):
			checked++
		case errors.Is(err, auth.ErrTooManyFailures):
			refused++
		default:
			t.Fatal(err)
		}
	}
	if checked+ok > 10 {
		t.Errorf("%d passwords checked (%d right), want at most 10", checked+ok, ok)
	}
	if refused < n-10 {
		t.Errorf("%d refused, want at least %d", refused, n-10)
	}
}

// Logging into one's own account does not reset the address's failures:
// guesses at another account from the same address still run out.
func TestSuccessDoesNotClearTheAddress(t *testing.T) {
	st := teststore.New(t, teststore.Options{Password: "pw", Accounts: []store.Account{{Address: "mallory@example.com"}, {Address: "victim@example.com"}}})
	a := auth.New(st, auth.Policy{MaxFailures: 5}, nil)
	ip := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 1000}
	ctx := context.Background()
	guesses := 0
	for i := range 30 {
		if i%2 == 0 {
			if _, err := a.Authenticate(ctx, ip, "mallory@example.com", "pw"); err != nil && !errors.Is(err, auth.ErrTooManyFailures) {
				t.Fatal(err)
			}
			continue
		}
		_, err := a.Authenticate(ctx, ip, "victim@example.com", "guess")
		if errors.Is(err, auth.ErrBadCredentials) {
			guesses++
		}
	}
	if guesses != 5 {
		t.Errorf("%d wrong passwords checked for the victim, want 5", guesses)
	}
	// Another address still logs in.
	if _, err := a.Authenticate(ctx, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 8)}, "victim@example.com", "pw"); err != nil {
		t.Errorf("other address: %v", err)
	}
}

// The failures of a name no account can have (longer than any) count
// against the client's address, but the name is not kept: a login line of
// SMTP or IMAP may hold kilobytes, and up to 100,000 names are kept.
func TestLongNamesNotKept(t *testing.T) {
	st := teststore.New(t, teststore.Options{Domains: []teststore.Domain{{Name: "example.com"}}})
	a := auth.New(st, auth.Policy{MaxFailures: 3, Window: time.Minute, Lockout: time.Minute}, nil)
	ip := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1000}
	long := strings.Repeat("u", 100<<10) + "@example.com"
	if _, err := a.Authenticate(t.Context(), ip, "nobody@example.com", "pw"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("unknown name: %v", err)
	}
	for range 2 {
		if _, err := a.Authenticate(t.Context(), ip, long, "pw"); !errors.Is(err, auth.ErrBadCredentials) {
			t.Fatalf("long name: %v", err)
		}
	}
	if _, err := a.Authenticate(t.Context(), ip, "x@example.com", "pw"); !errors.Is(err, auth.ErrTooManyFailures) {
		t.Fatalf("after 3 failures from the address: %v", err)
	}
	if kept := a.NamesKept(); len(kept) != 1 || kept[0] != len("nobody@example.com") {
		t.Errorf("names kept (their lengths): %v, want only nobody@example.com's", kept)
	}
}

// awayDirectory is a store whose account look-ups fail as a database
// that is away does.
type awayDirectory struct{ store.Directory }

func (awayDirectory) Account(context.Context, string) (store.Account, error) {
	return store.Account{}, errors.New("the database is unavailable: connection refused")
}

// TestStoreAwayIsNoFailedLogin: a login the store cannot check is
// ErrUnavailable, not bad credentials, and does not count towards the
// lockout of the address.
func TestStoreAwayIsNoFailedLogin(t *testing.T) {
	a := auth.New(awayDirectory{}, auth.Policy{MaxFailures: 2, Window: time.Minute, Lockout: 10 * time.Minute}, time.Now)
	ip := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1000}
	for range 5 {
		if _, err := a.Authenticate(context.Background(), ip, "info@example.com", "pw"); !errors.Is(err, auth.ErrUnavailable) {
			t.Fatalf("a login with the store away: %v, want ErrUnavailable", err)
		}
	}
}
