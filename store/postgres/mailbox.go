package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"yubin/store"
)

// box is a mailbox as stored: its row id and what store.Mailbox tells.
type box struct {
	id int64
	store.Mailbox
	goneFloor uint64
}

const boxColumns = `m.id, m.name, m.uidvalidity, m.uidnext, m.messages, m.size, m.special_use, m.highest_modseq, m.first_recent, m.gone_floor,
	EXISTS (SELECT 1 FROM subscriptions s WHERE s.account = m.account AND s.name = m.name)`

func scanBox(r pgx.Row) (box, error) {
	var b box
	var uidv, uidnext, first int64
	var highest, floor int64
	err := r.Scan(&b.id, &b.Name, &uidv, &uidnext, &b.Messages, &b.Size, &b.SpecialUse, &highest, &first, &floor, &b.Subscribed)
	b.UIDValidity, b.UIDNext, b.FirstRecent = uint32(uidv), uint32(uidnext), uint32(first)
	b.HighestModSeq, b.goneFloor = uint64(highest), uint64(floor)
	return b, err
}

// getBox reads a mailbox of an account; the error says which is missing.
func getBox(ctx context.Context, tx querier, account, name string) (box, error) {
	account = lower(account)
	name = store.CanonicalMailbox(name)
	b, err := scanBox(tx.QueryRow(ctx, `SELECT `+boxColumns+` FROM mailboxes m WHERE m.account = $1 AND m.name = $2`, account, name))
	if errors.Is(err, pgx.ErrNoRows) {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM accounts WHERE address = $1)`, account).Scan(&exists); err != nil {
			return b, err
		}
		if !exists {
			return b, fmt.Errorf("account %s: %w", account, store.ErrNoSuchAccount)
		}
		return b, fmt.Errorf("mailbox %s of %s: %w", name, account, store.ErrNoSuchMailbox)
	}
	return b, err
}

// putBox writes back a mailbox's counters after a change.
func (w *wtx) putBox(ctx context.Context, b *box) error {
	w.later(`UPDATE mailboxes SET name = $2, uidnext = $3, messages = $4, size = $5, highest_modseq = $6, first_recent = $7, gone_floor = $8 WHERE id = $1`,
		b.id, b.Name, int64(b.UIDNext), b.Messages, b.Size, int64(b.HighestModSeq), int64(b.FirstRecent), int64(b.goneFloor))
	return nil
}

// bump hands out the mailbox's next mod-sequence.
func (b *box) bump() uint64 {
	b.HighestModSeq++
	return b.HighestModSeq
}

// createMailbox adds an empty mailbox with a fresh UIDVALIDITY.
func createMailbox(ctx context.Context, w *wtx, account, name, specialUse string) error {
	_, err := w.Exec(ctx, `INSERT INTO mailboxes (account, name, uidvalidity, uidnext, messages, size, special_use, highest_modseq, first_recent)
		VALUES ($1, $2, nextval('uidvalidity_seq'), 1, 0, 0, $3, 1, 1)`, lower(account), name, specialUse)
	if isUnique(err) {
		return fmt.Errorf("mailbox %s: %w", name, store.ErrExists)
	}
	return err
}

// Mailboxes lists an account's mailboxes, INBOX first, then by name.
func (s *Store) Mailboxes(ctx context.Context, account string) ([]store.Mailbox, error) {
	account = lower(account)
	var out []store.Mailbox
	err := s.read(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+boxColumns+` FROM mailboxes m WHERE m.account = $1`, account)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Mailbox, error) {
			b, err := scanBox(r)
			return b.Mailbox, err
		})
		if err != nil {
			return err
		}
		if len(out) == 0 {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM accounts WHERE address = $1)`, account).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				return fmt.Errorf("account %s: %w", account, store.ErrNoSuchAccount)
			}
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Name == "INBOX") != (out[j].Name == "INBOX") {
			return out[i].Name == "INBOX"
		}
		return out[i].Name < out[j].Name
	})
	return out, err
}

// Mailbox returns one mailbox.
func (s *Store) Mailbox(ctx context.Context, account, name string) (store.Mailbox, error) {
	var b box
	err := s.readOne(ctx, func(q querier) error {
		var err error
		b, err = getBox(ctx, q, account, name)
		return err
	})
	return b.Mailbox, err
}

// boxNames returns the names of an account's mailboxes.
func boxNames(ctx context.Context, tx pgx.Tx, account string) (map[string]bool, error) {
	names, err := strings1(ctx, tx, `SELECT name FROM mailboxes WHERE account = $1`, lower(account))
	if err != nil {
		return nil, err
	}
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m, nil
}

func (s *Store) checkMailboxLimit(have map[string]bool, adding int) error {
	if s.maxBoxes > 0 && adding > 0 && len(have)+adding > s.maxBoxes {
		return fmt.Errorf("%w: an account has at most %d mailboxes", store.ErrLimit, s.maxBoxes)
	}
	return nil
}

