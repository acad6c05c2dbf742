package pop3d

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	for line, want := range map[string]command{
		"USER info@example.com":                  {name: "USER", args: []string{"info@example.com"}},
		"pass secret with space":                 {name: "PASS", args: []string{"secret with space"}},
		"LIST":                                   {name: "LIST"},
		"list 3 ":                                {name: "LIST", args: []string{"3"}},
		"TOP 1 10":                               {name: "TOP", args: []string{"1", "10"}},
		"AUTH PLAIN " + strings.Repeat("A", 100): {name: "AUTH", args: []string{"PLAIN", strings.Repeat("A", 100)}},
	} {
		got, err := parseCommand(line)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("parseCommand(%q) = %+v, %v; want %+v", line, got, err, want)
		}
	}
	for _, line := range []string{"", "  ", "X", "TOOLONG", "RE1R 1", "LIST " + strings.Repeat("9", 41), strings.Repeat("A", 256), "LIST\x001"} {
		if got, err := parseCommand(line); err == nil {
			t.Errorf("parseCommand(%q) = %+v, want error", line, got)
		}
	}
	for s, want := range map[string]int{"1": 1, "42": 42, "0": 0, "01": 0, "-1": 0, "x": 0, "99999999999": 0} {
		n, ok := parseMsgNum(s)
		if (want == 0) == ok || n != want && ok {
			t.Errorf("parseMsgNum(%q) = %d, %v", s, n, ok)
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"USER a@b.c", "PASS x y", "LIST 1", "TOP 1 0", "AUTH PLAIN =", "CAPA", "\x00", "RETR 4294967296"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmd, err := parseCommand(line)
		if err != nil {
			return
		}
		if len(cmd.name) < 3 || len(cmd.name) > 4 || strings.ToUpper(cmd.name) != cmd.name {
			t.Fatalf("bad keyword %q from %q", cmd.name, line)
		}
		for _, a := range cmd.args {
			if a == "" || strings.ContainsAny(a, "\r\n\x00") {
				t.Fatalf("bad argument %q from %q", a, line)
			}
		}
		for _, a := range cmd.args {
			if n, ok := parseMsgNum(a); ok && n <= 0 {
				t.Fatalf("message number %d from %q", n, a)
			}
		}
	})
}
