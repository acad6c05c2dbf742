package bolt

import (
	"strings"
	"sync"
	"sync/atomic"

	"yubin/store"

	bbolt "go.etcd.io/bbolt"
)

// The spam model cache.
//
// Scoring a message looks each of its tokens (about a thousand) up in a
// model, and in bbolt each look-up is a search of the tree from its root,
// through pages that are rarely still in the CPU's cache: most of what the
// spam stage costs. So a model that SpamCounts reads often (a domain's, a
// busy account's) is read once into a hash map, and the transactions that
// change it bring it up to date as they commit, with the values they
// wrote: what SpamCounts and SpamTotals return from it is what they would
// have read from bbolt at some moment, as without the cache.
//
//   - A model is loaded, in the background, once SpamCounts has read it
//     from bbolt spamLoadAfter times: a model read rarely is not worth its
//     memory nor the reading of all its tokens.
//   - Loaded models hold at most spamCacheTokens tokens together; loading
//     one evicts those used least recently.
//   - A training changes the tokens it counts and the totals (TrainSpam's
//     transaction hands them over on commit, in commit order: every write
//     goes through the one committer). Changes of a model being loaded
//     wait until it is, and those its snapshot already holds (by
//     transaction id) are skipped. A change that cannot be handed over as
//     values (shrinking the model to its bound, pruning, deleting it)
//     drops the model from the cache; it is loaded again later.
type spamCache struct {
	mu     sync.RWMutex
	models map[string]*cachedModel // by ownerKey
	held   int                     // tokens of the loaded models
	budget int
	clock  atomic.Uint64 // for least recently used
	closed bool
	loads  sync.WaitGroup
}

// spamCacheTokens bounds the tokens of the loaded models (about 50 bytes
// each): two models at store.MaxSpamTokens.
const spamCacheTokens = 2 * store.MaxSpamTokens

// spamLoadAfter is how many reads from bbolt make a model of n tokens
// worth loading: reading all of it costs about as much as a thousand
// searches.
func spamLoadAfter(n int64) int { return 1 + int(n/1000) }

type modelState uint8

const (
	modelRead    modelState = iota // read from bbolt, counting the reads
	modelLoading                   // being read into memory
	modelLoaded
)

type cachedModel struct {
	state modelState
	reads int // from bbolt since last dropped
	// Loaded (and being loaded: what the snapshot holds).
	txid   int // the last transaction of the snapshot it was loaded from
	totals store.SpamTotals
	index  map[string]int32 // token -> counts[i]
	counts []store.SpamCount
	free   []int32 // slots of counts no token uses
	used   atomic.Uint64
	// Changes committed while loading.
	pending []spamChange
}

// spamChange is what one committed transaction did to a model.
type spamChange struct {
	txid   int
	drop   bool // not known token by token: load the model again
	totals store.SpamTotals
	tokens []tokenCount // the new counts (zero: gone)
}

type tokenCount struct {
	token string
	count store.SpamCount
}

func newSpamCache() *spamCache {
	return &spamCache{models: map[string]*cachedModel{}, budget: spamCacheTokens}
}

// counts fills counts from owner's model if it is loaded.
func (c *spamCache) counts(owner string, tokens []string, counts []store.SpamCount) (store.SpamTotals, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	m := c.models[owner]
	if m == nil || m.state != modelLoaded {
		return store.SpamTotals{}, false
	}
	m.used.Store(c.clock.Add(1))
	for i, tok := range tokens {
		if j, ok := m.index[tok]; ok {
			counts[i] = m.counts[j]
		}
	}
	return m.totals, true
}

// totals returns owner's totals if its model is loaded.
func (c *spamCache) totals(owner string) (store.SpamTotals, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if m := c.models[owner]; m != nil && m.state == modelLoaded {
		return m.totals, true
	}
	return store.SpamTotals{}, false
}

// tracked says whether owner's changes are wanted token by token: its
// model is loaded or being loaded. (If that changes before the commit, the
// change is handed over as a drop.)
func (c *spamCache) tracked(owner string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	m := c.models[owner]
	return m != nil && m.state != modelRead
}

