package imapwire

import (
	"strconv"
	"strings"
)

// Range is one element of a sequence set: Lo:Hi with Lo <= Hi, where 0
// stands for '*' (the largest number in use). A single number has Lo == Hi.
type Range struct{ Lo, Hi uint32 }

// NumSet is a sequence set (RFC 3501 sequence-set) of message sequence
// numbers or UIDs, as the client wrote it; Search is "$" (RFC 5182, the
// saved search result).
type NumSet struct {
	Ranges []Range
	Search bool
}

// MaxRanges bounds the ranges of one set.
const MaxRanges = 100_000

// NumSet reads a sequence set: "1", "2:4", "*", "5:*", "1,3:5", or "$".
func (r *Reader) NumSet() (NumSet, error) {
	if r.Maybe('$') {
		return NumSet{Search: true}, nil
	}
	var set NumSet
	for {
		lo, err := r.seqNumber()
		if err != nil {
			return set, err
		}
		hi := lo
		if r.Maybe(':') {
			if hi, err = r.seqNumber(); err != nil {
				return set, err
			}
		}
		set.Ranges = append(set.Ranges, ordered(lo, hi))
		if len(set.Ranges) > MaxRanges {
			return set, syntaxf("sequence set has more than %d ranges", MaxRanges)
		}
		if !r.Maybe(',') {
			return set, nil
		}
	}
}

// seqNumber reads a nz-number or '*' (0).
func (r *Reader) seqNumber() (uint32, error) {
	if r.Maybe('*') {
		return 0, nil
	}
	if c := r.Peek(); c < '0' || c > '9' {
		return 0, r.expected("sequence set")
	}
	n, err := r.Number()
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, syntaxf("0 is not a valid message number")
	}
	return n, nil
}

// ordered makes a range with Lo <= Hi, '*' (0) being the largest.
func ordered(a, b uint32) Range {
	switch {
	case a == 0:
		return Range{b, 0}
	case b == 0:
		return Range{a, 0}
	case a > b:
		return Range{b, a}
	}
	return Range{a, b}
}

// Contains reports whether n is in the set when the largest number in use
// is star.
func (s NumSet) Contains(n, star uint32) bool {
	for _, r := range s.Ranges {
		lo, hi := r.Lo, r.Hi
		if lo == 0 {
			lo = star
		}
		if hi == 0 {
			hi = star
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		if lo <= n && n <= hi {
			return true
		}
	}
	return false
}

// Bounds resolves the set's ranges with star for '*': each [lo, hi] with
// lo <= hi.
func (s NumSet) Bounds(star uint32) [][2]uint32 {
	out := make([][2]uint32, 0, len(s.Ranges))
	for _, r := range s.Ranges {
		lo, hi := r.Lo, r.Hi
		if lo == 0 {
			lo = star
		}
		if hi == 0 {
			hi = star
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		out = append(out, [2]uint32{lo, hi})
	}
	return out
}

// String writes the set as IMAP does.
func (s NumSet) String() string {
	if s.Search {
		return "$"
	}
	var b strings.Builder
	num := func(n uint32) {
		if n == 0 {
			b.WriteByte('*')
		} else {
			b.WriteString(strconv.FormatUint(uint64(n), 10))
		}
	}
	for i, r := range s.Ranges {
		if i > 0 {
			b.WriteByte(',')
		}
		num(r.Lo)
		if r.Hi != r.Lo {
			b.WriteByte(':')
			num(r.Hi)
		}
	}
	return b.String()
}

// Compact writes sorted numbers as a sequence set with ranges: 1:3,5,7:8.
// nums must be ascending.
func Compact(nums []uint32) string {
	var b strings.Builder
	for i := 0; i < len(nums); {
		j := i
		for j+1 < len(nums) && nums[j+1] == nums[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(nums[i]), 10))
		if j > i {
			b.WriteByte(':')
			b.WriteString(strconv.FormatUint(uint64(nums[j]), 10))
		}
		i = j + 1
	}
	return b.String()
}
