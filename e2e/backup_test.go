package e2e

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"yubin/internal/testutil/teststore"
	"yubin/store"
)

// TestBackupUnderLoad takes a backup of a running server with "yubin
// backup" while SMTP clients deliver, restores it into a new data dir with
// "yubin restore", and checks that every message acknowledged (250) before
// the backup began is in the restored store byte for byte, that every
// message there is one that was sent, and that the verifier finds nothing.
// Then: a backup to stdout restores from stdin; restore refuses a data dir
// that has a store, and a truncated or damaged file; a backup of the
// stopped server holds every acknowledged message and is recorded as the
// store's last backup.
func TestBackupUnderLoad(t *testing.T) {
	data, cfg := newDataDir(t)
	srv := startServer(t, data, cfg)
	flags := []string{"--config", cfg, "--data", data}
	dir := t.TempDir()

	// The load: clients deliver until told to stop.
	const clients = 6
	var mu sync.Mutex
	sent := map[string][]byte{}  // Message-ID -> bytes, sent or being sent
	acked := map[string][]byte{} // those that got 250
	reached := make(chan struct{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := smtp.Dial(srv.addrs["smtp"])
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer cl.Close()
			for i := 0; ; i++ {
				select {
				case <-stop:
					cl.Quit()
					return
				default:
				}
				id := fmt.Sprintf("<%d.%d@client.test>", c, i)
				body := []byte(fmt.Sprintf("From: a@client.test\r\nTo: info@example.com\r\nMessage-ID: %s\r\nSubject: backup %d/%d\r\n\r\n%s", id, c, i,
					strings.Repeat(fmt.Sprintf("line %d of client %d, to be backed up\r\n", i, c), 100+i%300)))
				mu.Lock()
				sent[id] = body
				mu.Unlock()
				if err := deliver(cl, body); err != nil {
					t.Errorf("client %d, message %d: %v", c, i, err)
					return
				}
				mu.Lock()
				acked[id] = body
				if len(acked) == 200 {
					close(reached)
				}
				mu.Unlock()
			}
		}()
	}
	select {
	case <-reached:
	case <-srv.exited:
		t.Fatalf("server exited:\n%s", srv.log.String())
	}

	// The backup, while the clients go on.
	mu.Lock()
	before := len(acked)
	ackedBefore := make(map[string][]byte, len(acked))
	for id, b := range acked {
		ackedBefore[id] = b
	}
	mu.Unlock()
	file := filepath.Join(dir, "running.ybk")
	start := time.Now()
	out := mustCLI(t, "", append([]string{"backup", file}, flags...)...)
	took := time.Since(start)
	mu.Lock()
	during := len(acked) - before
	mu.Unlock()
	if !regexp.MustCompile(`^backup of \S+ written to ` + regexp.QuoteMeta(file) + `: .*, 2 domains, 1 account, [\d,]+ messages`).MatchString(out) {
		t.Errorf("backup says %q", out)
	}

	// A backup to stdout, still under load.
	var stdoutBackup, stderr bytes.Buffer
	cmd := exec.Command(yubinBin, append([]string{"backup", "-"}, flags...)...)
	cmd.Stdout, cmd.Stderr = &stdoutBackup, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("backup -: %v: %s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "written to standard output") || !bytes.HasPrefix(stdoutBackup.Bytes(), []byte("yubin-backup 1 {")) {
		t.Errorf("backup -: stderr %q, stdout starts %q", stderr.String(), stdoutBackup.Bytes()[:min(40, stdoutBackup.Len())])
	}
	close(stop)
	wg.Wait()
	t.Logf("%d messages acknowledged before the backup, %d while it ran (%s), %d in all", before, during, took.Round(time.Millisecond), len(acked))

	// Restore into a new data dir, and check what it holds.
	restored := filepath.Join(dir, "restored")
	out = mustCLI(t, "", "restore", file, "--data", restored)
	if !strings.Contains(out, "into "+filepath.Join(restored, "yubin.db")) || !strings.Contains(out, "the store's verifier found no problems") {
		t.Errorf("restore says %q", out)
	}
	checkRestored(t, restored, ackedBefore, sent)

	// From stdin, the backup written to stdout.
	fromStdin := filepath.Join(dir, "from-stdin")
	cmd = exec.Command(yubinBin, "restore", "-", "--data", fromStdin)
	cmd.Stdin = bytes.NewReader(stdoutBackup.Bytes())
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "found no problems") {
		t.Fatalf("restore -: %v\n%s", err, out)
	}
	checkRestored(t, fromStdin, ackedBefore, sent)

	// Restore refuses a data dir that has a store, and leaves it alone.
	db := filepath.Join(restored, "yubin.db")
	sum := fileSum(t, db)
	_, errs, code := cli(t, "", "restore", file, "--data", restored)
	if code != 1 || !strings.Contains(errs, "already has a store") || strings.Count(errs, "\n") != 1 {
		t.Errorf("restore over a store: exit %d, %q", code, errs)
	}
	if fileSum(t, db) != sum {
		t.Error("restore changed the store it refused to overwrite")
	}

	// A truncated or damaged file is refused, and leaves nothing behind.
	whole, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	damaged := bytes.Clone(whole)
	damaged[len(damaged)/2] ^= 0x20
	for _, c := range []struct {
		name string
		data []byte
		msg  string
	}{
		{"truncated", whole[:len(whole)/2], "the backup file is truncated: the file ends inside the compressed store"},
		{"cut before the trailer", whole[:bytes.LastIndex(whole, []byte(`{"backend":`))], "the backup file is truncated: the file ends before its trailer"},
		{"damaged", damaged, "the backup file is damaged"},
		{"not a backup", []byte("From: someone\r\n\r\nnot a backup\r\n"), "not a yubin backup"},
	} {
		bad := filepath.Join(dir, c.name+".ybk")
		if err := os.WriteFile(bad, c.data, 0o600); err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(dir, "target-"+strings.ReplaceAll(c.name, " ", "-"))
		_, errs, code := cli(t, "", "restore", bad, "--data", target)
		if code != 1 || !strings.Contains(errs, "yubin: restore: "+c.msg) || strings.Count(errs, "\n") != 1 {
			t.Errorf("%s: exit %d, %q", c.name, code, errs)
		}
		if _, err := os.Stat(target); !os.IsNotExist(err) {
			entries, _ := os.ReadDir(target)
			t.Errorf("%s: the restore left %s behind (%v)", c.name, target, entries)
		}
	}

	// The stopped server: the same command opens the store itself.
	srv.stop(t)
	stopped := filepath.Join(dir, "stopped.ybk")
	out = mustCLI(t, "", append([]string{"backup", stopped}, flags...)...)
	if !strings.Contains(out, "written to "+stopped) {
		t.Errorf("backup of the stopped server says %q", out)
	}
	restoredAll := filepath.Join(dir, "restored-all")
	mustCLI(t, "", "restore", stopped, "--data", restoredAll)
	st := checkRestored(t, restoredAll, acked, sent)
	if n := len(inbox(t, st)); n != len(acked) {
		t.Errorf("the backup of the stopped server holds %d messages, %d were acknowledged", n, len(acked))
	}

	// The last backup is recorded in the store (for yubin status).
	fi, err := os.Stat(stopped)
	if err != nil {
		t.Fatal(err)
	}
	orig := teststore.OpenDir(t, data, teststore.Options{})
	last, err := orig.LastBackup(t.Context())
	if err != nil || last.File != stopped || last.Size != fi.Size() || last.Messages != int64(len(acked)) || time.Since(last.Time) > time.Hour {
		t.Errorf("last backup %+v (%v), want %s of %d bytes with %d messages", last, err, stopped, fi.Size(), len(acked))
	}
	// A restored store's last backup is the one it came from.
	if last, err := st.LastBackup(t.Context()); err != nil || last.File != stopped || last.Size != fi.Size() {
		t.Errorf("the restored store's last backup: %+v (%v)", last, err)
	}
}

