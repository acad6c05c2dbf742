package bolt

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"yubin/internal/mailheader"
	"yubin/internal/testutil/headertest"
	"yubin/store"

	bbolt "go.etcd.io/bbolt"
)

func deliverAll(t *testing.T, s *Store, box string, msgs ...string) []uint32 {
	t.Helper()
	var uids []uint32
	for _, m := range msgs {
		d, err := s.Deliver(context.Background(), store.Delivery{Recipients: []string{"info@example.com"}, Mailbox: box, Message: []byte(m)})
		must(t, err)
		uids = append(uids, d[0].UID)
	}
	return uids
}

func cachedEnvelopes(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	s.db.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(bEnvelopes); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	})
	return n
}

func TestEnvelopes(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	must(t, s.SetQuota(t.Context(), "info@example.com", 0))
	var msgs []string
	for _, h := range headertest.Odd {
		msgs = append(msgs, h.Msg)
	}
	uids := deliverAll(t, s, "", msgs...)
	check := func(when string, got []mailheader.Summary) {
		t.Helper()
		for i, h := range headertest.Odd {
			if !headertest.Same(got[i], h.Want) {
				t.Errorf("%s, %s:\n got %+v\nwant %+v", when, h.Name, got[i], h.Want)
			}
		}
	}
	got, err := s.Summaries(t.Context(), "info@example.com", "INBOX", uids)
	must(t, err)
	check("parsed", got)
	envelopeWrites.Wait()
	if n := cachedEnvelopes(t, s); n != len(headertest.Odd) {
		t.Fatalf("%d envelopes cached, want %d", n, len(headertest.Odd))
	}
	got, err = s.Summaries(t.Context(), "info@example.com", "INBOX", uids)
	must(t, err)
	check("cached", got)

	// Any order, repeats, and UIDs that do not exist.
	rev := []uint32{uids[3], 999, uids[0], uids[0], 0}
	got, err = s.Summaries(t.Context(), "info@example.com", "INBOX", rev)
	must(t, err)
	for i, want := range []mailheader.Summary{headertest.Odd[3].Want, {}, headertest.Odd[0].Want, headertest.Odd[0].Want, {}} {
		if !headertest.Same(got[i], want) {
			t.Errorf("out of order %d: got %+v", i, got[i])
		}
	}
	if _, err := s.Summaries(t.Context(), "info@example.com", "Nope", uids); !errors.Is(err, store.ErrNoSuchMailbox) {
		t.Errorf("unknown mailbox: %v", err)
	}
	if problems, err := s.Verify(t.Context()); err != nil || len(problems) > 0 {
		t.Errorf("verify: %v %q", err, problems)
	}
}

// A copy shares the original's blob and so its cached envelope; expunging
// every copy leaves the store consistent.
func TestEnvelopesCopyAndExpunge(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	ctx := context.Background()
	_, err := s.CreateMailbox(ctx, "info@example.com", "Archive")
	must(t, err)
	uids := deliverAll(t, s, "", headertest.Odd[0].Msg, headertest.Odd[1].Msg)
	_, err = s.Summaries(ctx, "info@example.com", "INBOX", uids)
	must(t, err)
	envelopeWrites.Wait()
	res, err := s.CopyMessages(ctx, "info@example.com", "INBOX", "Archive", uids)
	must(t, err)
	got, err := s.Summaries(ctx, "info@example.com", "Archive", res.Dest)
	must(t, err)
	envelopeWrites.Wait()
	for i, e := range got {
		if !headertest.Same(e, headertest.Odd[i].Want) {
			t.Errorf("copy %d: got %+v", i, e)
		}
	}
	if n := cachedEnvelopes(t, s); n != 2 {
		t.Errorf("%d envelopes cached after COPY, want 2 (shared)", n)
	}
	moved, err := s.MoveMessages(ctx, "info@example.com", "Archive", "INBOX", res.Dest[:1])
	must(t, err)
	got, err = s.Summaries(ctx, "info@example.com", "INBOX", moved.Dest)
	must(t, err)
	if !headertest.Same(got[0], headertest.Odd[0].Want) {
		t.Errorf("moved: got %+v", got[0])
	}
	// Expunge every copy: the cache may hold entries of deleted blobs
	// (until unrefBlob drops them), which Verify does not mind.
	_, err = s.Expunge(ctx, "info@example.com", "INBOX", append(uids, moved.Dest...))
	must(t, err)
	_, err = s.Expunge(ctx, "info@example.com", "Archive", res.Dest)
	must(t, err)
	if problems, err := s.Verify(ctx); err != nil || len(problems) > 0 {
		t.Errorf("verify: %v %q", err, problems)
	}
	got, err = s.Summaries(ctx, "info@example.com", "INBOX", uids)
	must(t, err)
	if !headertest.Same(got[0], mailheader.Summary{}) {
		t.Errorf("expunged: got %+v", got[0])
	}
}

