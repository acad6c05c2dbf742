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
