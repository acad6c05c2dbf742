package smtpd

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"yubin/internal/spool"
)

// spoolChunk is 1 MiB of message body, some lines ending in a bare LF
// (stored as CRLF), the last one in CRLF; and what it is stored as.
func spoolChunk() (sent, stored []byte) {
	var b bytes.Buffer
	for i := 0; b.Len() < 1<<20-200; i++ {
		fmt.Fprintf(&b, "line %06d 0123456789012345678901234567890123456789012345678901234567", i)
		if i%7 == 3 {
			b.WriteString("\n")
		} else {
			b.WriteString("\r\n")
		}
	}
	b.WriteString("end\r\n")
	sent = b.Bytes()
	return sent, bytes.ReplaceAll(bytes.ReplaceAll(sent, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
}

// stallData opens a port-25 session to bob and sends the header and mib
// MiB of chunk inside DATA, without the final dot.
func stallData(t *testing.T, e *testEnv, subject string, chunk []byte, mib int) *rawClient {
	t.Helper()
	c := dialRaw(t, e.mx)
	c.cmd("EHLO mx.remote.test", 250, "")
	c.cmd("MAIL FROM:<sender@remote.test>", 250, "")
	c.cmd("RCPT TO:<"+userBob+">", 250, "")
	c.cmd("DATA", 354, "")
	c.Send("From: sender@remote.test\r\nSubject: " + subject + "\r\n\r\n")
	for range mib {
		c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Write(chunk); err != nil {
			t.Fatalf("sending DATA: %v", err)
		}
	}
	return c
}

// waitFor polls cond (a server-side condition, not a guess at timing)
// until it holds, for at most 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func spoolFiles(t *testing.T, sp *spool.Spool) int {
	t.Helper()
	es, err := os.ReadDir(sp.Dir())
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// Sessions that stall in the middle of a big DATA cost a fixed buffer
// each, not their size: the data waits in spool files. Ended, every
// message is delivered byte for byte and its file is gone.
func TestStalledDataHeapIsFlat(t *testing.T) {
	const sessions, mib = 8, 8
	sp := testSpool(t, 0)
	e := newEnv(t, envOptions{noSync: true, quiet: true, cfg: Config{Spool: sp}})
	sent, stored := spoolChunk()
	before := heapInuse()
	var conns []*rawClient
	for i := range sessions {
		conns = append(conns, stallData(t, e, fmt.Sprintf("stalled %d", i), sent, mib))
	}
	// The last piece of each session's data may still be in the buffer
	// DATA is read through.
	waitFor(t, "the server to read every session's data", func() bool { return sp.InFlight() >= sessions*(mib<<20-copyBufSize) })
	grew := int64(heapInuse()) - int64(before)
	t.Logf("%d sessions with %d MiB each in DATA: heap grew %.1f MiB, %d spool files", sessions, mib, float64(grew)/(1<<20), spoolFiles(t, sp))
	// The data alone is 64 MiB; a spool buffer, go-smtp's and the copy
	// buffer are well under 1 MiB a session.
	if grew > sessions<<20 {
		t.Fatalf("heap grew by %d bytes for %d stalled sessions, want under %d", grew, sessions, sessions<<20)
	}
	if n := spoolFiles(t, sp); n != sessions {
		t.Fatalf("%d spool files, want one per session (%d)", n, sessions)
	}

	for _, c := range conns {
		c.Send(".\r\n")
		c.expect(250, "2.0.0")
	}
	if n := spoolFiles(t, sp); n != 0 || sp.InFlight() != 0 {
		t.Fatalf("after delivery: %d spool files, %d bytes in flight", n, sp.InFlight())
	}
	inbox := e.inbox(userBob)
	if len(inbox) != sessions {
		t.Fatalf("bob has %d messages, want %d", len(inbox), sessions)
	}
	for i, m := range inbox {
		want := append([]byte(fmt.Sprintf("From: sender@remote.test\r\nSubject: stalled %d\r\n\r\n", i)), bytes.Repeat(stored, mib)...)
		if !bytes.HasPrefix(m, []byte("Received: ")) || !bytes.HasSuffix(m, want) || len(m)-len(want) > 300 {
			t.Fatalf("message %d: %d bytes stored, want the %d sent after a Received header", i, len(m), len(want))
		}
	}
	e.verify()
}

// Over the budget of bytes in flight, DATA gets 451 4.3.1 and the
// connection goes on: RSET, and the next transaction is delivered. A SIZE
// that does not fit now gets 452 4.3.1 at MAIL.
func TestDataBudget(t *testing.T) {
	sp := testSpool(t, 1<<20)
	e := newEnv(t, envOptions{noSync: true, cfg: Config{Spool: sp}})
	sent, _ := spoolChunk()
	holder := stallData(t, e, "holds the budget", sent[:600<<10], 1)
	waitFor(t, "the first session's data", func() bool { return sp.InFlight() >= 600<<10-copyBufSize })

	c := dialRaw(t, e.mx)
	c.cmd("EHLO mx.remote.test", 250, "")
	c.cmd("MAIL FROM:<sender@remote.test> SIZE=600000", 452, "4.3.1")
	c.cmd("MAIL FROM:<sender@remote.test>", 250, "")
	c.cmd("RCPT TO:<"+userBob+">", 250, "")
	text := c.data("Subject: too much\r\n\r\n"+string(sent[:600<<10]), 451, "4.3.1")
	if !strings.Contains(text, "storage") {
		t.Errorf("451 text %q", text)
	}
	if n := spoolFiles(t, sp); n != 1 || sp.InFlight() < 600<<10-copyBufSize || sp.InFlight() > 700<<10 {
		t.Fatalf("after the refusal: %d spool files, %d bytes in flight; want only the first session's", n, sp.InFlight())
	}
	c.cmd("RSET", 250, "")
	c.cmd("MAIL FROM:<sender@remote.test>", 250, "")
	c.cmd("RCPT TO:<"+userBob+">", 250, "")
	c.data(testMessage("small one"), 250, "2.0.0")

	// The same with BDAT (CHUNKING): the chunk that goes over gets 451.
	chunk := "Subject: chunks\r\n\r\n" + string(sent[:300<<10])
	c.cmd("MAIL FROM:<sender@remote.test>", 250, "")
	c.cmd("RCPT TO:<"+userBob+">", 250, "")
	c.Send(fmt.Sprintf("BDAT %d\r\n%s", len(chunk), chunk))
	c.expect(250, "2.0.0")
	c.Send(fmt.Sprintf("BDAT %d LAST\r\n%s", 300<<10, sent[300<<10:600<<10]))
	c.expect(451, "4.3.1")
	c.cmd("RSET", 250, "")
	small := testMessage("small chunk")
	c.cmd("MAIL FROM:<sender@remote.test>", 250, "")
	c.cmd("RCPT TO:<"+userBob+">", 250, "")
	c.Send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(small), small))
	c.expect(250, "2.0.0")

	holder.Send("\r\n.\r\n") // its data ends in the middle of a line
	holder.expect(250, "2.0.0")
	if got := e.inbox(userBob); len(got) != 3 {
		t.Fatalf("bob has %d messages, want 3", len(got))
	}
	if n := spoolFiles(t, sp); n != 0 || sp.InFlight() != 0 {
		t.Fatalf("at the end: %d spool files, %d bytes in flight", n, sp.InFlight())
	}
}

