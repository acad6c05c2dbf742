package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"yubin/internal/testutil"
	"yubin/internal/testutil/teststore"
	"yubin/store"
)

func TestDeliverStoresAndLogs(t *testing.T) {
	st := teststore.New(t, teststore.Options{Accounts: []store.Account{{Address: "info@example.com", Quota: 100}}})
	var logBuf bytes.Buffer
	d := New(st, slog.New(slog.NewJSONHandler(&logBuf, nil)))
	env := Envelope{Source: MX, From: "a@remote.test", Recipients: []string{"info@example.com"},
		RemoteAddr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1234}, Helo: "client"}
	msg := []byte("Subject: hi\r\n\r\nbody\r\n")
	res, err := d.Deliver(context.Background(), env, msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Delivered) != 1 || res.QueueID == "" {
		t.Fatalf("result %+v", res)
	}
	got, err := st.ReadMessage(t.Context(), "info@example.com", "INBOX", res.Delivered[0].UID)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("stored %q, %v", got, err)
	}
	var line map[string]any
	if err := json.Unmarshal(logBuf.Bytes(), &line); err != nil {
		t.Fatalf("log %q: %v", logBuf.String(), err)
	}
	for k, want := range map[string]any{"msg": "delivery", "queue_id": res.QueueID, "source": "mx", "from": "a@remote.test",
		"outcome": OutcomeDelivered, "size": float64(len(msg)), "remote": "192.0.2.1:1234"} {
		if line[k] != want {
			t.Errorf("log %s = %v, want %v", k, line[k], want)
		}
	}

	// Too big for the quota: a *store.QuotaError, nothing stored, logged.
	logBuf.Reset()
	_, err = d.Deliver(context.Background(), env, bytes.Repeat([]byte("x"), 200))
	var qe *store.QuotaError
	if !errors.As(err, &qe) {
		t.Fatalf("err %v, want QuotaError", err)
	}
	if !bytes.Contains(logBuf.Bytes(), []byte(`"outcome":"refused-quota"`)) {
		t.Errorf("log %s", logBuf.Bytes())
	}
	if a, _ := st.Account(t.Context(), "info@example.com"); a.Used != int64(len(msg)) {
		t.Errorf("used %d", a.Used)
	}
}

func TestNewQueueID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{16}$`)
	seen := map[string]bool{}
	prev := ""
	for range 1000 {
		id := NewQueueID()
		if !re.MatchString(id) {
			t.Fatalf("queue id %q", id)
		}
		if seen[id] {
			t.Fatalf("duplicate %q", id)
		}
		if id[:9] < prev[:min(9, len(prev))] { // 9 chars = 45 of the 48 time bits
			t.Fatalf("ids not time-ordered: %s after %s", id, prev)
		}
		seen[id] = true
		prev = id
	}
}

// A spooled message (header section in memory, the rest in a file) is
// stored and queued whole, with the stages' header fields on top, read
// from the file; Size and Reader see all of it.
func TestDeliverSpooled(t *testing.T) {
	st := teststore.New(t, teststore.Options{Accounts: []store.Account{{Address: "info@example.com"}}})
	head := []byte("Received: x\r\nSubject: big\r\n\r\n")
	body := bytes.Repeat([]byte("0123456789abcdef\r\n"), 20000) // 360,000 bytes
	f, err := os.Create(filepath.Join(t.TempDir(), "spooled"))
	testutil.Must(t, err)
	defer f.Close()
	_, err = f.Write(body)
	testutil.Must(t, err)
	var size int64
	var whole []byte
	stage := StageFunc("look", func(ctx context.Context, m *Message) error {
		size = m.Size()
		whole, err = io.ReadAll(m.Reader())
		m.Remote = append(m.Remote, &RemoteCopy{From: "info@example.com", To: []string{"x@remote.test"}, Origin: store.OriginForward})
		m.PrependHeader("X-Test: seen")
		return err
	})
	res, err := New(st, nil, stage).DeliverSpooled(context.Background(), Envelope{Recipients: []string{"info@example.com"}},
		head, io.NewSectionReader(f, 0, int64(len(body))))
	testutil.Must(t, err)
	want := append(append([]byte(nil), head...), body...)
	if size != int64(len(want)) || !bytes.Equal(whole, want) {
		t.Fatalf("stage saw %d bytes (Size %d), want %d", len(whole), size, len(want))
	}
	got, err := st.ReadMessage(t.Context(), "info@example.com", "INBOX", res.Delivered[0].UID)
	testutil.Must(t, err)
	want = append([]byte("X-Test: seen\r\n"), want...)
	if !bytes.Equal(got, want) {
		t.Fatalf("stored %d bytes, want %d", len(got), len(want))
	}
	if len(res.Queued) != 1 {
		t.Fatalf("queued %v", res.Queued)
	}
	q, _, err := st.ReadQueued(t.Context(), res.Queued[0])
	testutil.Must(t, err)
	if !bytes.Equal(q, want) {
		t.Fatalf("queued %d bytes, want %d", len(q), len(want))
	}
}
