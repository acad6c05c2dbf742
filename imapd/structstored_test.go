package imapd

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"yubin/internal/testutil"
	"yubin/internal/testutil/mailgen"
	"yubin/store"
)

// deliverStructured stores msg as the delivery path does: with its
// structure encoded (or, with structure false, as a message stored before
// there were structures).
func deliverStructured(t testing.TB, st store.Store, msg string, structure []byte) uint32 {
	t.Helper()
	d, err := st.Deliver(t.Context(), store.Delivery{Recipients: []string{"info@example.com"}, Message: []byte(msg), Structure: structure})
	testutil.Must(t, err)
	return d[0].UID
}

func encodeString(t testing.TB, msg string) []byte {
	t.Helper()
	enc, err := EncodeStructure(strings.NewReader(msg))
	testutil.Must(t, err)
	return enc
}

// BODY, BODYSTRUCTURE and BODY[n] answer the same for a message stored
// with its structure as for one stored without (parsed at FETCH).
func TestStoredStructureSameAnswers(t *testing.T) {
	e := newEnv(t, Config{})
	msgs := []string{msg1, mime1, mimeMsg, rfc822Msg, rfc822x2Msg, digestMsg, b64Msg, qpMsg, "\r\n"}
	for _, m := range msgs {
		deliverStructured(t, e.st, m, nil)
		deliverStructured(t, e.st, m, encodeString(t, m))
	}
	r := dialRaw(t, e.implicit, true)
	r.login("info@example.com")
	r.ok("SELECT INBOX")
	for i := range msgs {
		for _, item := range []string{"BODYSTRUCTURE", "BODY", "BODY.PEEK[1]", "BODY.PEEK[2.1]", "BINARY.PEEK[1]"} {
			without, st1 := r.cmd("UID FETCH %d (%s)", 2*i+1, item)
			with, st2 := r.cmd("UID FETCH %d (%s)", 2*i+2, item)
			strip := func(u []string) string {
				s := strings.Join(u, "\n")
				return strings.NewReplacer(fmt.Sprintf("UID %d ", 2*i+1), "UID x ", fmt.Sprintf("UID %d ", 2*i+2), "UID x ",
					fmt.Sprintf("* %d FETCH", 2*i+1), "* n FETCH", fmt.Sprintf("* %d FETCH", 2*i+2), "* n FETCH").Replace(s)
			}
			if strip(without) != strip(with) || st1[:2] != st2[:2] {
				t.Errorf("message %d, %s: parsed %q %s, stored %q %s", i, item, without, st1, with, st2)
			}
		}
	}
}

// The stored structure is what FETCH answers from: one stored for another
// message of the same size is what BODYSTRUCTURE describes (it is never
// checked against the bytes), and one for a message of another size is
// not used.
func TestStoredStructureUsed(t *testing.T) {
	e := newEnv(t, Config{})
	plain := "Subject: x\r\n\r\n" + strings.Repeat("a", 100) + "\r\n"
	html := "Content-Type: text/html\r\n\r\n" + strings.Repeat("b", len(plain)-29) + "\r\n"
	if len(html) != len(plain) {
		t.Fatalf("sizes %d and %d", len(html), len(plain))
	}
	deliverStructured(t, e.st, plain, encodeString(t, html))
	deliverStructured(t, e.st, plain, encodeString(t, plain+"x"))
	r := dialRaw(t, e.implicit, true)
	r.login("info@example.com")
	r.ok("SELECT INBOX")
	if u := r.ok("UID FETCH 1 (BODYSTRUCTURE)"); len(u) != 1 || !strings.Contains(u[0], `("text" "html"`) {
		t.Errorf("stored structure not used: %q", u)
	}
	if u := r.ok("UID FETCH 2 (BODYSTRUCTURE)"); len(u) != 1 || !strings.Contains(u[0], `("text" "plain"`) {
		t.Errorf("a structure of another size used: %q", u)
	}
}

// BenchmarkColdBodyStructure10k: the first UID FETCH 1:* (BODYSTRUCTURE)
// of a mailbox that has just received 10,000 realistic messages
// (multipart/alternative, quoted-printable text and HTML; 3 KiB) — cold-ms —
// then the second (warm-ms), over TLS; stored=yes with the structure kept
// at delivery, stored=no as messages stored before (parsed each time).
// Each iteration fills a new store; only the FETCHes are timed.
func BenchmarkColdBodyStructure10k(b *testing.B) {
	const n = 10000
	g := mailgen.New(1)
	msgs := make([]string, 64)
	for i := range msgs {
		msgs[i] = string(g.Message(i%2 == 0, 3<<10))
	}
	for _, stored := range []bool{true, false} {
		b.Run(fmt.Sprintf("stored=%v", map[bool]string{true: "yes", false: "no"}[stored]), func(b *testing.B) {
			encs := make([][]byte, len(msgs))
			if stored {
				for i, m := range msgs {
					encs[i] = encodeString(b, m)
				}
			}
			benchColdWarm(b, func(st store.Store) {
				testutil.Must(b, st.SetQuota(b.Context(), "info@example.com", 0))
				fillStructured(b, st, n, msgs, encs)
			}, "UID FETCH 1:* (BODYSTRUCTURE)", n, "BODYSTRUCTURE")
		})
	}
}

// fillStructured delivers n messages, the i-th msgs[i%len(msgs)] with
// encs[i%len(msgs)] as its structure, 256 to a batch.
func fillStructured(b *testing.B, st store.Store, n int, msgs []string, encs [][]byte) {
	for i := 0; i < n; {
		var ds []store.Delivery
		for ; i < n && len(ds) < 256; i++ {
			ds = append(ds, store.Delivery{Recipients: []string{"info@example.com"}, Message: bytes.Clone([]byte(msgs[i%len(msgs)])), Structure: encs[i%len(msgs)]})
		}
		_, err := st.DeliverBatch(b.Context(), ds)
		testutil.Must(b, err)
	}
}

// APPEND keeps the structure of what it stores, as a delivery does.
func TestAppendStoresStructure(t *testing.T) {
	e := newEnv(t, Config{})
	r := dialRaw(t, e.implicit, true)
	r.login("info@example.com")
	if _, st := r.cmd("APPEND INBOX {%d+}\r\n%s", len(mimeMsg), mimeMsg); !strings.HasPrefix(st, "OK") {
		t.Fatalf("APPEND: %s", st)
	}
	structs, err := e.st.(store.Structures).Structures(t.Context(), "info@example.com", "INBOX", []uint32{1})
	testutil.Must(t, err)
	if want := encodeString(t, mimeMsg); !bytes.Equal(structs[0], want) {
		t.Errorf("stored structure %q, want %q", structs[0], want)
	}
}
