package delivery

import (
	"bytes"
	"context"
	"io"
	"testing"

	"yubin/internal/testutil"
	"yubin/internal/testutil/teststore"
	"yubin/store"
)

// With SetStructure, what is stored carries the structure of the stored
// bytes — the header fields stages add on top, the message, its spooled
// tail — as the function made it; the store hands it back by UID.
func TestDeliveriesCarryStructure(t *testing.T) {
	st := teststore.New(t, teststore.Options{Accounts: []store.Account{{Address: "info@example.com"}}})
	d := New(st, nil, StageFunc("top", func(_ context.Context, m *Message) error {
		m.Local[0].Header = []byte("X-Top: 1\r\n")
		return nil
	}))
	// The "structure" is the bytes read, reversed: what was read, in order.
	d.SetStructure(func(r io.Reader) ([]byte, error) {
		b, err := io.ReadAll(r)
		for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
			b[i], b[j] = b[j], b[i]
		}
		return b, err
	})
	head := []byte("Subject: s\r\n\r\n")
	body := []byte("tail of the message\r\n")
	res, err := d.DeliverSpooled(t.Context(), Envelope{Source: MX, Recipients: []string{"info@example.com"}}, head, io.NewSectionReader(bytes.NewReader(body), 0, int64(len(body))))
	testutil.Must(t, err)
	structs, err := st.(store.Structures).Structures(t.Context(), "info@example.com", "INBOX", []uint32{res.Delivered[0].UID, 99})
	testutil.Must(t, err)
	raw, err := st.ReadMessage(t.Context(), "info@example.com", "INBOX", res.Delivered[0].UID)
	testutil.Must(t, err)
	got := structs[0]
	for i, j := 0, len(got)-1; i < j; i, j = i+1, j-1 {
		got[i], got[j] = got[j], got[i]
	}
	if !bytes.Equal(got, raw) || structs[1] != nil {
		t.Errorf("structure of %q (and %q for no message); stored %q", got, structs[1], raw)
	}
}
