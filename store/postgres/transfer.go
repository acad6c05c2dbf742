package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"yubin/store"
)

// store.Transfer: the state no other interface lists, read from and
// written to its tables (spam_models, spam_tokens, spam_trained,
// import_keys, once_keys, expunged and mailboxes.gone_floor,
// accounts.quota_warned).

// SpamOwners returns the owners of every spam model, sorted.
func (s *Store) SpamOwners(ctx context.Context) ([]string, error) {
	var out []string
	err := s.read(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = strings1(ctx, tx, `SELECT owner FROM spam_models ORDER BY owner COLLATE "C"`)
		return err
	})
	return out, err
}

// SpamModel calls fn with each token of owner's model and returns its
// totals.
func (s *Store) SpamModel(ctx context.Context, owner string, fn func(store.SpamToken) error) (store.SpamTotals, error) {
	var t store.SpamTotals
	err := s.read(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT spam, ham, tokens FROM spam_models WHERE owner = $1`, lower(owner)).Scan(&t.Spam, &t.Ham, &t.Tokens)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT token, spam, ham, seen FROM spam_tokens WHERE owner = $1 ORDER BY token`, lower(owner))
		if err != nil {
			return err
		}
		var tok store.SpamToken
		var sp, hm int64
		_, err = pgx.ForEachRow(rows, []any{&tok.Token, &sp, &hm, &tok.Day}, func() error {
			tok.Spam, tok.Ham = uint64(max(sp, 0)), uint64(max(hm, 0))
			return fn(tok)
		})
		return err
	})
	return t, err
}

// LoadSpamModel replaces owner's model.
func (s *Store) LoadSpamModel(ctx context.Context, owner string, totals store.SpamTotals, tokens []store.SpamToken) error {
	if err := store.CheckSpamModel(owner, totals, tokens); err != nil {
		return err
	}
	owner = lower(owner)
	return s.write(ctx, func(w *wtx) error {
		if _, err := w.Exec(ctx, `DELETE FROM spam_models WHERE owner = $1`, owner); err != nil {
			return err
		}
		if _, err := w.Exec(ctx, `INSERT INTO spam_models (owner, spam, ham, tokens) VALUES ($1, $2, $3, $4)`, owner, totals.Spam, totals.Ham, totals.Tokens); err != nil {
			return err
		}
		_, err := w.CopyFrom(ctx, pgx.Identifier{"spam_tokens"}, []string{"owner", "token", "spam", "ham", "seen"},
			pgx.CopyFromSlice(len(tokens), func(i int) ([]any, error) {
				t := tokens[i]
				return []any{owner, t.Token, int64(min(t.Spam, 1<<62)), int64(min(t.Ham, 1<<62)), max(t.Day, 0)}, nil
			}))
		return err
	})
}

// SpamTrainedMessages returns account's messages whose training is
// recorded.
func (s *Store) SpamTrainedMessages(ctx context.Context, account string) ([]store.SpamTrainedMessage, error) {
	var out []store.SpamTrainedMessage
	err := s.read(ctx, func(tx pgx.Tx) error {
		if err := accountExists(ctx, tx, account); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT b.name, m.uid, t.class FROM spam_trained t
			JOIN messages m ON m.blob = t.blob
			JOIN mailboxes b ON b.id = m.mailbox AND b.account = t.account
			WHERE t.account = $1 AND t.class <> 0 ORDER BY b.name COLLATE "C", m.uid`, lower(account))
		if err != nil {
			return err
		}
		var m store.SpamTrainedMessage
		var uid int64
		var class int16
		_, err = pgx.ForEachRow(rows, []any{&m.Mailbox, &uid, &class}, func() error {
			m.UID, m.Class = uint32(uid), store.SpamClass(class)
			out = append(out, m)
			return nil
		})
		return err
	})
	return out, err
}

// accountExists says store.ErrNoSuchAccount for an account not there.
func accountExists(ctx context.Context, tx querier, account string) error {
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM accounts WHERE address = $1)`, lower(account)).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("account %s: %w", account, store.ErrNoSuchAccount)
	}
	return nil
}

// LoadSpamTrained records what messages of account were trained as.
func (s *Store) LoadSpamTrained(ctx context.Context, account string, ms []store.SpamTrainedMessage) error {
	for _, m := range ms {
		if m.Class != store.Spam && m.Class != store.Ham {
			return fmt.Errorf("%w: %s UID %d trained as %v", store.ErrInvalid, m.Mailbox, m.UID, m.Class)
		}
	}
	account = lower(account)
	return s.write(ctx, func(w *wtx) error {
		for _, m := range ms {
			b, err := getBox(ctx, w, account, m.Mailbox)
			if err != nil {
				return err
			}
			var blob int64
			err = w.QueryRow(ctx, `SELECT blob FROM messages WHERE mailbox = $1 AND uid = $2`, b.id, int64(m.UID)).Scan(&blob)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("uid %d in %s of %s: %w", m.UID, m.Mailbox, account, store.ErrNoSuchMessage)
			}
			if err != nil {
				return err
			}
			if _, err := w.Exec(ctx, `INSERT INTO spam_trained (account, blob, class) VALUES ($1, $2, $3)
				ON CONFLICT (account, blob) DO UPDATE SET class = excluded.class`, account, blob, int16(m.Class)); err != nil {
				return err
			}
		}
		return nil
	})
}

// ImportKeys returns the keys imported into account, sorted.
func (s *Store) ImportKeys(ctx context.Context, account string) ([]string, error) {
	var out []string
	err := s.read(ctx, func(tx pgx.Tx) error {
		if err := accountExists(ctx, tx, account); err != nil {
			return err
		}
		var err error
		out, err = strings1(ctx, tx, `SELECT key FROM import_keys WHERE account = $1 ORDER BY key COLLATE "C"`, lower(account))
		return err
	})
	return out, err
}

