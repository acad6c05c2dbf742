package server_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"yubin/internal/config"
	"yubin/internal/server"
	"yubin/internal/testutil"
	"yubin/internal/testutil/teststore"
	"yubin/store"
)

// watchLog is a log handler that hands over the address of the IMAPS
// listener once the server listens, and keeps the warnings and errors.
type watchLog struct {
	imaps chan string
	mu    *sync.Mutex
	bad   *[]string
}

func (w watchLog) Enabled(context.Context, slog.Level) bool { return true }
func (w watchLog) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w watchLog) WithGroup(string) slog.Handler            { return w }

func (w watchLog) Handle(_ context.Context, r slog.Record) error {
	attrs := map[string]string{}
	r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
	if r.Message == "listening" && attrs["listener"] == "imaps" {
		w.imaps <- attrs["addr"]
	}
	if r.Level >= slog.LevelWarn {
		w.mu.Lock()
		*w.bad = append(*w.bad, fmt.Sprintf("%s %v", r.Message, attrs))
		w.mu.Unlock()
	}
	return nil
}

// A server told to stop right after a user moved mail into Junk trains
// all of it before it stops: the trainings queued are not dropped.
func TestShutdownTrainsWhatIsQueued(t *testing.T) {
	const (
		bob = "bob@example.com"
		pw  = "pw-bob"
		n   = 300
	)
	dir := t.TempDir()
	st := teststore.OpenDir(t, dir, teststore.Options{Password: pw, Accounts: []store.Account{{Address: bob}}})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := st.Deliver(t.Context(), store.Delivery{Recipients: []string{bob}, Message: fmt.Appendf(nil,
				"From: Deals <deals%d@promo.test>\r\nSubject: offer %d\r\n\r\nCheap pills %d at http://shop%d.promo.test/\r\n", i, i, i, i)})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		testutil.Must(t, err)
	}
	testutil.Must(t, st.Close()) // the server opens the data dir

	cfg := config.Default()
	cfg.Hostname = "mx.example.com"
	cfg.DataDir = dir
	for _, p := range []*string{&cfg.Listen.SMTP, &cfg.Listen.Submission, &cfg.Listen.Submissions, &cfg.Listen.POP3, &cfg.Listen.POP3S, &cfg.Listen.IMAP, &cfg.Listen.HTTP, &cfg.Listen.Web} {
		*p = "off"
	}
	cfg.Listen.IMAPS = "127.0.0.1:0"
	testutil.Must(t, cfg.Validate())
	w := watchLog{imaps: make(chan string, 1), mu: new(sync.Mutex), bad: new([]string)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, cfg, slog.New(w)) }()
	var addr string
	select {
	case addr = <-w.imaps:
	case err := <-done:
		t.Fatalf("server.Run: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the server did not listen")
	}

	c, err := imapclient.DialTLS(addr, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	testutil.Must(t, err)
	testutil.Must(t, c.Login(bob, pw).Wait())
	_, err = c.Select("INBOX", nil).Wait()
	testutil.Must(t, err)
	var all imap.UIDSet
	all.AddRange(1, n)
	_, err = c.Move(all, "Junk").Wait()
	testutil.Must(t, err)
	testutil.Must(t, c.Logout().Wait())
	c.Close()
	cancel() // now: the training of n messages has only just been queued

	select {
	case err := <-done:
		testutil.Must(t, err)
	case <-time.After(2 * time.Minute):
		t.Fatal("the server did not stop")
	}
	st = teststore.OpenDir(t, dir, teststore.Options{})
	msgs, _, err := st.Messages(t.Context(), bob, "Junk")
	testutil.Must(t, err)
	trained := 0
	for _, m := range msgs {
		if c, err := st.SpamTrained(t.Context(), store.MessageRef{Account: bob, Mailbox: "Junk", UID: m.UID}); err == nil && c == store.Spam {
			trained++
		}
	}
	if len(msgs) != n || trained != n {
		t.Errorf("after shutdown %d of %d messages in Junk are trained as spam", trained, len(msgs))
	}
	if tot, _ := st.SpamTotals(t.Context(), bob); tot.Spam != n {
		t.Errorf("bob's model counts %d spam, want %d", tot.Spam, n)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range *w.bad {
		t.Logf("logged: %s", l)
	}
}
