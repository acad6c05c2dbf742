package smtpd

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"yubin/internal/delivery"
	"yubin/store"
)

// benchMessage is a 10 KiB message.
func benchMessage() []byte {
	var b bytes.Buffer
	b.WriteString("From: sender@remote.test\r\nTo: bob@example.com\r\nSubject: benchmark\r\nMessage-ID: <bench@remote.test>\r\n\r\n")
	line := strings.Repeat("0123456789", 7) + "abcdef\r\n" // 78 bytes
	for b.Len()+len(line) <= 10<<10 {
		b.WriteString(line)
	}
	for b.Len() < 10<<10-2 {
		b.WriteByte('x')
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// BenchmarkIngest measures messages stored per second through port 25:
// 10 KiB messages, N concurrent clients each reusing one connection, the
// store on a real file in b.TempDir with fsync on. Besides msgs/s it
// reports the store's write transactions per message (commits/msg, below
// 1 when group commit batches deliveries) and fsyncs/msg: bbolt syncs
// twice per commit (data pages, then the meta page; fdatasync on Linux).
func BenchmarkIngest(b *testing.B) {
	msg := benchMessage()
	if len(msg) != 10<<10 {
		b.Fatalf("message is %d bytes", len(msg))
	}
	for _, stages := range []string{"none", "scan", "scan+spam"} {
		for _, clients := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("stages=%s/clients=%d", stages, clients), func(b *testing.B) {
				benchIngest(b, msg, clients, stages)
			})
		}
	}
}

// benchIngest runs one BenchmarkIngest case. With scan, the delivery path
// runs the built-in engine (EICAR and no signature files), as the embedded
// default does; with spam also the spam filter, with a trained domain
// model.
func benchIngest(b *testing.B, msg []byte, clients int, stages string) {
	{
		{
			o := envOptions{quiet: true, cfg: Config{MaxConnections: 1000}}
			switch stages {
			case "scan":
				o.deliverer = scanDeliverer(b)
			case "scan+spam":
				scanning, filter := scanDeliverer(b), spamDeliverer(b)
				o.deliverer = func(st store.Store) *delivery.Deliverer {
					return delivery.New(st, nil, append(scanning(st).Stages(), filter(st).Stages()...)...)
				}
			}
			e := newEnv(b, o)
			conns := make([]*smtp.Client, clients)
			for i := range conns {
				c, err := smtp.Dial(e.mx)
				if err != nil {
					b.Fatal(err)
				}
				if err := c.Hello("bench.remote.test"); err != nil {
					b.Fatal(err)
				}
				conns[i] = c
			}
			before := e.store.Stats()
			var next atomic.Int64
			var wg sync.WaitGroup
			var failed atomic.Value
			b.SetBytes(int64(len(msg)))
			b.ResetTimer()
			start := time.Now()
			for _, c := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if err := c.SendMail("sender@remote.test", []string{"bob@example.com"}, bytes.NewReader(msg)); err != nil {
							failed.Store(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if err, _ := failed.Load().(error); err != nil {
				b.Fatal(err)
			}
			for _, c := range conns {
				c.Quit()
			}
			after := e.store.Stats()
			delivered := after.Deliveries - before.Deliveries
			if delivered != int64(b.N) {
				b.Fatalf("%d deliveries committed, want %d", delivered, b.N)
			}
			commits := float64(after.Commits - before.Commits)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			b.ReportMetric(commits/float64(b.N), "commits/msg")
			b.ReportMetric(2*commits/float64(b.N), "fsyncs/msg")
		}
	}
}
