package bolt

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"yubin/internal/mailheader"
	"yubin/internal/testutil"
	"yubin/store"
)

// A delivery's Header goes on top of its Message, byte for byte, whatever
// the sizes around a chunk boundary; sizes and the header section count
// both parts; one body under different headers is stored per delivery.
func TestDeliveryHeaderOverBody(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	testutil.Must(t, s.SetQuota(t.Context(), "info@example.com", 0))
	ctx := t.Context()
	body := func(n int) []byte {
		b := []byte("Subject: s\r\n\r\n")
		return append(b, bytes.Repeat([]byte("x"), n)...)
	}
	for _, c := range []struct {
		hdr  int // bytes of header fields (0: none)
		body int
	}{
		{0, 10}, {30, 10}, {30, chunkSize - 30 - 14}, {30, chunkSize - 30 - 13}, {30, chunkSize}, {chunkSize, 5},
		{chunkSize + 7, 2*chunkSize + 3}, {0, 3 * chunkSize}, {0, 0},
	} {
		var hdr []byte
		if c.hdr > 0 {
			hdr = []byte("X-Pad: " + strings.Repeat("p", c.hdr-9) + "\r\n")
		}
		msg := body(c.body)
		d, err := s.Deliver(ctx, store.Delivery{Recipients: []string{"info@example.com"}, Header: hdr, Message: msg})
		testutil.Must(t, err)
		want := append(append([]byte(nil), hdr...), msg...)
		got, err := s.ReadMessage(ctx, "info@example.com", "INBOX", d[0].UID)
		testutil.Must(t, err)
		if !bytes.Equal(got, want) {
			t.Fatalf("header %d + body %d: read %d bytes, want %d (equal prefix %v)", c.hdr, c.body, len(got), len(want), bytes.HasPrefix(want, got))
		}
		msgs, _, err := s.MessagesByUID(ctx, "info@example.com", "INBOX", []uint32{d[0].UID})
		testutil.Must(t, err)
		if msgs[0].Size != int64(len(want)) || msgs[0].HeaderSize != int64(mailheader.HeaderSize(want)) {
			t.Errorf("header %d + body %d: size %d header size %d, want %d %d", c.hdr, c.body, msgs[0].Size, msgs[0].HeaderSize, len(want), mailheader.HeaderSize(want))
		}
	}
	if _, err := s.Deliver(ctx, store.Delivery{Recipients: []string{"info@example.com"}, Header: []byte("X-No-CRLF: 1"), Message: body(1)}); err == nil {
		t.Error("a header without its CRLF was accepted")
	}
	a, err := s.Account(ctx, "info@example.com")
	testutil.Must(t, err)
	msgs, _, err := s.Messages(ctx, "info@example.com", "INBOX")
	testutil.Must(t, err)
	var sum int64
	for _, m := range msgs {
		sum += m.Size
	}
	if a.Used != sum {
		t.Errorf("usage %d, sum of sizes %d", a.Used, sum)
	}
	if p, err := s.Verify(ctx); err != nil || len(p) > 0 {
		t.Errorf("verify: %v %q", err, p)
	}
}

// A delivery's Tail is copied into chunks byte for byte, whatever the
// sizes around a chunk boundary (storetest checks the rest of its
// contract).
func TestDeliveryTailChunks(t *testing.T) {
	s := openTest(t)
	setup(t, s)
	testutil.Must(t, s.SetQuota(t.Context(), "info@example.com", 0))
	ctx := t.Context()
	head := []byte("Received: x\r\nSubject: s\r\n\r\n")
	for _, c := range []struct{ hdr, tail int }{
		{0, 1}, {12, chunkSize - len(head) - 12}, {12, chunkSize - len(head) - 11}, {0, chunkSize}, {30, 3*chunkSize + 5}, {0, 0},
	} {
		var hdr []byte
		if c.hdr > 0 {
			hdr = []byte("X-Pad: " + strings.Repeat("p", c.hdr-9) + "\r\n")
		}
		body := bytes.Repeat([]byte("0123456789abcdef"), c.tail/16+1)[:c.tail]
		tail := io.NewSectionReader(bytes.NewReader(body), 0, int64(len(body)))
		d, err := s.Deliver(ctx, store.Delivery{Recipients: []string{"info@example.com"}, Header: hdr, Message: head, Tail: tail})
		testutil.Must(t, err)
		want := append(append(append([]byte(nil), hdr...), head...), body...)
		got, err := s.ReadMessage(ctx, "info@example.com", "INBOX", d[0].UID)
		testutil.Must(t, err)
		if !bytes.Equal(got, want) {
			t.Fatalf("header %d + tail %d: read %d bytes, want %d", c.hdr, c.tail, len(got), len(want))
		}
	}
	if p, err := s.Verify(ctx); err != nil || len(p) > 0 {
		t.Errorf("verify: %v %q", err, p)
	}
}
