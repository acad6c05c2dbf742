package admin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"yubin/internal/backup"
	"yubin/internal/storage"
	"yubin/store"
	"yubin/store/postgres"
)

// Backup writes a consistent snapshot of the whole store to w while the
// store stays in use (store.Backups). WriteBackup makes a file of it.
func (s *Service) Backup(ctx context.Context, w io.Writer) (store.BackupInfo, error) {
	return s.st.Backup(ctx, w)
}

// RecordBackup records the latest backup made of the store.
func (s *Service) RecordBackup(ctx context.Context, b store.LastBackup) error {
	return translate(s.st.SetLastBackup(ctx, b))
}

// LastBackup returns the latest backup recorded; Time is zero when none
// was. For "yubin status".
func (s *Service) LastBackup(ctx context.Context) (store.LastBackup, error) {
	return s.st.LastBackup(ctx)
}

// BackupOptions describe a backup file being made.
type BackupOptions struct {
	Yubin string           // this yubin's version, for the header
	Host  string           // the server's host name, for the header
	Now   func() time.Time // nil: time.Now
}

// BackupResult is what WriteBackup wrote.
type BackupResult struct {
	Header  backup.Header  `json:"header"`
	Trailer backup.Trailer `json:"trailer"`
	// FileSize is the size of the file written, in bytes.
	FileSize int64 `json:"file_size"`
	// Duration is how long it took.
	Duration time.Duration `json:"duration"`
}

// Record is what the store should remember of this backup, written to
// file ("-": standard output).
func (r BackupResult) Record(file string) store.LastBackup {
	return store.LastBackup{Time: r.Header.Created, Size: r.FileSize, File: file, Messages: r.Trailer.Messages, Duration: r.Duration}
}

// WriteBackup writes a backup file (see internal/backup) of the store
// behind api to w: a snapshot taken through the running server's control
// socket, or of the store opened directly. It does not record the backup:
// once the file is safely written, do OpBackupRecord with Record.
func WriteBackup(ctx context.Context, api API, w io.Writer, o BackupOptions) (BackupResult, error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	var res BackupResult
	bw, err := backup.NewWriter(w, backup.Header{Yubin: o.Yubin, Created: start.UTC().Truncate(time.Second), Host: o.Host})
	if err != nil {
		return res, fmt.Errorf("backup: writing the file: %w", err)
	}
	info, err := DoStream(ctx, api, OpBackup, None{}, bw)
	if err != nil {
		return res, err
	}
	if res.Trailer, err = bw.Close(info); err != nil {
		return res, fmt.Errorf("backup: writing the file: %w", err)
	}
	res.Header = bw.Header()
	res.FileSize = bw.Written()
	res.Duration = now().Sub(start)
	return res, nil
}

// ErrVerify says that the store a backup made does not pass its checks.
var ErrVerify = errors.New("the restored store does not pass the verifier")

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// File names where the backup came from, for the record of the last
	// backup in the restored store.
	File string
	// Force puts the store in place even when the verifier finds
	// problems in it.
	Force bool
	// Backend "postgres" restores into the database at PostgresURL, which
	// must hold no store, instead of the data dir's embedded store; Where
	// names it in messages (without its password).
	Backend     string
	PostgresURL string
	Where       string
}

// RestoreResult is what Restore did and found.
type RestoreResult struct {
	Header  backup.Header  `json:"header"`
	Trailer backup.Trailer `json:"trailer"`
	// Found is what the restored store holds, counted through its
	// interfaces (Size: the backup file's bytes).
	Found store.BackupInfo `json:"found"`
	// Problems are what the verifier found, and every count that is not
	// the trailer's.
	Problems []string `json:"problems"`
	// Installed says the store was put in place (no problems, or Force).
	Installed bool `json:"installed"`
	// Path is the store's file (or the database), when installed.
	Path string `json:"path,omitempty"`
	// Copied is set when a backup of another backend was restored by
	// making its store aside and copying it (see RestoreOptions.Backend).
	Copied *postgres.CopyReport `json:"copied,omitempty"`
}

