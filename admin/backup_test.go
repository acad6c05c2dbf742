package admin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"yubin/internal/backup"
	"yubin/internal/testutil"
	"yubin/internal/testutil/teststore"
	"yubin/store"
)

// fakeBackup is a store whose Backup writes what its function says.
type fakeBackup struct {
	store.Store
	backup func(ctx context.Context, w io.Writer) (store.BackupInfo, error)
}

func (f *fakeBackup) Backup(ctx context.Context, w io.Writer) (store.BackupInfo, error) {
	return f.backup(ctx, w)
}

// serveFake serves a Service over a fakeBackup and returns its client and
// how to stop the server.
func serveFake(t *testing.T, backup func(ctx context.Context, w io.Writer) (store.BackupInfo, error)) (*Client, func() error) {
	t.Helper()
	dir := testutil.ShortDir(t)
	st := teststore.OpenDir(t, dir, teststore.Options{})
	ln, err := ListenControl(filepath.Join(dir, "control.sock"))
	testutil.Must(t, err)
	s := NewService(&fakeBackup{Store: st, backup: backup}, 0)
	stop := testutil.Go(t, func(ctx context.Context) error { return s.ServeControl(ctx, ln) })
	return NewClient(filepath.Join(dir, "control.sock")), stop
}

// The bytes of a stream come through the socket as written, in writes
// of any size (a write over maxFrame is split), and the answer after them.
func TestStreamFrames(t *testing.T) {
	payload := make([]byte, 3*maxFrame+12345)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range payload {
		payload[i] = byte(r.Uint32())
	}
	client, _ := serveFake(t, func(ctx context.Context, w io.Writer) (store.BackupInfo, error) {
		rest := payload
		for _, n := range []int{1, 0, 4096, 2*maxFrame + 7} { // then the rest at once
			w.Write(rest[:n])
			rest = rest[n:]
		}
		if _, err := w.Write(rest); err != nil {
			return store.BackupInfo{}, err
		}
		return store.BackupInfo{Backend: "fake", Size: int64(len(payload)), Messages: 7}, nil
	})
	var got bytes.Buffer
	info, err := DoStream(ctx, client, OpBackup, None{}, &got)
	testutil.Must(t, err)
	if !bytes.Equal(got.Bytes(), payload) || info.Messages != 7 || info.Backend != "fake" {
		t.Errorf("got %d bytes (equal: %v) and %+v", got.Len(), bytes.Equal(got.Bytes(), payload), info)
	}
}

// A backup that fails half-way is a failure on the client's side, with
// the store's error and its kind.
func TestStreamFailsHalfWay(t *testing.T) {
	client, _ := serveFake(t, func(ctx context.Context, w io.Writer) (store.BackupInfo, error) {
		w.Write(bytes.Repeat([]byte("x"), 100<<10))
		return store.BackupInfo{}, errors.New("backup: disk on fire")
	})
	var got bytes.Buffer
	_, err := DoStream(ctx, client, OpBackup, None{}, &got)
	if err == nil || err.Error() != "backup: disk on fire" {
		t.Errorf("DoStream: %v", err)
	}
	// Through WriteBackup, the file is left without its trailer.
	var file bytes.Buffer
	if _, err := WriteBackup(ctx, client, &file, BackupOptions{}); err == nil {
		t.Error("WriteBackup succeeded")
	}
	r, err := backup.NewReader(&file)
	testutil.Must(t, err)
	if _, err := io.Copy(io.Discard, r); !errors.Is(err, backup.ErrTruncated) {
		t.Errorf("the file of a failed backup reads: %v", err)
	}
}

// A server that stops ends a stream in progress (it does not wait for
// it), and the client says the stream ended early.
func TestStreamServerStops(t *testing.T) {
	client, stop := serveFake(t, func(ctx context.Context, w io.Writer) (store.BackupInfo, error) {
		for ctx.Err() == nil {
			if _, err := w.Write(bytes.Repeat([]byte("y"), 64<<10)); err != nil {
				return store.BackupInfo{}, err
			}
		}
		return store.BackupInfo{}, ctx.Err()
	})
	errc := make(chan error, 1)
	received := make(chan struct{}) // the client has bytes of the stream
	var once sync.Once
	go func() {
		_, err := DoStream(ctx, client, OpBackup, None{}, writerFunc(func(p []byte) (int, error) {
			once.Do(func() { close(received) })
			return len(p), nil
		}))
		errc <- err
	}()
	<-received
	if err := stop(); err != nil {
		t.Fatalf("the server did not stop: %v", err)
	}
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "control socket: backup: the stream ended early") {
		t.Errorf("DoStream: %v", err)
	}
}

