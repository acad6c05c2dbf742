package mailimport

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"yubin/admin"
	"yubin/internal/testutil"
	"yubin/internal/testutil/teststore"
	"yubin/store"
)

const account = "info@example.com"

// newStore is a store with the account, and the admin service over it.
func newStore(t *testing.T, quota int64) (store.Store, *admin.Service) {
	t.Helper()
	st := teststore.New(t, teststore.Options{NoSync: true, Accounts: []store.Account{{Address: account, Quota: quota}}})
	return st, admin.NewService(st, 0)
}

// contents lists every message of the account, one line each, sorted:
// mailbox | flags | internal date (UTC) | Subject | the body's first line.
func contents(t *testing.T, st store.Store) []string {
	t.Helper()
	ctx := t.Context()
	boxes, err := st.Mailboxes(ctx, account)
	testutil.Must(t, err)
	var out []string
	for _, b := range boxes {
		msgs, _, err := st.Messages(ctx, account, b.Name)
		testutil.Must(t, err)
		for _, m := range msgs {
			raw, err := st.ReadMessage(ctx, account, b.Name, m.UID)
			testutil.Must(t, err)
			if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) {
				t.Errorf("%s UID %d has a bare LF", b.Name, m.UID)
			}
			pm, err := mail.ReadMessage(bytes.NewReader(raw))
			testutil.Must(t, err)
			first, _ := bufio.NewReader(pm.Body).ReadString('\n')
			out = append(out, strings.Join([]string{b.Name, strings.Join(m.Flags, " "), m.Date.UTC().Format(time.RFC3339),
				pm.Header.Get("Subject"), strings.TrimRight(first, "\r\n")}, " | "))
		}
	}
	sort.Strings(out)
	return out
}

// readWant reads a case's .want file: "created: A, B" (the mailboxes the
// import makes), "skipped: N" (files of a directory that are not mail)
// and one line per message as contents writes them; # comments.
func readWant(t *testing.T, path string) (created []string, skipped int, msgs []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	testutil.Must(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case line == "", strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "created:"):
			for _, c := range strings.Split(strings.TrimPrefix(line, "created:"), ",") {
				if c = strings.TrimSpace(c); c != "" {
					created = append(created, c)
				}
			}
		case strings.HasPrefix(line, "skipped:"):
			fmt.Sscan(strings.TrimPrefix(line, "skipped:"), &skipped)
		default:
			msgs = append(msgs, line)
		}
	}
	sort.Strings(msgs)
	return created, skipped, msgs
}

func runFiles(t *testing.T, svc admin.API, path string, opts Options) (*Result, error) {
	t.Helper()
	if opts.Address == "" {
		opts.Address = account
	}
	src, err := OpenFiles(path, admin.MaxImportMessage)
	if err != nil {
		return nil, err
	}
	res, err := Run(t.Context(), svc, src, opts)
	if res != nil {
		res.SkippedFiles = src.Skipped
	}
	return res, err
}

