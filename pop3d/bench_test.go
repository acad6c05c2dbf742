package pop3d

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"yubin/internal/testutil/teststore"
	"yubin/store"
)

// fill delivers n messages of size bytes to info@example.com, concurrently
// so the store's group commit keeps set-up short.
func fill(b *testing.B, st store.Store, n, size int) {
	b.Helper()
	teststore.Fill(b, st, "info@example.com", n, size, func(i int) string {
		return fmt.Sprintf("From: bench@example.com\r\nTo: info@example.com\r\nSubject: message %d\r\nMessage-ID: <%d@bench>\r\n\r\n", i, i)
	})
}

// readMulti consumes a multi-line response and returns its payload size.
func (c *client) readMulti() int {
	n := 0
	for {
		l, err := c.R.ReadSlice('\n')
		if err != nil {
			c.T.Fatal(err)
		}
		if len(l) == 3 && l[0] == '.' {
			return n
		}
		n += len(l)
	}
}

// BenchmarkRETR: throughput of RETR of a 1 MiB message over TLS (MB/s).
func BenchmarkRETR(b *testing.B) {
	e := newEnv(b, Config{})
	fill(b, e.st, 1, 1<<20)
	c := dialTLS(b, e.implicit)
	c.login("info@example.com")
	b.SetBytes(1 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.send("RETR 1")
		c.expectOK()
		if n := c.readMulti(); n < 1<<20 {
			b.Fatalf("short RETR: %d", n)
		}
	}
}

// BenchmarkListUIDL10k: one LIST and one UIDL of a 10,000-message INBOX
// over TLS, per iteration (login excluded).
func BenchmarkListUIDL10k(b *testing.B) {
	e := newEnv(b, Config{})
	fill(b, e.st, 10000, 2048)
	c := dialTLS(b, e.implicit)
	c.login("info@example.com")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, cmd := range []string{"LIST", "UIDL"} {
			c.send(cmd)
			c.expectOK()
			if n := c.readMulti(); n < 10000*4 {
				b.Fatalf("short %s: %d", cmd, n)
			}
		}
	}
}

// BenchmarkLogin10k: USER/PASS on a 10,000-message INBOX (bcrypt included:
// that is what a client pays per session) — the maildrop snapshot cost.
func BenchmarkLogin10k(b *testing.B) {
	e := newEnv(b, Config{})
	fill(b, e.st, 10000, 2048)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := dialTLS(b, e.implicit)
		c.login("info@example.com")
		if got := c.ok("STAT"); !strings.HasPrefix(got, "+OK 10000 ") {
			b.Fatal(got)
		}
		c.ok("QUIT")
		c.Conn.Close()
	}
}

// Byte-stuffing must not be the bottleneck of RETR.
func BenchmarkMessageWriter(b *testing.B) {
	msg := bytes.Repeat([]byte("a line of text that is about seventy characters long, like real mail.\r\n"), 1<<14)
	var buf bytes.Buffer
	b.SetBytes(int64(len(msg)))
	for i := 0; i < b.N; i++ {
		buf.Reset()
		w := newBufWriter(&buf)
		s := newMessageWriter(w, 0, -1)
		io.Copy(s, bytes.NewReader(msg))
		s.finish()
		w.Flush()
	}
}