// A cache write for a message expunged after it was read writes nothing;
// dropEnvelope removes an entry.
func TestEnvelopeCacheRaces(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	ctx := context.Background()
	uids := deliverAll(t, s, "", headertest.Odd[0].Msg)
	msgs, _, err := s.Messages(ctx, "info@example.com", "INBOX")
	must(t, err)
	blob := blobOf(t, s, msgs[0].UID)
	_, err = s.Expunge(ctx, "info@example.com", "INBOX", uids)
	must(t, err)
	s.saveEnvelopes([]envelopeEntry{{blob, mailheader.Encode(&headertest.Odd[0].Want)}})
	if n := cachedEnvelopes(t, s); n != 0 {
		t.Errorf("%d envelopes cached for an expunged message", n)
	}

	uids = deliverAll(t, s, "", headertest.Odd[0].Msg)
	_, err = s.Summaries(ctx, "info@example.com", "INBOX", uids)
	must(t, err)
	envelopeWrites.Wait()
	msgs, _, err = s.Messages(ctx, "info@example.com", "INBOX")
	must(t, err)
	if p := verifyCache(s); len(p) != 0 {
		t.Errorf("verify: %q", p)
	}
	// An entry left behind by a deleted blob and a corrupt one are found.
	must(t, s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bEnvelopes)
		must(t, b.Put(u64key(blob), mailheader.Encode(&headertest.Odd[0].Want)))
		return b.Put(u64key(blobOf(t, s, msgs[0].UID)), []byte{mailheader.Version, 7})
	}))
	if p := verifyCache(s); len(p) != 2 {
		t.Errorf("verify: %q", p)
	}
	must(t, s.db.Update(func(tx *bbolt.Tx) error {
		must(t, dropEnvelope(tx, blob))
		return dropEnvelope(tx, blobOf(t, s, msgs[0].UID))
	}))
	if n := cachedEnvelopes(t, s); n != 0 {
		t.Errorf("%d envelopes cached after dropEnvelope", n)
	}
}

func verifyCache(s *Store) []string {
	var problems []string
	s.db.View(func(tx *bbolt.Tx) error {
		verifyEnvelopes(tx, func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) })
		return nil
	})
	return problems
}

func TestEnvelopeLongHeader(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	must(t, s.SetQuota(t.Context(), "info@example.com", 0))
	// A header spanning chunks, with the subject at its end.
	msg := strings.Repeat("X-Filler: "+strings.Repeat("f", 90)+"\r\n", 1000) + "Subject: far\r\n\r\nbody\r\n"
	uids := deliverAll(t, s, "", msg)
	got, err := s.Summaries(t.Context(), "info@example.com", "INBOX", uids)
	must(t, err)
	if got[0].Subject != "far" {
		t.Errorf("subject %q", got[0].Subject)
	}
}

// Headers are read a budget at a time: many big ones take several rounds.
func TestEnvelopeReadRounds(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	must(t, s.SetQuota(t.Context(), "info@example.com", 0))
	filler := strings.Repeat("X-Filler: "+strings.Repeat("f", 90)+"\r\n", 2000) // 200 KB
	var msgs []string
	for i := range 30 {
		msgs = append(msgs, fmt.Sprintf("%sSubject: s%d\r\n\r\nbody\r\n", filler, i))
	}
	uids := deliverAll(t, s, "", msgs...)
	got, err := s.Summaries(t.Context(), "info@example.com", "INBOX", uids)
	must(t, err)
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
	must(t, s.db.View(func(tx *bbolt.Tx) error {
		b, _, err := mailboxBucket(tx, "info@example.com", "INBOX")
		if err != nil {
			return err
		}
		r, err = decodeRecord(uid, b.Bucket(bMsgs).Get(u32key(uid)))
		return err
	}))
	return r.blob
}
