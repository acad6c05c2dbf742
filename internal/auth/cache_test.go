package auth_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"yubin/internal/auth"
	"yubin/internal/testutil/teststore"
	"yubin/store"
)

// A verified login is remembered for auth.CacheTTL: the same password is
// answered from the cache, a wrong one is not (and drops the entry), a
// changed password is checked against its new hash at once.
func TestCredentialCache(t *testing.T) {
	st := teststore.New(t, teststore.Options{Domains: []teststore.Domain{{Name: "example.com"}}})
	h1, err := auth.HashPassword("first")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.AddAccount(ctx, store.Account{Address: "info@example.com", PasswordHash: h1}); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	a := auth.New(st, auth.Policy{MaxFailures: 100}, func() time.Time { return now })
	ip := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1000}
	login := func(pw string) error { _, err := a.Authenticate(ctx, ip, "Info@example.com", pw); return err }
	cached := func(pw string) bool { return a.Cached(ctx, "info@example.com", pw) }

	if err := login("first"); err != nil {
		t.Fatal(err)
	}
	if !cached("first") || cached("other") {
		t.Fatal("a verified login is not (only) what the cache holds")
	}
	if err := login("first"); err != nil {
		t.Fatalf("second login (from the cache): %v", err)
	}
	if err := login("wrong"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	if cached("first") {
		t.Fatal("a failed login left the entry in the cache")
	}
	if err := login("first"); err != nil {
		t.Fatal(err)
	}
	// A new password: the old one fails at once, the new one works.
	h2, err := auth.HashPassword("second")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetPasswordHash(ctx, "info@example.com", h2); err != nil {
		t.Fatal(err)
	}
	if err := login("first"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("old password after the change: %v", err)
	}
	if err := login("second"); err != nil {
		t.Fatalf("new password: %v", err)
	}
	// The entry expires.
	now = now.Add(auth.CacheTTL + time.Second)
	if cached("second") {
		t.Fatal("entry outlived auth.CacheTTL")
	}
}

// BenchmarkLogin is a repeated login of one account: with the cache, one
// bcrypt comparison per auth.CacheTTL.
func BenchmarkLogin(b *testing.B) {
	st := teststore.New(b, teststore.Options{Domains: []teststore.Domain{{Name: "example.com"}}})
	h, _ := auth.HashPassword("pw")
	ctx := context.Background()
	if err := st.AddAccount(ctx, store.Account{Address: "info@example.com", PasswordHash: h}); err != nil {
		b.Fatal(err)
	}
	a := auth.New(st, auth.Policy{}, nil)
	ip := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1000}
	for b.Loop() {
		if _, err := a.Authenticate(ctx, ip, "info@example.com", "pw"); err != nil {
			b.Fatal(err)
		}
	}
}
