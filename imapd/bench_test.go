package imapd

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"yubin/internal/testutil"
	"yubin/internal/testutil/teststore"
	"yubin/store"
)

// fill delivers n messages of about size bytes to info@example.com,
// concurrently so the store's group commit keeps set-up short.
func fill(b *testing.B, st store.Store, n, size int) {
	b.Helper()
	testutil.Must(b, st.SetQuota(b.Context(), "info@example.com", 0))
	teststore.Fill(b, st, "info@example.com", n, size, func(i int) string {
		return fmt.Sprintf("From: Bench Sender <bench@example.org>\r\nTo: info@example.com\r\nSubject: message number %d\r\n"+
			"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <%d@bench.example.org>\r\n\r\n", i, i)
	})
}

// literal reads the rest of a response that ends with a literal {n}.
func (r *raw) skipLiteral(l string) int64 {
	i := strings.LastIndexByte(l, '{')
	n, err := strconv.ParseInt(strings.TrimSuffix(l[i+1:], "}"), 10, 64)
	if err != nil {
		r.T.Fatalf("no literal in %q", l)
	}
	if _, err := io.CopyN(io.Discard, r.R, n); err != nil {
		r.T.Fatal(err)
	}
	return n
}

// BenchmarkSelectFetch10k: SELECT INBOX + UID FETCH 1:* (FLAGS ENVELOPE
// RFC822.SIZE) on a 10,000-message mailbox over TLS, per iteration.
func BenchmarkSelectFetch10k(b *testing.B) {
	e := newEnv(b, Config{})
	fill(b, e.st, 10000, 2048)
	r := dialRaw(b, e.implicit, true)
	r.login("info@example.com")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.ok("SELECT INBOX")
		u := r.ok("UID FETCH 1:* (FLAGS ENVELOPE RFC822.SIZE)")
		if len(u) != 10000 || !strings.Contains(u[9999], "ENVELOPE") {
			b.Fatalf("%d responses: %q", len(u), u[len(u)-1])
		}
	}
}

// BenchmarkColdFetch10k: the first UID FETCH 1:* (FLAGS ENVELOPE) of a
// mailbox that has just received 10,000 messages (cold-ms: nothing has
// asked for their envelopes yet), then the second (warm-ms), over TLS.
// Each iteration fills a new store; only the two FETCHes are timed.
func BenchmarkColdFetch10k(b *testing.B) {
	benchColdWarm(b, func(st store.Store) { fill(b, st, 10000, 2048) }, "UID FETCH 1:* (FLAGS ENVELOPE)", 10000, "ENVELOPE")
}

// benchColdWarm times cmd, a FETCH answering n messages with want in
// each, twice on a new store that fill filled: the
// first time (cold-ms) and the second (warm-ms), over TLS. Only the two
// commands are timed.
func benchColdWarm(b *testing.B, fill func(st store.Store), cmd string, n int, want string) {
	var cold, warm time.Duration
	fetch := func(r *raw) time.Duration {
		start := time.Now()
		u := r.ok("%s", cmd)
		d := time.Since(start)
		if len(u) != n || !strings.Contains(u[n-1], want) {
			b.Fatalf("%d responses: %q", len(u), u[len(u)-1])
		}
		return d
	}
	for b.Loop() {
		b.StopTimer()
		e := newEnv(b, Config{})
		fill(e.st)
		r := dialRaw(b, e.implicit, true)
		r.login("info@example.com")
		r.ok("SELECT INBOX")
		b.StartTimer()
		cold += fetch(r)
		warm += fetch(r)
	}
	b.ReportMetric(float64(cold.Microseconds())/1000/float64(b.N), "cold-ms")
	b.ReportMetric(float64(warm.Microseconds())/1000/float64(b.N), "warm-ms")
}

// BenchmarkFetchBody1MiB: BODY.PEEK[] of a 1 MiB message over TLS (MB/s).
func BenchmarkFetchBody1MiB(b *testing.B) {
	e := newEnv(b, Config{})
	fill(b, e.st, 1, 1<<20)
	msgs, _, _ := e.st.Messages(b.Context(), "info@example.com", "INBOX")
	r := dialRaw(b, e.implicit, true)
	r.login("info@example.com")
	r.ok("SELECT INBOX")
	b.SetBytes(msgs[0].Size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Send("f FETCH 1 BODY.PEEK[]\r\n")
		if n := r.skipLiteral(r.Line()); n != msgs[0].Size {
			b.Fatalf("literal of %d bytes", n)
		}
		if _, st := r.until("f"); !strings.HasPrefix(st, "OK") {
			b.Fatal(st)
		}
	}
}

// BenchmarkIdleConnHeap: heap per idle connection, logged in with INBOX
// selected, at 1,000 connections. The clients run in the same process;
// "plain" (AllowInsecureAuth, no TLS) keeps their share to a bare
// net.Conn, "tls" includes a client tls.Conn per connection too.
func BenchmarkIdleConnHeap(b *testing.B) {
	for _, mode := range []string{"plain", "tls"} {
		b.Run(mode, func(b *testing.B) {
			const conns = 1000
			e := newEnv(b, Config{AllowInsecureAuth: true})
			// A cheap hash: the benchmark measures memory, not bcrypt.
			h, _ := bcrypt.GenerateFromPassword([]byte("pw-info"), bcrypt.MinCost)
			testutil.Must(b, e.st.SetPasswordHash(b.Context(), "info@example.com", string(h)))
			fill(b, e.st, 100, 2048)
			for i := 0; i < b.N; i++ {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				cs := make([]net.Conn, conns)
				var wg sync.WaitGroup
				sem := make(chan struct{}, 32)
				for j := range cs {
					wg.Add(1)
					sem <- struct{}{}
					go func(j int) {
						defer wg.Done()
						defer func() { <-sem }()
						cs[j] = openIdle(b, e, mode == "tls")
					}(j)
				}
				wg.Wait()
				time.Sleep(200 * time.Millisecond)
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/conns, "heap-bytes/conn")
				b.ReportMetric(float64(after.StackInuse-before.StackInuse)/conns, "stack-bytes/conn")
				b.ReportMetric(float64(runtime.NumGoroutine())/conns, "goroutines/conn")
				for _, c := range cs {
					c.Close()
				}
			}
		})
	}
}

// openIdle logs in and selects INBOX, keeping nothing but the connection.
func openIdle(b *testing.B, e *env, useTLS bool) net.Conn {
	var c net.Conn
	var err error
	if useTLS {
		c, err = tls.Dial("tcp", e.implicit, &tls.Config{InsecureSkipVerify: true})
	} else {
		c, err = net.Dial("tcp", e.plain)
	}
	if err != nil {
		b.Error(err)
		return nil
	}
	buf := make([]byte, 4096)
	readUntil := func(s string) {
		var got []byte
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		for !strings.Contains(string(got), s) {
			n, err := c.Read(buf)
			if err != nil {
				b.Errorf("%v (got %q)", err, got)
				return
			}
			got = append(got, buf[:n]...)
		}
	}
	readUntil("\r\n")
	io.WriteString(c, "a LOGIN info@example.com pw-info\r\n")
	readUntil("a OK")
	io.WriteString(c, "b SELECT INBOX\r\n")
	readUntil("b OK")
	return c
}
