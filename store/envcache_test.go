package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// oddHeaders are headers a real mailbox holds, with the envelope each
// must give.
var oddHeaders = []struct {
	name string
	msg  string
	want Envelope
}{
	{"plain",
		"From: Alice Example <alice@example.org>\r\nTo: info@example.com\r\nSubject: hello\r\n" +
			"Date: Mon, 02 Jan 2006 15:04:05 +0100\r\nMessage-ID: <1@example.org>\r\n\r\nbody\r\n",
		Envelope{Date: time.Date(2006, 1, 2, 15, 4, 5, 0, time.FixedZone("", 3600)), Subject: "hello",
			From: []Address{{"Alice Example", "alice", "example.org"}}, To: []Address{{"", "info", "example.com"}},
			MessageID: "1@example.org"}},
	{"encoded words",
		"From: =?UTF-8?B?SsO8cmdlbiBNw7xsbGVy?= <jm@example.de>\r\n" +
			"To: =?ISO-8859-1?Q?Fran=E7ois?= <f@example.fr>, \"Bob, Jr.\" <bob@example.com>\r\n" +
			"Subject: =?UTF-8?Q?caf=C3=A9_?= =?UTF-8?B?5pel5pys?= and more\r\n" +
			"Date: 2 Jan 2006 15:04:05 -0800 (PST)\r\n\r\n",
		Envelope{Date: time.Date(2006, 1, 2, 15, 4, 5, 0, time.FixedZone("", -8*3600)), Subject: "café 日本 and more",
			From: []Address{{"Jürgen Müller", "jm", "example.de"}},
			To:   []Address{{"François", "f", "example.fr"}, {"Bob, Jr.", "bob", "example.com"}}}},
	{"missing fields", "X-Nothing: here\r\n\r\nbody\r\n", Envelope{}},
	{"no header at all", "\r\njust a body\r\n", Envelope{}},
	{"no body", "Subject: only a header\r\nFrom: a@example.org", Envelope{Subject: "only a header",
		From: []Address{{"", "a", "example.org"}}}},
	{"groups",
		"From: a@example.org\r\nTo: undisclosed-recipients:;\r\n" +
			"Cc: Team: b@example.org, Carol <c@example.org>;, d@example.org\r\n\r\n",
		Envelope{From: []Address{{"", "a", "example.org"}},
			Cc: []Address{{"", "b", "example.org"}, {"Carol", "c", "example.org"}, {"", "d", "example.org"}}}},
	{"folded, repeated and noisy",
		"Received: from x\r\n\tby y; Mon, 02 Jan 2006 15:04:05 +0000\r\n" +
			"DKIM-Signature: v=1; a=rsa-sha256;\r\n b=AAAA\r\n" +
			"subject: a long\r\n subject line\r\n" +
			"FROM: a@example.org\r\n" +
			"Sender: s@example.org\r\nReply-To: r@example.org\r\nBcc: x@example.org\r\n" +
			"In-Reply-To: <a@x> <b@y>\r\nMessage-Id:   <m@z>  \r\n\r\n",
		Envelope{Subject: "a long subject line", From: []Address{{"", "a", "example.org"}},
			Sender: []Address{{"", "s", "example.org"}}, ReplyTo: []Address{{"", "r", "example.org"}},
			Bcc: []Address{{"", "x", "example.org"}}, InReplyTo: []string{"a@x", "b@y"}, MessageID: "m@z"}},
	{"malformed line stops the header",
		"From: a@example.org\r\nthis is not a field\r\nSubject: lost\r\n\r\n",
		Envelope{From: []Address{{"", "a", "example.org"}}}},
	{"bad values",
		"From: not an address\r\nTo: <@>\r\nDate: yesterday\r\nSubject: =?x-unknown?Q?abc?=\r\n\r\n",
		Envelope{Subject: "=?x-unknown?Q?abc?="}},
	{"bare LF", "Subject: lf\nFrom: a@example.org\n\nbody\n",
		Envelope{Subject: "lf", From: []Address{{"", "a", "example.org"}}}},
}

