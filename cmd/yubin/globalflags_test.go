package main

import (
	"slices"
	"strings"
	"testing"
)

func TestHoistGlobalFlags(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{in: "domain add x", want: "domain add x"},
		{in: "--config F domain add x", want: "domain add x --config F"},
		{in: "-config F --data=D --json domain list", want: "domain list -config F --data=D --json"},
		{in: "domain --data D add x --parent p", want: "domain add x --parent p --data D"},
		{in: "--json account add a@b -- --config", want: "account add a@b --json -- --config"},
		{in: "account quota a@b -1 --data D", want: "account quota a@b -1 --data D"},
		{in: "--help", want: "--help"},
		{in: "--config F --help", want: "--help --config F"},
		{in: "", want: ""},
		{in: "--confg F domain list", err: "unknown flag --confg (did you mean --config?)"},
		{in: "--jsn domain list", err: "unknown flag --jsn (did you mean --json?)"},
		{in: "--verbose domain list", err: "unknown flag --verbose; before the command"},
		{in: "domain list --data", err: "flag needs an argument: --data"},
	} {
		got, err := hoistGlobalFlags(strings.Fields(c.in))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || strings.Join(got, " ") != c.want {
			t.Errorf("%q: %q %v, want %q", c.in, strings.Join(got, " "), err, c.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"config", "config", 0}, {"confg", "config", 1}, {"dta", "data", 1}, {"jsno", "json", 2}, {"x", "data", 4}} {
		if got := editDistance(c.a, c.b); got != c.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.d)
		}
	}
}

// FuzzHoistGlobalFlags: whatever the arguments, the result is the same
// words (a permutation), the words not moved keep their order, the moved
// ones come after them and in their order, and hoisting again changes
// nothing.
func FuzzHoistGlobalFlags(f *testing.F) {
	for _, s := range []string{"--config F domain add x", "domain --data=D add -- --json", "--confg x", "a --json -- b --data c", "-data", "--=x", "- -- ---x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Split(s, " ")
		out, err := hoistGlobalFlags(args)
		if err != nil {
			return
		}
		a, b := slices.Clone(args), slices.Clone(out)
		slices.Sort(a)
		slices.Sort(b)
		if !slices.Equal(a, b) {
			t.Fatalf("%q → %q: not the same words", args, out)
		}
		again, err := hoistGlobalFlags(out)
		if err != nil || !slices.Equal(again, out) {
			t.Fatalf("%q → %q → %q %v: not stable", args, out, again, err)
		}
		// The words before "--" that are not global flags or their values
		// keep their order and come first.
		var kept []string
		for i := 0; i < len(args) && args[i] != "--"; i++ {
			name, hasValue, ok := flagName(args[i])
			takes, global := globalFlags[name]
			if ok && global {
				if takes && !hasValue {
					i++
				}
				continue
			}
			kept = append(kept, args[i])
		}
		if len(out) < len(kept) || !slices.Equal(out[:len(kept)], kept) {
			t.Fatalf("%q → %q: the other words %q are not first, in order", args, out, kept)
		}
	})
}
