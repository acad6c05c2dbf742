package imapd

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2/imapserver"
)

var listCases = []struct {
	name, ref, pattern string
}{
	{"INBOX", "", "*"}, {"INBOX", "", "%"}, {"a/b/c", "", "%"}, {"a/b/c", "", "a/%"}, {"a/b/c", "", "a/*"},
	{"a/b/c", "a", "%"}, {"a/b/c", "a/", "b/%"}, {"a/b/c", "", "/a/*"}, {"Archive/2024", "", "*2024"},
	{"Archive/2024", "", "%2024"}, {"x", "", ""}, {"", "", ""}, {"日本/語", "", "日本/%"}, {"a%b", "", "a%b"},
	{"abc", "", "a*c*"}, {"abc", "", "*b"}, {"a/b", "", "*%"}, {"a/b", "", "%*"},
}

// listMatch agrees with the library's matcher.
func TestListMatch(t *testing.T) {
	for _, c := range listCases {
		want := imapserver.MatchList(c.name, '/', c.ref, c.pattern)
		if got := listMatch(c.name, c.ref, c.pattern); got != want {
			t.Errorf("listMatch(%q, %q, %q) = %v, library says %v", c.name, c.ref, c.pattern, got, want)
		}
	}
	// The pattern that made the library backtrack for minutes: here it is
	// a 30×60 table, done before the test could notice.
	name := strings.Repeat("a", 60)
	if listMatch(name, "", strings.Repeat("%", 30)+"z") {
		t.Error("matched a name without z")
	}
}

func FuzzListMatch(f *testing.F) {
	for _, c := range listCases {
		f.Add(c.name, c.ref, c.pattern)
	}
	f.Fuzz(func(t *testing.T, name, ref, pattern string) {
		if len(name) > 64 || len(pattern) > 16 || strings.Count(pattern, "*")+strings.Count(pattern, "%") > 6 {
			return // keep the library's backtracking matcher quick
		}
		if got, want := listMatch(name, ref, pattern), imapserver.MatchList(name, '/', ref, pattern); got != want {
			t.Fatalf("listMatch(%q, %q, %q) = %v, library says %v", name, ref, pattern, got, want)
		}
	})
}
