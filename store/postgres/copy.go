package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"yubin/internal/mailheader"
	"yubin/store"
)

// CopyReport counts what Copy moved.
type CopyReport struct {
	Domains    int   `json:"domains"`
	Accounts   int   `json:"accounts"`
	Mailboxes  int   `json:"mailboxes"`
	Messages   int64 `json:"messages"`
	Bytes      int64 `json:"bytes"`
	Queue      int   `json:"queue"`
	Quarantine int   `json:"quarantine"`
	Stops      int   `json:"stops"`
	// The state store.Transfer lists.
	SpamModels  int   `json:"spam_models"`
	SpamTokens  int64 `json:"spam_tokens"`
	SpamTrained int   `json:"spam_trained"`
	ImportKeys  int   `json:"import_keys"`
	OnceKeys    int   `json:"once_keys"`
	Expunges    int   `json:"remembered_expunges"`
	QuotaWarned int   `json:"quota_warned"`
}

// Copy copies what src holds into dst, which must be empty (no domains):
// domains and their settings and DKIM keys, accounts (password hashes,
// roles, quotas, policies, forwarding, quota warnings given), mailboxes
// with their UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, subscriptions and the
// expunges they remember (QRESYNC clients resync as before), every
// message with its UID, flags, internal date and mod-sequence (IMAP
// clients see the same mailboxes and need not download anything again),
// the outbound queue, the quarantine, the scanning stops, the SRS key, the
// last backup, and what store.Transfer lists: the spam models and what
// each message was trained as, the import keys, the DeliverOnce keys.
// Left behind are only what a store makes again by itself: the change
// feed's past events (a node's sessions start from the copy) and what is
// kept beside a message to save work: its envelope (made again from the
// bytes here) and its MIME structure (imapd works it out when asked).
// Each mailbox is one transaction; progress, if not nil, hears of each.
func Copy(ctx context.Context, src store.Store, dst *Store, progress func(string)) (CopyReport, error) {
	var rep CopyReport
	say := func(format string, args ...any) {
		if progress != nil {
			progress(fmt.Sprintf(format, args...))
		}
	}
	if have, err := dst.Domains(ctx); err != nil {
		return rep, err
	} else if len(have) > 0 {
		return rep, fmt.Errorf("%w: the PostgreSQL store is not empty (%d domains): copy only into a new database", store.ErrExists, len(have))
	}
	domains, err := src.Domains(ctx)
	if err != nil {
		return rep, err
	}
	// Parents before children.
	slices.SortStableFunc(domains, func(a, b store.Domain) int { return boolInt(a.Parent != "") - boolInt(b.Parent != "") })
	for _, d := range domains {
		if err := dst.AddDomain(ctx, d.Name, d.Parent); err != nil {
			return rep, fmt.Errorf("domain %s: %w", d.Name, err)
		}
		if _, err := dst.pool.Exec(ctx, `UPDATE domains SET created = $2 WHERE name = $1`, d.Name, d.Created); err != nil {
			return rep, dbError(err)
		}
		ds, err := src.DomainSettings(ctx, d.Name)
		if err != nil {
			return rep, err
		}
		if err := dst.SetDomainSettings(ctx, d.Name, ds); err != nil {
			return rep, err
		}
		keys, err := src.DKIMKeys(ctx, d.Name)
		if err != nil {
			return rep, err
		}
		if len(keys) > 0 {
			if _, err := dst.EnsureDKIMKeys(ctx, d.Name, func() ([]store.DKIMKey, error) { return keys, nil }); err != nil {
				return rep, err
			}
		}
		rep.Domains++
	}
	srs, err := src.SRSSecret(ctx)
	if err != nil {
		return rep, err
	}
	if _, err := dst.pool.Exec(ctx, `INSERT INTO meta (key, value) VALUES ('srs-secret', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, srs); err != nil {
		return rep, dbError(err)
	}
	accounts, err := src.Accounts(ctx, "")
	if err != nil {
		return rep, err
	}
	for _, a := range accounts {
		if err := dst.copyAccount(ctx, src, a, &rep, say); err != nil {
			return rep, fmt.Errorf("account %s: %w", a.Address, err)
		}
		rep.Accounts++
	}
	// Mailboxes made after the copy get UIDVALIDITY values above the
	// copied ones.
	if _, err := dst.pool.Exec(ctx, `SELECT setval('uidvalidity_seq', greatest((SELECT last_value FROM uidvalidity_seq), (SELECT coalesce(max(uidvalidity), 1) FROM mailboxes)))`); err != nil {
		return rep, dbError(err)
	}
	if err := dst.copyQueue(ctx, src, &rep); err != nil {
		return rep, fmt.Errorf("outbound queue: %w", err)
	}
	stops, err := src.Stops(ctx, time.Unix(0, 0), time.Unix(0, 1<<62), "")
	if err != nil {
		return rep, err
	}
	for _, st := range stops {
		if err := dst.RecordStop(ctx, st); err != nil {
			return rep, err
		}
		rep.Stops++
	}
	if lb, err := src.LastBackup(ctx); err != nil {
		return rep, err
	} else if !lb.Time.IsZero() {
		if err := dst.SetLastBackup(ctx, lb); err != nil {
			return rep, err
		}
	}
	if err := copyState(ctx, src, dst, &rep, say); err != nil {
		return rep, err
	}
	return rep, nil
}

// copyState copies what store.Transfer lists, through its interface only:
// the spam models, the once keys, and per account the import keys, what
// messages were trained as, the quota warning and each mailbox's
// remembered expunges (the mailboxes and messages are there already).
func copyState(ctx context.Context, src, dst store.Store, rep *CopyReport, say func(string, ...any)) error {
	owners, err := src.SpamOwners(ctx)
	if err != nil {
		return err
	}
	for _, o := range owners {
		var toks []store.SpamToken
		tot, err := src.SpamModel(ctx, o, func(t store.SpamToken) error { toks = append(toks, t); return nil })
		if err != nil {
			return fmt.Errorf("spam model of %s: %w", o, err)
		}
		if err := dst.LoadSpamModel(ctx, o, tot, toks); err != nil {
			return fmt.Errorf("spam model of %s: %w", o, err)
		}
		rep.SpamModels++
		rep.SpamTokens += int64(len(toks))
	}
	if len(owners) > 0 {
		say("spam models: %d, %d tokens", rep.SpamModels, rep.SpamTokens)
	}
	once, err := src.OnceKeys(ctx)
	if err != nil {
		return err
	}
	if err := dst.LoadOnceKeys(ctx, once); err != nil {
		return fmt.Errorf("once keys: %w", err)
	}
	rep.OnceKeys = len(once)
	accounts, err := src.Accounts(ctx, "")
	if err != nil {
		return err
	}
	for _, a := range accounts {
		keys, err := src.ImportKeys(ctx, a.Address)
		if err != nil {
			return err
		}
		if err := dst.LoadImportKeys(ctx, a.Address, keys); err != nil {
			return fmt.Errorf("import keys of %s: %w", a.Address, err)
		}
		rep.ImportKeys += len(keys)
		trained, err := src.SpamTrainedMessages(ctx, a.Address)
		if err != nil {
			return err
		}
		if err := dst.LoadSpamTrained(ctx, a.Address, trained); err != nil {
			return fmt.Errorf("spam trainings of %s: %w", a.Address, err)
		}
		rep.SpamTrained += len(trained)
		warned, err := src.QuotaWarned(ctx, a.Address)
		if err != nil {
			return err
		}
		if warned {
			if err := dst.SetQuotaWarned(ctx, a.Address, true); err != nil {
				return err
			}
			rep.QuotaWarned++
		}
		boxes, err := src.Mailboxes(ctx, a.Address)
		if err != nil {
			return err
		}
		for _, b := range boxes {
			r, err := src.RememberedExpunges(ctx, a.Address, b.Name)
			if err != nil {
				return err
			}
			if err := dst.LoadRememberedExpunges(ctx, a.Address, b.Name, r); err != nil {
				return fmt.Errorf("remembered expunges of %s/%s: %w", a.Address, b.Name, err)
			}
			rep.Expunges += len(r.Expunges)
		}
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (dst *Store) copyAccount(ctx context.Context, src store.Store, a store.Account, rep *CopyReport, say func(string, ...any)) error {
	if err := dst.AddAccount(ctx, a); err != nil {
		return err
	}
	fwd, err := src.GetForward(ctx, a.Address)
	if err != nil {
		return err
	}
	var fwdJSON []byte
	if len(fwd.Targets) > 0 {
		fwdJSON, _ = json.Marshal(fwd)
	}
	if _, err := dst.pool.Exec(ctx, `UPDATE accounts SET created = $2, forward = $3 WHERE address = $1`, a.Address, a.Created, fwdJSON); err != nil {
		return dbError(err)
	}
	boxes, err := src.Mailboxes(ctx, a.Address)
	if err != nil {
		return err
	}
	subs, err := src.Subscriptions(ctx, a.Address)
	if err != nil {
		return err
	}
	for _, b := range boxes {
		if err := dst.copyMailbox(ctx, src, a.Address, b, rep); err != nil {
			return fmt.Errorf("mailbox %s: %w", b.Name, err)
		}
		say("%s/%s: %d messages, %d bytes", a.Address, b.Name, b.Messages, b.Size)
		rep.Mailboxes++
	}
	names := make([]string, len(boxes))
	for i, b := range boxes {
		names[i] = b.Name
	}
	err = dst.write(ctx, func(w *wtx) error {
		// A default mailbox the account had deleted goes again (it is empty).
		if _, err := w.Exec(ctx, `DELETE FROM mailboxes WHERE account = $1 AND NOT name = ANY($2)`, a.Address, names); err != nil {
			return err
		}
		if _, err := w.Exec(ctx, `DELETE FROM subscriptions WHERE account = $1`, a.Address); err != nil {
			return err
		}
		_, err := w.Exec(ctx, `INSERT INTO subscriptions (account, name) SELECT $1, unnest($2::text[])`, a.Address, subs)
		return err
	})
	if err != nil {
		return err
	}
	held, err := src.Quarantined(ctx, store.QuarantineFilter{Account: a.Address})
	if err != nil {
		return err
	}
	for _, h := range held {
		raw, err := readAllFrom(src.OpenQuarantined(ctx, h.ID))
		if err != nil {
			return fmt.Errorf("quarantine entry %s: %w", h.ID, err)
		}
		data, _ := json.Marshal(h)
		err = dst.write(ctx, func(w *wtx) error {
			blob, err := w.putBlob(ctx, nil, nil, raw)
			if err != nil {
				return err
			}
			_, err = w.Exec(ctx, `INSERT INTO quarantine (id, account, blob, arrived, size, header_size, entry) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				h.ID, a.Address, blob, nanos(h.Arrived), int64(len(raw)), int64(mailheader.HeaderSize(raw)), data)
			return err
		})
		if err != nil {
			return err
		}
		rep.Quarantine++
	}
	return nil
}

