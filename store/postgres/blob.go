package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/jackc/pgx/v5"

	"yubin/store"
)

// putBlob stores a raw message — the concatenation of parts, then tail
// (nil: none) — in chunks of ChunkSize with its encoded envelope (nil:
// none yet), and returns its id.
func (w *wtx) putBlob(ctx context.Context, env []byte, tail *io.SectionReader, parts ...[]byte) (int64, error) {
	readers := make([]io.Reader, 0, len(parts)+1)
	var size int64
	for _, p := range parts {
		readers = append(readers, bytes.NewReader(p))
		size += int64(len(p))
	}
	if tail != nil {
		readers = append(readers, io.NewSectionReader(tail, 0, tail.Size()))
		size += tail.Size()
	}
	r := io.MultiReader(readers...)
	first := make([]byte, min(size, ChunkSize))
	if _, err := io.ReadFull(r, first); err != nil {
		return 0, fmt.Errorf("reading the message: %w", err)
	}
	var id int64
	// The blob and its first chunk in one round trip (most messages have
	// one chunk).
	err := w.QueryRow(ctx, `WITH b AS (INSERT INTO blobs (size, envelope) VALUES ($1, $2) RETURNING id)
		INSERT INTO chunks (blob, n, data) SELECT id, 0, $3 FROM b RETURNING blob`, size, env, first).Scan(&id)
	if err != nil {
		return 0, err
	}
	if size <= ChunkSize {
		return id, nil
	}
	n := int32(1)
	buf := make([]byte, ChunkSize)
	for left := size - ChunkSize; left > 0; n++ {
		c := buf[:min(left, ChunkSize)]
		if _, err := io.ReadFull(r, c); err != nil {
			return 0, fmt.Errorf("reading the message: %w", err)
		}
		if _, err := w.Exec(ctx, `INSERT INTO chunks (blob, n, data) VALUES ($1, $2, $3)`, id, n, c); err != nil {
			return 0, err
		}
		left -= int64(len(c))
	}
	return id, nil
}

// dropBlobs deletes those of the blobs that nothing refers to any more.
// Their rows are locked first, in id order: a concurrent write that adds
// or drops a reference to one of them (another account's copy) is
// decided before this looks, so a blob is never kept without a reference
// nor deleted with one.
func (w *wtx) dropBlobs(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if _, err := w.Exec(ctx, `SELECT id FROM blobs WHERE id = ANY($1) ORDER BY id FOR UPDATE`, ids); err != nil {
		return err
	}
	_, err := w.Exec(ctx, `DELETE FROM blobs b WHERE id = ANY($1)
		AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob = b.id)
		AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.blob = b.id)
		AND NOT EXISTS (SELECT 1 FROM quarantine h WHERE h.blob = b.id)`, ids)
	return err
}

// querier is what a transaction and the pool both do.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// blobReader reads a blob chunk by chunk, one query each, so that a large
// message is never loaded whole nor read in one long transaction.
type blobReader struct {
	s    *Store
	ctx  context.Context
	id   int64
	size int64
	off  int64
	n    int32
	buf  []byte
	pos  int
}

func (s *Store) openBlob(ctx context.Context, id, size int64) *blobReader {
	return &blobReader{s: s, ctx: context.WithoutCancel(ctx), id: id, size: size}
}

func (r *blobReader) Read(p []byte) (int, error) {
	if r.pos == len(r.buf) {
		if r.off >= r.size {
			return 0, io.EOF
		}
		err := r.s.pool.QueryRow(r.ctx, `SELECT data FROM chunks WHERE blob = $1 AND n = $2`, r.id, r.n).Scan(&r.buf)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, fmt.Errorf("message was expunged while being read: %w", store.ErrNoSuchMessage)
		}
		if err != nil {
			return 0, dbError(err)
		}
		r.pos = 0
		r.n++
		if len(r.buf) == 0 {
			return 0, io.ErrUnexpectedEOF
		}
	}
	n := copy(p, r.buf[r.pos:])
	r.pos += n
	r.off += int64(n)
	return n, nil
}

func (r *blobReader) Close() error { r.buf, r.pos = nil, 0; return nil }

// readAll reads a whole blob of size bytes in one query.
func readAll(ctx context.Context, tx querier, id, size int64) ([]byte, error) {
	out := make([]byte, 0, size)
	rows, err := tx.Query(ctx, `SELECT data FROM chunks WHERE blob = $1 ORDER BY n`, id)
	if err != nil {
		return nil, err
	}
	var data []byte
	_, err = pgx.ForEachRow(rows, []any{&data}, func() error {
		out = append(out, data...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if int64(len(out)) != size {
		return nil, fmt.Errorf("blob %d holds %d bytes, %d expected: %w", id, len(out), size, store.ErrNoSuchMessage)
	}
	return out, nil
}
