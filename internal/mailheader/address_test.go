package mailheader

import (
	"fmt"
	"testing"
)

func TestParseAddressList(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"undisclosed-recipients:;", `[{ "undisclosed-recipients" } { "" }]`},
		{"Team: b@x, \"C, D\" <c@y>;, e@z", `[{ "Team" } { b x} {C, D c y} { "" } { e z}]`},
		{"group:;, group2: (foo) ;", `[{ "group" } { "" } { "group2" } { "" }]`},
		{"open: a@b", `[{ "open" } { a b} { "" }]`},
		{"user@domain (Real Name)", `[{Real Name user domain}]`},
		{"<@a.example, @b.example:user@domain>", `[{@a.example,@b.example user domain}]`},
		{"a@b,\r\n c@d, broken, <@>, e@", `[{ a b} { c d}]`},
		{"\"a@b\"@c", `[{ a@b c}]`},
		// An encoded word is no encoded word in a quoted string (RFC 2047 5).
		{"=?UTF-8?B?SsO8cmdlbg==?= <j@x>, \"=?ISO-8859-1?Q?Fran=E7ois?=\" <f@y>", `[{Jürgen j x} {=?ISO-8859-1?Q?Fran=E7ois?= f y}]`},
		{"=?UTF-8?Q?Gr=C3=BCppe?=: g@x;", `[{ "Grüppe" } { g x} { "" }]`},
		{":;, x", `[]`},
	} {
		var got []string
		for _, a := range parseAddressList(c.in) {
			if a.Host == "" {
				got = append(got, fmt.Sprintf("{%s %q %s}", a.Route, a.Mailbox, a.Host))
				continue
			}
			got = append(got, fmt.Sprintf("{%s%s %s %s}", a.Name, a.Route, a.Mailbox, a.Host))
		}
		if s := fmt.Sprint(got); s != c.want && !(len(got) == 0 && c.want == "[]") {
			t.Errorf("%q:\n got %s\nwant %s", c.in, s, c.want)
		}
	}
}

// FuzzParseAddressList: any value gives mailboxes with a local part and a
// domain, and groups that open before they close, one at a time.
func FuzzParseAddressList(f *testing.F) {
	for _, s := range []string{"a@b", "G: a@b, c@d;", "\"x\" <@r:a@b> (c)", "a:b:c;;", "((a)", "\"\\\"", "<a@b", "[x]@y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		open := false
		for _, a := range parseAddressList(v) {
			switch {
			case a.IsGroupStart():
				if open || a.Name != "" {
					t.Fatalf("%q: group start %+v", v, a)
				}
				open = true
			case a.IsGroupEnd():
				if !open || a.Name != "" || a.Route != "" {
					t.Fatalf("%q: group end %+v", v, a)
				}
				open = false
			case a.Mailbox == "":
				t.Fatalf("%q: %+v", v, a)
			}
		}
		if open {
			t.Fatalf("%q: group left open", v)
		}
	})
}