// copyMailbox copies one mailbox and its messages, in one transaction.
func (dst *Store) copyMailbox(ctx context.Context, src store.Store, account string, b store.Mailbox, rep *CopyReport) error {
	msgs, meta, err := src.Messages(ctx, account, b.Name)
	if err != nil {
		return err
	}
	var n, size int64
	err = dst.write(ctx, func(w *wtx) error {
		n, size = 0, 0
		if _, err := w.lockAccount(ctx, account); err != nil {
			return err
		}
		if _, err := getBox(ctx, w, account, meta.Name); err != nil {
			if err := createMailbox(ctx, w, account, meta.Name, meta.SpecialUse); err != nil {
				return err
			}
		}
		bx, err := getBox(ctx, w, account, meta.Name)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			raw, err := readAllFrom(src.OpenMessage(ctx, account, meta.Name, m.UID))
			if err != nil {
				return fmt.Errorf("UID %d: %w", m.UID, err)
			}
			if int64(len(raw)) != m.Size {
				return fmt.Errorf("UID %d: %d bytes read, its size is %d", m.UID, len(raw), m.Size)
			}
			blob, err := w.putBlob(ctx, store.Envelope(nil, raw), nil, raw)
			if err != nil {
				return err
			}
			flags := m.Flags
			if flags == nil {
				flags = []string{}
			}
			if _, err := w.Exec(ctx, `INSERT INTO messages (mailbox, uid, blob, size, header_size, date_ns, flags, modseq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				bx.id, int64(m.UID), blob, m.Size, m.HeaderSize, m.Date.UnixNano(), flags, int64(m.ModSeq)); err != nil {
				return err
			}
			n++
			size += m.Size
		}
		// The mailbox as it was; until copyState loads what it remembers
		// of its expunges, Expunged names every UID not there (gone_floor).
		if _, err := w.Exec(ctx, `UPDATE mailboxes SET uidvalidity = $2, uidnext = $3, messages = $4, size = $5, special_use = $6, highest_modseq = $7, first_recent = $8, gone_floor = $7 WHERE id = $1`,
			bx.id, int64(meta.UIDValidity), int64(meta.UIDNext), n, size, meta.SpecialUse, int64(meta.HighestModSeq), int64(meta.FirstRecent)); err != nil {
			return err
		}
		return w.addUsed(ctx, account, size)
	})
	if err != nil {
		return err
	}
	rep.Messages += n
	rep.Bytes += size
	return nil
}

func (dst *Store) copyQueue(ctx context.Context, src store.Store, rep *CopyReport) error {
	entries, err := src.QueueEntries(ctx)
	if err != nil {
		return err
	}
	for _, e := range entries {
		raw, _, err := src.ReadQueued(ctx, e.ID)
		if err != nil {
			return fmt.Errorf("entry %s: %w", e.ID, err)
		}
		e.LeaseHolder, e.LeaseUntil = "", time.Time{} // leases are the old process's
		err = dst.write(ctx, func(w *wtx) error {
			blob, err := w.putBlob(ctx, nil, nil, raw)
			if err != nil {
				return err
			}
			w.queued = true
			return w.putEntry(ctx, e, blob, true)
		})
		if err != nil {
			return err
		}
		rep.Queue++
	}
	return nil
}

func readAllFrom(r io.ReadCloser, _ any, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// VerifyCopy compares what Copy copied: domains (settings, DKIM keys),
// accounts (usage, quota, role, password hash, policies, forwarding,
// subscriptions), every mailbox's UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ,
// counts and sizes, every message's UID, size, flags, date and
// mod-sequence and the SHA-256 of its bytes, the queue, the quarantine
// (the SHA-256 of each held message), the stops, the SRS key, the last
// backup, and what store.Transfer lists (see verifyState). It returns the
// differences, and the number of messages and bytes compared.
func VerifyCopy(ctx context.Context, src, dst store.Store) (problems []string, messages, bytesCompared int64, err error) {
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	sd, err := src.Domains(ctx)
	if err != nil {
		return nil, 0, 0, err
	}
	dd, err := dst.Domains(ctx)
	if err != nil {
		return nil, 0, 0, err
	}
	if len(sd) != len(dd) {
		report("%d domains, %d copied", len(sd), len(dd))
	}
	sa, err := src.Accounts(ctx, "")
	if err != nil {
		return nil, 0, 0, err
	}
	for _, a := range sa {
		b, err := dst.Account(ctx, a.Address)
		if err != nil {
			report("account %s: %v", a.Address, err)
			continue
		}
		if a.Used != b.Used || a.Quota != b.Quota || a.Role != b.Role || a.PasswordHash != b.PasswordHash {
			report("account %s: usage %d, quota %d, role %s; copied %d, %d, %s (or the password hash differs)", a.Address, a.Used, a.Quota, a.Role, b.Used, b.Quota, b.Role)
		}
		boxes, err := src.Mailboxes(ctx, a.Address)
		if err != nil {
			return nil, 0, 0, err
		}
		for _, box := range boxes {
			sm, smeta, err := src.Messages(ctx, a.Address, box.Name)
			if err != nil {
				return nil, 0, 0, err
			}
			dm, dmeta, err := dst.Messages(ctx, a.Address, box.Name)
			if err != nil {
				report("%s/%s: %v", a.Address, box.Name, err)
				continue
			}
			if smeta.UIDValidity != dmeta.UIDValidity || smeta.UIDNext != dmeta.UIDNext || smeta.HighestModSeq != dmeta.HighestModSeq ||
				smeta.Messages != dmeta.Messages || smeta.Size != dmeta.Size {
				report("%s/%s: %+v, copied %+v", a.Address, box.Name, smeta, dmeta)
			}
			if len(sm) != len(dm) {
				report("%s/%s: %d messages, %d copied", a.Address, box.Name, len(sm), len(dm))
				continue
			}
			for i, m := range sm {
				c := dm[i]
				if m.UID != c.UID || m.Size != c.Size || m.HeaderSize != c.HeaderSize || !m.Date.Equal(c.Date) || m.ModSeq != c.ModSeq || !slices.Equal(m.Flags, c.Flags) {
					report("%s/%s UID %d: %+v, copied %+v", a.Address, box.Name, m.UID, m, c)
					continue
				}
				x, err := readAllFrom(src.OpenMessage(ctx, a.Address, box.Name, m.UID))
				if err != nil {
					return nil, 0, 0, err
				}
				y, err := readAllFrom(dst.OpenMessage(ctx, a.Address, box.Name, m.UID))
				if err != nil {
					report("%s/%s UID %d: %v", a.Address, box.Name, m.UID, err)
					continue
				}
				if sha256.Sum256(x) != sha256.Sum256(y) || !bytes.Equal(x, y) {
					report("%s/%s UID %d: the copied bytes differ (SHA-256)", a.Address, box.Name, m.UID)
				}
				messages++
				bytesCompared += int64(len(x))
			}
		}
		sq, err := src.Quarantined(ctx, store.QuarantineFilter{Account: a.Address})
		if err != nil {
			return nil, 0, 0, err
		}
		dq, err := dst.Quarantined(ctx, store.QuarantineFilter{Account: a.Address})
		if err != nil {
			return nil, 0, 0, err
		}
		if len(sq) != len(dq) {
			report("%s: %d held in the quarantine, %d copied", a.Address, len(sq), len(dq))
		} else {
			for i, h := range sq {
				x, err := readAllFrom(src.OpenQuarantined(ctx, h.ID))
				if err != nil {
					return nil, 0, 0, err
				}
				y, err := readAllFrom(dst.OpenQuarantined(ctx, dq[i].ID))
				if err != nil {
					report("%s: quarantine entry %s: %v", a.Address, h.ID, err)
					continue
				}
				if h.ID != dq[i].ID || sha256.Sum256(x) != sha256.Sum256(y) {
					report("%s: quarantine entry %s: copied as %s, or its bytes differ (SHA-256)", a.Address, h.ID, dq[i].ID)
				}
			}
		}
	}
	if err := verifyState(ctx, src, dst, sd, sa, report); err != nil {
		return nil, 0, 0, err
	}
	sq, err := src.QueueEntries(ctx)
	if err != nil {
		return nil, 0, 0, err
	}
	dq, err := dst.QueueEntries(ctx)
	if err != nil {
		return nil, 0, 0, err
	}
	if len(sq) != len(dq) {
		report("%d queue entries, %d copied", len(sq), len(dq))
	}
	return problems, messages, bytesCompared, nil
}

// verifyState compares what Copy copies besides mail: each domain's
// settings and DKIM keys; each account's policies, forwarding,
// subscriptions, import keys (count and SHA-256), trained messages, quota
// warning and each mailbox's remembered expunges; the spam models (totals,
// and the SHA-256 of every token's counts and day); the once keys; the
// stops; the SRS key; the last backup.
func verifyState(ctx context.Context, src, dst store.Store, domains []store.Domain, accounts []store.Account, report func(string, ...any)) error {
	same := func(what string, x, y any) {
		a, _ := json.Marshal(x)
		b, _ := json.Marshal(y)
		// No list and an empty list are the same.
		if string(a) == "null" {
			a = []byte("[]")
		}
		if string(b) == "null" {
			b = []byte("[]")
		}
		if !bytes.Equal(a, b) {
			report("%s: %s, copied %s", what, a, b)
		}
	}
	// Each read on both sides; an error on the copy's is a difference.
	both := func(what string, read func(s store.Store) (any, error)) error {
		x, err := read(src)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		y, err := read(dst)
		if err != nil {
			report("%s: %v", what, err)
			return nil
		}
		same(what, x, y)
		return nil
	}
	type check struct {
		what string
		read func(s store.Store) (any, error)
	}
	var checks []check
	for _, d := range domains {
		checks = append(checks,
			check{d.Name + ": settings", func(s store.Store) (any, error) { return s.DomainSettings(ctx, d.Name) }},
			check{d.Name + ": DKIM keys", func(s store.Store) (any, error) { return s.DKIMKeys(ctx, d.Name) }})
	}
	for _, a := range accounts {
		addr := a.Address
		boxes, err := src.Mailboxes(ctx, addr)
		if err != nil {
			return err
		}
		checks = append(checks,
			check{addr + ": scan and spam policies", func(s store.Store) (any, error) {
				x, err := s.Account(ctx, addr)
				return []any{x.Scan, x.Spam}, err
			}},
			check{addr + ": forwarding", func(s store.Store) (any, error) { return s.GetForward(ctx, addr) }},
			check{addr + ": subscriptions", func(s store.Store) (any, error) { return s.Subscriptions(ctx, addr) }},
			check{addr + ": import keys (count, SHA-256)", func(s store.Store) (any, error) {
				keys, err := s.ImportKeys(ctx, addr)
				h := sha256.New()
				for _, k := range keys {
					h.Write(append([]byte(k), 0))
				}
				return []any{len(keys), h.Sum(nil)}, err
			}},
			check{addr + ": messages trained as spam or ham", func(s store.Store) (any, error) { return s.SpamTrainedMessages(ctx, addr) }},
			check{addr + ": quota warning given", func(s store.Store) (any, error) { return s.QuotaWarned(ctx, addr) }})
		for _, b := range boxes {
			checks = append(checks, check{addr + "/" + b.Name + ": remembered expunges", func(s store.Store) (any, error) {
				return s.RememberedExpunges(ctx, addr, b.Name)
			}})
		}
	}
	owners, err := src.SpamOwners(ctx)
	if err != nil {
		return err
	}
	checks = append(checks, check{"owners of spam models", func(s store.Store) (any, error) { return s.SpamOwners(ctx) }})
	for _, o := range owners {
		checks = append(checks, check{"spam model of " + o + " (totals, tokens, SHA-256)", func(s store.Store) (any, error) {
			h := sha256.New()
			n := 0
			tot, err := s.SpamModel(ctx, o, func(t store.SpamToken) error {
				fmt.Fprintf(h, "%q %d %d %d\n", t.Token, t.Spam, t.Ham, t.Day)
				n++
				return nil
			})
			return []any{tot, n, h.Sum(nil)}, err
		}})
	}
	checks = append(checks,
		check{"once keys", func(s store.Store) (any, error) { return s.OnceKeys(ctx) }},
		check{"stops", func(s store.Store) (any, error) {
			return s.Stops(ctx, time.Unix(0, 0), time.Unix(0, 1<<62), "")
		}},
		check{"SRS key (SHA-256)", func(s store.Store) (any, error) {
			k, err := s.SRSSecret(ctx)
			h := sha256.Sum256(k)
			return h[:], err
		}},
		check{"last backup", func(s store.Store) (any, error) { return s.LastBackup(ctx) }})
	for _, c := range checks {
		if err := both(c.what, c.read); err != nil {
			return err
		}
	}
	return nil
}
