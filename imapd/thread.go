package imapd

import (
	"cmp"
	"slices"
	"strings"
)

// THREAD (RFC 5256): ORDEREDSUBJECT and REFERENCES.
func init() {
	register("THREAD", commandSpec{run: (*conn).cmdThread, states: selState, uid: true, updates: true, noExpunge: true})
	authCaps = append(authCaps, "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES")
}

// maxReferences bounds the message ids of one message's References that
// threading links: the last ones, nearest the message.
const maxReferences = 200

// threadMsg is what threading knows of a message.
type threadMsg struct {
	num     uint32 // sequence number or UID, as the client asked
	seq     uint32
	date    int64  // sent date (RFC 5256 2.2), Unix seconds
	subject string // base subject, upper case
	reply   bool   // the subject says reply or forward
	id      string // Message-ID, without angle brackets
	refs    []string
}

// threadNode is a container of the REFERENCES algorithm: a message, or
// a dummy (msg nil) for a message referred to but not there.
type threadNode struct {
	msg      *threadMsg
	parent   *threadNode
	children []*threadNode
}

func (n *threadNode) link(child *threadNode) {
	child.parent = n
	n.children = append(n.children, child)
}

func (n *threadNode) unlink() {
	if p := n.parent; p != nil {
		if i := slices.Index(p.children, n); i >= 0 {
			p.children = slices.Delete(p.children, i, i+1)
		}
		n.parent = nil
	}
}

// isAncestorOf reports whether n is d or one of d's ancestors.
func (n *threadNode) isAncestorOf(d *threadNode) bool {
	for ; d != nil; d = d.parent {
		if d == n {
			return true
		}
	}
	return false
}

// first is the message a node sorts and is named by: its own, or its
// first child's for a dummy.
func (n *threadNode) first() *threadMsg {
	for n.msg == nil {
		if len(n.children) == 0 {
			return nil
		}
		n = n.children[0]
	}
	return n.msg
}

func (c *conn) cmdThread(cmd *command) error {
	alg, err := arg(c, c.r.Atom)
	if err != nil {
		return err
	}
	alg = strings.ToUpper(alg)
	if alg != "ORDEREDSUBJECT" && alg != "REFERENCES" {
		return bad("Unknown threading algorithm %s", alg)
	}
	if err := c.r.SP(); err != nil {
		return err
	}
	k, err := c.searchArgs("", true)
	if err != nil {
		return err
	}
	hits, err := c.search(k)
	if err != nil {
		return err
	}
	if k.has(opModSeq) {
		c.condstoreBySearch()
	}
	msgs := make([]threadMsg, len(hits))
	refs := alg == "REFERENCES"
	err = c.eachHit(hits, true, func(i int, m *searchMsg, s *searcher) {
		t := &msgs[i]
		t.seq = m.seq
		t.num = m.seq
		if cmd.uid {
			t.num = m.info.UID
		}
		t.date = sentDate(m.sum, m.info).Unix()
		base, reply := baseSubject(m.sum.Subject)
		t.subject, t.reply = strings.ToUpper(base), reply
		if !refs {
			return
		}
		// The envelope cache has no References: the header it is.
		h := s.header(m)
		if h == nil {
			return
		}
		if ids := msgIDs(h.Get("Message-Id")); len(ids) > 0 {
			t.id = ids[0]
		}
		t.refs = msgIDs(h.Get("References"))
		if len(t.refs) == 0 {
			// No References: the first id of In-Reply-To, if any.
			if ids := msgIDs(h.Get("In-Reply-To")); len(ids) > 0 {
				t.refs = ids[:1]
			}
		}
		if len(t.refs) > maxReferences {
			t.refs = t.refs[len(t.refs)-maxReferences:]
		}
	})
	if err != nil {
		return err
	}
	var roots []*threadNode
	if refs {
		roots = threadReferences(msgs)
	} else {
		roots = threadOrderedSubject(msgs)
	}
	c.w.Raw("* THREAD")
	if len(roots) > 0 {
		c.w.SP()
	}
	for _, r := range roots {
		c.w.Raw("(")
		c.writeThread(r)
		c.w.Raw(")")
	}
	c.w.CRLF()
	return c.w.Err()
}

// writeThread writes a thread node without its outer parentheses: a
// message, then its only child after a space, or its children each in
// parentheses; a dummy's children each in parentheses.
func (c *conn) writeThread(n *threadNode) {
	for n.msg != nil && len(n.children) == 1 {
		c.w.Num(n.msg.num).SP()
		n = n.children[0]
	}
	if n.msg != nil {
		c.w.Num(n.msg.num)
		if len(n.children) == 0 {
			return
		}
		c.w.SP()
	}
	for _, ch := range n.children {
		c.w.Raw("(")
		c.writeThread(ch)
		c.w.Raw(")")
	}
}

// msgIDs returns the message ids of a field (without their angle
// brackets), leniently: every "<...>" outside comments, spaces removed;
// a bare id without brackets when there is none.
func msgIDs(v string) []string {
	var out []string
	for _, t := range addrTokens(v) {
		if t.kind == '<' && t.s != "" {
			out = append(out, t.s)
		}
	}
	if len(out) == 0 {
		if s := strings.TrimSpace(v); s != "" && !strings.ContainsAny(s, " \t\r\n<>()") && strings.Contains(s, "@") {
			out = append(out, s)
		}
	}
	return out
}

