package scan

// acMatcher is an Aho-Corasick automaton over bytes: every pattern is
// found in one pass, and the only state carried between Writes is one
// int32, so matches spanning chunk boundaries are found without buffering.
type acMatcher struct {
	root    [256]int32 // transitions from the root (dense; 0 = stay at root)
	first   []int32    // per state: index of its first edge in keys/targets
	nedges  []int32    // per state: number of edges
	keys    []byte
	targets []int32
	fail    []int32
	out     []int32 // per state: pattern id ending here (-1: none)
	outLink []int32 // per state: nearest state on the fail chain with out >= 0 (-1: none)
}

func buildAC(patterns [][]byte) *acMatcher {
	// trie with map children while building
	type node struct {
		next map[byte]int32
		out  int32
	}
	nodes := []node{{next: map[byte]int32{}, out: -1}}
	for id, p := range patterns {
		s := int32(0)
		for _, c := range p {
			t, ok := nodes[s].next[c]
			if !ok {
				t = int32(len(nodes))
				nodes = append(nodes, node{next: map[byte]int32{}, out: -1})
				nodes[s].next[c] = t
			}
			s = t
		}
		if nodes[s].out < 0 {
			nodes[s].out = int32(id)
		}
	}
	n := len(nodes)
	m := &acMatcher{
		first: make([]int32, n), nedges: make([]int32, n),
		fail: make([]int32, n), out: make([]int32, n), outLink: make([]int32, n),
	}
	for s := range nodes {
		m.out[s] = nodes[s].out
		m.first[s] = int32(len(m.keys))
		keys := make([]int, 0, len(nodes[s].next))
		for c := range nodes[s].next {
			keys = append(keys, int(c))
		}
		sortInts(keys)
		for _, c := range keys {
			m.keys = append(m.keys, byte(c))
			m.targets = append(m.targets, nodes[s].next[byte(c)])
		}
		m.nedges[s] = int32(len(keys))
	}
	for c, t := range nodes[0].next {
		m.root[c] = t
	}
	// BFS for fail links
	queue := make([]int32, 0, n)
	m.outLink[0] = -1
	for i := int32(0); i < m.nedges[0]; i++ {
		t := m.targets[m.first[0]+i]
		m.fail[t] = 0
		m.outLink[t] = -1
		queue = append(queue, t)
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for i := int32(0); i < m.nedges[s]; i++ {
			c := m.keys[m.first[s]+i]
			t := m.targets[m.first[s]+i]
			f := m.fail[s]
			for {
				if g := m.next(f, c); g >= 0 {
					m.fail[t] = g
					break
				}
				if f == 0 {
					m.fail[t] = 0
					break
				}
				f = m.fail[f]
			}
			if fl := m.fail[t]; m.out[fl] >= 0 {
				m.outLink[t] = fl
			} else {
				m.outLink[t] = m.outLink[fl]
			}
			queue = append(queue, t)
		}
	}
	return m
}

func sortInts(a []int) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

// next is the goto function; -1 when there is no edge (except at the root).
func (m *acMatcher) next(s int32, c byte) int32 {
	if s == 0 {
		if t := m.root[c]; t != 0 {
			return t
		}
		return -1
	}
	lo, n := m.first[s], m.nedges[s]
	keys := m.keys[lo : lo+n]
	for i, k := range keys {
		if k == c {
			return m.targets[lo+int32(i)]
		}
		if k > c {
			break
		}
	}
	return -1
}

// scan advances from state s over p and returns the new state and the id
// of the first pattern that ends in p (-1 if none).
func (m *acMatcher) scan(s int32, p []byte) (int32, int32) {
	for _, c := range p {
		if s == 0 {
			s = m.root[c]
			if s == 0 {
				continue
			}
		} else {
			for {
				if t := m.next(s, c); t >= 0 {
					s = t
					break
				}
				if s == 0 {
					break
				}
				s = m.fail[s]
			}
		}
		if m.out[s] >= 0 {
			return s, m.out[s]
		}
		if l := m.outLink[s]; l >= 0 {
			return s, m.out[l]
		}
	}
	return s, -1
}
