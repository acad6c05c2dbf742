package imapwire

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
)

func newTestReader(in string, limits Limits) (*Reader, *int) {
	conts := 0
	r := NewReader(bufio.NewReaderSize(strings.NewReader(in), 64), limits)
	r.Continue = func() error { conts++; return nil }
	return r, &conts
}

// A command with every kind of element, literals of each kind among them.
func TestReaderElements(t *testing.T) {
	in := "a1 LOGIN {5}\r\nalice \"pa\\\"ss\\\\\" (\\Seen $Junk) 1:*,3,7:5 NIL {3+}\r\nxyz ~{2}\r\n\x00\x01\r\n"
	r, conts := newTestReader(in, Limits{})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.Begin())
	tag, err := r.Tag()
	must(err)
	must(r.SP())
	cmd, err := r.Atom()
	must(err)
	must(r.SP())
	user, err := r.AString()
	must(err)
	must(r.SP())
	pass, err := r.AString()
	must(err)
	must(r.SP())
	var flags []string
	must(r.List(func() error {
		f, err := r.Flag()
		flags = append(flags, f)
		return err
	}))
	must(r.SP())
	set, err := r.NumSet()
	must(err)
	must(r.SP())
	_, ok, err := r.NString()
	must(err)
	must(r.SP())
	lit, err := r.String()
	must(err)
	must(r.SP())
	l, rd, err := r.LiteralReader()
	must(err)
	b, err := io.ReadAll(rd)
	must(err)
	must(r.EndLiteral())
	must(r.End())
	got := []any{tag, cmd, user, pass, strings.Join(flags, ","), set.String(), ok, lit, l.Binary, string(b), *conts}
	want := []any{"a1", "LOGIN", "alice", `pa"ss\`, `\Seen,$Junk`, "1:*,3,5:7", false, "xyz", true, "\x00\x01", 2}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("element %d: %#v, want %#v", i, got[i], want[i])
		}
	}
	if err := r.Begin(); err != io.EOF {
		t.Errorf("after the command: %v, want EOF", err)
	}
}

func TestReaderErrors(t *testing.T) {
	for _, c := range []struct {
		in, want string
		parse    func(r *Reader) error
	}{
		{"a create \"imaptest\r\n", `missing '"'`, func(r *Reader) error {
			r.Tag()
			r.SP()
			r.Atom()
			r.SP()
			_, err := r.AString()
			return err
		}},
		{"a fetch 0 flags\r\n", "0 is not a valid", func(r *Reader) error {
			r.Tag()
			r.SP()
			r.Atom()
			r.SP()
			_, err := r.NumSet()
			return err
		}},
		{"a fetch 99999999999 flags\r\n", "out of range", func(r *Reader) error {
			r.Tag()
			r.SP()
			r.Atom()
			r.SP()
			_, err := r.NumSet()
			return err
		}},
		{"a noop extra\r\n", "expected end of command", func(r *Reader) error { r.Tag(); r.SP(); r.Atom(); return r.End() }},
		{"a select\r\n", "expected space, got end", func(r *Reader) error { r.Tag(); r.SP(); r.Atom(); return r.SP() }},
		{"a x \"\\a\"\r\n", `bad escape`, func(r *Reader) error {
			r.Tag()
			r.SP()
			r.Atom()
			r.SP()
			_, err := r.Quoted()
			return err
		}},
	} {
		r, _ := newTestReader(c.in+"b NOOP\r\n", Limits{})
		if err := r.Begin(); err != nil {
			t.Fatal(err)
		}
		err := c.parse(r)
		var se *SyntaxError
		if !errors.As(err, &se) || !strings.Contains(se.Msg, c.want) {
			t.Errorf("%q: %v, want a syntax error with %q", c.in, err, c.want)
		}
		// The connection stays usable: the next command parses.
		r.Discard()
		if err := r.Begin(); err != nil {
			t.Fatalf("%q: next command: %v", c.in, err)
		}
		if tag, _ := r.Tag(); tag != "b" {
			t.Errorf("%q: next tag %q, want b", c.in, tag)
		}
	}
}

// A refused command's non-synchronizing literals are dropped with it; a
// synchronizing one is never sent without a continuation, so it is not
// waited for.
func TestReaderDiscard(t *testing.T) {
	r, conts := newTestReader("a APPEND x {5+}\r\nhello {3+}\r\nabc\r\nb APPEND y {100}\r\nc NOOP\r\n", Limits{})
	for _, want := range []string{"a", "b", "c"} {
		if err := r.Begin(); err != nil {
			t.Fatal(err)
		}
		if tag, _ := r.Tag(); tag != want {
			t.Fatalf("tag %q, want %q", tag, want)
		}
		r.Discard()
	}
	if *conts != 0 {
		t.Errorf("%d continuations sent", *conts)
	}
}

func TestReaderLimits(t *testing.T) {
	long := strings.Repeat("x", 300)
	r, _ := newTestReader("a "+long+" {4+}\r\nabcd more\r\nb "+long+"\r\nc NOOP {2}\r\n", Limits{MaxLine: 100, MaxLiteral: 1})
	if err := r.Begin(); err != ErrTooLong {
		t.Fatalf("long line: %v", err)
	}
	if err := r.Begin(); err != ErrTooLong {
		t.Fatalf("second long line: %v", err)
	}
	if err := r.Begin(); err != nil {
		t.Fatal(err)
	}
	r.Tag()
	r.SP()
	r.Atom()
	r.SP()
	var tb *TooBigError
	if _, err := r.Literal(); !errors.As(err, &tb) || tb.Size != 2 {
		t.Errorf("big literal: %v", err)
	}
}

func TestAnnounced(t *testing.T) {
	for in, want := range map[string]string{
		"x {12}": "12 sync", "x {0+}": "0 nosync", "x ~{7}": "7 sync binary",
		"x {}": "none", "x {+}": "none", "x {-1}": "none", "x {1a}": "none", "x 12}": "none", "{99999999999999999999}": "none",
	} {
		l, _, ok := announced([]byte(in))
		got := "none"
		if ok {
			got = strings.TrimSpace(strings.Join([]string{strconv.FormatInt(l.Size, 10), map[bool]string{true: "sync", false: "nosync"}[l.Sync], map[bool]string{true: "binary"}[l.Binary]}, " "))
		}
		if got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
	}
}

func TestNumSet(t *testing.T) {
	r, _ := newTestReader("1,3:5,9:*,*:2\r\n", Limits{})
	r.Begin()
	s, err := r.NumSet()
	if err != nil {
		t.Fatal(err)
	}
	for n, want := range map[uint32]bool{1: true, 2: true, 3: true, 6: true, 9: true, 12: true} {
		if s.Contains(n, 12) != want {
			t.Errorf("%d in %s (star 12): %v", n, s, !want)
		}
	}
	if got := Compact([]uint32{1, 2, 3, 5, 7, 8}); got != "1:3,5,7:8" {
		t.Errorf("Compact: %s", got)
	}
}

func FuzzReader(f *testing.F) {
	f.Add("a1 LOGIN {5}\r\nalice \"x\"\r\n")
	f.Add("a FETCH 1:*,3 (FLAGS BODY[HEADER.FIELDS (From)])\r\n")
	f.Add("a APPEND x {5+}\r\nhello ~{2}\r\nab\r\n")
	f.Add("a create \"imaptest\r\nb noop\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		r, _ := newTestReader(in, Limits{MaxLine: 200, MaxLiteral: 100, MaxCommand: 400})
		for i := 0; i < 50; i++ {
			if err := r.Begin(); err != nil && err != ErrTooLong {
				return
			}
			// Parse whatever comes as astrings, lists and sets.
			for j := 0; j < 20 && !r.AtEnd(); j++ {
				var err error
				switch r.Peek() {
				case '(':
					err = r.List(func() error { _, err := r.AString(); return err })
				case '1', '2', '*', '$':
					_, err = r.NumSet()
				case ' ':
					err = r.SP()
				default:
					_, err = r.AString()
				}
				if err != nil {
					break
				}
			}
			r.Discard()
		}
	})
}
