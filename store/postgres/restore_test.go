package postgres_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"yubin/internal/testutil"
	"yubin/store"
	"yubin/store/postgres"
)

// TestRestoreChecked: a restore commits only a snapshot read whole, from
// a reader that ended well, that its check lets in; otherwise the
// database stays empty and can be restored into again.
func TestRestoreChecked(t *testing.T) {
	ctx := t.Context()
	src, err := postgres.Open(ctx, schema(t), postgres.Options{})
	testutil.Must(t, err)
	defer src.Close()
	testutil.Must(t, src.AddDomain(ctx, "example.com", ""))
	testutil.Must(t, src.AddAccount(ctx, store.Account{Address: "info@example.com", PasswordHash: "h"}))
	for range 3 {
		_, err := src.Deliver(ctx, store.Delivery{Recipients: []string{"info@example.com"}, Message: []byte("Subject: x\r\n\r\nbody\r\n")})
		testutil.Must(t, err)
	}
	var snap bytes.Buffer
	info, err := src.Backup(ctx, &snap)
	testutil.Must(t, err)
	if !postgres.IsSnapshot(snap.Bytes()[:postgres.SnapshotPrefix]) || postgres.IsSnapshot([]byte("\x00\x00\x00\x00bolt")) {
		t.Error("IsSnapshot does not tell this backend's snapshots")
	}

	url := schema(t)
	empty := func(what string) {
		t.Helper()
		s, err := postgres.Open(ctx, url, postgres.Options{})
		testutil.Must(t, err)
		defer s.Close()
		if ds, _ := s.Domains(ctx); len(ds) != 0 {
			t.Fatalf("%s: the database holds %d domains after a refused restore", what, len(ds))
		}
	}
	refuse := errors.New("refused")
	var seen []string
	var found store.BackupInfo
	_, err = postgres.RestoreChecked(ctx, url, bytes.NewReader(snap.Bytes()), postgres.Options{}, func(p []string, f store.BackupInfo) error {
		seen, found = p, f
		return refuse
	})
	if !errors.Is(err, refuse) {
		t.Fatalf("a check's refusal: %v", err)
	}
	if len(seen) != 0 || found.Domains != info.Domains || found.Accounts != info.Accounts || found.Messages != info.Messages || found.MailBytes != info.MailBytes {
		t.Errorf("the check was given %v %+v; the backup said %+v", seen, found, info)
	}
	empty("refused by the check")

	// A reader that fails at its end (a backup file whose checksum is not
	// its trailer's) fails the restore.
	damaged := io.MultiReader(bytes.NewReader(snap.Bytes()), iotestErr{errors.New("checksum mismatch")})
	if _, err := postgres.RestoreChecked(ctx, url, damaged, postgres.Options{}, nil); err == nil || !bytes.Contains([]byte(err.Error()), []byte("checksum mismatch")) {
		t.Fatalf("a reader failing at its end: %v", err)
	}
	empty("a reader failing at its end")
	if _, err := postgres.RestoreChecked(ctx, url, io.MultiReader(bytes.NewReader(snap.Bytes()), bytes.NewReader([]byte("more"))), postgres.Options{}, nil); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bytes after the snapshot: %v", err)
	}
	empty("bytes after the snapshot")
	if _, err := postgres.RestoreChecked(ctx, url, bytes.NewReader(snap.Bytes()[:snap.Len()/2]), postgres.Options{}, nil); err == nil {
		t.Fatal("half a snapshot restored")
	}
	empty("half a snapshot")

	dst, err := postgres.RestoreChecked(ctx, url, bytes.NewReader(snap.Bytes()), postgres.Options{}, func([]string, store.BackupInfo) error { return nil })
	testutil.Must(t, err)
	defer dst.Close()
	if msgs, _, err := dst.Messages(ctx, "info@example.com", "INBOX"); err != nil || len(msgs) != 3 {
		t.Errorf("restored INBOX: %d messages, %v", len(msgs), err)
	}
	if _, err := postgres.RestoreChecked(ctx, url, bytes.NewReader(snap.Bytes()), postgres.Options{}, nil); !errors.Is(err, store.ErrExists) {
		t.Errorf("a restore into a database that holds a store: %v", err)
	}
}

type iotestErr struct{ err error }

func (r iotestErr) Read([]byte) (int, error) { return 0, r.err }
