package bolt

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"yubin/internal/mailheader"
	"yubin/internal/testutil"
	"yubin/internal/testutil/headertest"
	"yubin/store"

	bbolt "go.etcd.io/bbolt"
)

func deliverAll(t *testing.T, s *Store, box string, msgs ...string) []uint32 {
	t.Helper()
	var uids []uint32
	for _, m := range msgs {
		d, err := s.Deliver(context.Background(), store.Delivery{Recipients: []string{"info@example.com"}, Mailbox: box, Message: []byte(m)})
		testutil.Must(t, err)
		uids = append(uids, d[0].UID)
	}
	return uids
}

func cachedEnvelopes(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	s.viewFresh(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(bEnvelopes); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	})
	return n
}

// forgetEnvelopes empties the envelope cache, as in a store written
// before deliveries cached them.
func forgetEnvelopes(t *testing.T, s *Store) {
	t.Helper()
	testutil.Must(t, s.db.Update(func(tx *bbolt.Tx) error {
		if tx.Bucket(bEnvelopes) == nil {
			return nil
		}
		return tx.DeleteBucket(bEnvelopes)
	}))
}

// A delivery, an append with a header on top and a tail, and an import
// cache the envelope in the transaction that stores the message: the
// entry is there as Deliver returns, before anything asked for it, and
// it is what Summaries would parse. A Summary given with the delivery is
// the one cached.
func TestEnvelopeAtDelivery(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	ctx := t.Context()
	var msgs []string
	for _, h := range headertest.Odd {
		msgs = append(msgs, h.Msg)
	}
	uids := deliverAll(t, s, "", msgs...)
	if n := cachedEnvelopes(t, s); n != len(msgs) {
		t.Fatalf("%d envelopes cached after %d deliveries", n, len(msgs))
	}
	entry := func(uid uint32) mailheader.Summary {
		t.Helper()
		var e mailheader.Summary
		testutil.Must(t, s.viewFresh(func(tx *bbolt.Tx) error {
			var ok bool
			if e, ok = mailheader.Decode(tx.Bucket(bEnvelopes).Get(u64key(blobOf(t, s, uid)))); !ok {
				t.Fatalf("uid %d: no cache entry", uid)
			}
			return nil
		}))
		return e
	}
	for i, h := range headertest.Odd {
		if got := entry(uids[i]); !headertest.Same(got, h.Want) {
			t.Errorf("%s:\n got %+v\nwant %+v", h.Name, got, h.Want)
		}
	}

	head := []byte("Subject: spooled\r\nFrom: a@example.org\r\n\r\n")
	tail := strings.NewReader(strings.Repeat("body\r\n", 1000))
	d, err := s.Deliver(ctx, store.Delivery{Recipients: []string{"info@example.com"}, Header: []byte("X-On-Top: 1\r\nTo: b@example.org\r\n"),
		Message: head, Tail: io.NewSectionReader(tail, 0, tail.Size())})
	testutil.Must(t, err)
	want := mailheader.Parse([]byte("X-On-Top: 1\r\nTo: b@example.org\r\nSubject: spooled\r\nFrom: a@example.org\r\n\r\n"))
	if got := entry(d[0].UID); !headertest.Same(got, want) {
		t.Errorf("header on top and tail:\n got %+v\nwant %+v", got, want)
	}

	given := mailheader.Summary{Subject: "given by the caller"}
	d, err = s.Deliver(ctx, store.Delivery{Recipients: []string{"info@example.com"}, Message: []byte("Subject: parsed\r\n\r\nx\r\n"), Summary: &given})
	testutil.Must(t, err)
	if got := entry(d[0].UID); got.Subject != given.Subject {
		t.Errorf("given summary: cached subject %q", got.Subject)
	}

	before := cachedEnvelopes(t, s)
	res, err := s.Import(ctx, "info@example.com", []store.ImportMessage{{Key: "k1", Message: []byte(headertest.Odd[0].Msg)}})
	testutil.Must(t, err)
	if res.Imported != 1 || cachedEnvelopes(t, s) != before+1 {
		t.Errorf("import: %+v, %d envelopes cached, want %d", res, cachedEnvelopes(t, s), before+1)
	}
	if p := verifyCache(s); len(p) != 0 {
		t.Errorf("verify: %q", p)
	}
}

// Summaries of messages with no cache entry (stored before deliveries
// cached them) fill the cache in the background; the cached summaries
// are those parsed.
func TestEnvelopeCache(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	var msgs []string
	for _, h := range headertest.Odd {
		msgs = append(msgs, h.Msg)
	}
	uids := deliverAll(t, s, "", msgs...)
	forgetEnvelopes(t, s)
	for _, when := range []string{"parsed", "cached"} {
		got, err := s.Summaries(t.Context(), "info@example.com", "INBOX", uids)
		testutil.Must(t, err)
		for i, h := range headertest.Odd {
			if !headertest.Same(got[i], h.Want) {
				t.Errorf("%s, %s:\n got %+v\nwant %+v", when, h.Name, got[i], h.Want)
			}
		}
		envelopeWrites.Wait()
		if n := cachedEnvelopes(t, s); n != len(headertest.Odd) {
			t.Fatalf("%s: %d envelopes cached, want %d", when, n, len(headertest.Odd))
		}
	}
}

