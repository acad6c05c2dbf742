package postgres

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"yubin/store"
)

// Backend names this backend in snapshots (store.BackupInfo.Backend).
const Backend = "postgres"

// SetLastBackup records the latest backup made of the store.
func (s *Store) SetLastBackup(ctx context.Context, b store.LastBackup) error {
	if b.Time.IsZero() {
		return fmt.Errorf("%w: a last backup without a time", store.ErrInvalid)
	}
	data, err := json.Marshal(b)
	if err != nil {
		return err
	}
	return s.write(ctx, func(w *wtx) error {
		_, err := w.Exec(ctx, `INSERT INTO meta (key, value) VALUES ('last-backup', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, data)
		return err
	})
}

// LastBackup returns what SetLastBackup recorded last.
func (s *Store) LastBackup(ctx context.Context) (store.LastBackup, error) {
	var b store.LastBackup
	var data []byte
	err := s.pool.QueryRow(ctx, `SELECT value FROM meta WHERE key = 'last-backup'`).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return b, nil
	}
	if err != nil {
		return b, dbError(err)
	}
	return b, json.Unmarshal(data, &b)
}

// backupTables are the tables a snapshot holds, in the order a restore
// fills them (those referred to first). The change feed's events are
// not in it: a restored store starts with none.
var backupTables = []string{"meta", "domains", "dkim", "accounts", "mailboxes", "subscriptions", "blobs", "chunks", "messages",
	"expunged", "once_keys", "import_keys", "queue", "quarantine", "stops", "spam_models", "spam_tokens", "spam_trained"}

// backupSequences are the sequences whose values a snapshot keeps.
var backupSequences = []string{"uidvalidity_seq", "queue_seq", "blobs_id_seq", "mailboxes_id_seq", "stops_id_seq"}

// backupMagic starts a snapshot of this backend.
const backupMagic = "yubin-postgres-snapshot"

// Backup writes a snapshot of the whole store to w, from one repeatable
// read transaction (writers go on meanwhile): a header with the schema
// version, the values of the sequences, then each table in PostgreSQL's
// COPY text format, ended by a line "\.". Restore reads it back.
func (s *Store) Backup(ctx context.Context, w io.Writer) (store.BackupInfo, error) {
	info := store.BackupInfo{Backend: Backend}
	cw := &countWriter{w: w, ctx: ctx}
	err := s.read(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM domains), (SELECT count(*) FROM accounts), (SELECT count(*) FROM messages), (SELECT coalesce(sum(used), 0) FROM accounts)`).
			Scan(&info.Domains, &info.Accounts, &info.Messages, &info.MailBytes); err != nil {
			return err
		}
		fmt.Fprintf(cw, "%s %d\n", backupMagic, SchemaVersion)
		for _, seq := range backupSequences {
			var v int64
			var called bool
			if err := tx.QueryRow(ctx, `SELECT last_value, is_called FROM `+pgx.Identifier{seq}.Sanitize()).Scan(&v, &called); err != nil {
				return err
			}
			fmt.Fprintf(cw, "sequence %s %d %t\n", seq, v, called)
		}
		for _, t := range backupTables {
			fmt.Fprintf(cw, "table %s\n", t)
			if cw.err != nil {
				return cw.err
			}
			if _, err := tx.Conn().PgConn().CopyTo(ctx, cw, `COPY `+pgx.Identifier{t}.Sanitize()+` TO STDOUT`); err != nil {
				return fmt.Errorf("table %s: %w", t, err)
			}
			fmt.Fprint(cw, "\\.\n")
		}
		fmt.Fprint(cw, "end\n")
		return cw.err
	})
	if err != nil {
		if ctx.Err() != nil {
			return store.BackupInfo{}, ctx.Err()
		}
		return store.BackupInfo{}, err
	}
	info.Size = cw.n
	return info, nil
}