// LoadImportKeys records keys as imported into account.
func (s *Store) LoadImportKeys(ctx context.Context, account string, keys []string) error {
	for _, k := range keys {
		if k == "" || len(k) > store.MaxImportKeyLen {
			return fmt.Errorf("%w: import key of %d bytes (1 to %d)", store.ErrInvalid, len(k), store.MaxImportKeyLen)
		}
	}
	return s.write(ctx, func(w *wtx) error {
		if err := accountExists(ctx, w, account); err != nil {
			return err
		}
		_, err := w.Exec(ctx, `INSERT INTO import_keys (account, key) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`, lower(account), keys)
		return err
	})
}

// OnceKeys returns the keys DeliverOnce recorded.
func (s *Store) OnceKeys(ctx context.Context) ([]store.OnceKey, error) {
	var out []store.OnceKey
	err := s.read(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT key, at FROM once_keys ORDER BY key`)
		if err != nil {
			return err
		}
		var k store.OnceKey
		_, err = pgx.ForEachRow(rows, []any{&k.Key, &k.At}, func() error {
			k.At = k.At.UTC()
			out = append(out, k)
			return nil
		})
		return err
	})
	return out, err
}

// LoadOnceKeys records keys as delivered under.
func (s *Store) LoadOnceKeys(ctx context.Context, keys []store.OnceKey) error {
	names := make([]string, len(keys))
	ats := make([]time.Time, len(keys))
	for i, k := range keys {
		if k.Key == "" {
			return fmt.Errorf("%w: empty once key", store.ErrInvalid)
		}
		names[i], ats[i] = k.Key, k.At.UTC()
	}
	return s.write(ctx, func(w *wtx) error {
		_, err := w.Exec(ctx, `INSERT INTO once_keys (key, at) SELECT * FROM unnest($1::text[], $2::timestamptz[])
			ON CONFLICT (key) DO UPDATE SET at = excluded.at`, names, ats)
		return err
	})
}

// RememberedExpunges returns what a mailbox remembers of its expunges.
func (s *Store) RememberedExpunges(ctx context.Context, account, mailbox string) (store.RememberedExpunges, error) {
	var r store.RememberedExpunges
	err := s.read(ctx, func(tx pgx.Tx) error {
		b, err := getBox(ctx, tx, account, mailbox)
		if err != nil {
			return err
		}
		r = store.RememberedExpunges{Floor: b.goneFloor}
		rows, err := tx.Query(ctx, `SELECT uid, modseq, at FROM expunged WHERE mailbox = $1 ORDER BY modseq`, b.id)
		if err != nil {
			return err
		}
		var uid, modseq int64
		var at time.Time
		_, err = pgx.ForEachRow(rows, []any{&uid, &modseq, &at}, func() error {
			r.Expunges = append(r.Expunges, store.Expunge{UID: uint32(uid), ModSeq: uint64(modseq), At: at.UTC().Truncate(time.Second)})
			return nil
		})
		return err
	})
	return r, err
}

// LoadRememberedExpunges replaces what a mailbox remembers of its
// expunges.
func (s *Store) LoadRememberedExpunges(ctx context.Context, account, mailbox string, r store.RememberedExpunges) error {
	return s.write(ctx, func(w *wtx) error {
		b, err := getBox(ctx, w, account, mailbox)
		if err != nil {
			return err
		}
		uids := make([]int64, len(r.Expunges))
		mods := make([]int64, len(r.Expunges))
		ats := make([]time.Time, len(r.Expunges))
		for i, e := range r.Expunges {
			uids[i], mods[i], ats[i] = int64(e.UID), int64(e.ModSeq), e.At.UTC()
		}
		rows, err := w.Query(ctx, `SELECT uid FROM messages WHERE mailbox = $1 AND uid = ANY($2)`, b.id, uids)
		if err != nil {
			return err
		}
		held, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		if err := r.Check(b.Mailbox, func(uid uint32) bool { return slices.Contains(held, int64(uid)) }); err != nil {
			return err
		}
		if _, err := w.Exec(ctx, `DELETE FROM expunged WHERE mailbox = $1`, b.id); err != nil {
			return err
		}
		if _, err := w.Exec(ctx, `INSERT INTO expunged (mailbox, modseq, uid, at) SELECT $1, m, u, a FROM unnest($2::bigint[], $3::bigint[], $4::timestamptz[]) AS t(m, u, a)`,
			b.id, mods, uids, ats); err != nil {
			return err
		}
		_, err = w.Exec(ctx, `UPDATE mailboxes SET gone_floor = $2 WHERE id = $1`, b.id, int64(r.Floor))
		return err
	})
}

// QuotaWarned reports whether account's quota warning was given.
func (s *Store) QuotaWarned(ctx context.Context, account string) (bool, error) {
	var warned bool
	err := s.readOne(ctx, func(q querier) error {
		err := q.QueryRow(ctx, `SELECT quota_warned FROM accounts WHERE address = $1`, lower(account)).Scan(&warned)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("account %s: %w", account, store.ErrNoSuchAccount)
		}
		return err
	})
	return warned, err
}

// SetQuotaWarned sets whether account's quota warning was given.
func (s *Store) SetQuotaWarned(ctx context.Context, account string, warned bool) error {
	return s.write(ctx, func(w *wtx) error {
		tag, err := w.Exec(ctx, `UPDATE accounts SET quota_warned = $2 WHERE address = $1`, lower(account), warned)
		if err == nil && tag.RowsAffected() == 0 {
			return fmt.Errorf("account %s: %w", account, store.ErrNoSuchAccount)
		}
		return err
	})
}

var _ store.Store = (*Store)(nil)