// TestFileCases imports each case of testdata — a Maildir, an mbox file or
// a directory of mbox files, beside its NAME.want — and checks what the
// account holds then; a second run imports nothing. A new case is a new
// source and its .want file.
func TestFileCases(t *testing.T) {
	wants, err := filepath.Glob("testdata/*.want")
	testutil.Must(t, err)
	if len(wants) < 3 {
		t.Fatalf("only %d cases", len(wants))
	}
	for _, w := range wants {
		name := strings.TrimSuffix(filepath.Base(w), ".want")
		t.Run(name, func(t *testing.T) {
			st, svc := newStore(t, 0)
			created, skipped, want := readWant(t, w)
			res, err := runFiles(t, svc, filepath.Join("testdata", name), Options{})
			testutil.Must(t, err)
			if got := contents(t, st); !slices.Equal(got, want) {
				t.Errorf("the account holds:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if !slices.Equal(res.Created, created) {
				t.Errorf("created %q, want %q", res.Created, created)
			}
			if len(res.SkippedFiles) != skipped {
				t.Errorf("skipped %q, want %d", res.SkippedFiles, skipped)
			}
			if res.Imported != len(want) || res.Skipped != 0 || res.TooBig != 0 {
				t.Errorf("counts %+v, want %d imported", res.Counts, len(want))
			}
			total := 0
			for _, b := range res.Mailboxes {
				total += b.Messages
				if b.Done() != b.Messages {
					t.Errorf("mailbox %s: %+v of %d", b.Name, b.Counts, b.Messages)
				}
			}
			if total != len(want) {
				t.Errorf("%d messages counted in the source, want %d", total, len(want))
			}
			used := accountUsed(t, st)
			if res.Bytes != used {
				t.Errorf("%d bytes counted, the account uses %d", res.Bytes, used)
			}

			// Twice: nothing more.
			res, err = runFiles(t, svc, filepath.Join("testdata", name), Options{})
			testutil.Must(t, err)
			if res.Imported != 0 || res.Skipped != len(want) || len(res.Created) != 0 {
				t.Errorf("second run: %+v, created %q", res.Counts, res.Created)
			}
			if got := contents(t, st); !slices.Equal(got, want) {
				t.Errorf("after a second run the account holds:\n%s", strings.Join(got, "\n"))
			}
		})
	}
}

func accountUsed(t *testing.T, st store.Store) int64 {
	a, err := st.Account(t.Context(), account)
	testutil.Must(t, err)
	return a.Used
}

// Into puts everything below a mailbox, and is another place: the same
// messages go in again there.
func TestInto(t *testing.T) {
	st, svc := newStore(t, 0)
	res, err := runFiles(t, svc, "testdata/maildir", Options{Into: "Old mail"})
	testutil.Must(t, err)
	got := contents(t, st)
	for _, l := range got {
		if !strings.HasPrefix(l, "Old mail") {
			t.Fatalf("outside Old mail: %s", l)
		}
	}
	if !slices.Contains(res.Created, "Old mail") || !slices.Contains(res.Created, "Old mail/Work/2024") {
		t.Fatalf("created %q", res.Created)
	}
	res, err = runFiles(t, svc, "testdata/maildir", Options{})
	testutil.Must(t, err)
	if res.Imported != len(got) {
		t.Fatalf("imported %d into the top, want %d", res.Imported, len(got))
	}
}

// The quota stops an import with those before stored; with room, the
// same import brings in the rest, nothing twice.
func TestQuotaStop(t *testing.T) {
	st, svc := newStore(t, 0)
	res, err := runFiles(t, svc, "testdata/maildir", Options{})
	testutil.Must(t, err)
	all := contents(t, st)
	size := res.Bytes

	st, svc = newStore(t, size/2)
	var last Status
	res, err = runFiles(t, svc, "testdata/maildir", Options{Progress: func(s Status) { last = s }})
	var full *FullError
	if !errors.As(err, &full) {
		t.Fatalf("over quota: %v", err)
	}
	if res.Imported == 0 || res.Imported >= len(all) || full.Left != len(all)-res.Imported {
		t.Fatalf("imported %d of %d, %d left", res.Imported, len(all), full.Left)
	}
	if full.Full.Quota != size/2 || full.Full.Used != accountUsed(t, st) || full.Full.Used+full.Full.Need <= size/2 {
		t.Fatalf("full: %+v", full.Full)
	}
	if !strings.Contains(err.Error(), "the mailbox of info@example.com is full") {
		t.Fatalf("message: %v", err)
	}
	if last.Imported != res.Imported {
		t.Fatalf("progress said %d imported, the result %d", last.Imported, res.Imported)
	}
	before := contents(t, st)
	if len(before) != res.Imported {
		t.Fatalf("%d messages stored, %d counted", len(before), res.Imported)
	}
	testutil.Must(t, st.SetQuota(t.Context(), account, 0))
	res2, err := runFiles(t, svc, "testdata/maildir", Options{})
	testutil.Must(t, err)
	if res2.Imported != len(all)-res.Imported || res2.Skipped != res.Imported {
		t.Fatalf("the rest: %+v", res2.Counts)
	}
	if got := contents(t, st); !slices.Equal(got, all) {
		t.Fatalf("after the rest:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(all, "\n"))
	}
}

// Messages over MaxMessage are named and left out; the others go in.
func TestTooBig(t *testing.T) {
	st, svc := newStore(t, 0)
	dir := t.TempDir()
	small := "Subject: small\n\nx\n"
	big := "Subject: big\n\n" + strings.Repeat("y", 300) + "\n"
	mbox := "From a@b Mon Jan  1 00:00:00 2024\n" + small + "\nFrom a@b Mon Jan  1 00:00:01 2024\n" + big
	testutil.Must(t, os.WriteFile(filepath.Join(dir, "in"), []byte(mbox), 0o644))
	src, err := OpenFiles(filepath.Join(dir, "in"), 200)
	testutil.Must(t, err)
	res, err := Run(t.Context(), svc, src, Options{Address: account, MaxMessage: 200})
	testutil.Must(t, err)
	if res.Imported != 1 || res.TooBig != 1 || len(res.TooBigFrom) != 1 || !strings.Contains(res.TooBigFrom[0], "in:6") {
		t.Fatalf("%+v %q", res.Counts, res.TooBigFrom)
	}
	if got := contents(t, st); len(got) != 1 || !strings.Contains(got[0], "small") {
		t.Fatalf("%q", got)
	}
}

func TestErrors(t *testing.T) {
	_, svc := newStore(t, 0)
	if _, err := runFiles(t, svc, "testdata/nothing-here", Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing path: %v", err)
	}
	if _, err := runFiles(t, svc, "testdata/maildir", Options{Address: "nobody@example.com"}); !errors.Is(err, store.ErrNoSuchAccount) {
		t.Errorf("unknown account: %v", err)
	}
	// A message that is not mail stops everything before it starts.
	dir := t.TempDir()
	testutil.Must(t, os.MkdirAll(filepath.Join(dir, "cur"), 0o755))
	testutil.Must(t, os.WriteFile(filepath.Join(dir, "cur", "1:2,S"), []byte("Subject: ok\n\nfine\n"), 0o644))
	testutil.Must(t, os.WriteFile(filepath.Join(dir, "cur", "2:2,S"), []byte("this is no mail\n"), 0o644))
	if _, err := OpenFiles(dir, 1<<20); err == nil || !strings.Contains(err.Error(), "not a mail message") {
		t.Errorf("not mail: %v", err)
	}
}

func TestMailboxName(t *testing.T) {
	for in, want := range map[string]string{
		"INBOX":        "INBOX",
		"inbox":        "INBOX",
		"Work/2024":    "Work/2024",
		"a*b/c%d":      "a_b/c_d",
		" pad / x ":    "pad/x",
		"a//b":         "a/b",
		"../x":         "__/x",
		"./x":          "_/x",
		"tab\there":    "tabhere",
		"":             "Imported",
		"/":            "Imported",
		"a\xffb":       "ab",
		"INBOX/INBOX":  "INBOX/INBOX",
		"Entwürfe/日本語": "Entwürfe/日本語",
	} {
		if got := MailboxName(strings.Split(in, "/")); got != want {
			t.Errorf("MailboxName(%q) = %q, want %q", in, got, want)
		}
	}
	long := MailboxName([]string{strings.Repeat("é", 400)})
	if err := store.CheckMailboxName(long); err != nil || len(long) > store.MaxMailboxNameLen {
		t.Errorf("long name: %v (%d bytes)", err, len(long))
	}
	deep := MailboxName(strings.Split(strings.Repeat("a/", 40), "/"))
	if err := store.CheckMailboxName(deep); err != nil {
		t.Errorf("deep name: %v", err)
	}
}

// FuzzImportMailboxName: whatever a source calls its mailboxes, the name made
// of it is one the store takes.
func FuzzImportMailboxName(f *testing.F) {
	f.Add("Work/2024")
	f.Add("a*b/../ c /%")
	f.Add(strings.Repeat("é/", 300))
	f.Fuzz(func(t *testing.T, s string) {
		name := MailboxName(strings.Split(s, "/"))
		if err := store.CheckMailboxName(name); err != nil {
			t.Fatalf("MailboxName(%q) = %q: %v", s, name, err)
		}
	})
}

func TestCRLF(t *testing.T) {
	for in, want := range map[string]string{
		"a\nb\n":      "a\r\nb\r\n",
		"a\r\nb\r\n":  "a\r\nb\r\n",
		"a\r\nb\nc":   "a\r\nb\r\nc",
		"\n":          "\r\n",
		"lone\rcr\n":  "lone\rcr\r\n",
		"no line end": "no line end",
	} {
		if got := string(CRLF([]byte(in))); got != want {
			t.Errorf("CRLF(%q) = %q, want %q", in, got, want)
		}
	}
}
