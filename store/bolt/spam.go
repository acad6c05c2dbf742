package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"yubin/store"

	bbolt "go.etcd.io/bbolt"
)

// The spam models:
//
//	spam/<owner>/totals      spam and ham messages trained, tokens kept
//	spam/<owner>/t/<token>   uvarint spam count, ham count, day last trained
//	spamtrained/<blob><account>  the class a stored message was trained as
var (
	bSpam        = []byte("spam")
	bSpamTrained = []byte("spamtrained")
	bTokens      = []byte("t")
	kTotals      = []byte("totals")
)

// SetSpamPolicy replaces an account's spam filter policy.
func (s *Store) SetSpamPolicy(ctx context.Context, addr string, p store.SpamPolicy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	return s.updateAccount(ctx, addr, func(a *store.Account) error { a.Spam = p; return nil })
}

// day is t as days since the Unix epoch: when a token was last trained.
func day(t time.Time) uint64 {
	if t.Unix() < 0 {
		return 0
	}
	return uint64(t.Unix() / 86400)
}

type tokenValue struct {
	spam, ham, day uint64
}

func decodeToken(v []byte) (tokenValue, bool) {
	var t tokenValue
	var n int
	if t.spam, n = binary.Uvarint(v); n <= 0 {
		return t, false
	}
	v = v[n:]
	if t.ham, n = binary.Uvarint(v); n <= 0 {
		return t, false
	}
	v = v[n:]
	if t.day, n = binary.Uvarint(v); n <= 0 {
		return t, false
	}
	return t, true
}

func (t tokenValue) encode() []byte {
	b := make([]byte, 0, 12)
	b = binary.AppendUvarint(b, t.spam)
	b = binary.AppendUvarint(b, t.ham)
	return binary.AppendUvarint(b, t.day)
}

func getTotals(ob *bbolt.Bucket) store.SpamTotals {
	var t store.SpamTotals
	if ob == nil {
		return t
	}
	v := ob.Get(kTotals)
	for _, f := range []*int64{&t.Spam, &t.Ham, &t.Tokens} {
		x, n := binary.Varint(v)
		if n <= 0 {
			return t
		}
		*f, v = x, v[n:]
	}
	return t
}

func putTotals(ob *bbolt.Bucket, t store.SpamTotals) error {
	b := binary.AppendVarint(nil, t.Spam)
	b = binary.AppendVarint(b, t.Ham)
	return ob.Put(kTotals, binary.AppendVarint(b, t.Tokens))
}

func ownerKey(owner string) []byte { return []byte(strings.ToLower(owner)) }

func spamOwner(tx *bbolt.Tx, owner string) *bbolt.Bucket {
	b := tx.Bucket(bSpam)
	if b == nil {
		return nil
	}
	return b.Bucket(ownerKey(owner))
}

// SpamTotals returns what owner's model was trained with.
func (s *Store) SpamTotals(ctx context.Context, owner string) (store.SpamTotals, error) {
	if t, ok := s.spam.totals(string(ownerKey(owner))); ok {
		return t, nil
	}
	var t store.SpamTotals
	err := s.view(func(tx *bbolt.Tx) error {
		t = getTotals(spamOwner(tx, owner))
		return nil
	})
	return t, err
}

// SpamCounts returns owner's totals and the counts of tokens.
// A model read often is read from memory (spamcache.go).
func (s *Store) SpamCounts(ctx context.Context, owner string, tokens []string) (store.SpamTotals, []store.SpamCount, error) {
	key := string(ownerKey(owner))
	counts := make([]store.SpamCount, len(tokens))
	if t, ok := s.spam.counts(key, tokens, counts); ok {
		return t, counts, nil
	}
	t, found, err := s.readSpamCounts(owner, tokens, counts)
	if err == nil && found {
		s.spam.read(s, key, t.Tokens)
	}
	return t, counts, err
}

// readSpamCounts reads owner's totals and the counts of tokens from bbolt;
// found is whether the model exists.
func (s *Store) readSpamCounts(owner string, tokens []string, counts []store.SpamCount) (t store.SpamTotals, found bool, err error) {
	err = s.view(func(tx *bbolt.Tx) error {
		ob := spamOwner(tx, owner)
		if ob == nil {
			return nil
		}
		found = true
		t = getTotals(ob)
		if tb := ob.Bucket(bTokens); tb != nil {
			lookUpTokens(tb.Cursor(), tokens, counts)
		}
		return nil
	})
	return t, found, err
}

