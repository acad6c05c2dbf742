package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"yubin/internal/testutil"
	"yubin/store"
)

// Restore makes a store of a snapshot that the backend's Backup wrote, as
// a restarted server opens it, with the store's clock o.Now. The suite
// closes the store.
type Restore func(t *testing.T, snapshot io.Reader, o Options) store.Store

// RunBackup runs the suite's tests of store.Backups on stores from open,
// with restore to read the snapshots back. A backup is a consistent
// snapshot of everything the store holds, as of one instant: every write
// that returned before Backup was called is in it, none that began after
// it had begun, and restored it passes the store's promises and Verify.
// Writes are not held up while a backup is being written, however slowly
// its writer takes the bytes.
func RunBackup(t *testing.T, open Open, restore Restore) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, e *env, restore Restore)
	}{
		{"everything comes back", testBackupEverything},
		{"writes go on during a backup", testBackupWritesGoOn},
		{"consistent under concurrent writers", testBackupConcurrent},
		{"cancelled", testBackupCancelled},
		{"last backup", testLastBackup},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, open)
			tc.run(t, e, restore)
			e.check()
		})
	}
}

// backupAndRestore takes a backup of e's store and restores it.
func (e *env) backupAndRestore(restore Restore) (store.BackupInfo, store.Store) {
	e.t.Helper()
	var buf bytes.Buffer
	info, err := e.s.Backup(e.t.Context(), &buf)
	testutil.Must(e.t, err)
	if info.Size != int64(buf.Len()) || info.Backend == "" {
		e.t.Fatalf("Backup says %+v, wrote %d bytes", info, buf.Len())
	}
	r := restore(e.t, &buf, Options{Now: e.clock.Now})
	e.t.Cleanup(func() { r.Close() })
	return info, r
}

// dump describes everything a store holds, through its interfaces: what
// a backup must bring back.
func dump(t *testing.T, s store.Store) string {
	t.Helper()
	ctx := t.Context()
	var b strings.Builder
	line := func(v ...any) {
		for i, x := range v {
			if i > 0 {
				b.WriteByte(' ')
			}
			js, err := json.Marshal(x)
			testutil.Must(t, err)
			b.Write(js)
		}
		b.WriteByte('\n')
	}
	domains, err := s.Domains(ctx)
	testutil.Must(t, err)
	for _, d := range domains {
		d.Created = d.Created.UTC()
		ds, err := s.DomainSettings(ctx, d.Name)
		testutil.Must(t, err)
		keys, err := s.DKIMKeys(ctx, d.Name)
		testutil.Must(t, err)
		line("domain", d, ds, keys)
	}
	accounts, err := s.Accounts(ctx, "")
	testutil.Must(t, err)
	for _, a := range accounts {
		a.Created = a.Created.UTC()
		fwd, err := s.GetForward(ctx, a.Address)
		testutil.Must(t, err)
		line("account", a, fwd)
		boxes, err := s.Mailboxes(ctx, a.Address)
		testutil.Must(t, err)
		for _, box := range boxes {
			msgs, meta, err := s.Messages(ctx, a.Address, box.Name)
			testutil.Must(t, err)
			gone, err := s.Expunged(ctx, a.Address, box.Name, 0)
			testutil.Must(t, err)
			line("mailbox", box, meta, gone)
			for _, m := range msgs {
				raw, err := s.ReadMessage(ctx, a.Address, box.Name, m.UID)
				testutil.Must(t, err)
				m.Date = m.Date.UTC()
				line("message", m, fmt.Sprintf("%x", sha256.Sum256(raw)))
			}
		}
		totals, err := s.SpamTotals(ctx, a.Address)
		testutil.Must(t, err)
		line("spam", a.Address, totals)
		held, err := s.Quarantined(ctx, store.QuarantineFilter{Account: a.Address})
		testutil.Must(t, err)
		for _, h := range held {
			line("held", h)
		}
	}
	queue, err := s.QueueEntries(ctx)
	testutil.Must(t, err)
	for _, q := range queue {
		line("queued", q)
	}
	srs, err := s.SRSSecret(ctx)
	testutil.Must(t, err)
	last, err := s.LastBackup(ctx)
	testutil.Must(t, err)
	line("srs", srs, "last backup", last)
	return b.String()
}

