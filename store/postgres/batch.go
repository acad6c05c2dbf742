package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Writes whose results a transaction does not need are queued (later) and
// sent together, in one round trip, before the next statement that is not
// queued or before the commit: a delivery's message row, counters, usage
// and events go in one. Every statement of a wtx goes through these
// methods (no statement of this package sends a batch or a COPY of its
// own in a wtx), so it sees what was queued before it.

// later queues a write.
func (w *wtx) later(sql string, args ...any) {
	if w.batch == nil {
		w.batch = &pgx.Batch{}
	}
	w.batch.Queue(sql, args...)
}

// flushLater sends the queued writes.
func (w *wtx) flushLater(ctx context.Context) error {
	b := w.batch
	if b == nil {
		return nil
	}
	w.batch = nil
	br := w.Tx.SendBatch(ctx, b)
	for range b.Len() {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
	}
	return br.Close()
}

func (w *wtx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := w.flushLater(ctx); err != nil {
		return pgconn.CommandTag{}, err
	}
	return w.Tx.Exec(ctx, sql, args...)
}

func (w *wtx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := w.flushLater(ctx); err != nil {
		return nil, err
	}
	return w.Tx.Query(ctx, sql, args...)
}

func (w *wtx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := w.flushLater(ctx); err != nil {
		return errRow{err}
	}
	return w.Tx.QueryRow(ctx, sql, args...)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
