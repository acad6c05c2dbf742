package srs

import (
	"errors"
	"strings"
	"testing"
	"time"

	"yubin/internal/address"
)

func TestRoundTrip(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := New([]byte("secret"), func() time.Time { return now })
	a, ok := s.Forward("John.Smith@Example.ORG", "fwd.example.com")
	if !ok || !strings.HasPrefix(a, "srs0=") || !strings.HasSuffix(a, "@fwd.example.com") {
		t.Fatalf("Forward = %q, %v", a, ok)
	}
	// It is a valid address for our parser, also after upper-casing.
	p, err := address.Parse(strings.ToUpper(a))
	if err != nil {
		t.Fatal(err)
	}
	orig, err := s.Reverse(p.String())
	if err != nil || orig != "john.smith@example.org" {
		t.Fatalf("Reverse = %q, %v", orig, err)
	}
	// Tampering, another key, age.
	bad := strings.Replace(a, "example.org", "example.net", 1)
	if _, err := s.Reverse(bad); !errors.Is(err, ErrBadHash) {
		t.Errorf("tampered: %v", err)
	}
	if _, err := New([]byte("other"), nil).Reverse(a); !errors.Is(err, ErrBadHash) {
		t.Errorf("other key: %v", err)
	}
	now = now.Add(20 * 24 * time.Hour)
	if _, err := s.Reverse(a); err != nil {
		t.Errorf("20 days: %v", err)
	}
	now = now.Add(3 * 24 * time.Hour)
	if _, err := s.Reverse(a); !errors.Is(err, ErrExpired) {
		t.Errorf("23 days: %v", err)
	}
	if _, err := s.Reverse("info@example.com"); !errors.Is(err, ErrNotSRS) {
		t.Errorf("plain: %v", err)
	}
	if _, ok := s.Forward(strings.Repeat("x", 60)+"@example.org", "fwd.example.com"); ok {
		t.Error("over-long local part accepted")
	}
}

// FuzzReverse: any RCPT address on port 25 may reach Reverse. It never
// panics, and what it accepts is exactly what Forward made.
func FuzzReverse(f *testing.F) {
	s := New([]byte("k"), func() time.Time { return time.Unix(1772355600, 0) })
	good, _ := s.Forward("user@example.org", "fwd.example.com")
	for _, seed := range []string{good, "srs0=@x", "SRS0=a=b=c=d@e", "srs0====@", "info@example.com", "srs0=zzzzzzzz=zz=d=l@x.y"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		orig, err := s.Reverse(addr)
		if err != nil {
			return
		}
		again, ok := s.Forward(orig, addr[strings.LastIndexByte(addr, '@')+1:])
		if !ok || !strings.EqualFold(again, addr) {
			t.Fatalf("Reverse(%q) = %q, but Forward gives %q", addr, orig, again)
		}
	})
}