// CreateMailbox creates a mailbox and any missing parents.
func (s *Store) CreateMailbox(ctx context.Context, account, name string) (store.Mailbox, error) {
	name = store.CanonicalMailbox(strings.TrimSuffix(name, store.HierarchySeparator))
	if err := store.CheckMailboxName(name); err != nil {
		return store.Mailbox{}, err
	}
	var out store.Mailbox
	err := s.write(ctx, func(w *wtx) error {
		if _, err := w.lockAccount(ctx, account); err != nil {
			return err
		}
		have, err := boxNames(ctx, w, account)
		if err != nil {
			return err
		}
		if have[name] {
			return fmt.Errorf("mailbox %s: %w", name, store.ErrExists)
		}
		var missing []string
		for _, p := range append(store.ParentMailboxes(name), name) {
			if !have[p] {
				missing = append(missing, p)
			}
		}
		if err := s.checkMailboxLimit(have, len(missing)); err != nil {
			return err
		}
		for _, p := range missing {
			if err := createMailbox(ctx, w, account, p, ""); err != nil {
				return err
			}
		}
		b, err := getBox(ctx, w, account, name)
		out = b.Mailbox
		return err
	})
	return out, err
}

// DeleteMailbox deletes a mailbox (not INBOX, not one with children) and
// its messages.
func (s *Store) DeleteMailbox(ctx context.Context, account, name string) error {
	name = store.CanonicalMailbox(name)
	if name == "INBOX" {
		return fmt.Errorf("%w: INBOX cannot be deleted", store.ErrInvalid)
	}
	return s.write(ctx, func(w *wtx) error {
		a, err := w.lockAccount(ctx, account)
		if err != nil {
			return err
		}
		b, err := getBox(ctx, w, account, name)
		if err != nil {
			return err
		}
		var children bool
		if err := w.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM mailboxes WHERE account = $1 AND starts_with(name, $2))`, a.Address, name+store.HierarchySeparator).Scan(&children); err != nil {
			return err
		}
		if children {
			return fmt.Errorf("mailbox %s: %w", name, store.ErrHasChildren)
		}
		rows, err := w.Query(ctx, `DELETE FROM messages WHERE mailbox = $1 RETURNING uid, blob, size`, b.id)
		if err != nil {
			return err
		}
		type gone struct{ uid, blob, size int64 }
		msgs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (gone, error) {
			var g gone
			return g, r.Scan(&g.uid, &g.blob, &g.size)
		})
		if err != nil {
			return err
		}
		sort.Slice(msgs, func(i, j int) bool { return msgs[i].uid < msgs[j].uid })
		var blobs []int64
		var size int64
		for _, m := range msgs {
			size += m.size
			blobs = append(blobs, m.blob)
			w.event(store.Event{Kind: store.EventExpunge, Account: a.Address, Mailbox: b.Name, UIDValidity: b.UIDValidity, UID: uint32(m.uid), ModSeq: b.bump()})
		}
		if _, err := w.Exec(ctx, `DELETE FROM mailboxes WHERE id = $1`, b.id); err != nil {
			return err
		}
		if err := w.dropBlobs(ctx, blobs); err != nil {
			return err
		}
		return w.addUsed(ctx, a.Address, -size)
	})
}

// RenameMailbox renames a mailbox and those below it; renaming INBOX moves
// its messages to a new mailbox and leaves INBOX empty.
func (s *Store) RenameMailbox(ctx context.Context, account, oldName, newName string) error {
	oldName = store.CanonicalMailbox(oldName)
	newName = store.CanonicalMailbox(strings.TrimSuffix(newName, store.HierarchySeparator))
	if err := store.CheckMailboxName(newName); err != nil {
		return err
	}
	if newName == "INBOX" {
		return fmt.Errorf("mailbox INBOX: %w", store.ErrExists)
	}
	if newName == oldName || strings.HasPrefix(newName, oldName+store.HierarchySeparator) {
		return fmt.Errorf("%w: cannot rename %s to %s (itself or below itself)", store.ErrInvalid, oldName, newName)
	}
	return s.write(ctx, func(w *wtx) error {
		if _, err := w.lockAccount(ctx, account); err != nil {
			return err
		}
		if _, err := getBox(ctx, w, account, oldName); err != nil {
			return err
		}
		have, err := boxNames(ctx, w, account)
		if err != nil {
			return err
		}
		if have[newName] {
			return fmt.Errorf("mailbox %s: %w", newName, store.ErrExists)
		}
		type rename struct{ from, to string }
		var renames []rename
		if oldName != "INBOX" {
			renames = append(renames, rename{oldName, newName})
			var below []string
			for n := range have {
				if strings.HasPrefix(n, oldName+store.HierarchySeparator) {
					below = append(below, n)
				}
			}
			sort.Strings(below)
			for _, n := range below {
				to := newName + n[len(oldName):]
				if len(to) > store.MaxMailboxNameLen {
					return fmt.Errorf("%w: %s would become longer than %d bytes", store.ErrInvalid, n, store.MaxMailboxNameLen)
				}
				if have[to] {
					return fmt.Errorf("mailbox %s: %w", to, store.ErrExists)
				}
				renames = append(renames, rename{n, to})
			}
		}
		var parents []string
		for _, p := range store.ParentMailboxes(newName) {
			if !have[p] {
				parents = append(parents, p)
			}
		}
		adding := len(parents)
		if oldName == "INBOX" {
			adding++ // INBOX stays, and its messages move to a new mailbox
		}
		if err := s.checkMailboxLimit(have, adding); err != nil {
			return err
		}
		for _, p := range parents {
			if err := createMailbox(ctx, w, account, p, ""); err != nil {
				return err
			}
		}
		if oldName == "INBOX" {
			return s.renameInbox(ctx, w, account, newName)
		}
		// Out of the way first, so that no two rows ever share a name.
		for i, r := range renames {
			if _, err := w.Exec(ctx, `UPDATE mailboxes SET name = $3 WHERE account = $1 AND name = $2`, lower(account), r.from, fmt.Sprintf("\x01rename%d", i)); err != nil {
				return err
			}
		}
		for i, r := range renames {
			if _, err := w.Exec(ctx, `UPDATE mailboxes SET name = $3 WHERE account = $1 AND name = $2`, lower(account), fmt.Sprintf("\x01rename%d", i), r.to); err != nil {
				return err
			}
		}
		return nil
	})
}

// renameInbox moves INBOX's messages, with their UIDs, to a new mailbox.
func (s *Store) renameInbox(ctx context.Context, w *wtx, account, newName string) error {
	if err := createMailbox(ctx, w, account, newName, ""); err != nil {
		return err
	}
	src, err := getBox(ctx, w, account, "INBOX")
	if err != nil {
		return err
	}
	dst, err := getBox(ctx, w, account, newName)
	if err != nil {
		return err
	}
	msgs, err := boxMessages(ctx, w, src.id, nil)
	if err != nil {
		return err
	}
	acct := lower(account)
	var gone []expunged
	for _, m := range msgs {
		g := expunged{m.UID, src.bump()}
		gone = append(gone, g)
		m.ModSeq = dst.bump()
		if _, err := w.Exec(ctx, `UPDATE messages SET mailbox = $3, modseq = $4 WHERE mailbox = $1 AND uid = $2`, src.id, int64(m.UID), dst.id, int64(m.ModSeq)); err != nil {
			return err
		}
		w.event(store.Event{Kind: store.EventExpunge, Account: acct, Mailbox: "INBOX", UIDValidity: src.UIDValidity, UID: m.UID, ModSeq: g.modseq})
		w.event(store.Event{Kind: store.EventNew, Account: acct, Mailbox: newName, UIDValidity: dst.UIDValidity, UID: m.UID, Flags: m.Flags, ModSeq: m.ModSeq})
	}
	if err := s.rememberExpunged(ctx, w, &src, gone); err != nil {
		return err
	}
	dst.UIDNext, dst.Messages, dst.Size, dst.FirstRecent = src.UIDNext, src.Messages, src.Size, src.FirstRecent
	src.Messages, src.Size = 0, 0
	if err := w.putBox(ctx, &dst); err != nil {
		return err
	}
	return w.putBox(ctx, &src)
}

// Subscriptions returns the names an account subscribes to, INBOX first,
// then sorted.
func (s *Store) Subscriptions(ctx context.Context, account string) ([]string, error) {
	account = lower(account)
	var out []string
	err := s.read(ctx, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM accounts WHERE address = $1)`, account).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("account %s: %w", account, store.ErrNoSuchAccount)
		}
		var err error
		out, err = strings1(ctx, tx, `SELECT name FROM subscriptions WHERE account = $1 ORDER BY name <> 'INBOX', name COLLATE "C"`, account)
		return err
	})
	return out, err
}

