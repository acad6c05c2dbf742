package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"yubin/store"
)

// The spam models: spam_models holds each owner's totals (its row lock
// serialises the trainings of a model across nodes), spam_tokens the
// counts and the day each token was last trained, spam_trained what a
// stored message (its blob, shared by its copies) was trained as per
// account. The rules are bolt's: see store/bolt/spam.go.

// day is t as days since the Unix epoch.
func day(t time.Time) int64 {
	if t.Unix() < 0 {
		return 0
	}
	return t.Unix() / 86400
}

func clamp32(v int64) uint32 { return uint32(min(max(v, 0), 1<<32-1)) }

// SpamTotals returns what owner's model was trained with.
func (s *Store) SpamTotals(ctx context.Context, owner string) (store.SpamTotals, error) {
	var t store.SpamTotals
	err := s.pool.QueryRow(ctx, `SELECT spam, ham, tokens FROM spam_models WHERE owner = $1`, lower(owner)).Scan(&t.Spam, &t.Ham, &t.Tokens)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, nil
	}
	return t, dbError(err)
}

// SpamCounts returns owner's totals and the counts of tokens.
func (s *Store) SpamCounts(ctx context.Context, owner string, tokens []string) (store.SpamTotals, []store.SpamCount, error) {
	counts := make([]store.SpamCount, len(tokens))
	var t store.SpamTotals
	err := s.read(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT spam, ham, tokens FROM spam_models WHERE owner = $1`, lower(owner)).Scan(&t.Spam, &t.Ham, &t.Tokens)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT token, spam, ham FROM spam_tokens WHERE owner = $1 AND token = ANY($2)`, lower(owner), tokens)
		if err != nil {
			return err
		}
		found := map[string]store.SpamCount{}
		var tok string
		var sp, hm int64
		_, err = pgx.ForEachRow(rows, []any{&tok, &sp, &hm}, func() error {
			found[tok] = store.SpamCount{Spam: clamp32(sp), Ham: clamp32(hm)}
			return nil
		})
		for i, tk := range tokens {
			counts[i] = found[tk]
		}
		return err
	})
	return t, counts, err
}

// trainedClass says what a stored message was trained as, and its blob.
func trainedClass(ctx context.Context, tx querier, ref store.MessageRef) (store.SpamClass, int64, error) {
	m, err := getMsg(ctx, tx, ref.Account, ref.Mailbox, ref.UID)
	if err != nil {
		return store.NotTrained, 0, err
	}
	var c int16
	err = tx.QueryRow(ctx, `SELECT class FROM spam_trained WHERE account = $1 AND blob = $2`, lower(ref.Account), m.blob).Scan(&c)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.NotTrained, m.blob, nil
	}
	return store.SpamClass(c), m.blob, err
}

// SpamTrained says what a stored message was trained as.
func (s *Store) SpamTrained(ctx context.Context, ref store.MessageRef) (store.SpamClass, error) {
	var c store.SpamClass
	err := s.read(ctx, func(tx pgx.Tx) error {
		var err error
		c, _, err = trainedClass(ctx, tx, ref)
		return err
	})
	return c, err
}

// TrainSpam changes the owners' models in one transaction.
func (s *Store) TrainSpam(ctx context.Context, t store.SpamTraining) (bool, error) {
	if err := t.Validate(); err != nil {
		return false, err
	}
	changed, err := s.trainBatch(ctx, []store.SpamTraining{t}, false)
	if err != nil {
		return false, err
	}
	return changed[0], nil
}

// TrainSpamBatch does trainings in one transaction, in order.
func (s *Store) TrainSpamBatch(ctx context.Context, ts []store.SpamTraining) ([]bool, error) {
	if len(ts) > store.MaxSpamBatch {
		return nil, fmt.Errorf("%w: %d trainings in one batch, at most %d", store.ErrInvalid, len(ts), store.MaxSpamBatch)
	}
	for i, t := range ts {
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("training %d of the batch: %w", i+1, err)
		}
	}
	return s.trainBatch(ctx, ts, true)
}

func (s *Store) trainBatch(ctx context.Context, ts []store.SpamTraining, skipGone bool) ([]bool, error) {
	tokens := make([][]string, len(ts))
	for i, t := range ts {
		tokens[i] = t.DistinctTokens()
	}
	changed := make([]bool, len(ts))
	// Most repeated trainings (messages read again) change nothing: when
	// none would, find out without a write.
	write := false
	err := s.read(ctx, func(tx pgx.Tx) error {
		for _, t := range ts {
			if t.Message == nil {
				write = true
				return nil
			}
			prev, _, err := trainedClass(ctx, tx, *t.Message)
			if store.Gone(err) && skipGone {
				continue
			}
			if err != nil {
				return err
			}
			if prev != t.Class {
				write = true
				return nil
			}
		}
		return nil
	})
	if err != nil || !write {
		return changed, err
	}
	err = s.write(ctx, func(w *wtx) error {
		clear(changed)
		sw := &spamWrite{w: w, today: day(s.now()), models: map[string]*modelWrite{}}
		for i, t := range ts {
			c, err := sw.train(ctx, t, tokens[i])
			if store.Gone(err) && skipGone {
				continue // nothing of it was done
			}
			if err != nil {
				return err
			}
			changed[i] = c
		}
		return sw.flush(ctx)
	})
	if err != nil {
		return nil, err
	}
	return changed, nil
}