// Restore makes the store of dataDir from the backup file read from r. A
// data dir that has a store is refused (store.ErrExists) before anything
// is read. The snapshot goes to a temporary file that is checked — whole
// and as the trailer says (a truncated or damaged file is refused), then
// opened as a store, run through the store's verifier, and counted
// against the trailer — and only then put in place, all or nothing. When
// the checks find problems the store is not put in place (unless
// o.Force): the error is ErrVerify and the result lists them.
func Restore(ctx context.Context, r io.Reader, dataDir string, o RestoreOptions) (RestoreResult, error) {
	if o.Backend == postgres.Backend {
		return restorePostgres(ctx, r, dataDir, o)
	}
	var res RestoreResult
	if ok, err := storage.Exists(dataDir); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	} else if ok {
		return res, errorf(store.ErrExists, "restore: %s already has a store (%s): restore only into a data dir without one (move it away first)", dataDir, storage.Describe(dataDir))
	}
	cr := &countReader{r: r}
	br, err := backup.NewReader(cr)
	if err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	res.Header = br.Header()
	snap := bufio.NewReaderSize(br, 1<<16)
	if head, _ := snap.Peek(postgres.SnapshotPrefix); postgres.IsSnapshot(head) {
		return res, errorf(store.ErrInvalid, "restore: this is a backup of a PostgreSQL store: restore it into an empty PostgreSQL database (store.backend = \"postgres\" and store.postgres_url in the configuration), not into the embedded store of %s", dataDir)
	}
	rs, err := storage.BeginRestore(dataDir)
	if err != nil {
		return res, restoreErr(err)
	}
	done := false
	defer func() {
		if !done {
			rs.Abort()
		}
	}()
	if _, err := io.Copy(rs, snap); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	res.Trailer = br.Trailer()
	st, err := rs.Open(res.Trailer.Backend)
	if err != nil {
		return res, fmt.Errorf("restore: the backup holds no store that opens: %w", err)
	}
	defer func() {
		if st != nil {
			st.Close()
		}
	}()
	if err := res.check(ctx, st, cr.n, o.Force); err != nil {
		return res, err
	}
	// The restored store's last backup is the one it came from.
	last := store.LastBackup{Time: res.Header.Created, Size: cr.n, File: o.File, Messages: res.Trailer.Messages}
	if err := st.SetLastBackup(ctx, last); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	err = st.Close()
	st = nil
	if err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	if err := rs.Commit(); err != nil {
		return res, restoreErr(err)
	}
	done = true
	res.Installed, res.Path = true, storage.Describe(dataDir)
	return res, nil
}

// check runs a restored store through its verifier and counts it against
// the trailer; problems are an ErrVerify unless force.
func (res *RestoreResult) check(ctx context.Context, st store.Store, size int64, force bool) error {
	problems, err := st.Verify(ctx)
	if err != nil {
		return fmt.Errorf("restore: verifying: %w", err)
	}
	found, err := count(ctx, st)
	if err != nil {
		return fmt.Errorf("restore: counting: %w", err)
	}
	return res.judge(problems, found, size, force)
}

// judge adds to what the verifier found every count of found that is not
// the trailer's; problems are an ErrVerify unless force.
func (res *RestoreResult) judge(problems []string, found store.BackupInfo, size int64, force bool) error {
	res.Problems, res.Found = problems, found
	res.Found.Backend, res.Found.Size = res.Trailer.Backend, size
	t := res.Trailer
	for _, c := range []struct {
		what       string
		want, have int64
	}{
		{"domains", int64(t.Domains), int64(found.Domains)},
		{"accounts", int64(t.Accounts), int64(found.Accounts)},
		{"messages", t.Messages, found.Messages},
		{"bytes of mail", t.MailBytes, found.MailBytes},
	} {
		if c.want != c.have {
			res.Problems = append(res.Problems, fmt.Sprintf("the backup says %d %s, the restored store holds %d", c.want, c.what, c.have))
		}
	}
	if res.Problems == nil {
		res.Problems = []string{}
	}
	if len(res.Problems) > 0 && !force {
		return fmt.Errorf("%w: %d problems; nothing was restored (--force restores it anyway)", ErrVerify, len(res.Problems))
	}
	return nil
}

