package bolt

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"yubin/internal/testutil"
	"yubin/store"
)

// walFixture is a store whose file is copied aside before deliveries and
// put back after them, while the log keeps their records: the state a
// crash leaves when deliveries were acknowledged from the log and not
// committed to bbolt.
type walFixture struct {
	t    *testing.T
	path string
	opts Options
}

func newWALFixture(t *testing.T) *walFixture {
	// No checkpoint on a timer: the test decides what is committed.
	f := &walFixture{t: t, path: filepath.Join(t.TempDir(), FileName), opts: Options{CheckpointAfter: time.Hour}}
	s := f.open()
	setup(t, s)
	testutil.Must(t, s.SetQuota(t.Context(), "info@example.com", 1<<20))
	testutil.Must(t, s.Close())
	return f
}

func (f *walFixture) open() *Store {
	f.t.Helper()
	s, err := Open(f.path, f.opts)
	testutil.Must(f.t, err)
	return s
}

// saveDB copies the store file aside; restoreDB puts the copy back.
func (f *walFixture) saveDB() []byte {
	f.t.Helper()
	b, err := os.ReadFile(f.path)
	testutil.Must(f.t, err)
	return b
}

func (f *walFixture) restoreDB(b []byte) {
	f.t.Helper()
	testutil.Must(f.t, os.WriteFile(f.path, b, 0o600))
}

// walMessage is the n-th test message, of a size that varies with n.
func walMessage(n int) []byte {
	return []byte(fmt.Sprintf("Message-ID: <%d@wal.test>\r\nSubject: wal %d\r\n\r\n%s", n, n, strings.Repeat(fmt.Sprintf("line %d\r\n", n), 10+n*37)))
}

// deliver delivers messages from..to-1 each alone: a record each. Closing
// the store commits them to bbolt; the log keeps the records.
func (f *walFixture) deliver(from, to int) {
	f.t.Helper()
	s := f.open()
	for n := from; n < to; n++ {
		_, err := s.Deliver(f.t.Context(), store.Delivery{Recipients: []string{"info@example.com"}, Header: []byte("X-Top: 1\r\n"), Message: walMessage(n), Flags: []string{`\Seen`}, Date: time.Unix(int64(1e9+n), 0)})
		testutil.Must(f.t, err)
	}
	testutil.Must(f.t, s.Close())
}

// check opens the store and checks it holds exactly messages 0..n-1 with
// UIDs 1..n, the usage they add up to, and no broken invariant.
func (f *walFixture) check(n int) {
	f.t.Helper()
	s := f.open()
	defer s.Close()
	ctx := f.t.Context()
	msgs, box, err := s.Messages(ctx, "info@example.com", "INBOX")
	testutil.Must(f.t, err)
	if len(msgs) != n || box.UIDNext != uint32(n+1) {
		f.t.Fatalf("%d messages, UIDNEXT %d; want %d, %d", len(msgs), box.UIDNext, n, n+1)
	}
	var sum int64
	for i, m := range msgs {
		raw, err := s.ReadMessage(ctx, "info@example.com", "INBOX", m.UID)
		testutil.Must(f.t, err)
		want := append([]byte("X-Top: 1\r\n"), walMessage(i)...)
		if m.UID != uint32(i+1) || !bytes.Equal(raw, want) || m.Size != int64(len(want)) ||
			!m.Date.Equal(time.Unix(int64(1e9+i), 0)) || len(m.Flags) != 1 || m.Flags[0] != `\Seen` {
			f.t.Errorf("uid %d (want %d): %d bytes, date %v, flags %v; not what was delivered", m.UID, i+1, len(raw), m.Date, m.Flags)
		}
		sum += m.Size
	}
	sums, err := s.Summaries(ctx, "info@example.com", "INBOX", uidsOf(msgs))
	testutil.Must(f.t, err)
	for i, sm := range sums {
		if want := fmt.Sprintf("wal %d", i); sm.Subject != want {
			f.t.Errorf("uid %d: envelope subject %q, want %q", i+1, sm.Subject, want)
		}
	}
	a, err := s.Account(ctx, "info@example.com")
	testutil.Must(f.t, err)
	if a.Used != sum {
		f.t.Errorf("usage %d, messages sum to %d", a.Used, sum)
	}
	if p, err := s.Verify(ctx); err != nil || len(p) > 0 {
		f.t.Errorf("invariants: %v %v", p, err)
	}
}

func uidsOf(msgs []store.MessageInfo) []uint32 {
	var uids []uint32
	for _, m := range msgs {
		uids = append(uids, m.UID)
	}
	return uids
}

