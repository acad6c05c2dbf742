package imapd

import (
	"slices"
	"strings"

	"yubin/internal/mailheader"
)

// SORT (RFC 5256) with DISPLAYFROM and DISPLAYTO (RFC 5957) and ESORT's
// RETURN options (RFC 5267).
func init() {
	register("SORT", commandSpec{run: (*conn).cmdSort, states: selState, uid: true, updates: true, noExpunge: true})
	authCaps = append(authCaps, "SORT", "SORT=DISPLAY", "ESORT")
}

// sortKind is a sort criterion.
type sortKind uint8

const (
	sortArrival sortKind = iota
	sortCc
	sortDate
	sortFrom
	sortSize
	sortSubject
	sortTo
	sortDisplayFrom
	sortDisplayTo
)

var sortKinds = map[string]sortKind{"ARRIVAL": sortArrival, "CC": sortCc, "DATE": sortDate, "FROM": sortFrom,
	"SIZE": sortSize, "SUBJECT": sortSubject, "TO": sortTo, "DISPLAYFROM": sortDisplayFrom, "DISPLAYTO": sortDisplayTo}

type sortCriterion struct {
	kind    sortKind
	reverse bool
}

// readSortCriteria reads "([REVERSE] key ...)".
func (c *conn) readSortCriteria() ([]sortCriterion, error) {
	var out []sortCriterion
	reverse := false
	err := c.r.List(func() error {
		a, err := c.r.Atom()
		if err != nil {
			return err
		}
		a = strings.ToUpper(a)
		if a == "REVERSE" {
			if reverse {
				return bad("REVERSE twice")
			}
			reverse = true
			return nil
		}
		k, ok := sortKinds[a]
		if !ok {
			return bad("Unknown sort criterion %s", a)
		}
		out = append(out, sortCriterion{kind: k, reverse: reverse})
		reverse = false
		return nil
	})
	if err != nil {
		return nil, err
	}
	if reverse || len(out) == 0 {
		return nil, bad("Sort criteria expected")
	}
	return out, nil
}

func (c *conn) cmdSort(cmd *command) (err error) {
	if err := c.r.SP(); err != nil {
		return err
	}
	var opts returnOpts
	if word, err := c.leadingWord(); err != nil {
		return err
	} else if word != "" {
		if !strings.EqualFold(word, "RETURN") {
			return bad("Sort criteria expected")
		}
		if err := c.r.SP(); err != nil {
			return err
		}
		if opts, err = c.readReturn(); err != nil {
			return err
		}
		if opts.sav {
			defer func() {
				if err != nil {
					c.sel.saved = nil
				}
			}()
		}
		if err := c.r.SP(); err != nil {
			return err
		}
	}
	crit, err := c.readSortCriteria()
	if err != nil {
		return err
	}
	if err := c.r.SP(); err != nil {
		return err
	}
	if opts.update {
		if err := c.checkUpdateTag(cmd.tag); err != nil {
			return err
		}
	}
	k, err := c.searchArgs("", true)
	if err != nil {
		return err
	}
	hits, err := c.search(k)
	if err != nil {
		return err
	}
	if err := c.sortHits(hits, crit); err != nil {
		return err
	}
	c.searchResult(cmd, "SORT", k, opts, hits, true)
	if opts.update {
		c.addUpdate(cmd, k, crit, hits)
	}
	return c.w.Err()
}

// sortValue is one message's value for one criterion: a number (times
// in seconds) or a string (folded to upper case).
type sortValue struct {
	n int64
	s string
}

// sortHits sorts hits (in sequence order) by the criteria; messages
// equal by all of them stay in sequence order (RFC 5256 3).
func (c *conn) sortHits(hits []searchHit, crit []sortCriterion) error {
	needSum := false
	for _, cr := range crit {
		if cr.kind != sortArrival && cr.kind != sortSize {
			needSum = true
		}
	}
	vals := make([]sortValue, len(hits)*len(crit))
	fill := func(i int, m *searchMsg, s *searcher) {
		for j, cr := range crit {
			v := &vals[i*len(crit)+j]
			switch cr.kind {
			case sortArrival:
				v.n = m.info.Date.Unix()
			case sortSize:
				v.n = m.info.Size
			case sortDate:
				v.n = sentDate(m.sum, m.info).Unix()
			case sortSubject:
				base, _ := baseSubject(m.sum.Subject)
				v.s = strings.ToUpper(base)
			case sortFrom, sortTo, sortCc:
				field := map[sortKind]string{sortFrom: "From", sortTo: "To", sortCc: "Cc"}[cr.kind]
				if a, ok := s.firstAddr(m, field); ok {
					if a.group {
						v.s = strings.ToUpper(a.name)
					} else {
						v.s = strings.ToUpper(a.mailbox)
					}
				}
			case sortDisplayFrom, sortDisplayTo:
				field := "From"
				if cr.kind == sortDisplayTo {
					field = "To"
				}
				if a, ok := s.firstAddr(m, field); ok {
					v.s = strings.ToUpper(displayName(a))
				}
			}
		}
	}
	if err := c.eachHit(hits, needSum, fill); err != nil {
		return err
	}
	order := make([]int, len(hits))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		for j, cr := range crit {
			x, y := vals[a*len(crit)+j], vals[b*len(crit)+j]
			d := 0
			switch {
			case x.n < y.n:
				d = -1
			case x.n > y.n:
				d = 1
			default:
				d = strings.Compare(x.s, y.s)
			}
			if cr.reverse {
				d = -d
			}
			if d != 0 {
				return d
			}
		}
		return 0
	})
	sorted := make([]searchHit, len(hits))
	for i, j := range order {
		sorted[i] = hits[j]
	}
	copy(hits, sorted)
	return nil
}

