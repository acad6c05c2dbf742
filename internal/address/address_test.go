package address

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	good := map[string]string{
		"info@example.com":         "info@example.com",
		"Info@Example.COM":         "info@example.com",
		"first.last+tag@sub.ex.jp": "first.last+tag@sub.ex.jp",
		"a_b-c@x-y.example":        "a_b-c@x-y.example",
	}
	for in, want := range good {
		a, err := Parse(in)
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if a.String() != want {
			t.Errorf("Parse(%q) = %q, want %q", in, a, want)
		}
	}
	routing := []string{
		"user%other.test@example.com",
		"other.test!user@example.com",
		"user@other.test@example.com", // what go-smtp hands over for "user@other.test"@example.com
		"user@example.com.",
		"user@[127.0.0.1]",
	}
	for _, in := range routing {
		if _, err := Parse(in); !errors.Is(err, ErrRouting) {
			t.Errorf("Parse(%q) = %v, want ErrRouting", in, err)
		}
	}
	bad := []string{"", "noat", "@example.com", "user@", "user@localhost", "a..b@example.com",
		".a@example.com", "a.@example.com", "user@exa_mple.com", "user@-x.com", "user@x..com",
		"us er@example.com", "user@ex ample.com", "user@" + strings.Repeat("a", 64) + ".com"}
	for _, in := range bad {
		if a, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %q, want an error", in, a)
		}
	}
}

// Local parts beyond RFC 5321's 64 octets (VERP, BATV and SRS senders) are
// accepted up to MaxLocalPart; longer ones, and domains over MaxDomain, are
// ErrTooLong. Account names keep the RFC's limits.
func TestLengths(t *testing.T) {
	label := strings.Repeat("d", 63) + "."
	longDomain := strings.Repeat(label, 3) + strings.Repeat("d", MaxDomain-3*len(label)-4) + ".com" // MaxDomain
	verp := "bounce-list=" + strings.Repeat("x", 120) + "=someone=example.org"                      // 152 octets
	good := []string{
		verp + "@lists.example.net",
		strings.Repeat("a", MaxLocalPart) + "@example.com",
		strings.Repeat("a", MaxLocalPart) + "@" + longDomain, // MaxAddress
	}
	if n := len(good[2]); n != MaxAddress {
		t.Fatalf("test address has %d octets, want %d", n, MaxAddress)
	}
	for _, in := range good {
		if _, err := Parse(in); err != nil {
			t.Errorf("Parse(%d octets): %v", len(in), err)
		}
	}
	for _, in := range []string{
		strings.Repeat("a", MaxLocalPart+1) + "@example.com",
		"user@d" + longDomain,
		strings.Repeat("a", MaxLocalPart) + "@d" + longDomain,
		strings.Repeat("a", 100000) + "@example.com",
	} {
		if _, err := Parse(in); !errors.Is(err, ErrTooLong) {
			t.Errorf("Parse(%d octets) = %v, want ErrTooLong", len(in), err)
		}
	}
	// Not a length problem: not ErrTooLong.
	if _, err := Parse("user@" + strings.Repeat("a", 64) + ".com"); err == nil || errors.Is(err, ErrTooLong) {
		t.Errorf("64-octet label: %v, want a syntax error", err)
	}

	// Account names: at most 64 octets before the @, 254 in all.
	if a, err := ParseAccount("Info@Example.COM"); err != nil || a.String() != "info@example.com" {
		t.Errorf("ParseAccount = %v, %v", a, err)
	}
	if _, err := ParseAccount(strings.Repeat("a", MaxAccountLocalPart) + "@example.com"); err != nil {
		t.Errorf("ParseAccount(64-octet local part): %v", err)
	}
	for _, in := range []string{verp + "@example.com", strings.Repeat("a", MaxAccountLocalPart+1) + "@example.com",
		"a@" + longDomain} {
		if _, err := ParseAccount(in); !errors.Is(err, ErrTooLong) {
			t.Errorf("ParseAccount(%d octets) = %v, want ErrTooLong", len(in), err)
		}
	}
	if _, err := ParseAccount("a%b@example.com"); !errors.Is(err, ErrRouting) {
		t.Errorf("ParseAccount of a routing form: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"info@example.com", "a%b@c.d", "\"x\"@y.z", "a@[1.2.3.4]", "a@b.c.", "A@B.C"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			return
		}
		// A parsed address is normalised and stable.
		if a.String() != strings.ToLower(a.String()) {
			t.Fatalf("not lower case: %q", a)
		}
		b, err := Parse(a.String())
		if err != nil || b != a {
			t.Fatalf("reparse of %q: %v %v", a, b, err)
		}
		if strings.ContainsAny(a.Local, "%!@\" ") {
			t.Fatalf("routing character survived: %q", a)
		}
	})
}