// spamWrite is the trainings of one transaction, kept in memory and
// written once at flush.
type spamWrite struct {
	w      *wtx
	today  int64
	models map[string]*modelWrite
}

type modelWrite struct {
	owner string
	// fresh: the model holds no token in the database (nothing to load).
	fresh  bool
	tot    store.SpamTotals
	tokens map[string]*tokenWrite
}

type tokenWrite struct {
	spam, ham, day int64
	kept, dirty    bool
}

// model returns owner's model, created if new, its row locked.
func (sw *spamWrite) model(ctx context.Context, owner string) (*modelWrite, error) {
	owner = lower(owner)
	if m := sw.models[owner]; m != nil {
		return m, nil
	}
	if _, err := sw.w.Exec(ctx, `INSERT INTO spam_models (owner, spam, ham, tokens) VALUES ($1, 0, 0, 0) ON CONFLICT DO NOTHING`, owner); err != nil {
		return nil, err
	}
	m := &modelWrite{owner: owner, tokens: map[string]*tokenWrite{}}
	if err := sw.w.QueryRow(ctx, `SELECT spam, ham, tokens FROM spam_models WHERE owner = $1 FOR UPDATE`, owner).Scan(&m.tot.Spam, &m.tot.Ham, &m.tot.Tokens); err != nil {
		return nil, err
	}
	m.fresh = m.tot.Tokens == 0
	sw.models[owner] = m
	return m, nil
}

func (sw *spamWrite) train(ctx context.Context, t store.SpamTraining, tokens []string) (bool, error) {
	prev := store.NotTrained
	var blob int64
	if t.Message != nil {
		var err error
		if prev, blob, err = trainedClass(ctx, sw.w, *t.Message); err != nil {
			return false, err
		}
		if prev == t.Class {
			return false, nil
		}
	}
	for _, owner := range t.Owners {
		m, err := sw.model(ctx, owner)
		if err != nil {
			return false, err
		}
		if err := m.load(ctx, sw.w, tokens); err != nil {
			return false, err
		}
		if prev != store.NotTrained {
			m.count(tokens, prev, -1, sw.today, true)
		}
		if t.Class != store.NotTrained {
			m.count(tokens, t.Class, 1, sw.today, !t.TokensOnly)
		}
		if m.tot.Tokens > store.MaxSpamTokens+store.MaxSpamTokens/10 {
			if err := m.flushTokens(ctx, sw.w); err != nil {
				return false, err
			}
			n, err := m.shrink(ctx, sw.w, m.tot.Tokens-store.MaxSpamTokens*9/10)
			if err != nil {
				return false, err
			}
			m.tot.Tokens -= n
		}
	}
	if t.Message != nil {
		acct := lower(t.Message.Account)
		var err error
		if t.Class == store.NotTrained {
			_, err = sw.w.Exec(ctx, `DELETE FROM spam_trained WHERE account = $1 AND blob = $2`, acct, blob)
		} else {
			_, err = sw.w.Exec(ctx, `INSERT INTO spam_trained (account, blob, class) VALUES ($1, $2, $3)
				ON CONFLICT (account, blob) DO UPDATE SET class = excluded.class`, acct, blob, int16(t.Class))
		}
		if err != nil {
			return false, err
		}
	}
	return true, nil
}

// load reads the tokens of a model not read yet.
func (m *modelWrite) load(ctx context.Context, w *wtx, tokens []string) error {
	var need []string
	for _, t := range tokens {
		if _, ok := m.tokens[t]; !ok {
			need = append(need, t)
		}
	}
	if len(need) == 0 {
		return nil
	}
	for _, t := range need {
		m.tokens[t] = &tokenWrite{}
	}
	if m.fresh {
		return nil
	}
	rows, err := w.Query(ctx, `SELECT token, spam, ham, seen FROM spam_tokens WHERE owner = $1 AND token = ANY($2)`, m.owner, need)
	if err != nil {
		return err
	}
	var tok string
	var sp, hm, dy int64
	_, err = pgx.ForEachRow(rows, []any{&tok, &sp, &hm, &dy}, func() error {
		m.tokens[tok] = &tokenWrite{spam: sp, ham: hm, day: dy, kept: true}
		return nil
	})
	return err
}