// A snapshot brings back everything: domains and their settings and keys,
// accounts, mailboxes with their UIDVALIDITY, UIDNEXT, mod-sequences and
// expunges, messages with their flags and bytes, forwarding, the spam
// models, the quarantine, the outbound queue, the SRS secret and the last
// backup; and what it holds is what its BackupInfo counts.
func testBackupEverything(t *testing.T, e *env, restore Restore) {
	ctx := t.Context()
	_, err := e.s.CreateMailbox(ctx, info, "Work/Old")
	testutil.Must(t, err)
	e.deliverN(info, "INBOX", 5)
	e.deliverN(info, "Work/Old", 3)
	e.deliverN(bob, "INBOX", 2)
	_, err = e.s.SetFlags(ctx, info, "INBOX", []uint32{2, 3}, store.FlagsAdd, []string{`\Seen`, "$Keep"})
	testutil.Must(t, err)
	_, err = e.s.Expunge(ctx, info, "INBOX", []uint32{4})
	testutil.Must(t, err)
	_, err = e.s.SetForward(ctx, carol, []string{"x@remote.test"}, true)
	testutil.Must(t, err)
	testutil.Must(t, e.s.SetDomainSettings(ctx, "example.com", store.DomainSettings{Language: "ja", ReportTo: info}))
	_, err = e.s.EnsureDKIMKeys(ctx, "example.com", func() ([]store.DKIMKey, error) {
		return []store.DKIMKey{{Selector: "y1", Algorithm: "ed25519", PrivateKey: []byte("private"), Created: start}}, nil
	})
	testutil.Must(t, err)
	_, err = e.s.SRSSecret(ctx)
	testutil.Must(t, err)
	e.enqueue()
	e.holdFor(hold(0), []byte("Subject: pills\r\n\r\ncheap\r\n"), bob)
	_, err = e.s.TrainSpam(ctx, store.SpamTraining{Owners: []string{info, "example.com"}, Class: store.Spam, Tokens: []string{"cheap", "pills"}})
	testutil.Must(t, err)
	testutil.Must(t, e.s.SetLastBackup(ctx, store.LastBackup{Time: start.Add(-time.Hour), Size: 1234, File: "/backups/old.ybk", Messages: 9, Duration: time.Second}))

	want := dump(t, e.s)
	bi, r := e.backupAndRestore(restore)
	if got := dump(t, r); got != want {
		t.Errorf("restored:\n%s\nbacked up:\n%s", got, want)
	}
	if p, err := r.Verify(ctx); err != nil || len(p) > 0 {
		t.Errorf("Verify of the restored store: %v %v", p, err)
	}
	if want := (store.BackupInfo{Backend: bi.Backend, Size: bi.Size, Domains: 3, Accounts: 3, Messages: 9, MailBytes: e.account(info).Used + e.account(bob).Used + e.account(carol).Used}); bi != want {
		t.Errorf("BackupInfo %+v, the store holds %+v", bi, want)
	}
	// The restored store works: it delivers on from where it was.
	uidNext := e.mailbox(info, "INBOX").UIDNext
	d, err := r.Deliver(ctx, store.Delivery{Recipients: []string{info}, Mailbox: "INBOX", Message: body(9)})
	testutil.Must(t, err)
	if d[0].UID != uidNext {
		t.Errorf("the restored store delivered UID %d, want %d", d[0].UID, uidNext)
	}
}

// Writes go on while a backup is being written, even while its writer
// stalls, and the snapshot is of the instant it began: none of them is
// in it.
func testBackupWritesGoOn(t *testing.T, e *env, restore Restore) {
	ctx := t.Context()
	e.deliverN(info, "INBOX", 3)
	testutil.Must(t, e.s.SetQuota(ctx, bob, 0))
	before := dump(t, e.s)
	w := &stallWriter{started: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(w.unstall) // before the store closes, should the test fail
	type result struct {
		info store.BackupInfo
		err  error
	}
	done := make(chan result, 1)
	go func() {
		bi, err := e.s.Backup(ctx, w)
		done <- result{bi, err}
	}()
	select {
	case <-w.started:
	case r := <-done:
		t.Fatalf("Backup returned before writing: %+v", r)
	}
	// While the writer stalls: 4 MiB of deliveries (enough to make a
	// backend grow its files or maps), flags and an expunge.
	big := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n"), 4<<10)
	writes := make(chan error, 1)
	go func() {
		for i := range 16 {
			msg := append(fmt.Appendf(nil, "Subject: big %d\r\n\r\n", i), big...)
			if _, err := e.s.Deliver(ctx, store.Delivery{Recipients: []string{bob}, Mailbox: "INBOX", Message: msg}); err != nil {
				writes <- err
				return
			}
		}
		if _, err := e.s.SetFlags(ctx, info, "INBOX", []uint32{1}, store.FlagsAdd, []string{`\Seen`}); err != nil {
			writes <- err
			return
		}
		_, err := e.s.Expunge(ctx, info, "INBOX", []uint32{2})
		writes <- err
	}()
	select {
	case err := <-writes:
		testutil.Must(t, err)
	case <-time.After(time.Minute):
		t.Fatal("writes held up by a backup whose writer stalls")
	}
	select {
	case r := <-done:
		t.Fatalf("Backup returned while its writer stalled: %+v", r)
	default:
	}
	after := dump(t, e.s)
	w.unstall()
	r := <-done
	testutil.Must(t, r.err)
	restored := restore(t, bytes.NewReader(w.buf.Bytes()), Options{Now: e.clock.Now})
	defer restored.Close()
	got := dump(t, restored)
	if got != before {
		t.Errorf("the snapshot is not of the instant it began:\nrestored:\n%s\nwhen it began:\n%s", got, before)
	}
	if got == after {
		t.Error("the writes during the backup changed nothing")
	}
}

// stallWriter takes the first write, then blocks until released.
type stallWriter struct {
	buf      bytes.Buffer
	once     sync.Once
	started  chan struct{}
	release  chan struct{}
	released sync.Once
}

func (w *stallWriter) unstall() { w.released.Do(func() { close(w.release) }) }

func (w *stallWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.started) })
	if w.buf.Len() > 0 {
		<-w.release
	}
	return w.buf.Write(p)
}

