package smtpd

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"yubin/internal/delivery"
	"yubin/internal/spam"
	"yubin/internal/testutil"
	"yubin/internal/testutil/mailgen"
	"yubin/internal/testutil/teststore"
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
// 1 when group commit batches deliveries, and far below 1 since deliveries
// are acknowledged from the write-ahead log and committed to bbolt at
// checkpoints) and fsyncs/msg: bbolt's, twice per commit (data pages, then
// the meta page; fdatasync on Linux), without the log's one per batch.
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
	benchIngestWith(b, msg, clients, ingestOptions(b, stages))
}

// ingestOptions makes the server of a benchIngest case with stages
// ("none", "scan" or "scan+spam").
func ingestOptions(b *testing.B, stages string) envOptions {
	var deliverer func(st store.Store) *delivery.Deliverer
	switch stages {
	case "scan":
		deliverer = scanDeliverer(b)
	case "scan+spam":
		scanning, filter := scanDeliverer(b), spamDeliverer(b)
		deliverer = func(st store.Store) *delivery.Deliverer {
			return delivery.New(st, nil, append(scanning(st).Stages(), filter(st).Stages()...)...)
		}
	}
	return envOptions{deliverer: deliverer}
}

// benchIngestWith sends b.N copies of msg to port 25 over clients
// connections, to a server newEnv makes with o (quiet, the connection
// limit raised).
func benchIngestWith(b *testing.B, msg []byte, clients int, o envOptions) {
	o.quiet, o.cfg.MaxConnections = true, 1000
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
	start, cpu := time.Now(), testutil.ProcessCPU()
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
	testutil.ReportCPU(b, cpu, "cpu-ns/msg")
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

// BenchmarkIngestSpam measures what the spam stage costs at ingest: a
// realistic 10 KiB message (mailgen: multipart/alternative,
// quoted-printable text and HTML, the header of mail from the Internet)
// through port 25 with scanning alone (spam=off) and with scanning and the
// spam filter (spam=on), whose example.com model is trained with 300 spam
// and 300 ham messages of the same kind, so that the classifier weighs
// hundreds of known tokens. Besides ns/op it reports cpu-ns/msg, the
// process's CPU time (user and system, the SMTP clients included) per
// message: steadier than wall time on a shared machine, and what the
// stage adds when the server is busy.
func BenchmarkIngestSpam(b *testing.B) {
	msg := mailgen.New(1).Message(false, 10<<10)
	// The trained store is made once and copied for each run: training
	// takes seconds.
	trained := b.TempDir()
	st := teststore.OpenDir(b, trained, storeOptions(true))
	trainRealistic(b, st, 300)
	testutil.Must(b, st.Close())
	for _, on := range []bool{false, true} {
		for _, clients := range []int{1, 8} {
			b.Run(fmt.Sprintf("spam=%s/clients=%d", map[bool]string{false: "off", true: "on"}[on], clients), func(b *testing.B) {
				dir := filepath.Join(b.TempDir(), "data")
				testutil.Must(b, os.CopyFS(dir, os.DirFS(trained)))
				scanning := scanDeliverer(b)
				deliverer := func(st store.Store) *delivery.Deliverer {
					stages := scanning(st).Stages()
					if on {
						stages = append(stages, &delivery.SpamStage{Store: st})
					}
					return delivery.New(st, nil, stages...)
				}
				benchIngestWith(b, msg, clients, envOptions{dir: dir, deliverer: deliverer})
			})
		}
	}
}

// trainRealistic trains the example.com model with n spam and n ham
// messages from mailgen, concurrently so that group commit batches them.
func trainRealistic(t testing.TB, st store.Store, n int) {
	g := mailgen.New(2)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	var failed atomic.Value
	for i := range 2 * n {
		class := store.Ham
		if i%2 == 0 {
			class = store.Spam
		}
		tokens := spam.Tokenize(g.Message(class == store.Spam, 2<<10+g.IntN(8<<10)))
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := st.TrainSpam(t.Context(), store.SpamTraining{Owners: []string{"example.com"}, Tokens: tokens, Class: class}); err != nil {
				failed.Store(err)
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
}