// A client whose writer fails gets that error, and the server's backup
// ends (its writes fail) rather than hang.
func TestStreamWriterFails(t *testing.T) {
	var mu sync.Mutex
	var backupErr error
	done := make(chan struct{})
	client, _ := serveFake(t, func(ctx context.Context, w io.Writer) (store.BackupInfo, error) {
		defer close(done)
		for {
			if _, err := w.Write(bytes.Repeat([]byte("z"), 64<<10)); err != nil {
				mu.Lock()
				backupErr = err
				mu.Unlock()
				return store.BackupInfo{}, err
			}
		}
	})
	diskFull := errors.New("no space left on device")
	_, err := DoStream(ctx, client, OpBackup, None{}, writerFunc(func(p []byte) (int, error) { return 0, diskFull }))
	if !errors.Is(err, diskFull) {
		t.Errorf("DoStream: %v", err)
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the server's backup goes on after the client left")
	}
	mu.Lock()
	defer mu.Unlock()
	if backupErr == nil {
		t.Error("no error")
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// A server that does not know the operation says so in the first line.
func TestStreamUnknownOperation(t *testing.T) {
	client, _, _ := serve(t, testutil.ShortDir(t))
	_, err := DoStream(ctx, client, StreamOp[None, None]{name: "backup.frobnicate"}, None{}, io.Discard)
	if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), `unknown operation "backup.frobnicate"`) {
		t.Errorf("DoStream: %v", err)
	}
	// A stream operation run as a plain one, and without a request.
	if _, err := Do(ctx, client, Op[None, None]{name: "backup"}, None{}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("backup without a stream: %v", err)
	}
	if resp := rawRequest(t, client.path, `{"op":"backup"}`); resp.OK || !strings.Contains(resp.Error, "backup without a request") {
		t.Errorf("backup without a request: %+v", resp)
	}
}