// Deliveries acknowledged from the log and not in bbolt are written by the
// next Open: the same UIDs, bytes, dates, flags, envelopes and usage; the
// records bbolt has already are not written twice.
func TestWALReplay(t *testing.T) {
	f := newWALFixture(t)
	f.deliver(0, 2) // committed: records 1 and 2 are in bbolt
	before := f.saveDB()
	f.deliver(2, 6) // records 3..6, after a checkpoint at Open (the log starts again)
	f.restoreDB(before)
	f.check(6) // replayed 3..6
	f.check(6) // nothing twice
	f.deliver(6, 7)
	f.check(7)
}

// A torn record (its checksum wrong) was never synced, so never
// acknowledged: replay stops before it.
func TestWALTornRecord(t *testing.T) {
	f := newWALFixture(t)
	before := f.saveDB()
	f.deliver(0, 3)
	f.restoreDB(before)
	w, err := os.OpenFile(f.path+WALSuffix, os.O_RDWR, 0)
	testutil.Must(t, err)
	// The third record's last byte.
	var end int64
	for range 3 {
		head := make([]byte, walHead)
		_, err := w.ReadAt(head, end)
		testutil.Must(t, err)
		end += int64(walHead) + int64(beUint64(head[len(walMagic)+8:]))
	}
	b := make([]byte, 1)
	_, err = w.ReadAt(b, end-1)
	testutil.Must(t, err)
	b[0] ^= 0xff
	_, err = w.WriteAt(b, end-1)
	testutil.Must(t, err)
	testutil.Must(t, w.Close())
	f.check(2)
}

// A log whose first record to write does not follow the store's last is
// not this store's: Open says so rather than write it.
func TestWALNotThisStore(t *testing.T) {
	f := newWALFixture(t)
	before := f.saveDB()
	f.deliver(0, 1)
	f.deliver(1, 3) // the log holds records 2 and 3 only
	f.restoreDB(before)
	_, err := Open(f.path, f.opts)
	if err == nil || !strings.Contains(err.Error(), "not this store's") {
		t.Fatalf("Open: %v", err)
	}
}

// A new store starts a new log, whatever a file of its name held.
func TestWALNewStore(t *testing.T) {
	f := newWALFixture(t)
	f.deliver(0, 3)
	testutil.Must(t, os.Remove(f.path))
	s := f.open()
	defer s.Close()
	if seq, ok := firstRecord(t, s.wal); ok {
		t.Errorf("a new store's log holds record %d", seq)
	}
}

func firstRecord(t *testing.T, w *wal) (uint64, bool) {
	var seq uint64
	found := false
	testutil.Must(t, w.records(func(s uint64, _ []byte) error {
		if !found {
			seq, found = s, true
		}
		return nil
	}))
	return seq, found
}

func beUint64(b []byte) uint64 {
	var v uint64
	for _, c := range b[:8] {
		v = v<<8 | uint64(c)
	}
	return v
}

// A record holds what prepareDeliveries made, and decodes to it.
func TestWALRecordRoundTrip(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	ds := []store.Delivery{
		{Recipients: []string{"Info@Example.com", "info@example.com"}, Message: walMessage(1)},
		{Recipients: []string{"info@example.com"}, Mailbox: "Junk", Flags: []string{`\Flagged`, "$Junk"}, Header: []byte("A: b\r\n"), Message: walMessage(2), Date: time.Unix(5, 7)},
	}
	preps, err := s.prepareDeliveries(ds)
	testutil.Must(t, err)
	rec, err := walRecord(preps)
	testutil.Must(t, err)
	got, err := decodeWALRecord(rec)
	testutil.Must(t, err)
	if len(got) != len(preps) {
		t.Fatalf("%d deliveries decoded, want %d", len(got), len(preps))
	}
	for i := range preps {
		p, g := preps[i], got[i]
		if fmt.Sprint(p.rcpts, p.box, p.flags, p.size, p.hsize) != fmt.Sprint(g.rcpts, g.box, g.flags, g.size, g.hsize) ||
			!p.date.Equal(g.date) || !bytes.Equal(p.hdr, g.hdr) || !bytes.Equal(p.msg, g.msg) || !bytes.Equal(p.env, g.env) {
			t.Errorf("delivery %d: decoded %+v, want %+v", i, g, p)
		}
	}
	for n := range rec {
		if _, err := decodeWALRecord(rec[:n]); err == nil {
			t.Errorf("a record cut to %d bytes decodes", n)
		}
	}
	// Quarantined or big deliveries are not logged.
	for _, d := range []store.Delivery{
		{Recipients: []string{"info@example.com"}, Message: walMessage(1), Quarantine: &store.QuarantineHold{}},
		{Recipients: []string{"info@example.com"}, Message: bytes.Repeat([]byte("x"), walMaxDelivery+1)},
	} {
		preps, err := s.prepareDeliveries([]store.Delivery{d})
		testutil.Must(t, err)
		if rec, err := walRecord(preps); rec != nil || err != nil {
			t.Errorf("logged: %d bytes, %v", len(rec), err)
		}
	}
}