// A spool file is removed however its transaction ends: delivered,
// refused (quota), or the client gone in the middle of DATA.
func TestSpoolFilesRemoved(t *testing.T) {
	sp := testSpool(t, 0)
	e := newEnv(t, envOptions{noSync: true, cfg: Config{Spool: sp}})
	sent, _ := spoolChunk()
	big := "From: sender@remote.test\r\nSubject: big\r\n\r\n" + string(sent) + string(sent)

	inbound(t, e, []string{userBob}, []byte(big), 250, "2.0.0")
	if n := spoolFiles(t, sp); n != 0 || sp.InFlight() != 0 {
		t.Fatalf("after delivery: %d spool files, %d bytes in flight", n, sp.InFlight())
	}

	inbound(t, e, []string{userInfo}, []byte(big), 552, "5.2.2") // 1 MiB quota
	if n := spoolFiles(t, sp); n != 0 || sp.InFlight() != 0 {
		t.Fatalf("after a refusal: %d spool files, %d bytes in flight", n, sp.InFlight())
	}

	c := stallData(t, e, "gone", sent, 1)
	waitFor(t, "the data to reach a spool file", func() bool { return spoolFiles(t, sp) == 1 && sp.InFlight() >= 1<<20-copyBufSize })
	c.Close()
	waitFor(t, "the spool file to be removed after the client left", func() bool { return spoolFiles(t, sp) == 0 && sp.InFlight() == 0 })
	if got := e.inbox(userBob); len(got) != 1 {
		t.Fatalf("bob has %d messages, want 1", len(got))
	}
}