// countWriter counts what goes through, and stops when ctx ends.
type countWriter struct {
	w   io.Writer
	ctx context.Context
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if err := c.ctx.Err(); err != nil {
		c.err = err
		return 0, err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil {
		c.err = err
	}
	return n, err
}

// IsSnapshot reports whether head, the first bytes of a snapshot, are
// those of this backend's snapshots (Backup's), as opposed to another
// backend's.
func IsSnapshot(head []byte) bool { return bytes.HasPrefix(head, []byte(backupMagic+" ")) }

// SnapshotPrefix is how many bytes IsSnapshot needs.
const SnapshotPrefix = len(backupMagic) + 1

// Restore makes the store at url, which must be empty (a new database or
// schema), from a snapshot Backup wrote, in one transaction, and opens it.
func Restore(ctx context.Context, url string, r io.Reader, o Options) (*Store, error) {
	return RestoreChecked(ctx, url, r, o, nil)
}

// RestoreCheck decides, in a restore's transaction and before it commits,
// whether the restored store goes in: it is given what Verify finds in it
// and what it holds (BackupInfo's counts). An error rolls the restore back.
type RestoreCheck func(problems []string, found store.BackupInfo) error

// RestoreChecked is Restore that reads r to its end after the snapshot
// (a reader that checks a file's checksum at its end, as a backup file's
// does, fails the restore there), then calls check, if not nil, before it
// commits: nothing is restored unless the snapshot was read whole and
// check returned nil.
func RestoreChecked(ctx context.Context, url string, r io.Reader, o Options, check RestoreCheck) (*Store, error) {
	s, err := Open(ctx, url, o)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(r, 1<<16)
	if err := s.restore(ctx, br, check); err != nil {
		s.Close()
		// A snapshot that does not load is often a file that is cut short
		// or damaged; what its reader says of its end is the clearer
		// error then.
		if _, rerr := io.Copy(io.Discard, br); rerr != nil && !errors.Is(err, rerr) {
			return nil, fmt.Errorf("restore: %w (loading it: %v)", rerr, err)
		}
		return nil, fmt.Errorf("restore: %w", err)
	}
	return s, nil
}

func (s *Store) restore(ctx context.Context, br *bufio.Reader, check RestoreCheck) error {
	line := func() (string, error) {
		l, err := br.ReadString('\n')
		if err != nil {
			return "", fmt.Errorf("the snapshot ends early: %w", err)
		}
		return strings.TrimSuffix(l, "\n"), nil
	}
	head, err := line()
	if err != nil {
		return err
	}
	var magic string
	var version int
	if _, err := fmt.Sscanf(head, "%s %d", &magic, &version); err != nil || magic != backupMagic {
		return fmt.Errorf("%w: not a snapshot of the postgres store", store.ErrInvalid)
	}
	if version != SchemaVersion {
		return fmt.Errorf("%w: a snapshot of schema version %d, this Yubin has %d", store.ErrInvalid, version, SchemaVersion)
	}
	return s.write(ctx, func(w *wtx) error {
		var n int
		if err := w.QueryRow(ctx, `SELECT count(*) FROM domains`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: the database holds a store already (%d domains): restore into an empty one", store.ErrExists, n)
		}
		if _, err := w.Exec(ctx, `DELETE FROM meta`); err != nil {
			return err
		}
		for {
			l, err := line()
			if err != nil {
				return err
			}
			f := strings.Fields(l)
			switch {
			case l == "end":
				// Nothing after it, and the reader ends well.
				if n, err := io.Copy(io.Discard, br); err != nil {
					return err
				} else if n > 0 {
					return fmt.Errorf("%w: %d bytes after the end of the snapshot", store.ErrInvalid, n)
				}
				if check == nil {
					return nil
				}
				problems, err := verifyIn(ctx, w)
				if err != nil {
					return err
				}
				found := store.BackupInfo{Backend: Backend}
				if err := w.QueryRow(ctx, `SELECT (SELECT count(*) FROM domains), (SELECT count(*) FROM accounts), (SELECT count(*) FROM messages), (SELECT coalesce(sum(used), 0) FROM accounts)`).
					Scan(&found.Domains, &found.Accounts, &found.Messages, &found.MailBytes); err != nil {
					return err
				}
				return check(problems, found)
			case len(f) == 4 && f[0] == "sequence" && slices.Contains(backupSequences, f[1]):
				v, err := strconv.ParseInt(f[2], 10, 64)
				if err != nil {
					return fmt.Errorf("%w: %q", store.ErrInvalid, l)
				}
				if _, err := w.Exec(ctx, `SELECT setval($1, $2, $3)`, f[1], v, f[3] == "true"); err != nil {
					return err
				}
			case len(f) == 2 && f[0] == "table" && slices.Contains(backupTables, f[1]):
				tr := &tableReader{br: br}
				if _, err := w.Tx.Conn().PgConn().CopyFrom(ctx, tr, `COPY `+pgx.Identifier{f[1]}.Sanitize()+` FROM STDIN`); err != nil {
					if tr.err != nil { // the snapshot's fault, not the database's
						return fmt.Errorf("table %s: %w", f[1], tr.err)
					}
					return fmt.Errorf("table %s: %w", f[1], err)
				}
			default:
				return fmt.Errorf("%w: unexpected line in the snapshot: %.80q", store.ErrInvalid, l)
			}
		}
	})
}

// tableReader reads one table's COPY data, up to its "\." line (which it
// consumes but does not return).
type tableReader struct {
	br      *bufio.Reader
	done    bool
	midLine bool // the last piece read ended within a line
	buf     []byte
	err     error // what reading the snapshot failed with
}

func (t *tableReader) Read(p []byte) (int, error) {
	for len(t.buf) == 0 {
		if t.done {
			return 0, io.EOF
		}
		l, err := t.br.ReadSlice('\n')
		switch {
		case err == bufio.ErrBufferFull:
			t.buf = append(t.buf[:0], l...)
			t.midLine = true
			continue
		case err != nil:
			t.err = fmt.Errorf("the snapshot ends in a table: %w", err)
			return 0, t.err
		case !t.midLine && string(l) == "\\.\n":
			t.done = true
			continue
		}
		t.midLine = false
		t.buf = append(t.buf[:0], l...)
	}
	n := copy(p, t.buf)
	t.buf = t.buf[n:]
	return n, nil
}

// StoreBytes is the size of the database on the server's disk
// (pg_database_size): store.Sizer.
func (s *Store) StoreBytes(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&n); err != nil {
		return 0, dbError(err)
	}
	return n, nil
}

var _ store.Sizer = (*Store)(nil)
