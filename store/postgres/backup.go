package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"yubin/store"
)

// Backend names this backend in snapshots (store.BackupInfo.Backend).
const Backend = "postgres"

// SetLastBackup records the latest backup made of the store.
func (s *Store) SetLastBackup(ctx context.Context, b store.LastBackup) error {
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

// Backup is not written yet for this backend: use pg_dump.
func (s *Store) Backup(ctx context.Context, w io.Writer) (store.BackupInfo, error) {
	return store.BackupInfo{}, fmt.Errorf("%w: yubin backup of a PostgreSQL store is not implemented yet; use pg_dump", store.ErrInvalid)
}