// SetSubscribed adds a name to an account's subscriptions or removes it.
func (s *Store) SetSubscribed(ctx context.Context, account, name string, subscribed bool) error {
	name = store.CanonicalMailbox(strings.TrimSuffix(name, store.HierarchySeparator))
	account = lower(account)
	return s.write(ctx, func(w *wtx) error {
		if _, err := w.lockAccount(ctx, account); err != nil {
			return err
		}
		if !subscribed {
			_, err := w.Exec(ctx, `DELETE FROM subscriptions WHERE account = $1 AND name = $2`, account, name)
			return err
		}
		var exists, already bool
		var n int
		if err := w.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM mailboxes WHERE account = $1 AND name = $2),
			EXISTS (SELECT 1 FROM subscriptions WHERE account = $1 AND name = $2),
			(SELECT count(*) FROM subscriptions WHERE account = $1)`, account, name).Scan(&exists, &already, &n); err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("mailbox %s of %s: %w", name, account, store.ErrNoSuchMailbox)
		}
		if already {
			return nil
		}
		if n >= s.maxSubs {
			return fmt.Errorf("%w: an account subscribes to at most %d names; unsubscribe some first", store.ErrLimit, s.maxSubs)
		}
		_, err := w.Exec(ctx, `INSERT INTO subscriptions (account, name) VALUES ($1, $2)`, account, name)
		return err
	})
}