// WriteBackup and Restore, directly on a store and through the socket:
// the restored store is the same, its last backup is the one it came
// from, and Restore refuses a data dir that has a store.
func TestBackupRestore(t *testing.T) {
	dir := testutil.ShortDir(t)
	client, st, _ := serve(t, filepath.Join(dir, "served"))
	populate(t, client)
	_, err := st.Deliver(ctx, store.Delivery{Recipients: []string{"bob@example.com"}, Message: []byte("Subject: hi\r\n\r\nhello\r\n")})
	testutil.Must(t, err)
	want := snapshot(t, client)
	local := NewService(st, 0)
	clock := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC) }

	for name, api := range map[string]API{"directly": local, "through the socket": client} {
		var file bytes.Buffer
		res, err := WriteBackup(ctx, api, &file, BackupOptions{Yubin: "1.2.3", Host: "mx.example.com", Now: clock})
		testutil.Must(t, err)
		if res.FileSize != int64(file.Len()) || res.Header.Yubin != "1.2.3" || !res.Header.Created.Equal(clock().Truncate(time.Second)) ||
			res.Trailer.Accounts != 3 || res.Trailer.Domains != 3 || res.Trailer.Messages != 1 {
			t.Errorf("%s: %+v", name, res)
		}
		testutil.Must(t, errOnly(Do(ctx, api, OpBackupRecord, res.Record("/b.ybk"))))
		if last, err := Do(ctx, api, OpBackupLast, None{}); err != nil || last.File != "/b.ybk" || last.Size != res.FileSize || last.Messages != 1 {
			t.Errorf("%s: last backup %+v, %v", name, last, err)
		}

		target := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		rr, err := Restore(ctx, bytes.NewReader(file.Bytes()), target, RestoreOptions{File: "/b.ybk"})
		testutil.Must(t, err)
		if !rr.Installed || len(rr.Problems) != 0 || rr.Found.Messages != 1 || rr.Found.Size != int64(file.Len()) || rr.Path != filepath.Join(target, "yubin.db") {
			t.Errorf("%s: restore %+v", name, rr)
		}
		restored := NewService(teststore.OpenDir(t, target, teststore.Options{}), 0)
		if got := snapshot(t, restored); got != want {
			t.Errorf("%s: restored\n%s\nbacked up\n%s", name, got, want)
		}
		if last, err := restored.LastBackup(ctx); err != nil || !last.Time.Equal(res.Header.Created) || last.File != "/b.ybk" || last.Size != int64(file.Len()) {
			t.Errorf("%s: the restored store's last backup %+v, %v", name, last, err)
		}

		// Again into the same dir: refused before reading anything.
		r := &countingReader{r: bytes.NewReader(file.Bytes())}
		_, err = Restore(ctx, r, target, RestoreOptions{})
		if !errors.Is(err, store.ErrExists) || !strings.Contains(err.Error(), "already has a store") || r.n != 0 {
			t.Errorf("%s: restore over a store: %v (read %d bytes)", name, err, r.n)
		}
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// A backup whose counts are not what the restored store holds is not put
// in place (ErrVerify, every problem listed, nothing left behind) unless
// forced; nor is one of a backend this yubin does not have.
func TestRestoreRefusesWhatDoesNotCheck(t *testing.T) {
	dir := testutil.ShortDir(t)
	st := teststore.OpenDir(t, filepath.Join(dir, "src"), teststore.Options{Accounts: []store.Account{{Address: "info@example.com"}}})
	var snap bytes.Buffer
	info, err := st.Backup(ctx, &snap)
	testutil.Must(t, err)
	file := func(info store.BackupInfo) []byte {
		var out bytes.Buffer
		w, err := backup.NewWriter(&out, backup.Header{Created: time.Now()})
		testutil.Must(t, err)
		w.Write(snap.Bytes())
		_, err = w.Close(info)
		testutil.Must(t, err)
		return out.Bytes()
	}
	wrong := info
	wrong.Messages, wrong.Accounts = 5, 2
	target := filepath.Join(dir, "target")
	res, err := Restore(ctx, bytes.NewReader(file(wrong)), target, RestoreOptions{})
	if !errors.Is(err, ErrVerify) || res.Installed || len(res.Problems) != 2 ||
		res.Problems[0] != "the backup says 2 accounts, the restored store holds 1" || res.Problems[1] != "the backup says 5 messages, the restored store holds 0" {
		t.Errorf("counts not the trailer's: %v %+v", err, res)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("a refused restore left %s: %v", target, err)
	}
	res, err = Restore(ctx, bytes.NewReader(file(wrong)), target, RestoreOptions{Force: true})
	if err != nil || !res.Installed || len(res.Problems) != 2 {
		t.Errorf("forced: %v %+v", err, res)
	}

	other := info
	other.Backend = "sqlite"
	target = filepath.Join(dir, "other")
	if _, err := Restore(ctx, bytes.NewReader(file(other)), target, RestoreOptions{}); err == nil || !strings.Contains(err.Error(), `a snapshot of the "sqlite" store backend`) {
		t.Errorf("another backend: %v", err)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("a refused restore left %s: %v", target, err)
	}
}

// BenchmarkBackup writes a backup file of a store of 64 MiB of mail (6,400
// messages of 10 KiB of text) through the Service, then restores it;
// reports MB/s of store and the file's size against the store's.
func BenchmarkBackup(b *testing.B) {
	dir := b.TempDir()
	st := teststore.OpenDir(b, filepath.Join(dir, "src"), teststore.Options{NoSync: true, Accounts: []store.Account{{Address: "info@example.com"}}})
	testutil.Must(b, st.SetQuota(ctx, "info@example.com", 0))
	line := "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor %d\r\n"
	for i := range 6400 / 100 {
		var ds []store.Delivery
		for j := range 100 {
			var msg bytes.Buffer
			fmt.Fprintf(&msg, "Subject: message %d\r\nMessage-ID: <%d.%d@bench>\r\n\r\n", i*100+j, i, j)
			for msg.Len() < 10<<10 {
				fmt.Fprintf(&msg, line, msg.Len()*(j+1))
			}
			ds = append(ds, store.Delivery{Recipients: []string{"info@example.com"}, Message: msg.Bytes()})
		}
		_, err := st.DeliverBatch(ctx, ds)
		testutil.Must(b, err)
	}
	svc := NewService(st, 0)
	var file bytes.Buffer
	b.Run("backup", func(b *testing.B) {
		for b.Loop() {
			file.Reset()
			res, err := WriteBackup(ctx, svc, &file, BackupOptions{})
			testutil.Must(b, err)
			b.SetBytes(res.Trailer.Size)
			b.ReportMetric(float64(res.FileSize)/float64(res.Trailer.Size), "file/store")
		}
	})
	b.Run("restore", func(b *testing.B) {
		n := 0
		for b.Loop() {
			n++
			res, err := Restore(ctx, bytes.NewReader(file.Bytes()), filepath.Join(dir, fmt.Sprint("r", n)), RestoreOptions{})
			testutil.Must(b, err)
			b.SetBytes(res.Trailer.Size)
		}
	})
}
