package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"yubin/store"
)

// Deliver stores the message for every recipient in one transaction.
func (s *Store) Deliver(ctx context.Context, d store.Delivery) ([]store.Delivered, error) {
	return s.DeliverBatch(ctx, []store.Delivery{d})
}

// DeliverBatch stores several deliveries in one transaction: all or none.
func (s *Store) DeliverBatch(ctx context.Context, ds []store.Delivery) ([]store.Delivered, error) {
	return s.deliverBatch(ctx, ds, nil, "")
}

// prepared is a delivery checked and normalised.
type prepared struct {
	rcpts []string
	flags []string
	date  time.Time
	box   string
	hdr   []byte
	msg   []byte
	tail  *io.SectionReader
	size  int64
	hsize int64
	hold  *store.QuarantineHold
	env   []byte
}

func (s *Store) prepare(ds []store.Delivery) ([]prepared, error) {
	var preps []prepared
	for _, d := range ds {
		n, err := d.Normalize(s.now())
		if err != nil {
			return nil, err
		}
		preps = append(preps, prepared{n.Recipients, n.Flags, n.Date, n.Mailbox, d.Header, d.Message, d.Tail, d.Size(), n.HeaderSize, d.Quarantine, n.Envelope})
	}
	return preps, nil
}

// errDeliveredBefore is DeliverOnce's: the key was recorded before.
var errDeliveredBefore = errors.New("delivered before under this key")

// boxes caches the mailboxes a write changes, to write their counters
// back once at its end.
type boxes struct {
	w     *wtx
	m     map[[2]string]*box
	order []*box
}

func (w *wtx) boxes() *boxes { return &boxes{w: w, m: map[[2]string]*box{}} }

func (bs *boxes) get(ctx context.Context, account, name string) (*box, error) {
	k := [2]string{lower(account), store.CanonicalMailbox(name)}
	if b, ok := bs.m[k]; ok {
		return b, nil
	}
	b, err := getBox(ctx, bs.w, account, name)
	if err != nil {
		return nil, err
	}
	bs.m[k] = &b
	bs.order = append(bs.order, &b)
	return &b, nil
}

