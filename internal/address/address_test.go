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
		"us er@example.com", "user@ex ample.com", strings.Repeat("a", 65) + "@example.com",
		"user@" + strings.Repeat("a", 64) + ".com"}
	for _, in := range bad {
		if a, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %q, want an error", in, a)
		}
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
