package mailfiles

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func write(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// read returns the messages of path, or the error.
func read(t *testing.T, path string, max int) ([]Message, error) {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		return nil, err
	}
	s.Max = max
	var out []Message
	err = s.Each(func(m Message) error {
		m.Raw = bytes.Clone(m.Raw)
		out = append(out, m)
		return nil
	})
	return out, err
}

func raws(ms []Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, string(m.Raw))
	}
	return out
}

func TestMbox(t *testing.T) {
	dir := t.TempDir()
	mbox := write(t, filepath.Join(dir, "in.mbox"), ""+
		"From alice@example.org Mon Jan  1 00:00:00 2024\n"+
		"Subject: one\n"+
		"\n"+
		">From the start, quoted once\n"+
		">>From quoted twice\n"+
		"> From is not a From_ line\n"+
		"From: is a header-like body line, not a separator? no: it begins with \"From:\", not \"From \"\n"+
		"\n"+
		"\n"+
		"From bob@example.org Mon Jan  1 00:00:01 2024\n"+
		"Subject: two\n"+
		"\n"+
		"body two\n"+
		"\n")
	ms, err := read(t, mbox, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Subject: one\n\nFrom the start, quoted once\n>From quoted twice\n> From is not a From_ line\n" +
			"From: is a header-like body line, not a separator? no: it begins with \"From:\", not \"From \"\n\n",
		"Subject: two\n\nbody two\n",
	}
	if got := raws(ms); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("messages:\n%q\nwant\n%q", got, want)
	}
	if ms[0].Where != mbox+":1" || ms[1].Where != mbox+":10" {
		t.Errorf("where: %q %q", ms[0].Where, ms[1].Where)
	}
}

func TestMboxCRLFAndLongLines(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("x", 200<<10) // longer than the reader's buffer
	mbox := write(t, filepath.Join(dir, "crlf.mbox"), ""+
		"From a "+long+"\r\n"+
		"Subject: crlf\r\n\r\n"+long+"From not a separator (inside a line)\r\n"+
		">From quoted\r\n"+
		"\r\n"+
		"From b\r\n"+
		"Subject: last\r\n\r\nend\r\n")
	ms, err := read(t, mbox, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Subject: crlf\r\n\r\n" + long + "From not a separator (inside a line)\r\nFrom quoted\r\n",
		"Subject: last\r\n\r\nend\r\n",
	}
	if got := raws(ms); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %d messages, %q...", len(got), strings.Join(got, "|")[:min(200, len(strings.Join(got, "|")))])
	}
	// Max keeps the first bytes of each message.
	ms, err = read(t, mbox, 10)
	if err != nil || len(ms) != 2 || string(ms[0].Raw) != "Subject: c" || string(ms[1].Raw) != "Subject: l" {
		t.Fatalf("with Max 10: %q, %v", raws(ms), err)
	}
}