// sameEnvelope compares envelopes with dates by instant and offset.
func sameEnvelope(a, b Envelope) bool {
	_, oa := a.Date.Zone()
	_, ob := b.Date.Zone()
	if !a.Date.Equal(b.Date) || oa != ob {
		return false
	}
	a.Date, b.Date = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func deliverAll(t *testing.T, s *Store, box string, msgs ...string) []uint32 {
	t.Helper()
	var uids []uint32
	for _, m := range msgs {
		d, err := s.Deliver(context.Background(), Delivery{Recipients: []string{"info@example.com"}, Mailbox: box, Message: []byte(m)})
		must(t, err)
		uids = append(uids, d[0].UID)
	}
	return uids
}

func cachedEnvelopes(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	s.db.View(func(tx *bolt.Tx) error {
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
	for _, h := range oddHeaders {
		msgs = append(msgs, h.msg)
	}
	uids := deliverAll(t, s, "", msgs...)
	check := func(when string, got []Envelope) {
		t.Helper()
		for i, h := range oddHeaders {
			if !sameEnvelope(got[i], h.want) {
				t.Errorf("%s, %s:\n got %+v\nwant %+v", when, h.name, got[i], h.want)
			}
		}
	}
	got, err := s.Envelopes(t.Context(), "info@example.com", "INBOX", uids)
	must(t, err)
	check("parsed", got)
	envelopeWrites.Wait()
	if n := cachedEnvelopes(t, s); n != len(oddHeaders) {
		t.Fatalf("%d envelopes cached, want %d", n, len(oddHeaders))
	}
	got, err = s.Envelopes(t.Context(), "info@example.com", "INBOX", uids)
	must(t, err)
	check("cached", got)

	// Any order, repeats, and UIDs that do not exist.
	rev := []uint32{uids[3], 999, uids[0], uids[0], 0}
	got, err = s.Envelopes(t.Context(), "info@example.com", "INBOX", rev)
	must(t, err)
	for i, want := range []Envelope{oddHeaders[3].want, {}, oddHeaders[0].want, oddHeaders[0].want, {}} {
		if !sameEnvelope(got[i], want) {
			t.Errorf("out of order %d: got %+v", i, got[i])
		}
	}
	if _, err := s.Envelopes(t.Context(), "info@example.com", "Nope", uids); !errors.Is(err, ErrNoSuchMailbox) {
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
	uids := deliverAll(t, s, "", oddHeaders[0].msg, oddHeaders[1].msg)
	_, err = s.Envelopes(ctx, "info@example.com", "INBOX", uids)
	must(t, err)
	envelopeWrites.Wait()
	res, err := s.CopyMessages(ctx, "info@example.com", "INBOX", "Archive", uids)
	must(t, err)
	got, err := s.Envelopes(ctx, "info@example.com", "Archive", res.Dest)
	must(t, err)
	envelopeWrites.Wait()
	for i, e := range got {
		if !sameEnvelope(e, oddHeaders[i].want) {
			t.Errorf("copy %d: got %+v", i, e)
		}
	}
	if n := cachedEnvelopes(t, s); n != 2 {
		t.Errorf("%d envelopes cached after COPY, want 2 (shared)", n)
	}
	moved, err := s.MoveMessages(ctx, "info@example.com", "Archive", "INBOX", res.Dest[:1])
	must(t, err)
	got, err = s.Envelopes(ctx, "info@example.com", "INBOX", moved.Dest)
	must(t, err)
	if !sameEnvelope(got[0], oddHeaders[0].want) {
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
	got, err = s.Envelopes(ctx, "info@example.com", "INBOX", uids)
	must(t, err)
	if !sameEnvelope(got[0], Envelope{}) {
		t.Errorf("expunged: got %+v", got[0])
	}
}

// A cache write for a message expunged after it was read writes nothing;
// dropEnvelope removes an entry.
func TestEnvelopeCacheRaces(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	ctx := context.Background()
	uids := deliverAll(t, s, "", oddHeaders[0].msg)
	msgs, _, err := s.Messages(ctx, "info@example.com", "INBOX")
	must(t, err)
	blob := msgs[0].blob
	_, err = s.Expunge(ctx, "info@example.com", "INBOX", uids)
	must(t, err)
	s.saveEnvelopes([]envelopeEntry{{blob, encodeEnvelope(&oddHeaders[0].want)}})
	if n := cachedEnvelopes(t, s); n != 0 {
		t.Errorf("%d envelopes cached for an expunged message", n)
	}

	uids = deliverAll(t, s, "", oddHeaders[0].msg)
	_, err = s.Envelopes(ctx, "info@example.com", "INBOX", uids)
	must(t, err)
	envelopeWrites.Wait()
	msgs, _, err = s.Messages(ctx, "info@example.com", "INBOX")
	must(t, err)
	if p := verifyCache(s); len(p) != 0 {
		t.Errorf("verify: %q", p)
	}
	// An entry left behind by a deleted blob and a corrupt one are found.
	must(t, s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bEnvelopes)
		must(t, b.Put(u64key(blob), encodeEnvelope(&oddHeaders[0].want)))
		return b.Put(u64key(msgs[0].blob), []byte{envelopeVersion, 7})
	}))
	if p := verifyCache(s); len(p) != 2 {
		t.Errorf("verify: %q", p)
	}
	must(t, s.db.Update(func(tx *bolt.Tx) error {
		must(t, dropEnvelope(tx, blob))
		return dropEnvelope(tx, msgs[0].blob)
	}))
	if n := cachedEnvelopes(t, s); n != 0 {
		t.Errorf("%d envelopes cached after dropEnvelope", n)
	}
}

func verifyCache(s *Store) []string {
	var problems []string
	s.db.View(func(tx *bolt.Tx) error {
		verifyEnvelopes(tx, func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) })
		return nil
	})
	return problems
}