// lookUpTokens sets counts[i] to the count of tokens[i] in the bucket c
// walks, with one cursor. Tokens come sorted (spam.Tokenize's), mostly:
// then where a search for a token lands says what the next ones are
// without searching the tree again when they come before it (absent) or
// are it. (Stepping the cursor on to the next token instead of searching
// again costs more: in a model of 100,000 tokens, the next one of a
// message's 1,000 is rarely a few keys further.)
func lookUpTokens(c *bbolt.Cursor, tokens []string, counts []store.SpamCount) {
	var k, v []byte
	for i, tok := range tokens {
		// k is the first key from tokens[i-1] on.
		if i == 0 || tok <= tokens[i-1] || k != nil && string(k) < tok {
			k, v = c.Seek([]byte(tok))
		}
		if k != nil && string(k) == tok {
			if tv, ok := decodeToken(v); ok {
				counts[i] = store.SpamCount{Spam: clamp32(tv.spam), Ham: clamp32(tv.ham)}
			}
		}
	}
}

func clamp32(v uint64) uint32 { return uint32(min(v, 1<<32-1)) }

// trainedKey is the key of a stored message's training state: its blob
// (shared by its copies) and the account.
func trainedKey(blob uint64, account string) []byte {
	return append(u64key(blob), strings.ToLower(account)...)
}

// messageBlob finds the blob of a stored message.
func messageBlob(tx *bbolt.Tx, ref store.MessageRef) (uint64, error) {
	b, _, err := mailboxBucket(tx, ref.Account, ref.Mailbox)
	if err != nil {
		return 0, err
	}
	v := b.Bucket(bMsgs).Get(u32key(ref.UID))
	if v == nil {
		return 0, fmt.Errorf("uid %d in %s of %s: %w", ref.UID, ref.Mailbox, ref.Account, store.ErrNoSuchMessage)
	}
	m, err := decodeRecord(ref.UID, v)
	return m.blob, err
}

func trainedClass(tx *bbolt.Tx, ref store.MessageRef) (store.SpamClass, []byte, error) {
	blob, err := messageBlob(tx, ref)
	if err != nil {
		return store.NotTrained, nil, err
	}
	key := trainedKey(blob, ref.Account)
	if b := tx.Bucket(bSpamTrained); b != nil {
		if v := b.Get(key); len(v) == 1 {
			return store.SpamClass(v[0]), key, nil
		}
	}
	return store.NotTrained, key, nil
}

// SpamTrained says what a stored message was trained as.
func (s *Store) SpamTrained(ctx context.Context, ref store.MessageRef) (store.SpamClass, error) {
	var c store.SpamClass
	err := s.viewFresh(func(tx *bbolt.Tx) error {
		var err error
		c, _, err = trainedClass(tx, ref)
		return err
	})
	return c, err
}

// TrainSpam changes the owners' models in one transaction (see
// store.SpamTraining).
func (s *Store) TrainSpam(ctx context.Context, t store.SpamTraining) (bool, error) {
	if err := t.Validate(); err != nil {
		return false, err
	}
	tokens := t.DistinctTokens()
	if t.Message != nil {
		// Most repeated trainings (a message read again) change nothing:
		// find out without a write.
		same := false
		err := s.viewFresh(func(tx *bbolt.Tx) error {
			prev, _, err := trainedClass(tx, *t.Message)
			same = prev == t.Class
			return err
		})
		if err != nil || same {
			return false, err
		}
	}
	changed := false
	err := s.groupWrite(ctx, func(tx *bbolt.Tx) error {
		w := newSpamWrite(tx, day(s.now()), s.spam)
		var err error
		if changed, err = w.train(t, tokens); err != nil {
			return err
		}
		return w.flush()
	}, nil)
	if err != nil {
		return false, err
	}
	return changed, nil
}