// deliver sends one message on an open SMTP session.
func deliver(cl *smtp.Client, body []byte) error {
	if err := cl.Mail("a@client.test"); err != nil {
		return err
	}
	if err := cl.Rcpt("info@example.com"); err != nil {
		return err
	}
	w, err := cl.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(body); err != nil {
		return err
	}
	return w.Close()
}

// checkRestored opens a restored data dir and checks that every message
// of must is in info@example.com's INBOX as sent, that every message there
// is one of sent, and that the verifier finds nothing.
func checkRestored(t *testing.T, dataDir string, must, sent map[string][]byte) store.Store {
	t.Helper()
	st := teststore.OpenDir(t, dataDir, teststore.Options{})
	stored := inbox(t, st)
	for id, body := range must {
		raw, ok := stored[id]
		if !ok {
			t.Errorf("%s: acknowledged message %s is not in the backup", dataDir, id)
			continue
		}
		if !sentAs(raw, body) {
			t.Errorf("%s: message %s differs from what was sent", dataDir, id)
		}
	}
	for id, raw := range stored {
		if body, ok := sent[id]; !ok || !sentAs(raw, body) {
			t.Errorf("%s: message %s was never sent as it is", dataDir, id)
		}
	}
	if p, err := st.Verify(t.Context()); err != nil || len(p) > 0 {
		t.Errorf("%s: the verifier finds %v %v", dataDir, p, err)
	}
	return st
}

// sentAs reports whether a stored message is body behind the header
// fields the server adds.
func sentAs(raw, body []byte) bool {
	return bytes.HasSuffix(raw, body) && bytes.Contains(raw[:len(raw)-len(body)], []byte("Received: "))
}

// inbox returns info@example.com's INBOX by Message-ID.
func inbox(t *testing.T, st store.Store) map[string][]byte {
	t.Helper()
	msgs, _, err := st.Messages(t.Context(), "info@example.com", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, m := range msgs {
		raw, err := st.ReadMessage(t.Context(), "info@example.com", "INBOX", m.UID)
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(raw, []byte("Message-ID: "))
		if i < 0 {
			t.Fatalf("uid %d has no Message-ID", m.UID)
		}
		out[string(raw[i+12:i+bytes.IndexByte(raw[i:], '\r')])] = raw
	}
	return out
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}
