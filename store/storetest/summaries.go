package storetest

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"yubin/internal/mailheader"
	"yubin/internal/testutil"
	"yubin/internal/testutil/headertest"
	"yubin/store"
)

// Summaries (IMAP ENVELOPE): right the first time and every time after
// (a backend may cache them), for copies too, and gone with the message.
var summaryTests = []test{
	{"headers", testSummaries},
	{"order and missing", testSummariesOrder},
	{"copies and expunge", testSummariesCopies},
	{"long header", testSummariesLongHeader},
	{"many big headers", testSummariesMany},
	{"stored with the message", testSummariesStored},
}

// deliverAll delivers messages to info's mailbox and returns their UIDs.
func (e *env) deliverAll(box string, msgs ...string) []uint32 {
	e.t.Helper()
	testutil.Must(e.t, e.s.SetQuota(e.t.Context(), info, 0))
	var uids []uint32
	for _, m := range msgs {
		uids = append(uids, e.deliver(info, box, []byte(m)).UID)
	}
	return uids
}

// summaries asks for summaries and compares them with want.
func (e *env) summaries(when, box string, uids []uint32, want []mailheader.Summary) {
	e.t.Helper()
	got, err := e.s.Summaries(e.t.Context(), info, box, uids)
	testutil.Must(e.t, err)
	if len(got) != len(uids) {
		e.t.Fatalf("%s: %d summaries for %d UIDs", when, len(got), len(uids))
	}
	for i := range want {
		if !headertest.Same(got[i], want[i]) {
			e.t.Errorf("%s, UID %d:\n got %+v\nwant %+v", when, uids[i], got[i], want[i])
		}
	}
}

func testSummaries(t *testing.T, e *env) {
	var msgs []string
	var want []mailheader.Summary
	for _, h := range headertest.Odd {
		msgs = append(msgs, h.Msg)
		want = append(want, h.Want)
	}
	uids := e.deliverAll("", msgs...)
	for i := range 3 {
		e.summaries(fmt.Sprintf("asked %d times", i+1), "INBOX", uids, want)
	}
}

func testSummariesOrder(t *testing.T, e *env) {
	odd := headertest.Odd
	uids := e.deliverAll("", odd[0].Msg, odd[1].Msg, odd[2].Msg, odd[3].Msg)
	e.summaries("any order, repeats, missing UIDs", "INBOX", []uint32{uids[3], 999, uids[0], uids[0], 0},
		[]mailheader.Summary{odd[3].Want, {}, odd[0].Want, odd[0].Want, {}})
	e.summaries("again", "INBOX", []uint32{uids[1], uids[3]}, []mailheader.Summary{odd[1].Want, odd[3].Want})
	e.summaries("none", "INBOX", nil, nil)
	if _, err := e.s.Summaries(t.Context(), info, "Nope", uids); !is(err, store.ErrNoSuchMailbox) {
		t.Errorf("unknown mailbox: %v", err)
	}
	if _, err := e.s.Summaries(t.Context(), "nobody@example.com", "INBOX", uids); !is(err, store.ErrNoSuchAccount) {
		t.Errorf("unknown account: %v", err)
	}
}

func testSummariesCopies(t *testing.T, e *env) {
	ctx := t.Context()
	odd := headertest.Odd
	want := []mailheader.Summary{odd[0].Want, odd[1].Want}
	_, err := e.s.CreateMailbox(ctx, info, "Archive")
	testutil.Must(t, err)
	uids := e.deliverAll("", odd[0].Msg, odd[1].Msg)
	e.summaries("delivered", "INBOX", uids, want)
	res, err := e.s.CopyMessages(ctx, info, "INBOX", "Archive", uids)
	testutil.Must(t, err)
	e.summaries("copied", "Archive", res.Dest, want)
	moved, err := e.s.MoveMessages(ctx, info, "Archive", "INBOX", res.Dest[:1])
	testutil.Must(t, err)
	e.summaries("moved", "INBOX", moved.Dest, want[:1])
	_, err = e.s.Expunge(ctx, info, "INBOX", append(uids, moved.Dest...))
	testutil.Must(t, err)
	e.summaries("expunged", "INBOX", append(uids, moved.Dest...), []mailheader.Summary{{}, {}, {}})
	e.summaries("copy left", "Archive", res.Dest[1:], want[1:])
	_, err = e.s.Expunge(ctx, info, "Archive", res.Dest)
	testutil.Must(t, err)
	// A message delivered again after all its copies are gone.
	again := e.deliverAll("", odd[1].Msg)
	e.summaries("delivered again", "INBOX", again, want[1:])
}

