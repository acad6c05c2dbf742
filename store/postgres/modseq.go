package postgres

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5"

	"yubin/store"
)

// expunged is one expunge a mailbox remembers: the UID and the
// mod-sequence the expunge took.
type expunged struct {
	uid    uint32
	modseq uint64
}

// rememberExpunged records expunges of a mailbox and forgets the oldest
// beyond MaxExpunged or ExpungedAge; the mailbox's gone_floor rises to the
// latest mod-sequence forgotten (Expunged asked about what is below it
// names every UID not in the mailbox). The caller writes b back.
func (s *Store) rememberExpunged(ctx context.Context, w *wtx, b *box, gone []expunged) error {
	if len(gone) == 0 {
		return nil
	}
	uids := make([]int64, len(gone))
	mods := make([]int64, len(gone))
	for i, g := range gone {
		uids[i], mods[i] = int64(g.uid), int64(g.modseq)
	}
	now := s.now().UTC()
	if _, err := w.Exec(ctx, `INSERT INTO expunged (mailbox, modseq, uid, at) SELECT $1, m, u, $4 FROM unnest($2::bigint[], $3::bigint[]) AS t(m, u)`,
		b.id, mods, uids, now); err != nil {
		return err
	}
	var floor *int64
	err := w.QueryRow(ctx, `WITH keep AS (
			SELECT modseq FROM expunged WHERE mailbox = $1 ORDER BY modseq DESC LIMIT $2
		), d AS (
			DELETE FROM expunged e WHERE e.mailbox = $1 AND (e.at < $3 OR e.modseq NOT IN (SELECT modseq FROM keep)) RETURNING e.modseq
		) SELECT max(modseq) FROM d`, b.id, s.maxExpunged, now.Add(-s.expungedAge)).Scan(&floor)
	if err != nil {
		return err
	}
	if floor != nil {
		b.goneFloor = max(b.goneFloor, uint64(*floor))
	}
	return nil
}

// Expunged returns the UIDs expunged from a mailbox after sinceModSeq
// (see store.Mail).
func (s *Store) Expunged(ctx context.Context, account, mailbox string, since uint64) ([]uint32, error) {
	var out []uint32
	err := s.read(ctx, func(tx pgx.Tx) error {
		b, err := getBox(ctx, tx, account, mailbox)
		if err != nil {
			return err
		}
		if since >= b.HighestModSeq {
			return nil
		}
		if since >= b.goneFloor {
			rows, err := tx.Query(ctx, `SELECT uid FROM expunged WHERE mailbox = $1 AND modseq > $2`, b.id, int64(since))
			if err != nil {
				return err
			}
			var uid int64
			_, err = pgx.ForEachRow(rows, []any{&uid}, func() error {
				out = append(out, uint32(uid))
				return nil
			})
			slices.Sort(out)
			return err
		}
		// Forgotten: every UID below UIDNEXT that is not there.
		rows, err := tx.Query(ctx, `SELECT uid FROM messages WHERE mailbox = $1 ORDER BY uid`, b.id)
		if err != nil {
			return err
		}
		next := uint32(1)
		var uid int64
		_, err = pgx.ForEachRow(rows, []any{&uid}, func() error {
			for ; next < uint32(uid); next++ {
				out = append(out, next)
			}
			next = uint32(uid) + 1
			return nil
		})
		for ; next < b.UIDNext; next++ {
			out = append(out, next)
		}
		return err
	})
	return out, err
}

// ClaimRecent claims a mailbox's recent messages for the caller's session
// (see store.Mail).
func (s *Store) ClaimRecent(ctx context.Context, account, mailbox string) (uint32, store.Mailbox, error) {
	var first uint32
	var meta store.Mailbox
	err := s.write(ctx, func(w *wtx) error {
		var err error
		var b box
		// The mailbox row's lock is enough: no other column changes.
		b, err = scanBox(w.QueryRow(ctx, `SELECT `+boxColumns+` FROM mailboxes m WHERE m.account = $1 AND m.name = $2 FOR UPDATE`,
			lower(account), store.CanonicalMailbox(mailbox)))
		if err == pgx.ErrNoRows {
			_, err = getBox(ctx, w, account, mailbox)
			return err
		}
		if err != nil {
			return err
		}
		first, meta = b.FirstRecent, b.Mailbox
		if b.FirstRecent >= b.UIDNext {
			return nil
		}
		meta.FirstRecent = b.UIDNext
		_, err = w.Exec(ctx, `UPDATE mailboxes SET first_recent = $2 WHERE id = $1`, b.id, int64(b.UIDNext))
		return err
	})
	if err != nil {
		return 0, store.Mailbox{}, err
	}
	return min(first, meta.UIDNext), meta, nil
}
