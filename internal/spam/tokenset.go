package spam

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"slices"
)

// tokenSet is the distinct tokens of one message, in the order they were
// added: their bytes one after another in data, found by hash through an
// open-addressing table. Adding a token that is there already allocates
// nothing, and the result is one string with the tokens as slices of it.
// It is reused (tokenizerPool): reset keeps the memory.
type tokenSet struct {
	seed  maphash.Seed
	data  []byte
	toks  []tokenRef
	table []uint32 // 0: empty; else an index into toks plus one
	// Scratch for sorted.
	keys, keys2 []sortKey
}

type tokenRef struct {
	off, n uint32
	hash   uint64
}

// tokenTable is the size of the table: a power of two, at least twice
// MaxTokens so that probes stay short.
const tokenTable = 4096

func (s *tokenSet) reset() {
	if s.table == nil {
		s.seed = maphash.MakeSeed()
		s.table = make([]uint32, tokenTable)
	} else {
		clear(s.table)
	}
	s.data = s.data[:0]
	s.toks = s.toks[:0]
}

func (s *tokenSet) len() int { return len(s.toks) }

func (s *tokenSet) token(r tokenRef) []byte { return s.data[r.off : r.off+r.n] }

// add adds tok (which it copies) unless it is there; it reports whether
// it was added.
func (s *tokenSet) add(tok []byte) bool {
	h := maphash.Bytes(s.seed, tok)
	const mask = tokenTable - 1
	for i := h & mask; ; i = (i + 1) & mask {
		e := s.table[i]
		if e == 0 {
			s.table[i] = uint32(len(s.toks)) + 1
			s.toks = append(s.toks, tokenRef{off: uint32(len(s.data)), n: uint32(len(tok)), hash: h})
			s.data = append(s.data, tok...)
			return true
		}
		if r := s.toks[e-1]; r.hash == h && string(s.token(r)) == string(tok) {
			return false
		}
	}
}

// sortKey orders tokens by their first 8 bytes (zero-padded, big-endian),
// which decides most comparisons without looking at the strings.
type sortKey struct {
	prefix uint64
	tok    uint32 // index into toks
}

func prefixKey(b []byte) uint64 {
	if len(b) >= 8 {
		return binary.BigEndian.Uint64(b)
	}
	var p [8]byte
	copy(p[:], b)
	return binary.BigEndian.Uint64(p[:])
}

// sorted returns the tokens sorted (as slices.Sort sorts strings), as
// slices of one new string; nil when there are none.
func (s *tokenSet) sorted() []string {
	if len(s.toks) == 0 {
		return nil
	}
	keys := s.keys[:0]
	for i, r := range s.toks {
		keys = append(keys, sortKey{prefixKey(s.token(r)), uint32(i)})
	}
	keys = s.radixSort(keys)
	// Ties on the prefix: by the whole token.
	for i := 0; i < len(keys); {
		j := i + 1
		for j < len(keys) && keys[j].prefix == keys[i].prefix {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(keys[i:j], func(a, b sortKey) int {
				return bytes.Compare(s.token(s.toks[a.tok]), s.token(s.toks[b.tok]))
			})
		}
		i = j
	}
	all := string(s.data)
	out := make([]string, len(keys))
	for i, k := range keys {
		r := s.toks[k.tok]
		out[i] = all[r.off : r.off+r.n]
	}
	s.keys = keys
	return out
}

// radixSort sorts keys by prefix, least significant byte first, and
// returns them (in keys' memory or the scratch's).
func (s *tokenSet) radixSort(keys []sortKey) []sortKey {
	tmp := slices.Grow(s.keys2[:0], len(keys))[:len(keys)]
	for shift := 0; shift < 64; shift += 8 {
		var count [256]int
		for _, k := range keys {
			count[byte(k.prefix>>shift)]++
		}
		if count[byte(keys[0].prefix>>shift)] == len(keys) {
			continue // every key has the same byte here
		}
		sum := 0
		for i, c := range count {
			count[i] = sum
			sum += c
		}
		for _, k := range keys {
			b := byte(k.prefix >> shift)
			tmp[count[b]] = k
			count[b]++
		}
		keys, tmp = tmp, keys
	}
	s.keys2 = tmp
	return keys
}