// threadLess orders messages by sent date, then sequence number (RFC
// 5256 2.2 and 3).
func threadLess(a, b *threadMsg) int {
	if c := cmp.Compare(a.date, b.date); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}

// threadOrderedSubject groups messages by base subject; each thread is
// its earliest message with every other one as a child (RFC 5256
// ORDEREDSUBJECT), threads in the order of their first message.
func threadOrderedSubject(msgs []threadMsg) []*threadNode {
	order := make([]*threadMsg, len(msgs))
	for i := range msgs {
		order[i] = &msgs[i]
	}
	slices.SortFunc(order, func(a, b *threadMsg) int {
		if c := strings.Compare(a.subject, b.subject); c != 0 {
			return c
		}
		return threadLess(a, b)
	})
	var roots []*threadNode
	var cur *threadNode
	for _, m := range order {
		if cur != nil && cur.msg.subject == m.subject {
			cur.link(&threadNode{msg: m})
			continue
		}
		cur = &threadNode{msg: m}
		roots = append(roots, cur)
	}
	slices.SortStableFunc(roots, func(a, b *threadNode) int { return threadLess(a.msg, b.msg) })
	return roots
}

// threadReferences is RFC 5256's REFERENCES algorithm.
func threadReferences(msgs []threadMsg) []*threadNode {
	// (1) Containers by message id, linked by the references.
	byID := make(map[string]*threadNode, len(msgs))
	var all []*threadNode // in order of creation
	get := func(id string) *threadNode {
		n := byID[id]
		if n == nil {
			n = &threadNode{}
			byID[id] = n
			all = append(all, n)
		}
		return n
	}
	for i := range msgs {
		m := &msgs[i]
		var self *threadNode
		if n := byID[m.id]; m.id != "" && (n == nil || n.msg == nil) {
			self = get(m.id)
		} else {
			// No id, or one a message before had: a unique id of its own.
			self = &threadNode{}
			all = append(all, self)
		}
		self.msg = m
		// (1A) Each reference the parent of the next, unless it has a
		// parent already or that would make a loop.
		var prev *threadNode
		for _, id := range m.refs {
			n := get(id)
			if prev != nil && n.parent == nil && !n.isAncestorOf(prev) {
				prev.link(n)
			}
			prev = n
		}
		// (1B) The last reference is the message's parent, whatever
		// the references of other messages said, unless that makes a
		// loop.
		self.unlink()
		if prev != nil && !self.isAncestorOf(prev) {
			prev.link(self)
		}
	}
	// (2) The roots.
	var roots []*threadNode
	for _, n := range all {
		if n.parent == nil {
			roots = append(roots, n)
		}
	}
	// (4) Prune dummies.
	roots = pruneDummies(roots, true)
	// Sort before gathering by subject (Dovecot does: which message of a
	// subject comes first decides the merge).
	sortThreads(roots)
	// (5) Gather threads of the same base subject.
	bySubject := map[string]*threadNode{}
	for _, r := range roots {
		m := r.first()
		if m == nil || m.subject == "" {
			continue
		}
		old := bySubject[m.subject]
		if old == nil || old.msg != nil && (r.msg == nil || old.first().reply && !m.reply) {
			bySubject[m.subject] = r
		}
	}
	pos := make(map[*threadNode]int, len(roots))
	for i, r := range roots {
		pos[r] = i
	}
	for i := 0; i < len(roots); i++ {
		r := roots[i]
		if r == nil {
			continue
		}
		m := r.first()
		if m == nil || m.subject == "" {
			continue
		}
		t := bySubject[m.subject]
		if t == r {
			continue
		}
		switch {
		case t.msg == nil && r.msg == nil:
			// Both dummies: one dummy with both's children.
			for _, ch := range r.children {
				t.link(ch)
			}
			r.children = nil
		case t.msg == nil:
			t.link(r)
		case m.reply && !t.first().reply:
			t.link(r)
		default:
			// A new dummy with both, in the table's place.
			d := &threadNode{}
			roots[pos[t]] = d
			pos[d] = pos[t]
			d.link(t)
			d.link(r)
			bySubject[m.subject] = d
		}
		roots[i] = nil
	}
	roots = slices.DeleteFunc(roots, func(n *threadNode) bool { return n == nil })
	// (6) Sort.
	sortThreads(roots)
	return roots
}

// pruneDummies removes dummies without children and puts the children
// of the others in their place, but for a dummy among the roots with
// more than one child (RFC 5256 REFERENCES step 4).
func pruneDummies(nodes []*threadNode, root bool) []*threadNode {
	out := nodes[:0:0]
	for _, n := range nodes {
		n.children = pruneDummies(n.children, false)
		for _, ch := range n.children {
			ch.parent = n
		}
		if n.msg != nil {
			out = append(out, n)
			continue
		}
		switch {
		case len(n.children) == 0:
		case root && len(n.children) > 1:
			out = append(out, n)
		default:
			for _, ch := range n.children {
				ch.parent = nil
			}
			out = append(out, n.children...)
		}
	}
	return out
}

// sortThreads sorts every set of siblings by sent date, then sequence
// number; a dummy sorts as its first child.
func sortThreads(nodes []*threadNode) {
	for _, n := range nodes {
		sortThreads(n.children)
	}
	slices.SortStableFunc(nodes, func(a, b *threadNode) int {
		x, y := a.first(), b.first()
		switch {
		case x == nil && y == nil:
			return 0
		case x == nil:
			return 1
		case y == nil:
			return -1
		}
		return threadLess(x, y)
	})
}