func TestMaildirAndDirectory(t *testing.T) {
	dir := t.TempDir()
	md := filepath.Join(dir, "Maildir")
	write(t, filepath.Join(md, "cur", "2:2,S"), "Subject: cur b\r\n\r\nb\r\n")
	write(t, filepath.Join(md, "cur", "1:2,S"), "Subject: cur a\r\n\r\na\r\n")
	write(t, filepath.Join(md, "new", "3"), "Subject: new\r\n\r\nn\r\n")
	write(t, filepath.Join(md, "tmp", "4"), "not read: tmp is being written")
	write(t, filepath.Join(md, "cur", ".hidden"), "not read either")
	ms, err := read(t, md, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(raws(ms), ""); got != "Subject: cur a\r\n\r\na\r\nSubject: cur b\r\n\r\nb\r\nSubject: new\r\n\r\nn\r\n" {
		t.Fatalf("Maildir: %q", got)
	}
	if s, _ := Open(md); s.Kind != Maildir {
		t.Errorf("kind %s", s.Kind)
	}

	// A directory of files, as the SpamAssassin corpus: From_ line dropped.
	corpus := filepath.Join(dir, "corpus")
	write(t, filepath.Join(corpus, "0001.abc"), "From x@example.org  Thu Aug 22 13:17:22 2002\nReturn-Path: <x@example.org>\nSubject: one\n\nbody\nFrom here on not a separator\n")
	write(t, filepath.Join(corpus, "0002.def"), "Subject: two\n\nbody\n")
	write(t, filepath.Join(corpus, "sub", "0003"), "Subject: in a subdirectory: skipped\n\n")
	ms, err = read(t, corpus, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := raws(ms); len(got) != 2 || got[0] != "Return-Path: <x@example.org>\nSubject: one\n\nbody\nFrom here on not a separator\n" || got[1] != "Subject: two\n\nbody\n" {
		t.Fatalf("directory: %q", got)
	}
	if s, _ := Open(corpus); s.Kind != Dir {
		t.Errorf("kind %s", s.Kind)
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]struct {
		path string
		want string
	}{
		"missing":       {filepath.Join(dir, "nope"), `nope: no such file or directory`},
		"empty file":    {write(t, filepath.Join(dir, "empty.mbox"), ""), `empty.mbox: empty: no messages`},
		"not an mbox":   {write(t, filepath.Join(dir, "text.mbox"), "Hello,\nthis is a letter.\n"), `text.mbox: not an mbox file: it does not begin with a "From " line \("Hello,"\)`},
		"eml as mbox":   {write(t, filepath.Join(dir, "one.eml"), "Subject: a single message\n\nhi\n"), `one.eml: not an mbox file`},
		"not mail":      {write(t, filepath.Join(dir, "junk.mbox"), "From x\nhello world\n\nFrom y\nSubject: ok\n\n"), `junk.mbox:1: not a mail message \(its first line is not a header field: "hello world"\)`},
		"empty message": {write(t, filepath.Join(dir, "hollow.mbox"), "From x\nSubject: ok\n\nFrom y\n\n"), `hollow.mbox:4: an empty message`},
		"empty dir":     {filepath.Join(dir, "emptydir"), `emptydir: no messages \(give an mbox file, a Maildir`},
		"empty Maildir": {filepath.Join(dir, "md"), `md: no messages in its cur/ and new/`},
		"file not mail": {filepath.Dir(write(t, filepath.Join(dir, "files", "a"), "%PDF-1.4\n")), `files/a: not a mail message`},
	} {
		t.Run(name, func(t *testing.T) {
			os.MkdirAll(filepath.Join(dir, "emptydir"), 0o755)
			os.MkdirAll(filepath.Join(dir, "md", "new"), 0o755)
			ms, err := read(t, c.path, 0)
			if err == nil || !regexp.MustCompile(c.want).MatchString(err.Error()) {
				t.Fatalf("got %d messages, error %v; want %s", len(ms), err, c.want)
			}
		})
	}
}

// mboxrd writes messages as an mbox (mboxrd quoting), as mail programs do.
func mboxrd(msgs []string) []byte {
	var b bytes.Buffer
	for _, m := range msgs {
		b.WriteString("From sender@example.org Mon Jan  1 00:00:00 2024\n")
		for _, line := range strings.SplitAfter(m, "\n") {
			if isQuotedFrom(append([]byte(">"), line...)) {
				b.WriteByte('>')
			}
			b.WriteString(line)
		}
		if !strings.HasSuffix(m, "\n") {
			b.WriteByte('\n')
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// FuzzMbox: what a writer quoted comes back as written, and nothing makes
// the reader fail other than with an error.
func FuzzMbox(f *testing.F) {
	f.Add("Subject: a\n\nFrom me\n>From you\n", "Subject: b\n\n\n\n")
	f.Add("X: y\r\n\r\nFrom \r\n", "Subject: c\n\n>>>From x")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, a, b string) {
		path := filepath.Join(dir, "f.mbox")
		msgs := []string{"Subject: fixed\n\n" + a, "Subject: fixed\n\n" + b}
		if err := os.WriteFile(path, mboxrd(msgs), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := read(t, path, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := range msgs {
			if !strings.HasSuffix(msgs[i], "\n") {
				msgs[i] += "\n"
			}
		}
		if strings.Join(raws(got), "\x00") != strings.Join(msgs, "\x00") {
			t.Fatalf("round trip:\n%q\nwant\n%q", raws(got), msgs)
		}
		// Arbitrary bytes: messages or an error, never a panic.
		os.WriteFile(path, []byte("From "+a+b), 0o644)
		read(t, path, 0)
	})
}
