package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"yubin/internal/testutil"
	"yubin/store"
)

// Import: messages brought in under keys, at most once per key and account.
var importTests = []test{
	{"import", testImport},
	{"import twice", testImportTwice},
	{"import stops at the quota", testImportQuota},
	{"import errors", testImportErrors},
	{"import keys per account", testImportKeysPerAccount},
	{"import concurrently", testImportConcurrent},
}

// importMsg is a small message to import under key.
func importMsg(key, box string) store.ImportMessage {
	return store.ImportMessage{Key: key, Mailbox: box, Message: []byte("Subject: " + key + "\r\n\r\nbody of " + key + "\r\n")}
}

func (e *env) imported(account string, keys ...string) []bool {
	e.t.Helper()
	got, err := e.s.Imported(e.t.Context(), account, keys)
	testutil.Must(e.t, err)
	return got
}

func testImport(t *testing.T, e *env) {
	ctx := t.Context()
	_, err := e.s.CreateMailbox(ctx, info, "Old/2019")
	testutil.Must(t, err)
	date := time.Date(2019, 3, 4, 5, 6, 7, 0, time.FixedZone("", -5*3600))
	msgs := []store.ImportMessage{
		{Key: "k1", Mailbox: "inbox", Flags: []string{`\seen`, "$Forwarded"}, Date: date, Message: []byte("Subject: one\r\n\r\n1\r\n")},
		{Key: "k2", Mailbox: "Old/2019", Flags: []string{`\Answered`, `\Flagged`, `\Draft`, `\Deleted`}, Date: date.Add(time.Hour), Message: []byte("Subject: two\r\n\r\n22\r\n")},
		{Key: "k3", Message: []byte("Subject: three\r\n\r\n333\r\n")}, // INBOX, now, no flags
	}
	res, err := e.s.Import(ctx, info, msgs)
	testutil.Must(t, err)
	if want := (store.ImportResult{Imported: 3, Bytes: 19 + 20 + 23}); res != want {
		t.Fatalf("Import = %+v, want %+v", res, want)
	}
	if got := e.imported(info, "k1", "k2", "k3", "k4"); !slices.Equal(got, []bool{true, true, true, false}) {
		t.Fatalf("Imported = %v", got)
	}
	inbox, _, err := e.s.Messages(ctx, info, "INBOX")
	testutil.Must(t, err)
	if len(inbox) != 2 || !inbox[0].Date.Equal(date) || !slices.Equal(inbox[0].Flags, []string{"$Forwarded", `\Seen`}) ||
		!inbox[1].Date.Equal(start) || len(inbox[1].Flags) != 0 || inbox[0].HeaderSize != 16 {
		t.Fatalf("INBOX after import: %+v", inbox)
	}
	old, _, err := e.s.Messages(ctx, info, "Old/2019")
	testutil.Must(t, err)
	if len(old) != 1 || !old[0].Date.Equal(date.Add(time.Hour)) || !slices.Equal(old[0].Flags, []string{`\Answered`, `\Deleted`, `\Draft`, `\Flagged`}) {
		t.Fatalf("Old/2019 after import: %+v", old)
	}
	if raw := e.read(info, "Old/2019", old[0].UID); string(raw) != string(msgs[1].Message) {
		t.Fatalf("read back %q", raw)
	}
	if a := e.account(info); a.Used != res.Bytes {
		t.Fatalf("usage %d, want %d", a.Used, res.Bytes)
	}
	// Expunging an imported message does not forget its key.
	_, err = e.s.Expunge(ctx, info, "INBOX", []uint32{inbox[0].UID})
	testutil.Must(t, err)
	res, err = e.s.Import(ctx, info, msgs[:1])
	testutil.Must(t, err)
	if res != (store.ImportResult{Skipped: 1}) {
		t.Fatalf("import of an expunged message again: %+v", res)
	}
	// Keys survive a restart.
	e.restart()
	if got := e.imported(info, "k1", "k2", "k3"); !slices.Equal(got, []bool{true, true, true}) {
		t.Fatalf("Imported after a restart = %v", got)
	}
}

func testImportTwice(t *testing.T, e *env) {
	ctx := t.Context()
	var msgs []store.ImportMessage
	for i := range 5 {
		msgs = append(msgs, importMsg(fmt.Sprint("key", i), ""))
	}
	// The same key twice in one call: the second is skipped.
	first := append(slices.Clone(msgs[:3]), importMsg("key1", "Sent"))
	res, err := e.s.Import(ctx, info, first)
	testutil.Must(t, err)
	if res.Imported != 3 || res.Skipped != 1 {
		t.Fatalf("first import: %+v", res)
	}
	res, err = e.s.Import(ctx, info, msgs)
	testutil.Must(t, err)
	if res.Imported != 2 || res.Skipped != 3 {
		t.Fatalf("second import: %+v", res)
	}
	res, err = e.s.Import(ctx, info, msgs)
	testutil.Must(t, err)
	if res.Imported != 0 || res.Skipped != 5 || res.Bytes != 0 {
		t.Fatalf("third import: %+v", res)
	}
	if n := len(e.uids(info, "INBOX")); n != 5 {
		t.Fatalf("%d messages in INBOX, want 5", n)
	}
	if n := len(e.uids(info, "Sent")); n != 0 {
		t.Fatalf("%d messages in Sent, want 0", n)
	}
}