// Writers deliver while a backup is taken: every delivery that returned
// before Backup was called is in the snapshot, each message in it is
// whole, and the restored store keeps every promise (Verify).
func testBackupConcurrent(t *testing.T, e *env, restore Restore) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var mu sync.Mutex
	delivered := map[string]bool{} // Subject of every delivery that returned
	reached := make(chan struct{}) // closed at the 50th
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				subject := fmt.Sprintf("w%d-%d", w, i)
				msg := fmt.Appendf(nil, "Subject: %s\r\n\r\n%s\r\n", subject, strings.Repeat(subject+" ", 50))
				_, err := e.s.Deliver(ctx, store.Delivery{Recipients: []string{info}, Mailbox: "INBOX", Message: msg})
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("deliver: %v", err)
					}
					return
				}
				mu.Lock()
				delivered[subject] = true
				if len(delivered) == 50 {
					close(reached)
				}
				mu.Unlock()
			}
		})
	}
	<-reached // some deliveries return first
	mu.Lock()
	before := maps.Clone(delivered)
	mu.Unlock()
	bi, r := e.backupAndRestore(restore)
	cancel()
	wg.Wait()

	msgs, _, err := r.Messages(t.Context(), info, "INBOX")
	testutil.Must(t, err)
	there := map[string]bool{}
	for _, m := range msgs {
		raw, err := r.ReadMessage(t.Context(), info, "INBOX", m.UID)
		testutil.Must(t, err)
		subject, _, _ := strings.Cut(strings.TrimPrefix(string(raw), "Subject: "), "\r\n")
		if want := fmt.Sprintf("Subject: %s\r\n\r\n%s\r\n", subject, strings.Repeat(subject+" ", 50)); string(raw) != want {
			t.Errorf("UID %d in the snapshot reads %q", m.UID, raw)
		}
		there[subject] = true
	}
	for s := range before {
		if !there[s] {
			t.Errorf("delivery %s returned before the backup and is not in it", s)
		}
	}
	if bi.Messages != int64(len(msgs)) {
		t.Errorf("BackupInfo counts %d messages, the snapshot holds %d", bi.Messages, len(msgs))
	}
	if p, err := r.Verify(t.Context()); err != nil || len(p) > 0 {
		t.Errorf("Verify of the restored store: %v %v", p, err)
	}
	t.Logf("%d deliveries before the backup, %d in it, %d in all", len(before), len(msgs), len(delivered))
}

// A backup whose context ends stops with its error, and the store goes on.
func testBackupCancelled(t *testing.T, e *env, restore Restore) {
	e.deliverN(info, "INBOX", 3)
	ctx, cancel := context.WithCancel(t.Context())
	w := writerFunc(func(p []byte) (int, error) {
		cancel()
		return len(p), nil
	})
	if _, err := e.s.Backup(ctx, w); !errors.Is(err, context.Canceled) {
		t.Errorf("Backup with its context cancelled: %v", err)
	}
	e.deliverN(info, "INBOX", 1)
	if _, r := e.backupAndRestore(restore); len(dump(t, r)) == 0 {
		t.Error("empty dump")
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// The last backup: none at first, then what was recorded, across a
// restart; a record without a time is refused.
func testLastBackup(t *testing.T, e *env, restore Restore) {
	ctx := t.Context()
	if b, err := e.s.LastBackup(ctx); err != nil || b != (store.LastBackup{}) {
		t.Errorf("last backup of a new store: %+v, %v", b, err)
	}
	if err := e.s.SetLastBackup(ctx, store.LastBackup{Size: 10}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("a last backup without a time: %v", err)
	}
	want := store.LastBackup{Time: start.Add(-time.Minute), Size: 123456, File: "/var/backups/yubin.ybk", Messages: 42, Duration: 3 * time.Second}
	testutil.Must(t, e.s.SetLastBackup(ctx, want))
	e.restart()
	got, err := e.s.LastBackup(ctx)
	testutil.Must(t, err)
	if !got.Time.Equal(want.Time) || got.Size != want.Size || got.File != want.File || got.Messages != want.Messages || got.Duration != want.Duration {
		t.Errorf("last backup %+v, want %+v", got, want)
	}
}
