package postgres

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"yubin/store"
)

// qcounts is what an account's quarantine holds.
type qcounts struct {
	Messages int
	Bytes    int64
}

var qidEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

func newQuarantineID() string {
	var b [10]byte
	rand.Read(b[:])
	return qidEncoding.EncodeToString(b[:])
}

// holdFits reports whether a message of size fits into account's
// quarantine besides pending (held earlier in the same write). The
// account is locked, so its quarantine does not change meanwhile.
func (w *wtx) holdFits(ctx context.Context, account string, size int64, lim store.QuarantineLimit, pending qcounts) (bool, error) {
	var c qcounts
	if err := w.QueryRow(ctx, `SELECT count(*), coalesce(sum(size), 0) FROM quarantine WHERE account = $1`, lower(account)).Scan(&c.Messages, &c.Bytes); err != nil {
		return false, err
	}
	lim = lim.Effective()
	return c.Messages+pending.Messages+1 <= lim.Messages && c.Bytes+pending.Bytes+size <= lim.Bytes, nil
}

// putHold holds a stored blob in an account's quarantine.
func (w *wtx) putHold(ctx context.Context, account string, h *store.QuarantineHold, blob, size, hsize int64, now time.Time) (string, error) {
	e := store.QuarantineEntry{
		ID: newQuarantineID(), Account: lower(account), Arrived: now.UTC(), QueueID: h.QueueID, Sender: h.Sender,
		From: h.From, Subject: h.Subject, Score: h.Score, Signals: h.Signals, Size: size,
	}
	data, err := json.Marshal(e)
	if err != nil {
		return "", err
	}
	_, err = w.Exec(ctx, `INSERT INTO quarantine (id, account, blob, arrived, size, header_size, entry) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		e.ID, e.Account, blob, nanos(e.Arrived), size, hsize, data)
	return e.ID, err
}

type hold struct {
	store.QuarantineEntry
	blob  int64
	hsize int64
}

func getHold(ctx context.Context, tx querier, id string, lock bool) (hold, error) {
	var h hold
	var data []byte
	sql := `SELECT entry, blob, header_size FROM quarantine WHERE id = $1`
	if lock {
		sql += ` FOR UPDATE`
	}
	err := tx.QueryRow(ctx, sql, id).Scan(&data, &h.blob, &h.hsize)
	if errors.Is(err, pgx.ErrNoRows) {
		return h, fmt.Errorf("quarantine entry %s: %w", id, store.ErrNoSuchMessage)
	}
	if err != nil {
		return h, dbError(err)
	}
	if err := json.Unmarshal(data, &h.QuarantineEntry); err != nil {
		return h, fmt.Errorf("corrupt quarantine entry %s: %w", id, err)
	}
	return h, nil
}

// Quarantined lists the entries of an account or of a domain, oldest
// first.
func (s *Store) Quarantined(ctx context.Context, f store.QuarantineFilter) ([]store.QuarantineEntry, error) {
	if (f.Account == "") == (f.Domain == "") {
		return nil, fmt.Errorf("%w: list the quarantine of an account or of a domain", store.ErrInvalid)
	}
	var out []store.QuarantineEntry
	err := s.read(ctx, func(tx pgx.Tx) error {
		var rows pgx.Rows
		var err error
		if f.Account != "" {
			if _, err := getAccount(ctx, tx, f.Account); err != nil {
				return err
			}
			rows, err = tx.Query(ctx, `SELECT entry FROM quarantine WHERE account = $1 ORDER BY arrived, id`, lower(f.Account))
		} else {
			if _, err := getDomain(ctx, tx, f.Domain); err != nil {
				return err
			}
			rows, err = tx.Query(ctx, `SELECT q.entry FROM quarantine q JOIN accounts a ON a.address = q.account WHERE a.domain = $1 ORDER BY q.arrived, q.id`, lower(f.Domain))
		}
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.QuarantineEntry, error) {
			var e store.QuarantineEntry
			var data []byte
			if err := r.Scan(&data); err != nil {
				return e, err
			}
			return e, json.Unmarshal(data, &e)
		})
		return err
	})
	return out, err
}

// QuarantineEntry returns one entry.
func (s *Store) QuarantineEntry(ctx context.Context, id string) (store.QuarantineEntry, error) {
	h, err := getHold(ctx, s.pool, id, false)
	return h.QuarantineEntry, err
}

// OpenQuarantined reads the held message.
func (s *Store) OpenQuarantined(ctx context.Context, id string) (io.ReadCloser, store.QuarantineEntry, error) {
	h, err := getHold(ctx, s.pool, id, false)
	if err != nil {
		return nil, h.QuarantineEntry, err
	}
	return s.openBlob(ctx, h.blob, h.Size), h.QuarantineEntry, nil
}

// ReleaseQuarantined delivers the held message to the account's INBOX and
// removes the entry, in one transaction.
func (s *Store) ReleaseQuarantined(ctx context.Context, id string) (store.Delivered, error) {
	var out store.Delivered
	err := s.write(ctx, func(w *wtx) error {
		out = store.Delivered{}
		h, err := getHold(ctx, w, id, false)
		if err != nil {
			return err
		}
		a, err := w.lockAccount(ctx, h.Account)
		if err != nil {
			return err
		}
		// Again under the account's lock: another release may have won.
		if h, err = getHold(ctx, w, id, true); err != nil {
			return err
		}
		if a.Quota > 0 && a.Used+h.Size > a.Quota {
			return &store.QuotaError{Account: a.Address, Quota: a.Quota, Used: a.Used, Need: h.Size}
		}
		b, err := getBox(ctx, w, a.Address, "INBOX")
		if err != nil {
			return err
		}
		m, err := w.insertMessage(ctx, &b, h.blob, store.MessageInfo{Size: h.Size, HeaderSize: h.hsize, Date: h.Arrived})
		if err != nil {
			return err
		}
		if err := w.putBox(ctx, &b); err != nil {
			return err
		}
		if err := w.addUsed(ctx, a.Address, h.Size); err != nil {
			return err
		}
		if _, err := w.Exec(ctx, `DELETE FROM quarantine WHERE id = $1`, id); err != nil {
			return err
		}
		out = store.Delivered{Account: a.Address, Mailbox: b.Name, UIDValidity: b.UIDValidity, UID: m.UID}
		w.event(store.Event{Kind: store.EventNew, Account: a.Address, Mailbox: b.Name, UIDValidity: b.UIDValidity, UID: m.UID, ModSeq: m.ModSeq})
		return nil
	})
	if err == nil {
		s.deliveries.Add(1)
	}
	return out, err
}

// DeleteQuarantined deletes entries (unknown ids are skipped).
func (s *Store) DeleteQuarantined(ctx context.Context, ids []string) (int, error) {
	return s.deleteHolds(ctx, `DELETE FROM quarantine WHERE id = ANY($1) RETURNING blob`, uniqueStrings(ids))
}

// PruneQuarantine deletes the entries that arrived before before.
func (s *Store) PruneQuarantine(ctx context.Context, before time.Time) (int, error) {
	return s.deleteHolds(ctx, `DELETE FROM quarantine WHERE arrived < $1 RETURNING blob`, nanos(before))
}

func (s *Store) deleteHolds(ctx context.Context, sql string, arg any) (int, error) {
	n := 0
	err := s.write(ctx, func(w *wtx) error {
		blobs, err := int64s(ctx, w, sql, arg)
		if err != nil {
			return err
		}
		n = len(blobs)
		return w.dropBlobs(ctx, blobs)
	})
	return n, err
}