// restorePostgres makes the store of the PostgreSQL database o names,
// which must hold none, from a backup file: a backup of a PostgreSQL
// store is restored in one transaction that commits only when the file
// was read whole and checks out (postgres.RestoreChecked), with the same
// checks as the embedded store's; a backup of the embedded store is made
// into a store aside (in a temporary directory in dataDir), checked as
// usual, then copied into the database as "yubin store copy" does and
// compared with it.
func restorePostgres(ctx context.Context, r io.Reader, dataDir string, o RestoreOptions) (RestoreResult, error) {
	var res RestoreResult
	// An empty database first, before anything is read.
	dst, err := postgres.Open(ctx, o.PostgresURL, postgres.Options{})
	if err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	ds, err := dst.Domains(ctx)
	dst.Close()
	if err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	if len(ds) > 0 {
		return res, errorf(store.ErrExists, "restore: the database (%s) already holds a store (%d domains): restore only into an empty database (drop and create it first)", o.Where, len(ds))
	}
	cr := &countReader{r: r}
	br, err := backup.NewReader(cr)
	if err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	res.Header = br.Header()
	snap := bufio.NewReaderSize(br, 1<<16)
	last := func(st store.Store) error {
		// The restored store's last backup is the one it came from.
		lb := store.LastBackup{Time: res.Header.Created, Size: cr.n, File: o.File, Messages: res.Trailer.Messages}
		if err := st.SetLastBackup(ctx, lb); err != nil {
			return fmt.Errorf("restore: restored, but recording the backup it came from failed: %w", err)
		}
		res.Installed, res.Path = true, o.Where
		return nil
	}
	if head, _ := snap.Peek(postgres.SnapshotPrefix); postgres.IsSnapshot(head) {
		st, err := postgres.RestoreChecked(ctx, o.PostgresURL, snap, postgres.Options{}, func(problems []string, found store.BackupInfo) error {
			res.Trailer = br.Trailer()
			return res.judge(problems, found, cr.n, o.Force)
		})
		if err != nil {
			if errors.Is(err, ErrVerify) {
				return res, err
			}
			return res, fmt.Errorf("%w (nothing was restored)", err)
		}
		defer st.Close()
		return res, last(st)
	}

	// Another backend's backup (the embedded store's): made aside, checked,
	// copied.
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	aside, err := os.MkdirTemp(dataDir, ".restore-")
	if err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	defer os.RemoveAll(aside)
	rs, err := storage.BeginRestore(aside)
	if err != nil {
		return res, restoreErr(err)
	}
	defer rs.Abort()
	if _, err := io.Copy(rs, snap); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	res.Trailer = br.Trailer()
	src, err := rs.Open(res.Trailer.Backend)
	if err != nil {
		return res, fmt.Errorf("restore: a backup of the %q store backend, which this yubin cannot restore into PostgreSQL: %w", res.Trailer.Backend, err)
	}
	defer src.Close()
	if err := res.check(ctx, src, cr.n, o.Force); err != nil {
		return res, err
	}
	dst, err = postgres.Open(ctx, o.PostgresURL, postgres.Options{})
	if err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	defer dst.Close()
	rep, err := postgres.Copy(ctx, src, dst, nil)
	if err != nil {
		return res, fmt.Errorf("restore: copying the backup of the %s store into the database: %w (the database holds part of it now: drop and create it before trying again)", res.Trailer.Backend, err)
	}
	res.Copied = &rep
	diffs, _, _, err := postgres.VerifyCopy(ctx, src, dst)
	if err != nil {
		return res, fmt.Errorf("restore: comparing the copy: %w", err)
	}
	if len(diffs) > 0 {
		res.Problems = append(res.Problems, diffs...)
		return res, fmt.Errorf("%w: the database differs from the backup in %d ways (drop and create it before trying again)", ErrVerify, len(diffs))
	}
	return res, last(dst)
}

func restoreErr(err error) error {
	if errors.Is(err, store.ErrExists) {
		return errorf(store.ErrExists, "restore: a store appeared meanwhile: %v", err)
	}
	return fmt.Errorf("restore: %w", err)
}

// count counts what a store holds, as BackupInfo does.
func count(ctx context.Context, st store.Store) (store.BackupInfo, error) {
	var info store.BackupInfo
	ds, err := st.Domains(ctx)
	if err != nil {
		return info, err
	}
	info.Domains = len(ds)
	accts, err := st.Accounts(ctx, "")
	if err != nil {
		return info, err
	}
	for _, a := range accts {
		info.Accounts++
		info.MailBytes += a.Used
		boxes, err := st.Mailboxes(ctx, a.Address)
		if err != nil {
			return info, err
		}
		for _, b := range boxes {
			info.Messages += int64(b.Messages)
		}
	}
	return info, nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