// A header far longer than any buffer, with the subject at its end.
func testSummariesLongHeader(t *testing.T, e *env) {
	msg := strings.Repeat("X-Filler: "+strings.Repeat("f", 90)+"\r\n", 1000) + "Subject: far\r\n\r\nbody\r\n"
	uids := e.deliverAll("", msg)
	for range 2 {
		got, err := e.s.Summaries(t.Context(), info, "INBOX", uids)
		testutil.Must(t, err)
		if got[0].Subject != "far" {
			t.Errorf("subject %q", got[0].Subject)
		}
	}
}

// Many big headers at once (a first FETCH ENVELOPE of a big mailbox).
func testSummariesMany(t *testing.T, e *env) {
	filler := strings.Repeat("X-Filler: "+strings.Repeat("f", 90)+"\r\n", 2000) // 200 KB
	var msgs []string
	for i := range 30 {
		msgs = append(msgs, fmt.Sprintf("%sSubject: s%d\r\n\r\nbody\r\n", filler, i))
	}
	uids := e.deliverAll("", msgs...)
	for range 2 {
		got, err := e.s.Summaries(t.Context(), info, "INBOX", uids)
		testutil.Must(t, err)
		for i, s := range got {
			if s.Subject != fmt.Sprintf("s%d", i) {
				t.Errorf("%d: subject %q", i, s.Subject)
			}
		}
	}
}

// Summaries of a message are right from the moment it is stored, however
// it was stored — delivered with header fields on top and a tail,
// appended, imported, copied, moved — and are mailheader.Parse of its
// header section. A Summary given with a delivery is kept as the
// message's: Summaries reports it, without parsing the message.
func testSummariesStored(t *testing.T, e *env) {
	ctx := t.Context()
	testutil.Must(t, e.s.SetQuota(ctx, info, 0))
	for _, box := range []string{"Sent", "Archive"} {
		_, err := e.s.CreateMailbox(ctx, info, box)
		if err != nil && !is(err, store.ErrExists) {
			t.Fatal(err)
		}
	}
	odd := headertest.Odd
	parse := func(hdr string) mailheader.Summary { return mailheader.Parse([]byte(hdr)) }

	top := "X-On-Top: 1\r\nTo: top@example.org\r\n"
	head := "Subject: spooled\r\nFrom: a@example.org\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\n\r\n"
	tail := strings.NewReader(strings.Repeat("body\r\n", 1000))
	d, err := e.s.Deliver(ctx, store.Delivery{Recipients: []string{info}, Header: []byte(top), Message: []byte(head), Tail: io.NewSectionReader(tail, 0, tail.Size())})
	testutil.Must(t, err)
	e.summaries("delivered with a header on top and a tail", "INBOX", []uint32{d[0].UID}, []mailheader.Summary{parse(top + head)})

	d, err = e.s.Deliver(ctx, store.Delivery{Recipients: []string{info}, Mailbox: "Sent", Flags: []string{`\Seen`}, Message: []byte(odd[1].Msg)})
	testutil.Must(t, err)
	e.summaries("appended", "Sent", []uint32{d[0].UID}, []mailheader.Summary{odd[1].Want})

	given := mailheader.Summary{Subject: "given with the delivery", MessageID: "given@example.org"}
	g, err := e.s.Deliver(ctx, store.Delivery{Recipients: []string{info}, Mailbox: "Sent", Message: []byte("Subject: in the message\r\n\r\nx\r\n"), Summary: &given})
	testutil.Must(t, err)
	e.summaries("given", "Sent", []uint32{g[0].UID}, []mailheader.Summary{given})

	before, _, err := e.s.Messages(ctx, info, "Archive")
	testutil.Must(t, err)
	_, err = e.s.Import(ctx, info, []store.ImportMessage{{Key: "summary-stored", Mailbox: "Archive", Message: []byte(odd[2].Msg)}})
	testutil.Must(t, err)
	after, _, err := e.s.Messages(ctx, info, "Archive")
	testutil.Must(t, err)
	if len(after) != len(before)+1 {
		t.Fatalf("import: %d messages, then %d", len(before), len(after))
	}
	imported := after[len(after)-1].UID
	e.summaries("imported", "Archive", []uint32{imported}, []mailheader.Summary{odd[2].Want})

	res, err := e.s.CopyMessages(ctx, info, "Sent", "Archive", []uint32{d[0].UID, g[0].UID})
	testutil.Must(t, err)
	e.summaries("copied", "Archive", res.Dest, []mailheader.Summary{odd[1].Want, given})
	moved, err := e.s.MoveMessages(ctx, info, "Archive", "INBOX", append([]uint32{imported}, res.Dest...))
	testutil.Must(t, err)
	e.summaries("moved", "INBOX", moved.Dest, []mailheader.Summary{odd[2].Want, odd[1].Want, given})
}