// A copy shares the original's blob and so its cached envelope; expunging
// every copy drops the entry.
func TestEnvelopeCacheShared(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	ctx := context.Background()
	_, err := s.CreateMailbox(ctx, "info@example.com", "Archive")
	testutil.Must(t, err)
	uids := deliverAll(t, s, "", headertest.Odd[0].Msg, headertest.Odd[1].Msg)
	forgetEnvelopes(t, s)
	_, err = s.Summaries(ctx, "info@example.com", "INBOX", uids)
	testutil.Must(t, err)
	envelopeWrites.Wait()
	res, err := s.CopyMessages(ctx, "info@example.com", "INBOX", "Archive", uids)
	testutil.Must(t, err)
	_, err = s.Summaries(ctx, "info@example.com", "Archive", res.Dest)
	testutil.Must(t, err)
	envelopeWrites.Wait()
	if n := cachedEnvelopes(t, s); n != 2 {
		t.Errorf("%d envelopes cached after COPY, want 2 (shared)", n)
	}
	_, err = s.Expunge(ctx, "info@example.com", "INBOX", uids)
	testutil.Must(t, err)
	if n := cachedEnvelopes(t, s); n != 2 {
		t.Errorf("%d envelopes cached with the copies left, want 2", n)
	}
	_, err = s.Expunge(ctx, "info@example.com", "Archive", res.Dest)
	testutil.Must(t, err)
	if n := cachedEnvelopes(t, s); n != 0 {
		t.Errorf("%d envelopes cached after every copy was expunged", n)
	}
	if p := verifyCache(s); len(p) != 0 {
		t.Errorf("verify: %q", p)
	}
}

// A cache write for a message expunged after it was read writes nothing;
// envelopeTable.drop removes an entry.
func TestEnvelopeCacheRaces(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	ctx := context.Background()
	uids := deliverAll(t, s, "", headertest.Odd[0].Msg)
	msgs, _, err := s.Messages(ctx, "info@example.com", "INBOX")
	testutil.Must(t, err)
	blob := blobOf(t, s, msgs[0].UID)
	_, err = s.Expunge(ctx, "info@example.com", "INBOX", uids)
	testutil.Must(t, err)
	s.saveEnvelopes([]envelopeEntry{{blob, mailheader.Encode(&headertest.Odd[0].Want)}})
	if n := cachedEnvelopes(t, s); n != 0 {
		t.Errorf("%d envelopes cached for an expunged message", n)
	}

	uids = deliverAll(t, s, "", headertest.Odd[0].Msg)
	forgetEnvelopes(t, s)
	_, err = s.Summaries(ctx, "info@example.com", "INBOX", uids)
	testutil.Must(t, err)
	envelopeWrites.Wait()
	msgs, _, err = s.Messages(ctx, "info@example.com", "INBOX")
	testutil.Must(t, err)
	if p := verifyCache(s); len(p) != 0 {
		t.Errorf("verify: %q", p)
	}
	// An entry left behind by a deleted blob and a corrupt one are found.
	testutil.Must(t, s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bEnvelopes)
		testutil.Must(t, b.Put(u64key(blob), mailheader.Encode(&headertest.Odd[0].Want)))
		return b.Put(u64key(blobOf(t, s, msgs[0].UID)), []byte{mailheader.Version, 7})
	}))
	if p := verifyCache(s); len(p) != 2 {
		t.Errorf("verify: %q", p)
	}
	testutil.Must(t, s.db.Update(func(tx *bbolt.Tx) error {
		testutil.Must(t, envelopeTable.drop(tx, blob))
		return envelopeTable.drop(tx, blobOf(t, s, msgs[0].UID))
	}))
	if n := cachedEnvelopes(t, s); n != 0 {
		t.Errorf("%d envelopes cached after envelopeTable.drop", n)
	}
}

func verifyCache(s *Store) []string {
	var problems []string
	s.viewFresh(func(tx *bbolt.Tx) error {
		verifyEnvelopes(tx, func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) })
		return nil
	})
	return problems
}

// Headers are read a budget at a time: many big ones take several rounds,
// and each is cached.
func TestEnvelopeReadRounds(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	filler := strings.Repeat("X-Filler: "+strings.Repeat("f", 90)+"\r\n", 2000) // 200 KB
	var msgs []string
	for i := range 30 {
		msgs = append(msgs, fmt.Sprintf("%sSubject: s%d\r\n\r\nbody\r\n", filler, i))
	}
	uids := deliverAll(t, s, "", msgs...)
	forgetEnvelopes(t, s)
	got, err := s.Summaries(t.Context(), "info@example.com", "INBOX", uids)
	testutil.Must(t, err)
	envelopeWrites.Wait()
	for i, e := range got {
		if e.Subject != fmt.Sprintf("s%d", i) {
			t.Errorf("%d: subject %q", i, e.Subject)
		}
	}
	if n := cachedEnvelopes(t, s); n != len(msgs) {
		t.Errorf("%d cached, want %d", n, len(msgs))
	}
}

// blobOf is the blob id of an INBOX message of info@example.com.
func blobOf(t *testing.T, s *Store, uid uint32) uint64 {
	t.Helper()
	var r record
	testutil.Must(t, s.viewFresh(func(tx *bbolt.Tx) error {
		b, _, err := mailboxBucket(tx, "info@example.com", "INBOX")
		if err != nil {
			return err
		}
		r, err = decodeRecord(uid, b.Bucket(bMsgs).Get(u32key(uid)))
		return err
	}))
	return r.blob
}
