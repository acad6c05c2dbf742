package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"yubin/internal/mailheader"
	"yubin/store"
)

// Summaries returns the header summaries of messages, in the order asked;
// a UID that does not exist gets a zero Summary. A blob's summary is
// parsed once, then kept with the blob.
func (s *Store) Summaries(ctx context.Context, account, mailbox string, uids []uint32) ([]mailheader.Summary, error) {
	out := make([]mailheader.Summary, len(uids))
	type miss struct {
		blob int64
		enc  []byte
	}
	var misses []miss
	err := s.read(ctx, func(tx pgx.Tx) error {
		b, err := getBox(ctx, tx, account, mailbox)
		if err != nil {
			return err
		}
		u := make([]int64, len(uids))
		for i, v := range uids {
			u[i] = int64(v)
		}
		rows, err := tx.Query(ctx, `SELECT m.uid, m.blob, b.envelope, m.size FROM messages m JOIN blobs b ON b.id = m.blob
			WHERE m.mailbox = $1 AND m.uid = ANY($2)`, b.id, u)
		if err != nil {
			return err
		}
		type found struct {
			blob, size int64
			env        []byte
		}
		byUID := map[uint32]found{}
		var uid, blob, size int64
		var env []byte
		_, err = pgx.ForEachRow(rows, []any{&uid, &blob, &env, &size}, func() error {
			byUID[uint32(uid)] = found{blob, size, env}
			return nil
		})
		if err != nil {
			return err
		}
		parsed := map[int64]mailheader.Summary{}
		for i, uid := range uids {
			f, ok := byUID[uid]
			if !ok {
				continue
			}
			if f.env != nil {
				if sum, ok := mailheader.Decode(f.env); ok {
					out[i] = sum
					continue
				}
			}
			if sum, ok := parsed[f.blob]; ok {
				out[i] = sum
				continue
			}
			hdr, err := readHeader(ctx, tx, f.blob, f.size)
			if err != nil {
				return err
			}
			sum := mailheader.Parse(hdr)
			parsed[f.blob] = sum
			out[i] = sum
			misses = append(misses, miss{f.blob, mailheader.Encode(&sum)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(misses) > 0 {
		// Kept for next time; a failure only means parsing again.
		ids := make([]int64, len(misses))
		encs := make([][]byte, len(misses))
		for i, m := range misses {
			ids[i], encs[i] = m.blob, m.enc
		}
		s.pool.Exec(ctx, `UPDATE blobs b SET envelope = e.env FROM unnest($1::bigint[], $2::bytea[]) AS e(id, env) WHERE b.id = e.id`, ids, encs)
	}
	return out, nil
}

// readHeader reads the start of a blob: its header section, at most
// store.MaxEnvelopeHeader bytes of it.
func readHeader(ctx context.Context, tx querier, blob, size int64) ([]byte, error) {
	want := min(size, store.MaxEnvelopeHeader)
	out := make([]byte, 0, want)
	rows, err := tx.Query(ctx, `SELECT data FROM chunks WHERE blob = $1 AND n < $2 ORDER BY n`, blob, (want+ChunkSize-1)/ChunkSize)
	if err != nil {
		return nil, err
	}
	var data []byte
	_, err = pgx.ForEachRow(rows, []any{&data}, func() error {
		out = append(out, data[:min(int64(len(data)), want-int64(len(out)))]...)
		return nil
	})
	if n := mailheader.HeaderSize(out); n < len(out) {
		out = out[:n]
	}
	return out, err
}