// eachHit calls f for every hit with what the store knows of it, and its
// envelope summary when sum (a zero one otherwise); s reads more of it.
func (c *conn) eachHit(hits []searchHit, sum bool, f func(i int, m *searchMsg, s *searcher)) error {
	s := &searcher{c: c, v: c.sel}
	var zero mailheader.Summary
	uids := make([]uint32, 0, min(len(hits), searchChunk))
	for lo := 0; lo < len(hits); lo += searchChunk {
		chunk := hits[lo:min(lo+searchChunk, len(hits))]
		var sums []mailheader.Summary
		if sum {
			uids = uids[:0]
			for _, h := range chunk {
				uids = append(uids, h.info.UID)
			}
			var err error
			if sums, err = c.srv.st.Summaries(c.ctx, c.account, c.sel.name, uids); err != nil {
				return c.storeError(err, "NONEXISTENT")
			}
		}
		for i := range chunk {
			m := &searchMsg{seq: uint32(chunk[i].idx + 1), info: &chunk[i].info, sum: &zero}
			if sums != nil {
				m.sum = &sums[i]
			}
			f(lo+i, m, s)
		}
	}
	return nil
}

// firstAddr is the first address of an address field (a group's start
// when it begins with one): from the envelope cache when it has the
// field, from the header otherwise.
func (s *searcher) firstAddr(m *searchMsg, field string) (addr, bool) {
	if list := summaryAddrs(m.sum, field); len(list) > 0 {
		return summaryAddr(list[0]), true
	}
	h := s.header(m)
	if h == nil {
		return addr{}, false
	}
	for _, a := range parseAddrList(h.Get(field)) {
		if !a.end {
			return a, true
		}
	}
	return addr{}, false
}

// displayName is what DISPLAYFROM and DISPLAYTO sort by (RFC 5957): the
// display name, or the address when it has none.
func displayName(a addr) string {
	if a.name != "" {
		return a.name
	}
	return a.spec()
}

// baseSubject extracts the base subject of a decoded subject (RFC 5256
// 2.1), and reports whether the subject says the message is a reply or
// a forward (a "Re:", "Fwd:", "(fwd)" or "[fwd: ...]" was removed).
func baseSubject(s string) (string, bool) {
	// (1) Tabs and line breaks are spaces; runs of spaces are one.
	var b strings.Builder
	space := false
	for _, r := range s {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			if !space {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		b.WriteRune(r)
	}
	s = b.String()
	reply := false
	for {
		// (2) Trailers: "(fwd)" and spaces.
		for {
			if strings.HasSuffix(s, " ") {
				s = s[:len(s)-1]
			} else if len(s) >= 5 && strings.EqualFold(s[len(s)-5:], "(fwd)") {
				s = s[:len(s)-5]
				reply = true
			} else {
				break
			}
		}
		// (3), (4), (5): leaders and a leading blob, until none is left.
		for {
			if rest, ok, re := trimLeader(s); ok {
				s = rest
				reply = reply || re
				continue
			}
			if n := blobLen(s); n > 0 && n < len(s) {
				s = s[n:]
				continue
			}
			break
		}
		// (6) "[fwd: ...]" around the whole subject.
		if len(s) >= 6 && strings.EqualFold(s[:5], "[fwd:") && s[len(s)-1] == ']' {
			s = s[5 : len(s)-1]
			reply = true
			continue
		}
		return s, reply
	}
}

// trimLeader removes a subj-leader (RFC 5256 5): a space, or blobs then
// "Re", "Fw" or "Fwd" with an optional blob, and ":"; re says it was
// the latter.
func trimLeader(s string) (rest string, ok, re bool) {
	if strings.HasPrefix(s, " ") {
		return s[1:], true, false
	}
	i := 0
	for {
		n := blobLen(s[i:])
		if n == 0 {
			break
		}
		i += n
	}
	for _, word := range []string{"re", "fwd", "fw"} {
		if len(s)-i < len(word) || !strings.EqualFold(s[i:i+len(word)], word) {
			continue
		}
		j := i + len(word)
		for j < len(s) && s[j] == ' ' {
			j++
		}
		j += blobLen(s[j:])
		if j < len(s) && s[j] == ':' {
			return s[j+1:], true, true
		}
	}
	return s, false, false
}

// blobLen is the length of a subj-blob at the start of s ("[" text
// without brackets "]" and the spaces after it), 0 if there is none.
func blobLen(s string) int {
	if !strings.HasPrefix(s, "[") {
		return 0
	}
	end := strings.IndexAny(s[1:], "[]")
	if end < 0 || s[1+end] != ']' {
		return 0
	}
	n := end + 2
	for n < len(s) && s[n] == ' ' {
		n++
	}
	return n
}
