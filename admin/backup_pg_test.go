package admin

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"yubin/internal/backup"
	"yubin/internal/storage"
	"yubin/internal/testutil"
	"yubin/internal/testutil/pgtest"
	"yubin/store"
	"yubin/store/bolt"
	"yubin/store/postgres"
)

// TestRestorePostgres: a backup file of a PostgreSQL store restores into an
// empty database with the embedded store's checks (a file whose counts
// are not the store's is refused and leaves the database empty, --force
// restores it); one of the embedded store restores into PostgreSQL by a
// copy; one of PostgreSQL is refused by an embedded store, saying why.
func TestRestorePostgres(t *testing.T) {
	cluster, err := pgtest.Start(pgtest.Options{})
	if err != nil {
		t.Skip("SKIP: " + err.Error())
	}
	defer cluster.Stop()
	newDB := func() string {
		_, url, err := cluster.CreateDatabase(ctx, "")
		testutil.Must(t, err)
		return url
	}
	fill := func(st store.Store) {
		testutil.Must(t, st.AddDomain(ctx, "example.com", ""))
		testutil.Must(t, st.AddAccount(ctx, store.Account{Address: "info@example.com", PasswordHash: "h"}))
		for range 2 {
			_, err := st.Deliver(ctx, store.Delivery{Recipients: []string{"info@example.com"}, Message: []byte("Subject: x\r\n\r\nbody\r\n")})
			testutil.Must(t, err)
		}
	}
	src, err := postgres.Open(ctx, newDB(), postgres.Options{})
	testutil.Must(t, err)
	defer src.Close()
	fill(src)
	// Status gives the database's size, which no file in the data dir
	// has (yubin status: "Store: ..., N MiB on disk").
	if st, err := NewService(src, 0).Status(ctx); err != nil || st.Store.Bytes < 1<<20 {
		t.Errorf("status of a PostgreSQL store: %+v, %v", st.Store, err)
	}
	var file bytes.Buffer
	_, err = WriteBackup(ctx, NewService(src, 0), &file, BackupOptions{Yubin: "1.2.3"})
	testutil.Must(t, err)
	domains := func(url string) int {
		st, err := postgres.Open(ctx, url, postgres.Options{})
		testutil.Must(t, err)
		defer st.Close()
		ds, err := st.Domains(ctx)
		testutil.Must(t, err)
		return len(ds)
	}

	url := newDB()
	o := RestoreOptions{File: "/b.ybk", Backend: postgres.Backend, PostgresURL: url, Where: "the database"}
	res, err := Restore(ctx, bytes.NewReader(file.Bytes()), t.TempDir(), o)
	testutil.Must(t, err)
	if !res.Installed || len(res.Problems) != 0 || res.Found.Messages != 2 || res.Found.Backend != postgres.Backend || res.Path != "the database" || res.Copied != nil {
		t.Errorf("restore: %+v", res)
	}
	dst, err := postgres.Open(ctx, url, postgres.Options{})
	testutil.Must(t, err)
	if last, _ := dst.LastBackup(ctx); last.File != "/b.ybk" || last.Messages != 2 {
		t.Errorf("the restored store's last backup: %+v", last)
	}
	dst.Close()
	if _, err := Restore(ctx, bytes.NewReader(file.Bytes()), t.TempDir(), o); !errors.Is(err, store.ErrExists) || !strings.Contains(err.Error(), "the database") {
		t.Errorf("restore into a database that holds a store: %v", err)
	}

	// A file whose trailer counts a message more than the store holds.
	var lying bytes.Buffer
	bw, err := backup.NewWriter(&lying, backup.Header{Yubin: "1.2.3", Created: time.Now().UTC()})
	testutil.Must(t, err)
	info, err := src.Backup(ctx, bw)
	testutil.Must(t, err)
	info.Messages++
	_, err = bw.Close(info)
	testutil.Must(t, err)
	url = newDB()
	o.PostgresURL = url
	res, err = Restore(ctx, bytes.NewReader(lying.Bytes()), t.TempDir(), o)
	if !errors.Is(err, ErrVerify) || res.Installed || len(res.Problems) != 1 || !strings.Contains(res.Problems[0], "says 3 messages") {
		t.Errorf("a file that counts wrong: %v %+v", err, res)
	}
	if n := domains(url); n != 0 {
		t.Errorf("a refused restore left %d domains", n)
	}
	o.Force = true
	res, err = Restore(ctx, bytes.NewReader(lying.Bytes()), t.TempDir(), o)
	if err != nil || !res.Installed || len(res.Problems) != 1 {
		t.Errorf("--force: %v %+v", err, res)
	}
	o.Force = false

	// The embedded store's backup into PostgreSQL: a copy.
	bst, err := bolt.Open(filepath.Join(t.TempDir(), bolt.FileName), bolt.Options{})
	testutil.Must(t, err)
	defer bst.Close()
	fill(bst)
	_, err = bst.TrainSpam(ctx, store.SpamTraining{Owners: []string{"example.com"}, Tokens: []string{"a"}, Class: store.Spam})
	testutil.Must(t, err)
	var boltFile bytes.Buffer
	_, err = WriteBackup(ctx, NewService(bst, 0), &boltFile, BackupOptions{Yubin: "1.2.3"})
	testutil.Must(t, err)
	url, dir := newDB(), t.TempDir()
	o.PostgresURL = url
	res, err = Restore(ctx, bytes.NewReader(boltFile.Bytes()), dir, o)
	testutil.Must(t, err)
	if !res.Installed || res.Copied == nil || res.Copied.Messages != 2 || res.Copied.SpamModels != 1 || res.Found.Backend != bolt.Backend || len(res.Problems) != 0 {
		t.Errorf("a bolt backup into PostgreSQL: %+v", res)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("the store made aside is left in the data dir: %v", left)
	}
	if n := domains(url); n != 1 {
		t.Errorf("the copy holds %d domains", n)
	}

	// PostgreSQL's backup into an embedded store: refused, saying why.
	dir = t.TempDir()
	if _, err := Restore(ctx, bytes.NewReader(file.Bytes()), dir, RestoreOptions{}); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "PostgreSQL") {
		t.Errorf("a PostgreSQL backup into an embedded store: %v", err)
	}
	if ok, _ := storage.Exists(dir); ok {
		t.Error("a refused restore left a store")
	}
}