func TestEnvelopeEncoding(t *testing.T) {
	for _, h := range oddHeaders {
		b := encodeEnvelope(&h.want)
		got, ok := decodeEnvelope(b)
		if !ok || !sameEnvelope(got, h.want) {
			t.Errorf("%s: round trip gave %+v, %v", h.name, got, ok)
		}
		// Every truncation and every flipped byte is refused or decodes
		// to something, never a panic.
		for i := range b {
			if _, ok := decodeEnvelope(b[:i]); ok {
				t.Errorf("%s: truncated at %d decodes", h.name, i)
			}
			c := bytes.Clone(b)
			c[i] ^= 0xff
			decodeEnvelope(c)
		}
	}
	// An entry of another version is a miss.
	b := encodeEnvelope(&oddHeaders[0].want)
	b[0]++
	if _, ok := decodeEnvelope(b); ok {
		t.Error("other version decodes")
	}
}

// Leaving out the fields an envelope does not use changes nothing.
func TestEnvelopeFieldsFilter(t *testing.T) {
	extra := []string{
		"",
		"Received: from a\r\n\tby b\r\n",
		" leading space\r\nSubject: x\r\n",
		"X-Bad Key: v\r\nSubject: y\r\n",
		": empty key\r\nSubject: z\r\n",
		"Subject\r\n : continued key\r\n",
	}
	for _, x := range extra {
		for _, h := range oddHeaders {
			msg := x + h.msg
			hdr := []byte(msg[:headerSize([]byte(msg))])
			want := envelopeOf(hdr)
			if got := parseEnvelope(bytes.Clone(hdr)); !sameEnvelope(got, want) {
				t.Errorf("%q + %s:\n got %+v\nwant %+v", x, h.name, got, want)
			}
		}
	}
}

func TestEnvelopeLongHeader(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	must(t, s.SetQuota(t.Context(), "info@example.com", 0))
	// A header spanning chunks, with the subject at its end.
	msg := strings.Repeat("X-Filler: "+strings.Repeat("f", 90)+"\r\n", 1000) + "Subject: far\r\n\r\nbody\r\n"
	uids := deliverAll(t, s, "", msg)
	got, err := s.Envelopes(t.Context(), "info@example.com", "INBOX", uids)
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
	got, err := s.Envelopes(t.Context(), "info@example.com", "INBOX", uids)
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
