package mailfiles

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestMaildirFlags(t *testing.T) {
	kw := []string{"$Junk", "", "Work"}
	for name, want := range map[string][]string{
		"1700000000.M1P2.host:2,":                   nil,
		"1700000000.M1P2.host:2,S":                  {`\Seen`},
		"1700000000.M1P2.host,S=123,W=130:2,DFPRST": {`\Draft`, `\Flagged`, "$Forwarded", `\Answered`, `\Seen`, `\Deleted`},
		"1700000000.M1P2.host:2,SS":                 {`\Seen`},
		"1700000000.M1P2.host:2,acS":                {"$Junk", "Work", `\Seen`},
		"1700000000.M1P2.host:2,bz":                 nil, // b has no keyword, z none at all
		"1700000000.M1P2.host":                      nil, // new/: no info
		"1700000000.M1P2.host:1,S":                  nil, // experimental info: not flags
		"1700000000.M1P2.host:2,Sxyz?!":             {`\Seen`},
	} {
		if got := MaildirFlags(name, kw); !slices.Equal(got, want) {
			t.Errorf("MaildirFlags(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestMaildirKeywords(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "dovecot-keywords"), "0 $Junk\n2 Work\nbad line\n3 has space\n30 tooFar\n1 (paren\n")
	if got, want := maildirKeywords(dir), []string{"$Junk", "", "Work"}; !slices.Equal(got, want) {
		t.Fatalf("keywords %q, want %q", got, want)
	}
	if got := maildirKeywords(t.TempDir()); got != nil {
		t.Fatalf("no file: %q", got)
	}
}

func TestMaildirDate(t *testing.T) {
	named := time.Unix(1700000000, 0).UTC()
	older := named.Add(-48 * time.Hour)
	newer := named.Add(48 * time.Hour)
	for _, c := range []struct {
		name  string
		mtime time.Time
		want  time.Time
	}{
		{"1700000000.M1P2.host:2,S", older, older}, // kept by the server: the internal date
		{"1700000000.M1P2.host:2,S", newer, named}, // copied without its times: the name
		{"1700000000.M1P2.host:2,S", time.Time{}, named},
		{"host-without-time:2,S", newer, newer},
		{"0.M1.host:2,S", newer, newer},
		{"", time.Time{}, time.Time{}},
	} {
		if got := MaildirDate(c.name, c.mtime); !got.Equal(c.want) {
			t.Errorf("MaildirDate(%q, %v) = %v, want %v", c.name, c.mtime, got, c.want)
		}
	}
}

func TestFromLineDate(t *testing.T) {
	want := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for line, w := range map[string]time.Time{
		"From alice@example.org Tue Jan  2 03:04:05 2024\n":           want,
		"From alice@example.org Tue Jan 02 03:04:05 2024\r\n":         want,
		"From MAILER-DAEMON Tue Jan  2 03:04:05 2024":                 want,
		"From \"a b\"@example.org Tue Jan  2 03:04:05 2024":           want,
		"From alice@example.org Tue Jan  2 03:04:05 +0900 2024":       want.Add(-9 * time.Hour),
		"From alice@example.org Tue Jan  2 03:04:05 2024 -0100":       want.Add(time.Hour),
		"From alice@example.org Tue Jan  2 03:04 2024":                want.Add(-5 * time.Second),
		"From alice@example.org":                                      {},
		"From alice@example.org yesterday":                            {},
		"Subject: Tue Jan  2 03:04:05 2024":                           {},
		"From alice@example.org Tue Jan  2 03:04:05 2024 and garbage": {},
	} {
		if got := FromLineDate(line); !got.Equal(w) {
			t.Errorf("FromLineDate(%q) = %v, want %v", line, got, w)
		}
	}
}

func TestMboxFlagsAndStrip(t *testing.T) {
	raw := "Subject: hi\r\n" +
		"Status: RO\r\n" +
		"X-Status: AFTD\r\n" +
		"X-Keywords: $Label1, Work\r\n" +
		"  Later \\Seen (bad\r\n" +
		"X-UID: 42\r\n" +
		"status-of-something: kept\r\n" +
		"\r\n" +
		"Status: R in the body is text\r\n"
	got := MboxFlags([]byte(raw))
	if want := []string{`\Seen`, `\Answered`, `\Flagged`, `\Draft`, `\Deleted`, "$Label1", "Work", "Later"}; !slices.Equal(got, want) {
		t.Fatalf("flags %q, want %q", got, want)
	}
	out, pseudo := StripMboxMeta([]byte(raw))
	if want := "Subject: hi\r\nstatus-of-something: kept\r\n\r\nStatus: R in the body is text\r\n"; string(out) != want || pseudo {
		t.Fatalf("stripped %q (pseudo %v), want %q", out, pseudo, want)
	}
	if got := MboxFlags([]byte("Status: O\n\n")); got != nil {
		t.Fatalf("old but unread: %q", got)
	}
	// The message UW IMAP and Dovecot keep first in an mbox.
	_, pseudo = StripMboxMeta([]byte("Date: Mon, 1 Jan 2024 00:00:00 +0000\nSubject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\nX-IMAP: 1700000000 0000000003\nStatus: RO\n\nThis text is part of the internal format of your mail folder.\n"))
	if !pseudo {
		t.Fatal("the pseudo message is not recognised")
	}
	same := []byte("Subject: x\n\nbody\n")
	if out, _ := StripMboxMeta(same); &out[0] != &same[0] {
		t.Fatal("a message without such fields is copied")
	}
}

func TestTree(t *testing.T) {
	// A Maildir with Maildir++ folders.
	md := t.TempDir()
	for _, d := range []string{"cur", "new", "tmp", ".Sent/cur", ".Work.2024/new", ".Entw&APw-rfe/cur", ".INBOX.Lists/cur", ".NotAFolder", "cur-not/cur"} {
		os.MkdirAll(filepath.Join(md, d), 0o755)
	}
	folders, skipped, err := Tree(md)
	if err != nil || skipped != nil {
		t.Fatal(err, skipped)
	}
	if got, want := names(folders), []string{"INBOX", "Entwürfe", "Lists", "Sent", "Work/2024"}; !slices.Equal(got, want) {
		t.Fatalf("Maildir folders %q, want %q", got, want)
	}
	// Only folders, no INBOX of its own.
	only := t.TempDir()
	os.MkdirAll(filepath.Join(only, ".Archive", "cur"), 0o755)
	if folders, _, err := Tree(only); err != nil || !slices.Equal(names(folders), []string{"Archive"}) {
		t.Fatalf("folders only: %q, %v", names(folders), err)
	}
	// A bad folder name says which.
	bad := t.TempDir()
	os.MkdirAll(filepath.Join(bad, ".&Jjo", "cur"), 0o755)
	if _, _, err := Tree(bad); err == nil || !strings.Contains(err.Error(), "modified UTF-7") {
		t.Fatalf("bad UTF-7: %v", err)
	}

	// A directory of mbox files, Thunderbird's layout.
	tb := t.TempDir()
	from := "From a@b Mon Jan  1 00:00:00 2024\nSubject: x\n\nx\n"
	write(t, filepath.Join(tb, "Inbox"), from)
	write(t, filepath.Join(tb, "Inbox.msf"), "// index")
	write(t, filepath.Join(tb, "Trash"), "")
	write(t, filepath.Join(tb, "Work"), from)
	write(t, filepath.Join(tb, "Work.sbd", "2024"), from)
	write(t, filepath.Join(tb, "archive.mbox"), from)
	write(t, filepath.Join(tb, "msgFilterRules.dat"), "version=\"9\"\n")
	write(t, filepath.Join(tb, ".hidden"), from)
	folders, skipped, err = Tree(tb)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(folders), []string{"INBOX", "Trash", "Work", "Work/2024", "archive"}; !slices.Equal(got, want) {
		t.Fatalf("mbox folders %q, want %q", got, want)
	}
	if len(skipped) != 3 || !strings.Contains(strings.Join(skipped, "\n"), "msgFilterRules.dat: not an mbox file") {
		t.Fatalf("skipped %q", skipped)
	}
	if !folders[1].Source.Empty() || folders[0].Source.Empty() {
		t.Fatal("Empty is wrong")
	}
	// One mbox file is INBOX; a file that is not one is an error.
	if folders, _, err := Tree(filepath.Join(tb, "Work")); err != nil || !slices.Equal(names(folders), []string{"INBOX"}) {
		t.Fatalf("one mbox file: %q, %v", names(folders), err)
	}
	if _, _, err := Tree(filepath.Join(tb, "msgFilterRules.dat")); err == nil || !strings.Contains(err.Error(), "not an mbox file") {
		t.Fatalf("not an mbox: %v", err)
	}
	if _, _, err := Tree(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no mail here") {
		t.Fatalf("empty dir: %v", err)
	}
}

func names(fs []Folder) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Name)
	}
	return out
}

func TestMboxMessageMeta(t *testing.T) {
	dir := t.TempDir()
	mbox := write(t, filepath.Join(dir, "m"), "From a@b Tue Jan  2 03:04:05 2024\nStatus: RO\nSubject: one\n\n1\n\nFrom a@b Wed Jan  3 03:04:05 2024\nSubject: two\n\n22\n")
	msgs, err := read(t, mbox, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || !slices.Equal(msgs[0].Flags, []string{`\Seen`}) || msgs[1].Flags != nil ||
		!msgs[0].Date.Equal(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)) || !msgs[1].Date.Equal(time.Date(2024, 1, 3, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("%+v", msgs)
	}
	// Size is the whole message's, beyond Max.
	if msgs[0].Size != int64(len("Status: RO\nSubject: one\n\n1\n")) || len(msgs[0].Raw) != 10 || msgs[1].Size != int64(len("Subject: two\n\n22\n")) {
		t.Fatalf("sizes %d (%d read), %d", msgs[0].Size, len(msgs[0].Raw), msgs[1].Size)
	}
	md := t.TempDir()
	p := write(t, filepath.Join(md, "cur", "1700000000.M1.h:2,FS"), "Subject: m\n\nbody\n")
	old := time.Date(2010, 5, 6, 7, 8, 9, 0, time.UTC)
	os.Chtimes(p, old, old)
	msgs, err = read(t, md, 0)
	if err != nil || len(msgs) != 1 || !slices.Equal(msgs[0].Flags, []string{`\Flagged`, `\Seen`}) || !msgs[0].Date.Equal(old) || msgs[0].Size != 17 {
		t.Fatalf("%+v, %v", msgs, err)
	}
}

func TestDecodeMUTF7(t *testing.T) {
	for in, want := range map[string]string{
		"Entw&APw-rfe":    "Entwürfe",
		"&ZeVnLIqe-":      "日本語",
		"a&-b":            "a&b",
		"plain":           "plain",
		"&2D3eAA-":        "\U0001f600",
		"ü already UTF-8": "ü already UTF-8",
	} {
		if got, err := DecodeMUTF7(in); got != want || err != nil {
			t.Errorf("DecodeMUTF7(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"&", "&Jjo", "&APw", "&AGE-", "&2D0-", "&!!-", "\xff"} {
		if got, err := DecodeMUTF7(in); err == nil && in != "&AGE-" {
			t.Errorf("DecodeMUTF7(%q) = %q, want an error", in, got)
		}
	}
}

// FuzzMboxMeta: flags and the stripping of mbox bookkeeping fields on any
// bytes: no panic, the body is never touched, only whole header lines go,
// and nothing of what is left is such a field.
func FuzzMboxMeta(f *testing.F) {
	f.Add([]byte("Status: RO\nX-Status: A\nSubject: x\n\nStatus: body\n"))
	f.Add([]byte("X-Keywords: a, b\n c\n\n"))
	f.Add([]byte("X-IMAP: 1 2\r\nx-uid: 5\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, fl := range MboxFlags(raw) {
			if fl == "" || strings.ContainsAny(fl, " (){%*\"]") {
				t.Fatalf("flag %q", fl)
			}
		}
		out, _ := StripMboxMeta(raw)
		if len(out) > len(raw) {
			t.Fatal("grew")
		}
		if bytes.Equal(out, raw) {
			return
		}
		// What is left is raw with some lines removed, and the body
		// (from the first empty line) is intact.
		if i := bytes.Index(raw, []byte("\n\n")); i >= 0 && !bytes.HasSuffix(out, raw[i+1:]) {
			if j := bytes.Index(raw, []byte("\n\r\n")); j < 0 || j > i {
				t.Fatalf("body changed:\n%q\n%q", raw, out)
			}
		}
		eachField(out, func(name string, _ []byte, _, _ int) {
			for _, m := range mboxMetaFields {
				if name == m {
					t.Fatalf("%s left in %q", name, out)
				}
			}
		})
	})
}

// FuzzMaildirName: flags, the date and folder names from any file name.
func FuzzMaildirName(f *testing.F) {
	f.Add("1700000000.M1P2.host,S=12:2,DFPRSTab")
	f.Add(".Entw&APw-rfe.Sub")
	f.Fuzz(func(t *testing.T, name string) {
		for _, fl := range MaildirFlags(name, []string{"$Junk", "Work"}) {
			if fl == "" {
				t.Fatal("empty flag")
			}
		}
		MaildirDate(name, time.Now())
		if n, err := maildirFolderName(name); err == nil && !utf8.ValidString(n) {
			t.Fatalf("folder name %q is not UTF-8", n)
		}
		FromLineDate("From " + name)
	})
}
