package queue

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/foxcpp/go-mockdns"

	"yubin/internal/testutil"
	"yubin/internal/testutil/teststore"
	"yubin/store"
)

// BenchmarkOutbound measures outbound messages per second to a local sink
// (a go-smtp server on 127.0.0.1 with STARTTLS) for 1 and 16 destination
// domains: queue read, DKIM signing (Ed25519 + RSA-2048), SMTP, and the
// fsync'd "sent" record per message. The dkim=off variants leave out
// the signing, to show what it costs.
func BenchmarkOutbound(b *testing.B) {
	for _, c := range []struct {
		domains int
		dkim    bool
	}{{1, true}, {16, true}, {1, false}, {16, false}} {
		domains := c.domains
		name := fmt.Sprintf("domains=%d", domains)
		if !c.dkim {
			name += "/dkim=off"
		}
		b.Run(name, func(b *testing.B) {
			e := &env{t: b, clock: newClock(), zones: map[string]mockdns.Zone{}, hosts: map[string]string{}}
			st := teststore.New(b, teststore.Options{Now: e.clock.Now, Domains: []teststore.Domain{{Name: "example.com"}}})
			e.st = st
			sk := newSink(b, true)
			sk.Quiet = true
			for d := range domains {
				e.route(fmt.Sprintf("d%d.test", d), sk)
			}
			msg := append(append([]byte(nil), testMsg...), make([]byte, 0, 10<<10)...)
			for len(msg) < 10<<10 {
				msg = append(msg, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnop\r\n"...)
			}
			r := e.runner(Config{})
			if !c.dkim {
				r.signer = noSigner{}
			}
			r.signer.Sign(b.Context(), "info@example.com", msg) // keys generated before the clock starts
			var batch []store.Outbound
			for i := range b.N {
				batch = append(batch, store.Outbound{QueueID: "B", From: "info@example.com",
					Recipients: []string{fmt.Sprintf("u%d@d%d.test", i, i%domains)}, Origin: store.OriginSubmission, Message: msg})
				if len(batch) == 500 || i == b.N-1 {
					_, err := st.Enqueue(ctx, batch...)
					testutil.Must(b, err)
					batch = batch[:0]
				}
			}
			b.ResetTimer()
			start := time.Now()
			for sk.Count.Load() < int64(b.N) {
				before := sk.Count.Load()
				r.RunDue(ctx)
				if sk.Count.Load() == before {
					b.Fatalf("no progress: %d of %d delivered", before, b.N)
				}
			}
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
			if n := e.queueLen(); n != 0 {
				b.Fatalf("%d left in the queue", n)
			}
		})
	}
}

type noSigner struct{}

func (noSigner) Sign(context.Context, string, []byte) ([]byte, error) { return nil, nil }
