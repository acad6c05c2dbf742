package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"yubin/internal/mailheader"
	"yubin/store"
)

// Imported reports, for each of keys, whether a message was imported into
// account under it.
func (s *Store) Imported(ctx context.Context, account string, keys []string) ([]bool, error) {
	account = lower(account)
	out := make([]bool, len(keys))
	err := s.read(ctx, func(tx pgx.Tx) error {
		if _, err := getAccount(ctx, tx, account); err != nil {
			return err
		}
		have, err := strings1(ctx, tx, `SELECT key FROM import_keys WHERE account = $1 AND key = ANY($2)`, account, keys)
		if err != nil {
			return err
		}
		set := map[string]bool{}
		for _, k := range have {
			set[k] = true
		}
		for i, k := range keys {
			out[i] = k != "" && set[k]
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Import stores msgs in account's mailboxes, in order and in one
// transaction, each at most once per key (see store.Importer).
func (s *Store) Import(ctx context.Context, account string, msgs []store.ImportMessage) (store.ImportResult, error) {
	account = lower(account)
	if len(msgs) == 0 {
		return store.ImportResult{}, nil
	}
	type prepared struct {
		key   string
		box   string
		flags []string
		date  time.Time
		msg   []byte
		hsize int64
		env   []byte
	}
	preps := make([]prepared, len(msgs))
	keys := make([]string, len(msgs))
	for i, m := range msgs {
		if m.Key == "" || len(m.Key) > store.MaxImportKeyLen {
			return store.ImportResult{}, fmt.Errorf("%w: import key of %d bytes (1 to %d)", store.ErrInvalid, len(m.Key), store.MaxImportKeyLen)
		}
		flags, err := store.NormalizeFlags(m.Flags)
		if err != nil {
			return store.ImportResult{}, err
		}
		date := m.Date
		if date.IsZero() {
			date = s.now()
		}
		preps[i] = prepared{m.Key, store.CanonicalMailbox(m.Mailbox), flags, date, m.Message, int64(mailheader.HeaderSize(m.Message)), store.Envelope(nil, m.Message)}
		keys[i] = m.Key
	}
	var res store.ImportResult
	var full *store.QuotaError
	err := s.write(ctx, func(w *wtx) error {
		res, full = store.ImportResult{}, nil
		a, err := w.lockAccount(ctx, account)
		if err != nil {
			return err
		}
		bs := w.boxes()
		for _, p := range preps {
			if _, err := bs.get(ctx, account, p.box); err != nil {
				return err
			}
		}
		have, err := strings1(ctx, w, `SELECT key FROM import_keys WHERE account = $1 AND key = ANY($2)`, account, keys)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, k := range have {
			seen[k] = true
		}
		used := a.Used
		var added []string
		for _, p := range preps {
			if seen[p.key] {
				res.Skipped++
				continue
			}
			size := int64(len(p.msg))
			if a.Quota > 0 && used+size > a.Quota {
				full = &store.QuotaError{Account: a.Address, Quota: a.Quota, Used: used, Need: size}
				break
			}
			blob, err := w.putBlob(ctx, p.env, nil, p.msg)
			if err != nil {
				return err
			}
			b, _ := bs.get(ctx, account, p.box)
			m, err := w.insertMessage(ctx, b, blob, store.MessageInfo{Size: size, HeaderSize: p.hsize, Date: p.date, Flags: p.flags})
			if err != nil {
				return err
			}
			used += size
			seen[p.key] = true
			added = append(added, p.key)
			res.Imported++
			res.Bytes += size
			w.event(store.Event{Kind: store.EventNew, Account: a.Address, Mailbox: b.Name, UIDValidity: b.UIDValidity, UID: m.UID, Flags: p.flags, ModSeq: m.ModSeq})
		}
		if res.Imported == 0 {
			return nil
		}
		if _, err := w.Exec(ctx, `INSERT INTO import_keys (account, key) SELECT $1, unnest($2::text[])`, account, added); err != nil {
			return err
		}
		if err := bs.flush(ctx); err != nil {
			return err
		}
		return w.addUsed(ctx, account, res.Bytes)
	})
	if err != nil {
		return store.ImportResult{}, err
	}
	if res.Imported > 0 {
		s.deliveries.Add(1)
	}
	if full != nil {
		return res, full
	}
	return res, nil
}