// read notes that owner's model of n tokens was read from bbolt, and
// starts loading it when that has happened often enough.
func (c *spamCache) read(s *Store, owner string, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || n > int64(c.budget) {
		return
	}
	m := c.models[owner]
	if m == nil {
		m = &cachedModel{}
		c.models[owner] = m
	}
	if m.state != modelRead {
		return
	}
	if m.reads++; m.reads < spamLoadAfter(n) {
		return
	}
	m.state = modelLoading
	c.loads.Add(1)
	go func() {
		defer c.loads.Done()
		c.load(s, owner)
	}()
}

// load reads owner's model into memory.
func (c *spamCache) load(s *Store, owner string) {
	l := &cachedModel{}
	var keys []byte
	var offs []int
	err := s.view(func(tx *bbolt.Tx) error {
		l.txid = tx.ID()
		ob := spamOwner(tx, owner)
		l.totals = getTotals(ob)
		if ob == nil || ob.Bucket(bTokens) == nil {
			return nil
		}
		return ob.Bucket(bTokens).ForEach(func(k, v []byte) error {
			if tv, ok := decodeToken(v); ok {
				keys = append(keys, k...)
				offs = append(offs, len(keys))
				l.counts = append(l.counts, store.SpamCount{Spam: clamp32(tv.spam), Ham: clamp32(tv.ham)})
			}
			return nil
		})
	})
	// One string holds every token.
	all := string(keys)
	l.index = make(map[string]int32, len(offs))
	for i, end := range offs {
		start := 0
		if i > 0 {
			start = offs[i-1]
		}
		l.index[all[start:end]] = int32(i)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.models[owner]
	if m == nil || m.state != modelLoading {
		return // dropped meanwhile
	}
	pending := m.pending
	m.pending = nil
	m.state, m.reads = modelRead, 0
	if err != nil || c.closed {
		return
	}
	l.state = modelLoaded
	for _, ch := range pending {
		if ch.txid <= l.txid {
			continue // in the snapshot
		}
		if ch.drop {
			return
		}
		l.apply(ch)
	}
	n := len(l.index)
	if n > c.budget {
		return
	}
	// Room, least recently used first.
	for c.held+n > c.budget {
		var victim string
		var oldest *cachedModel
		for o, v := range c.models {
			if v.state == modelLoaded && (oldest == nil || v.used.Load() < oldest.used.Load()) {
				victim, oldest = o, v
			}
		}
		if oldest == nil {
			return
		}
		c.unload(victim, oldest)
	}
	l.used.Store(c.clock.Add(1))
	c.models[owner] = l
	c.held += n
}

// unload forgets a loaded model (with c.mu held).
func (c *spamCache) unload(owner string, m *cachedModel) {
	c.held -= len(m.index)
	c.models[owner] = &cachedModel{}
}

// apply brings a loaded model up to date with a change.
func (m *cachedModel) apply(ch spamChange) {
	m.totals = ch.totals
	for _, tc := range ch.tokens {
		i, ok := m.index[tc.token]
		switch {
		case tc.count == (store.SpamCount{}):
			if ok {
				delete(m.index, tc.token)
				m.free = append(m.free, i)
			}
		case ok:
			m.counts[i] = tc.count
		default:
			if n := len(m.free); n > 0 {
				i, m.free = m.free[n-1], m.free[:n-1]
				m.counts[i] = tc.count
			} else {
				i = int32(len(m.counts))
				m.counts = append(m.counts, tc.count)
			}
			// Its own copy: the token may be a slice of a big string.
			m.index[strings.Clone(tc.token)] = i
		}
	}
}

// committed hands over what a committed transaction did to owner's model.
func (c *spamCache) committed(owner string, ch spamChange) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.models[owner]
	if m == nil {
		return
	}
	switch m.state {
	case modelLoading:
		m.pending = append(m.pending, ch)
	case modelLoaded:
		if ch.txid <= m.txid {
			return // loaded after it (several changes of one transaction are applied one after another)
		}
		if ch.drop {
			c.unload(owner, m)
			return
		}
		before := len(m.index)
		m.apply(ch)
		c.held += len(m.index) - before
	}
}

// close stops loading and waits for the loads under way.
func (c *spamCache) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.loads.Wait()
}