// TrainSpamBatch does trainings in one transaction, in order (see
// store.SpamModel).
func (s *Store) TrainSpamBatch(ctx context.Context, ts []store.SpamTraining) ([]bool, error) {
	if len(ts) > store.MaxSpamBatch {
		return nil, fmt.Errorf("%w: %d trainings in one batch, at most %d", store.ErrInvalid, len(ts), store.MaxSpamBatch)
	}
	tokens := make([][]string, len(ts))
	for i, t := range ts {
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("training %d of the batch: %w", i+1, err)
		}
		tokens[i] = t.DistinctTokens()
	}
	changed := make([]bool, len(ts))
	// Most repeated trainings (messages read again) change nothing: when
	// none of the batch would, find out without a write.
	write := false
	err := s.viewFresh(func(tx *bbolt.Tx) error {
		for _, t := range ts {
			if t.Message == nil {
				write = true
				return nil
			}
			prev, _, err := trainedClass(tx, *t.Message)
			if store.Gone(err) {
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
	err = s.groupWrite(ctx, func(tx *bbolt.Tx) error {
		clear(changed)
		w := newSpamWrite(tx, day(s.now()), s.spam)
		for i, t := range ts {
			c, err := w.train(t, tokens[i])
			if store.Gone(err) {
				continue // nothing of it was done
			}
			if err != nil {
				return err
			}
			changed[i] = c
		}
		return w.flush()
	}, nil)
	if err != nil {
		return nil, err
	}
	return changed, nil
}

// spamWrite is the trainings of one transaction. What they change in the
// models' token counts and totals is kept in memory and written once, at
// flush: a token that many messages of a batch share is read and written
// once, not once a message.
type spamWrite struct {
	tx     *bbolt.Tx
	today  uint64 // the day tokens are trained on
	models map[string]*modelWrite
	cache  *spamCache // told what changed, on commit
}

// modelWrite is one owner's model as the transaction's trainings left it.
type modelWrite struct {
	ob, tb *bbolt.Bucket
	tot    store.SpamTotals
	tokens map[string]*tokenWrite // tokens read so far, changed or not
	// What the cache is told on commit: the tokens written (when it
	// holds the model), or that the model is to be read again.
	change spamChange
}

// tokenWrite is one token of a model: its counts, whether the model
// keeps it, and whether flush must write it.
type tokenWrite struct {
	v     tokenValue
	kept  bool
	dirty bool
}

func newSpamWrite(tx *bbolt.Tx, today uint64, cache *spamCache) *spamWrite {
	return &spamWrite{tx: tx, today: today, models: map[string]*modelWrite{}, cache: cache}
}

// model returns owner's model, created if it is new.
func (w *spamWrite) model(owner string) (*modelWrite, error) {
	key := ownerKey(owner)
	if m := w.models[string(key)]; m != nil {
		return m, nil
	}
	root, err := w.tx.CreateBucketIfNotExists(bSpam)
	if err != nil {
		return nil, err
	}
	ob, err := root.CreateBucketIfNotExists(key)
	if err != nil {
		return nil, err
	}
	tb, err := ob.CreateBucketIfNotExists(bTokens)
	if err != nil {
		return nil, err
	}
	m := &modelWrite{ob: ob, tb: tb, tot: getTotals(ob), tokens: map[string]*tokenWrite{}}
	// Token by token if the cache holds the model now (if it starts
	// loading it before the commit, this transaction's change is a drop).
	m.change = spamChange{txid: w.tx.ID(), drop: !w.cache.tracked(string(key))}
	w.models[string(key)] = m
	return m, nil
}

// train does one training: tokens are t's (trainTokens). It reports
// whether anything changed. A message that is not there fails clean,
// with nothing done.
func (w *spamWrite) train(t store.SpamTraining, tokens []string) (bool, error) {
	prev := store.NotTrained
	var key []byte
	if t.Message != nil {
		var err error
		if prev, key, err = trainedClass(w.tx, *t.Message); err != nil {
			return false, clean(err)
		}
		if prev == t.Class {
			return false, nil
		}
	}
	for _, owner := range t.Owners {
		m, err := w.model(owner)
		if err != nil {
			return false, err
		}
		if prev != store.NotTrained {
			m.count(tokens, prev, -1, w.today, true)
		}
		if t.Class != store.NotTrained {
			m.count(tokens, t.Class, 1, w.today, !t.TokensOnly)
		}
		if m.tot.Tokens > store.MaxSpamTokens+store.MaxSpamTokens/10 {
			if err := m.flushTokens(); err != nil {
				return false, err
			}
			n, err := shrink(m.tb, int(m.tot.Tokens-store.MaxSpamTokens*9/10))
			if err != nil {
				return false, err
			}
			m.tot.Tokens -= int64(n)
			m.change.drop = true
		}
	}
	if key != nil {
		tb, err := w.tx.CreateBucketIfNotExists(bSpamTrained)
		if err != nil {
			return false, err
		}
		if t.Class == store.NotTrained {
			err = tb.Delete(key)
		} else {
			err = tb.Put(key, []byte{byte(t.Class)})
		}
		if err != nil {
			return false, err
		}
	}
	return true, nil
}

// flush writes what the trainings changed in the models, and has the
// cache told on commit.
func (w *spamWrite) flush() error {
	for owner, m := range w.models {
		if err := m.flushTokens(); err != nil {
			return err
		}
		if err := putTotals(m.ob, m.tot); err != nil {
			return err
		}
		ch := m.change
		ch.totals = m.tot
		if ch.drop {
			ch.tokens = nil
		}
		w.tx.OnCommit(func() { w.cache.committed(owner, ch) })
	}
	return nil
}

// count adds delta (1 or -1) to the counts of tokens in class, and, for a
// message (not SpamTraining.TokensOnly), to the model's message total;
// counts never go below zero, and a token counted nowhere any more is
// dropped.
func (m *modelWrite) count(tokens []string, class store.SpamClass, delta int, today uint64, message bool) {
	bump := func(v *uint64) {
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
		if t == nil {
			v, ok := decodeToken(m.tb.Get([]byte(tok)))
			t = &tokenWrite{v: v, kept: ok}
			m.tokens[tok] = t
		}
		if !t.kept {
			if delta < 0 {
				continue
			}
			t.v, t.kept = tokenValue{}, true
			m.tot.Tokens++
		}
		if class == store.Spam {
			bump(&t.v.spam)
		} else {
			bump(&t.v.ham)
		}
		if delta > 0 {
			t.v.day = today
		}
		t.dirty = true
		if t.v.spam == 0 && t.v.ham == 0 {
			t.kept = false
			m.tot.Tokens--
		}
	}
}

// flushTokens writes the tokens changed since the last flush, in key
// order, and forgets the tokens read.
func (m *modelWrite) flushTokens() error {
	keys := make([]string, 0, len(m.tokens))
	for k, t := range m.tokens {
		if t.dirty {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		t := m.tokens[k]
		var err error
		if t.kept {
			err = m.tb.Put([]byte(k), t.v.encode())
		} else {
			err = m.tb.Delete([]byte(k))
		}
		if err != nil {
			return err
		}
		if !m.change.drop {
			tc := tokenCount{token: k}
			if t.kept {
				tc.count = store.SpamCount{Spam: clamp32(t.v.spam), Ham: clamp32(t.v.ham)}
			}
			m.change.tokens = append(m.change.tokens, tc)
		}
	}
	clear(m.tokens)
	return nil
}

// shrink drops n tokens from a model: the least useful first, those seen
// in the fewest messages, and of those the ones trained longest ago.
func shrink(tb *bbolt.Bucket, n int) (int, error) {
	type entry struct {
		key      []byte
		seen     uint64
		lastSeen uint64
	}
	var all []entry
	err := tb.ForEach(func(k, v []byte) error {
		t, _ := decodeToken(v)
		all = append(all, entry{bytes.Clone(k), t.spam + t.ham, t.day})
		return nil
	})
	if err != nil {
		return 0, err
	}
	slices.SortStableFunc(all, func(a, b entry) int { // ties: key order
		if a.seen != b.seen {
			return cmpU64(a.seen, b.seen)
		}
		return cmpU64(a.lastSeen, b.lastSeen)
	})
	n = min(n, len(all))
	for _, e := range all[:n] {
		if err := tb.Delete(e.key); err != nil {
			return 0, err
		}
	}
	return n, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// PruneSpamModels drops, from every model, the tokens last trained before
// notSeenSince.
func (s *Store) PruneSpamModels(ctx context.Context, notSeenSince time.Time) (int, error) {
	cutoff := day(notSeenSince)
	n := 0
	err := s.groupWrite(ctx, func(tx *bbolt.Tx) error {
		n = 0
		root := tx.Bucket(bSpam)
		if root == nil {
			return nil
		}
		var owners [][]byte
		root.ForEach(func(k, _ []byte) error { owners = append(owners, bytes.Clone(k)); return nil })
		for _, o := range owners {
			ob := root.Bucket(o)
			tb := ob.Bucket(bTokens)
			if tb == nil {
				continue
			}
			var old [][]byte
			tb.ForEach(func(k, v []byte) error {
				if t, _ := decodeToken(v); t.day < cutoff {
					old = append(old, bytes.Clone(k))
				}
				return nil
			})
			for _, k := range old {
				if err := tb.Delete(k); err != nil {
					return err
				}
			}
			if len(old) > 0 {
				txid := tx.ID()
				tx.OnCommit(func() { s.spam.committed(string(o), spamChange{txid: txid, drop: true}) })
				tot := getTotals(ob)
				tot.Tokens = max(tot.Tokens-int64(len(old)), 0)
				if err := putTotals(ob, tot); err != nil {
					return err
				}
			}
			n += len(old)
		}
		return nil
	}, nil)
	return n, err
}

// deleteSpamModel removes owner's model (its account or domain is gone).
func (s *Store) deleteSpamModel(tx *bbolt.Tx, owner string) error {
	root := tx.Bucket(bSpam)
	if root == nil || root.Bucket(ownerKey(owner)) == nil {
		return nil
	}
	txid := tx.ID()
	tx.OnCommit(func() { s.spam.committed(string(ownerKey(owner)), spamChange{txid: txid, drop: true}) })
	return root.DeleteBucket(ownerKey(owner))
}

// dropTrained forgets the training state of a blob that is gone.
func dropTrained(tx *bbolt.Tx, blob uint64) error {
	b := tx.Bucket(bSpamTrained)
	if b == nil {
		return nil
	}
	prefix := u64key(blob)
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}