// count adds delta (1 or -1) to the counts of tokens in class, and, for a
// message (not SpamTraining.TokensOnly), to the model's message total;
// counts never go below zero, and a token counted nowhere any more is
// dropped.
func (m *modelWrite) count(tokens []string, class store.SpamClass, delta int, today int64, message bool) {
	bump := func(v *int64) {
		if delta > 0 {
			*v++
		} else if *v > 0 {
			*v--
		}
	}
	if message {
		if class == store.Spam {
			m.tot.Spam = max(m.tot.Spam+int64(delta), 0)
		} else {
			m.tot.Ham = max(m.tot.Ham+int64(delta), 0)
		}
	}
	for _, tok := range tokens {
		t := m.tokens[tok]
		if !t.kept {
			if delta < 0 {
				continue
			}
			t.spam, t.ham, t.day, t.kept = 0, 0, 0, true
			m.tot.Tokens++
		}
		if class == store.Spam {
			bump(&t.spam)
		} else {
			bump(&t.ham)
		}
		if delta > 0 {
			t.day = today
		}
		t.dirty = true
		if t.spam == 0 && t.ham == 0 {
			t.kept = false
			m.tot.Tokens--
		}
	}
}

// flushTokens writes the tokens changed, and forgets those read.
func (m *modelWrite) flushTokens(ctx context.Context, w *wtx) error {
	var put, del []string
	var sp, hm, dy []int64
	for k, t := range m.tokens {
		switch {
		case !t.dirty:
		case t.kept:
			put = append(put, k)
			sp, hm, dy = append(sp, t.spam), append(hm, t.ham), append(dy, t.day)
		default:
			del = append(del, k)
		}
	}
	if len(put) > 0 {
		if _, err := w.Exec(ctx, `INSERT INTO spam_tokens (owner, token, spam, ham, seen) SELECT $1, t, s, h, d FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) AS x(t, s, h, d)
			ON CONFLICT (owner, token) DO UPDATE SET spam = excluded.spam, ham = excluded.ham, seen = excluded.seen`, m.owner, put, sp, hm, dy); err != nil {
			return err
		}
	}
	if len(del) > 0 {
		if _, err := w.Exec(ctx, `DELETE FROM spam_tokens WHERE owner = $1 AND token = ANY($2)`, m.owner, del); err != nil {
			return err
		}
	}
	clear(m.tokens)
	m.fresh = false
	return nil
}

// shrink drops n tokens: those seen in the fewest messages, and of those
// the ones trained longest ago (ties: token order).
func (m *modelWrite) shrink(ctx context.Context, w *wtx, n int64) (int64, error) {
	tag, err := w.Exec(ctx, `DELETE FROM spam_tokens WHERE owner = $1 AND token IN (
		SELECT token FROM spam_tokens WHERE owner = $1 ORDER BY spam + ham, seen, token LIMIT $2)`, m.owner, n)
	return tag.RowsAffected(), err
}

func (sw *spamWrite) flush(ctx context.Context) error {
	for _, owner := range sortedKeys(sw.models) {
		m := sw.models[owner]
		if err := m.flushTokens(ctx, sw.w); err != nil {
			return err
		}
		if _, err := sw.w.Exec(ctx, `UPDATE spam_models SET spam = $2, ham = $3, tokens = $4 WHERE owner = $1`, owner, m.tot.Spam, m.tot.Ham, m.tot.Tokens); err != nil {
			return err
		}
	}
	return nil
}

// PruneSpamModels drops, from every model, the tokens last trained before
// notSeenSince.
func (s *Store) PruneSpamModels(ctx context.Context, notSeenSince time.Time) (int, error) {
	n := 0
	err := s.write(ctx, func(w *wtx) error {
		// The models locked, as trainings lock them.
		if _, err := w.Exec(ctx, `SELECT owner FROM spam_models ORDER BY owner FOR UPDATE`); err != nil {
			return err
		}
		rows, err := w.Query(ctx, `WITH d AS (DELETE FROM spam_tokens WHERE seen < $1 RETURNING owner)
			SELECT owner, count(*) FROM d GROUP BY owner ORDER BY owner`, day(notSeenSince))
		if err != nil {
			return err
		}
		type c struct {
			owner string
			n     int64
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (c, error) {
			var x c
			return x, r.Scan(&x.owner, &x.n)
		})
		if err != nil {
			return err
		}
		n = 0
		for _, x := range got {
			if _, err := w.Exec(ctx, `UPDATE spam_models SET tokens = greatest(tokens - $2, 0) WHERE owner = $1`, x.owner, x.n); err != nil {
				return err
			}
			n += int(x.n)
		}
		return nil
	})
	return n, err
}
