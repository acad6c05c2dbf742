package e2e

import (
	"bytes"
	"fmt"
	"net/smtp"
	"strings"
	"sync"
	"syscall"
	"testing"

	"yubin/internal/testutil/teststore"
)

// TestCrashLosesNoAcceptedMail delivers from 64 clients at once, kills the
// server with SIGKILL mid-flight, and checks that every message that got
// 250 is stored byte for byte and that quota usage is exact; 20 times over
// the same data dir. Deliveries are acknowledged from the write-ahead log
// (store/bolt/wal.go) before bbolt commits them, so a kill between the two
// leaves records that the next start must write.
func TestCrashLosesNoAcceptedMail(t *testing.T) {
	data, cfg := newDataDirWith(t, "[smtp]\nmax_connections_per_ip = 0 # 64 clients from one address\n")
	acked := map[string][]byte{} // Message-ID -> bytes sent, over all rounds
	// Rounds of serve, load, SIGKILL: recovery must hold after repeated
	// crashes too.
	replayed := 0
	for round := 0; round < 20; round++ {
		replayed += crashRound(t, data, cfg, round, acked)
	}
	if replayed == 0 {
		t.Error("no round left deliveries in the write-ahead log only: the log's replay was not tested")
	}
}

// crashRound runs one round and returns how many deliveries the store
// wrote from its write-ahead log when opened after the kill.
func crashRound(t *testing.T, data, cfg string, round int, acked map[string][]byte) int {
	srv := startServer(t, data, cfg)
	addr := srv.addrs["smtp"]

	const clients = 64
	killAfter := len(acked) + 100 + 37*(round%5) // acknowledged messages (all rounds) before the kill
	var mu sync.Mutex
	killed := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			cl, err := smtp.Dial(addr)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer cl.Close()
			if err := cl.Hello("client.test"); err != nil {
				t.Errorf("hello: %v", err)
				return
			}
			for i := 0; ; i++ {
				id := fmt.Sprintf("<%d.%d.%d@client.test>", round, c, i)
				body := fmt.Sprintf("From: a@client.test\r\nTo: info@example.com\r\nMessage-ID: %s\r\nSubject: crash %d/%d\r\n\r\n%s\r\n", id, c, i, strings.Repeat(fmt.Sprintf("line %d of client %d\r\n", i, c), 50+i%200))
				if err := cl.Mail("a@client.test"); err != nil {
					return // server gone
				}
				if err := cl.Rcpt("info@example.com"); err != nil {
					return
				}
				w, err := cl.Data()
				if err != nil {
					return
				}
				w.Write([]byte(body))
				if err := w.Close(); err != nil {
					return // no 250: not promised
				}
				mu.Lock()
				acked[id] = []byte(body)
				n := len(acked)
				mu.Unlock()
				if n >= killAfter {
					once.Do(func() {
						srv.cmd.Process.Signal(syscall.SIGKILL)
						close(killed)
					})
				}
				select {
				case <-killed:
					// keep going: the next command fails, and anything in
					// flight must not have been acknowledged
				default:
				}
			}
		}(c)
	}
	wg.Wait()
	<-srv.exited
	if len(acked) < killAfter {
		t.Fatalf("only %d messages acknowledged before the clients stopped:\n%s", len(acked), srv.log.String())
	}

	st := teststore.OpenDir(t, data, teststore.Options{})
	defer st.Close()
	replayed := st.(interface{ Replayed() int }).Replayed()
	msgs, _, err := st.Messages(t.Context(), "info@example.com", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string][]byte{}
	var sum int64
	for _, m := range msgs {
		raw, err := st.ReadMessage(t.Context(), "info@example.com", "INBOX", m.UID)
		if err != nil {
			t.Fatal(err)
		}
		sum += int64(len(raw))
		i := bytes.Index(raw, []byte("Message-ID: "))
		if i < 0 {
			t.Fatalf("uid %d has no Message-ID", m.UID)
		}
		id := string(raw[i+12 : i+bytes.IndexByte(raw[i:], '\r')])
		stored[id] = raw
	}
	for id, sent := range acked {
		raw, ok := stored[id]
		if !ok {
			t.Errorf("acknowledged message %s lost", id)
			continue
		}
		// What was sent, behind the trace and verdict headers we add.
		if !bytes.HasSuffix(raw, sent) || !bytes.Contains(raw[:len(raw)-len(sent)], []byte("Received: ")) {
			t.Errorf("message %s differs from what was sent", id)
		}
	}
	acct, _ := st.Account(t.Context(), "info@example.com")
	if acct.Used != sum {
		t.Errorf("quota usage %d, stored messages sum to %d", acct.Used, sum)
	}
	if p, err := st.Verify(t.Context()); err != nil || len(p) > 0 {
		t.Errorf("store invariants after crash: %v %v", p, err)
	}
	t.Logf("round %d: %d acknowledged, %d stored (the difference was in flight, never acknowledged), %d written from the write-ahead log", round, len(acked), len(msgs), replayed)
	return replayed
}