func testImportQuota(t *testing.T, e *env) {
	ctx := t.Context()
	m := importMsg("q0", "") // every qN has its size
	size := int64(len(m.Message))
	testutil.Must(t, e.s.SetQuota(ctx, info, 3*size+size/2))
	var msgs []store.ImportMessage
	for i := range 6 {
		msgs = append(msgs, importMsg(fmt.Sprint("q", i), ""))
	}
	msgs[1].Key = "q0" // skipped, and takes no room
	res, err := e.s.Import(ctx, info, msgs)
	var qe *store.QuotaError
	if !errors.As(err, &qe) || qe.Account != info || qe.Need != size || qe.Used != 3*size {
		t.Fatalf("over quota: %+v, %v", res, err)
	}
	if res.Imported != 3 || res.Skipped != 1 || res.Bytes != 3*size {
		t.Fatalf("the messages before the one that did not fit: %+v", res)
	}
	if got := e.imported(info, "q0", "q2", "q3", "q4", "q5"); !slices.Equal(got, []bool{true, true, true, false, false}) {
		t.Fatalf("Imported = %v: the keys of what was stored, and only those", got)
	}
	// With room, the rest comes in; nothing twice.
	testutil.Must(t, e.s.SetQuota(ctx, info, 0))
	res, err = e.s.Import(ctx, info, msgs)
	testutil.Must(t, err)
	if res.Imported != 2 || res.Skipped != 4 {
		t.Fatalf("after the quota was raised: %+v", res)
	}
	if n := len(e.uids(info, "INBOX")); n != 5 {
		t.Fatalf("%d messages, want 5", n)
	}
	// The first message does not fit: nothing is stored.
	testutil.Must(t, e.s.SetQuota(ctx, bob, 1))
	res, err = e.s.Import(ctx, bob, msgs[:1])
	if !errors.As(err, &qe) || res != (store.ImportResult{}) {
		t.Fatalf("nothing fits: %+v, %v", res, err)
	}
	if len(e.uids(bob, "INBOX")) != 0 || e.account(bob).Used != 0 || e.imported(bob, "q0")[0] {
		t.Fatal("a message that did not fit was stored or its key kept")
	}
}

func testImportErrors(t *testing.T, e *env) {
	ctx := t.Context()
	cases := []struct {
		name    string
		account string
		msgs    []store.ImportMessage
		want    error
	}{
		{"unknown account", "nobody@example.com", []store.ImportMessage{importMsg("k", "")}, store.ErrNoSuchAccount},
		{"missing mailbox", info, []store.ImportMessage{importMsg("k", ""), importMsg("l", "Nope")}, store.ErrNoSuchMailbox},
		{"empty key", info, []store.ImportMessage{importMsg("", "")}, store.ErrInvalid},
		{"long key", info, []store.ImportMessage{importMsg(string(make([]byte, store.MaxImportKeyLen+1)), "")}, store.ErrInvalid},
		{"bad flag", info, []store.ImportMessage{{Key: "k", Flags: []string{`\Bogus`}, Message: []byte("a: b\r\n\r\n")}}, store.ErrInvalid},
	}
	for _, c := range cases {
		if _, err := e.s.Import(ctx, c.account, c.msgs); !is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if len(e.uids(info, "INBOX")) != 0 || e.account(info).Used != 0 || e.imported(info, "k")[0] {
		t.Fatal("a refused import stored something")
	}
	if _, err := e.s.Imported(ctx, "nobody@example.com", []string{"k"}); !is(err, store.ErrNoSuchAccount) {
		t.Errorf("Imported of an unknown account: %v", err)
	}
	// Nothing to import is no error.
	if res, err := e.s.Import(ctx, info, nil); err != nil || res != (store.ImportResult{}) {
		t.Errorf("empty import: %+v, %v", res, err)
	}
}

func testImportKeysPerAccount(t *testing.T, e *env) {
	ctx := t.Context()
	for _, a := range []string{info, bob} {
		res, err := e.s.Import(ctx, a, []store.ImportMessage{importMsg("same", "")})
		testutil.Must(t, err)
		if res.Imported != 1 {
			t.Fatalf("%s: %+v: keys are per account", a, res)
		}
	}
	// A removed account's keys go with it: added again, it imports again.
	testutil.Must(t, e.s.RemoveAccount(ctx, bob))
	testutil.Must(t, e.s.AddAccount(ctx, store.Account{Address: bob, PasswordHash: "x", Quota: fixtureQuota}))
	if e.imported(bob, "same")[0] {
		t.Fatal("a new account inherits the import keys of a removed one")
	}
	res, err := e.s.Import(ctx, bob, []store.ImportMessage{importMsg("same", "")})
	testutil.Must(t, err)
	if res.Imported != 1 {
		t.Fatalf("import into the account added again: %+v", res)
	}
	if !e.imported(info, "same")[0] {
		t.Fatal("removing bob forgot info's keys")
	}
}

// Two imports of the same messages racing store each once.
func testImportConcurrent(t *testing.T, e *env) {
	ctx := t.Context()
	var msgs []store.ImportMessage
	for i := range 20 {
		msgs = append(msgs, importMsg(fmt.Sprint("c", i), ""))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range msgs {
				// Each worker walks the messages from another start.
				m := msgs[(i+5*w)%len(msgs)]
				res, err := e.s.Import(ctx, info, []store.ImportMessage{m})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				total += res.Imported
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if total != len(msgs) {
		t.Fatalf("%d imported in all, want %d", total, len(msgs))
	}
	if n := len(e.uids(info, "INBOX")); n != len(msgs) {
		t.Fatalf("%d messages in INBOX, want %d", n, len(msgs))
	}
}