func (bs *boxes) flush(ctx context.Context) error {
	for _, b := range bs.order {
		if err := bs.w.putBox(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

// insertMessage adds a message to a mailbox under the next UID.
func (w *wtx) insertMessage(ctx context.Context, b *box, blob int64, m store.MessageInfo) (store.MessageInfo, error) {
	m.UID = b.UIDNext
	m.ModSeq = b.bump()
	if m.Flags == nil {
		m.Flags = []string{}
	}
	w.later(`INSERT INTO messages (mailbox, uid, blob, size, header_size, date_ns, flags, modseq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		b.id, int64(m.UID), blob, m.Size, m.HeaderSize, m.Date.UnixNano(), m.Flags, int64(m.ModSeq))
	b.UIDNext++
	b.Messages++
	b.Size += m.Size
	return m, nil
}

// deliverBatch is DeliverBatch plus, in the same transaction, the queue
// changes in q (nil: none) and, when once is not "", DeliverOnce's key.
func (s *Store) deliverBatch(ctx context.Context, ds []store.Delivery, q *queueBatch, once string) ([]store.Delivered, error) {
	preps, err := s.prepare(ds)
	if err != nil {
		return nil, err
	}
	if len(preps) == 0 && q.empty() {
		return nil, fmt.Errorf("%w: nothing to deliver", store.ErrInvalid)
	}
	var out []store.Delivered
	err = s.write(ctx, func(w *wtx) error {
		out = out[:0]
		if once != "" {
			tag, err := w.Exec(ctx, `INSERT INTO once_keys (key, at) VALUES ($1, $2) ON CONFLICT DO NOTHING`, once, s.now().UTC())
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return errDeliveredBefore
			}
		}
		// The bytes first, before the accounts are locked: the locks
		// are held until the commit, and serialise an account's writes.
		blobs := make([]int64, len(preps))
		for i, p := range preps {
			var err error
			if blobs[i], err = w.putBlob(ctx, p.env, p.tail, p.hdr, p.msg); err != nil {
				return err
			}
		}
		var all []string
		for _, p := range preps {
			all = append(all, p.rcpts...)
		}
		accts, err := w.lockAccounts(ctx, all...)
		if err != nil {
			return err
		}
		// Check everything before writing anything; usage adds up over
		// the deliveries of the batch.
		need := map[string]int64{}
		bs := w.boxes()
		dest := make([][]*box, len(preps)) // nil: the quarantine
		held := map[string]qcounts{}
		for i, p := range preps {
			dest[i] = make([]*box, len(p.rcpts))
			for j, r := range p.rcpts {
				a := accts[r]
				name := p.box
				if p.hold != nil {
					fits, err := w.holdFits(ctx, r, p.size, p.hold.Limit, held[r])
					if err != nil {
						return err
					}
					if fits {
						c := held[r]
						c.Messages++
						c.Bytes += p.size
						held[r] = c
						continue // held: outside the quota
					}
					// The quarantine is full: Junk instead, never dropped.
					name = "Junk"
					if _, err := bs.get(ctx, r, name); err != nil {
						name = "INBOX"
					}
				}
				need[r] += p.size
				if a.Quota > 0 && a.Used+need[r] > a.Quota {
					return &store.QuotaError{Account: a.Address, Quota: a.Quota, Used: a.Used, Need: need[r]}
				}
				b, err := bs.get(ctx, r, name)
				if err != nil {
					return err
				}
				dest[i][j] = b
			}
		}
		if err := q.check(ctx, w); err != nil {
			return err
		}
		for i, p := range preps {
			blob := blobs[i]
			for j, r := range p.rcpts {
				a := accts[r]
				b := dest[i][j]
				if b == nil {
					id, err := w.putHold(ctx, r, p.hold, blob, p.size, p.hsize, p.date)
					if err != nil {
						return err
					}
					out = append(out, store.Delivered{Account: a.Address, Quarantine: id})
					continue
				}
				m, err := w.insertMessage(ctx, b, blob, store.MessageInfo{Size: p.size, HeaderSize: p.hsize, Date: p.date, Flags: p.flags})
				if err != nil {
					return err
				}
				out = append(out, store.Delivered{Account: a.Address, Mailbox: b.Name, UIDValidity: b.UIDValidity, UID: m.UID})
				w.event(store.Event{Kind: store.EventNew, Account: a.Address, Mailbox: b.Name, UIDValidity: b.UIDValidity, UID: m.UID, Flags: p.flags, ModSeq: m.ModSeq})
			}
		}
		if err := bs.flush(ctx); err != nil {
			return err
		}
		for _, r := range sortedKeys(need) {
			if err := w.addUsed(ctx, r, need[r]); err != nil {
				return err
			}
		}
		return q.write(ctx, w, s.now())
	})
	if err != nil {
		return nil, err
	}
	if len(preps) > 0 {
		s.deliveries.Add(1)
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// msgColumns are read as scanMsg scans them: the flags as one string (no
// flag holds a space), which decodes several times faster than text[].
const msgColumns = `uid, size, header_size, date_ns, array_to_string(flags, ' '), modseq`

// msgRow is a message as stored: what store.MessageInfo tells and its blob.
type msgRow struct {
	store.MessageInfo
	blob int64
}

func scanMsg(r pgx.Row, withBlob bool) (msgRow, error) {
	var m msgRow
	var uid, date, modseq int64
	var flags string
	dest := []any{&uid, &m.Size, &m.HeaderSize, &date, &flags, &modseq}
	if withBlob {
		dest = append(dest, &m.blob)
	}
	err := r.Scan(dest...)
	m.UID, m.Date, m.ModSeq = uint32(uid), time.Unix(0, date).UTC(), uint64(modseq)
	if flags != "" {
		m.Flags = strings.Split(flags, " ")
	}
	return m, err
}

// boxMessages returns a mailbox's messages, in UID order: all of them
// (uids nil) or those of uids.
func boxMessages(ctx context.Context, tx querier, boxID int64, uids []uint32) ([]msgRow, error) {
	var rows pgx.Rows
	var err error
	if uids == nil {
		rows, err = tx.Query(ctx, `SELECT `+msgColumns+`, blob FROM messages WHERE mailbox = $1 ORDER BY uid`, boxID)
	} else {
		u := make([]int64, len(uids))
		for i, v := range uids {
			u[i] = int64(v)
		}
		rows, err = tx.Query(ctx, `SELECT `+msgColumns+`, blob FROM messages WHERE mailbox = $1 AND uid = ANY($2) ORDER BY uid`, boxID, u)
	}
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (msgRow, error) { return scanMsg(r, true) })
}

// Messages lists the messages of a mailbox in UID order, with the
// mailbox's metadata from the same snapshot.
func (s *Store) Messages(ctx context.Context, account, mailbox string) ([]store.MessageInfo, store.Mailbox, error) {
	return s.messagesByUID(ctx, account, mailbox, nil)
}

// MessagesByUID returns the messages of uids that exist, in UID order.
func (s *Store) MessagesByUID(ctx context.Context, account, mailbox string, uids []uint32) ([]store.MessageInfo, store.Mailbox, error) {
	if uids == nil {
		uids = []uint32{}
	}
	return s.messagesByUID(ctx, account, mailbox, uids)
}

func (s *Store) messagesByUID(ctx context.Context, account, mailbox string, uids []uint32) ([]store.MessageInfo, store.Mailbox, error) {
	var out []store.MessageInfo
	var meta store.Mailbox
	err := s.read(ctx, func(tx pgx.Tx) error {
		b, err := getBox(ctx, tx, account, mailbox)
		if err != nil {
			return err
		}
		meta = b.Mailbox
		msgs, err := boxMessages(ctx, tx, b.id, uids)
		if err != nil {
			return err
		}
		out = make([]store.MessageInfo, 0, len(msgs))
		if uids == nil {
			for _, m := range msgs {
				out = append(out, m.MessageInfo)
			}
			return nil
		}
		// In the order asked.
		byUID := make(map[uint32]store.MessageInfo, len(msgs))
		for _, m := range msgs {
			byUID[m.UID] = m.MessageInfo
		}
		for _, uid := range uids {
			if m, ok := byUID[uid]; ok {
				out = append(out, m)
			}
		}
		return nil
	})
	return out, meta, err
}

// getMsg reads one message of a mailbox.
func getMsg(ctx context.Context, tx querier, account, mailbox string, uid uint32) (msgRow, error) {
	b, err := getBox(ctx, tx, account, mailbox)
	if err != nil {
		return msgRow{}, err
	}
	m, err := scanMsg(tx.QueryRow(ctx, `SELECT `+msgColumns+`, blob FROM messages WHERE mailbox = $1 AND uid = $2`, b.id, int64(uid)), true)
	if errors.Is(err, pgx.ErrNoRows) {
		return m, fmt.Errorf("uid %d in %s of %s: %w", uid, mailbox, account, store.ErrNoSuchMessage)
	}
	return m, err
}

// OpenMessage returns a reader over a message's raw bytes, read chunk by
// chunk.
func (s *Store) OpenMessage(ctx context.Context, account, mailbox string, uid uint32) (io.ReadCloser, store.MessageInfo, error) {
	var m msgRow
	err := s.read(ctx, func(tx pgx.Tx) error {
		var err error
		m, err = getMsg(ctx, tx, account, mailbox, uid)
		return err
	})
	if err != nil {
		return nil, m.MessageInfo, err
	}
	return s.openBlob(ctx, m.blob, m.Size), m.MessageInfo, nil
}

// ReadMessage returns a message's raw bytes.
func (s *Store) ReadMessage(ctx context.Context, account, mailbox string, uid uint32) ([]byte, error) {
	var out []byte
	err := s.read(ctx, func(tx pgx.Tx) error {
		m, err := getMsg(ctx, tx, account, mailbox, uid)
		if err != nil {
			return err
		}
		out, err = readAll(ctx, tx, m.blob, m.Size)
		return err
	})
	return out, err
}

// SetFlags changes the flags of messages (see store.Mail).
func (s *Store) SetFlags(ctx context.Context, account, mailbox string, uids []uint32, op store.FlagOp, flags []string) ([]store.MessageInfo, error) {
	out, _, err := s.SetFlagsIf(ctx, account, mailbox, uids, op, flags, math.MaxUint64)
	return out, err
}

// SetFlagsIf changes the flags of the messages not changed since
// unchangedSince (see store.Mail).
func (s *Store) SetFlagsIf(ctx context.Context, account, mailbox string, uids []uint32, op store.FlagOp, flags []string, unchangedSince uint64) ([]store.MessageInfo, []uint32, error) {
	flags, err := store.NormalizeFlags(flags)
	if err != nil {
		return nil, nil, err
	}
	uids = uniqueInOrder(uids)
	var out []store.MessageInfo
	var failed []uint32
	err = s.write(ctx, func(w *wtx) error {
		out, failed = out[:0], failed[:0]
		a, err := w.lockAccount(ctx, account)
		if err != nil {
			return err
		}
		b, err := getBox(ctx, w, account, mailbox)
		if err != nil {
			return err
		}
		msgs, err := boxMessages(ctx, w, b.id, uids)
		if err != nil {
			return err
		}
		byUID := make(map[uint32]msgRow, len(msgs))
		for _, m := range msgs {
			byUID[m.UID] = m
		}
		var changedUIDs, changedMods []int64
		var changedFlags []string
		for _, uid := range uids {
			m, ok := byUID[uid]
			if !ok {
				continue
			}
			if m.ModSeq > unchangedSince {
				failed = append(failed, uid)
				continue
			}
			nf := op.Apply(m.Flags, flags)
			if slices.Equal(nf, m.Flags) {
				out = append(out, m.MessageInfo)
				continue
			}
			m.Flags = slices.Clone(nf)
			m.ModSeq = b.bump()
			changedUIDs = append(changedUIDs, int64(uid))
			changedMods = append(changedMods, int64(m.ModSeq))
			changedFlags = append(changedFlags, joinFlags(nf))
			out = append(out, m.MessageInfo)
			w.event(store.Event{Kind: store.EventFlags, Account: a.Address, Mailbox: b.Name, UIDValidity: b.UIDValidity, UID: uid, Flags: m.Flags, ModSeq: m.ModSeq})
		}
		if len(changedUIDs) == 0 {
			return nil
		}
		// Flags never hold a space (store.NormalizeFlags), so a list of
		// them travels as one string.
		if _, err := w.Exec(ctx, `UPDATE messages m SET flags = CASE WHEN c.f = '' THEN '{}'::text[] ELSE string_to_array(c.f, ' ') END, modseq = c.ms
			FROM unnest($2::bigint[], $3::bigint[], $4::text[]) AS c(uid, ms, f) WHERE m.mailbox = $1 AND m.uid = c.uid`,
			b.id, changedUIDs, changedMods, changedFlags); err != nil {
			return err
		}
		return w.putBox(ctx, &b)
	})
	if err != nil {
		return nil, nil, err
	}
	return out, failed, nil
}

func joinFlags(f []string) string {
	var buf bytes.Buffer
	for i, x := range f {
		if i > 0 {
			buf.WriteByte(' ')
		}
		buf.WriteString(x)
	}
	return buf.String()
}

// uniqueInOrder drops the repeats of a list of UIDs, keeping its order.
func uniqueInOrder(uids []uint32) []uint32 {
	seen := make(map[uint32]struct{}, len(uids))
	out := make([]uint32, 0, len(uids))
	for _, u := range uids {
		if _, ok := seen[u]; !ok {
			seen[u] = struct{}{}
			out = append(out, u)
		}
	}
	return out
}

// Expunge removes the given messages (missing UIDs are skipped), frees
// their quota, and returns the UIDs removed.
func (s *Store) Expunge(ctx context.Context, account, mailbox string, uids []uint32) ([]uint32, error) {
	var out []uint32
	err := s.write(ctx, func(w *wtx) error {
		out = out[:0]
		a, err := w.lockAccount(ctx, account)
		if err != nil {
			return err
		}
		b, err := getBox(ctx, w, account, mailbox)
		if err != nil {
			return err
		}
		// In the order asked, as bolt does.
		msgs, err := boxMessages(ctx, w, b.id, uniqueInOrder(uids))
		if err != nil {
			return err
		}
		byUID := make(map[uint32]msgRow, len(msgs))
		for _, m := range msgs {
			byUID[m.UID] = m
		}
		var gone []expunged
		var blobs, del []int64
		var size int64
		for _, uid := range uniqueInOrder(uids) {
			m, ok := byUID[uid]
			if !ok {
				continue
			}
			b.Messages--
			b.Size -= m.Size
			size += m.Size
			g := expunged{uid, b.bump()}
			gone = append(gone, g)
			out = append(out, uid)
			blobs = append(blobs, m.blob)
			del = append(del, int64(uid))
			w.event(store.Event{Kind: store.EventExpunge, Account: a.Address, Mailbox: b.Name, UIDValidity: b.UIDValidity, UID: uid, ModSeq: g.modseq})
		}
		if len(out) == 0 {
			return nil
		}
		if _, err := w.Exec(ctx, `DELETE FROM messages WHERE mailbox = $1 AND uid = ANY($2)`, b.id, del); err != nil {
			return err
		}
		if err := w.dropBlobs(ctx, blobs); err != nil {
			return err
		}
		if err := s.rememberExpunged(ctx, w, &b, gone); err != nil {
			return err
		}
		if err := w.putBox(ctx, &b); err != nil {
			return err
		}
		return w.addUsed(ctx, a.Address, -size)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CopyMessages copies messages to another mailbox of the same account.
func (s *Store) CopyMessages(ctx context.Context, account, src, dst string, uids []uint32) (store.CopyResult, error) {
	return s.copyMessages(ctx, account, src, dst, uids, false)
}

// MoveMessages moves messages to another mailbox of the same account.
func (s *Store) MoveMessages(ctx context.Context, account, src, dst string, uids []uint32) (store.CopyResult, error) {
	return s.copyMessages(ctx, account, src, dst, uids, true)
}

func (s *Store) copyMessages(ctx context.Context, account, src, dst string, uids []uint32, move bool) (store.CopyResult, error) {
	src, dst = store.CanonicalMailbox(src), store.CanonicalMailbox(dst)
	if move && src == dst {
		return store.CopyResult{}, fmt.Errorf("%w: source and destination are the same mailbox", store.ErrInvalid)
	}
	uids = slices.Clone(uids)
	slices.Sort(uids)
	uids = slices.Compact(uids)
	var out store.CopyResult
	err := s.write(ctx, func(w *wtx) error {
		out = store.CopyResult{}
		a, err := w.lockAccount(ctx, account)
		if err != nil {
			return err
		}
		bs := w.boxes()
		sb, err := bs.get(ctx, account, src)
		if err != nil {
			return err
		}
		db, err := bs.get(ctx, account, dst)
		if err != nil {
			return err
		}
		msgs, err := boxMessages(ctx, w, sb.id, uids)
		if err != nil {
			return err
		}
		var size int64
		for _, m := range msgs {
			size += m.Size
		}
		if !move && a.Quota > 0 && a.Used+size > a.Quota {
			return &store.QuotaError{Account: a.Address, Quota: a.Quota, Used: a.Used, Need: size}
		}
		out.UIDValidity = db.UIDValidity
		var gone []expunged
		for _, m := range msgs {
			srcUID := m.UID
			if move {
				// The row moves: same blob, new mailbox and UID.
				nm := m.MessageInfo
				nm.UID = db.UIDNext
				nm.ModSeq = db.bump()
				if _, err := w.Exec(ctx, `UPDATE messages SET mailbox = $3, uid = $4, modseq = $5 WHERE mailbox = $1 AND uid = $2`,
					sb.id, int64(srcUID), db.id, int64(nm.UID), int64(nm.ModSeq)); err != nil {
					return err
				}
				db.UIDNext++
				db.Messages++
				db.Size += m.Size
				m.MessageInfo = nm
				sb.Messages--
				sb.Size -= m.Size
				gone = append(gone, expunged{srcUID, sb.bump()})
				w.event(store.Event{Kind: store.EventExpunge, Account: a.Address, Mailbox: sb.Name, UIDValidity: sb.UIDValidity, UID: srcUID, ModSeq: gone[len(gone)-1].modseq})
			} else {
				m.MessageInfo, err = w.insertMessage(ctx, db, m.blob, m.MessageInfo)
				if err != nil {
					return err
				}
			}
			out.Source = append(out.Source, srcUID)
			out.Dest = append(out.Dest, m.UID)
			w.event(store.Event{Kind: store.EventNew, Account: a.Address, Mailbox: db.Name, UIDValidity: db.UIDValidity, UID: m.UID, Flags: m.Flags, ModSeq: m.ModSeq})
		}
		if len(msgs) == 0 {
			return nil
		}
		if move {
			if err := s.rememberExpunged(ctx, w, sb, gone); err != nil {
				return err
			}
		}
		if err := bs.flush(ctx); err != nil {
			return err
		}
		if !move {
			return w.addUsed(ctx, a.Address, size)
		}
		return nil
	})
	if err != nil {
		return store.CopyResult{}, err
	}
	return out, nil
}
