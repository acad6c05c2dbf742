package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Verify checks the store's invariants in one snapshot and returns what
// is wrong: usage = sum of sizes, mailbox counters, UIDs below UIDNEXT,
// mod-sequences, blobs whole and referenced.
func (s *Store) Verify(ctx context.Context) ([]string, error) {
	var out []string
	err := s.read(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = verifyIn(ctx, tx)
		return err
	})
	return out, err
}

// verifyChecks are Verify's queries: each row one problem.
var verifyChecks = []struct {
	what string
	sql  string
}{
	{"account usage is not the sum of its messages' sizes", `
			SELECT a.address || ': usage ' || a.used || ', messages add up to ' || coalesce(sum(m.size), 0)
			FROM accounts a LEFT JOIN mailboxes b ON b.account = a.address LEFT JOIN messages m ON m.mailbox = b.id
			GROUP BY a.address, a.used HAVING a.used <> coalesce(sum(m.size), 0)`},
	{"mailbox counters", `
			SELECT b.account || '/' || b.name || ': counters say ' || b.messages || ' messages of ' || b.size || ' bytes, it holds ' || count(m.uid) || ' of ' || coalesce(sum(m.size), 0)
			FROM mailboxes b LEFT JOIN messages m ON m.mailbox = b.id
			GROUP BY b.id HAVING b.messages <> count(m.uid) OR b.size <> coalesce(sum(m.size), 0)`},
	{"UIDs and mod-sequences", `
			SELECT b.account || '/' || b.name || ': UIDNEXT ' || b.uidnext || ', HIGHESTMODSEQ ' || b.highest_modseq || ', FirstRecent ' || b.first_recent || '; highest UID ' || coalesce(max(m.uid), 0) || ', highest ModSeq ' || coalesce(max(m.modseq), 0)
			FROM mailboxes b LEFT JOIN messages m ON m.mailbox = b.id
			GROUP BY b.id HAVING coalesce(max(m.uid), 0) >= b.uidnext OR coalesce(max(m.modseq), 0) > b.highest_modseq OR b.highest_modseq < 1 OR b.first_recent > b.uidnext OR b.first_recent < 1
				OR coalesce(min(m.modseq), 1) < 1 OR coalesce(min(m.uid), 1) < 1`},
	{"expunges", `
			SELECT b.account || '/' || b.name || ': expunge of UID ' || e.uid || ' at ' || e.modseq || ' (UIDNEXT ' || b.uidnext || ', HIGHESTMODSEQ ' || b.highest_modseq || ')'
			FROM expunged e JOIN mailboxes b ON b.id = e.mailbox
			WHERE e.uid >= b.uidnext OR e.modseq > b.highest_modseq OR e.modseq <= b.gone_floor
				OR EXISTS (SELECT 1 FROM messages m WHERE m.mailbox = b.id AND m.uid = e.uid)`},
	{"blobs", `
			SELECT 'blob ' || b.id || ': size ' || b.size || ', its chunks hold ' || coalesce(sum(length(c.data)), 0)
			FROM blobs b LEFT JOIN chunks c ON c.blob = b.id GROUP BY b.id HAVING b.size <> coalesce(sum(length(c.data)), 0)`},
	{"message sizes", `
			SELECT 'message ' || m.uid || ' of mailbox ' || m.mailbox || ': size ' || m.size || ', its blob ' || b.size
			FROM messages m JOIN blobs b ON b.id = m.blob WHERE m.size <> b.size`},
	{"unreferenced blobs", `
			SELECT 'blob ' || b.id || ' (' || b.size || ' bytes) is referred to by nothing'
			FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob = b.id)
				AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.blob = b.id)
				AND NOT EXISTS (SELECT 1 FROM quarantine h WHERE h.blob = b.id)`},
	{"queue", `
			SELECT 'queue entry ' || q.id || ': size ' || (q.entry->>'size') || ', its blob ' || b.size
			FROM queue q JOIN blobs b ON b.id = q.blob WHERE (q.entry->>'size')::bigint <> b.size OR q.entry->>'id' <> q.id`},
}

// verifyIn runs the checks of Verify in tx (a restore's, before it
// commits).
func verifyIn(ctx context.Context, tx pgx.Tx) ([]string, error) {
	var out []string
	for _, c := range verifyChecks {
		found, err := strings1(ctx, tx, c.sql)
		if err != nil {
			return nil, fmt.Errorf("verify (%s): %w", c.what, err)
		}
		out = append(out, found...)
	}
	return out, nil
}
