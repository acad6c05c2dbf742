package imapd

import (
	"slices"

	"yubin/internal/imapwire"
)

// CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 4): a SEARCH or SORT with
// RETURN (UPDATE) keeps its result up to date while the mailbox stays
// selected, with ESEARCH responses whose ADDTO and REMOVEFROM say how it
// changes as messages arrive, change flags or are expunged, until
// CANCELUPDATE. (The CONTEXT hint and PARTIAL are in cmd_search.go.)
//
// The selected mailbox's view holds the contexts (view.updates). What
// may change a result reaches them three ways: the flag changes the
// view's sync reports and those of this session's own STORE (touch), the
// messages new since the contexts last looked (above seen), and expunges
// (expunged, which answers before the EXPUNGE goes out). After each sync,
// searchUpdates tests the touched and new messages against each
// context's criteria and writes what changed.
func init() {
	register("CANCELUPDATE", commandSpec{run: (*conn).cmdCancelUpdate, states: selState, updates: true})
	authCaps = append(authCaps, "CONTEXT=SEARCH", "CONTEXT=SORT")
}

// maxSearchUpdates is how many updating contexts a session may have at
// once; more are refused with NOUPDATE (RFC 5267 4.3.1).
const maxSearchUpdates = 10

// searchUpdates are the updating contexts of a selected mailbox.
type searchUpdates struct {
	list []*searchUpdate
	// touched are the UIDs whose flags changed since the contexts last
	// looked.
	touched map[uint32]bool
	// seen is the highest UID the contexts looked at; those above are
	// new.
	seen uint32
}

// searchUpdate is one updating context.
type searchUpdate struct {
	tag  string
	uid  bool // UID SEARCH or UID SORT: the updates are UIDs
	key  *searchKey
	crit []sortCriterion // SORT's criteria; nil for SEARCH
	// result is the result as the client has it: UIDs, ascending for
	// SEARCH, in the sort's order for SORT.
	result []uint32
	// gone are UIDs a UID SEARCH's result lost to expunges, for its
	// next REMOVEFROM.
	gone []uint32
}

// touch notes that a message's flags changed (nil-safe).
func (u *searchUpdates) touch(uid uint32) {
	if u == nil || len(u.list) == 0 {
		return
	}
	if u.touched == nil {
		u.touched = map[uint32]bool{}
	}
	u.touched[uid] = true
}

// searchTouched notes a flag change the view's sync reports.
func (c *conn) searchTouched(uid uint32) {
	if c.sel != nil {
		c.sel.updates.touch(uid)
	}
}

// index is where uid is in the result, -1 if it is not.
func (x *searchUpdate) index(uid uint32) int {
	if x.crit == nil {
		if i, ok := slices.BinarySearch(x.result, uid); ok {
			return i
		}
		return -1
	}
	return slices.Index(x.result, uid)
}

// checkUpdateTag refuses UPDATE under a tag an updating context has
// (RFC 5267 4.3).
func (c *conn) checkUpdateTag(tag string) error {
	if u := c.sel.updates; u != nil {
		for _, x := range u.list {
			if x.tag == tag {
				return bad("Tag %s is in use by a search with UPDATE", tag)
			}
		}
	}
	return nil
}

// addUpdate makes an updating context of a SEARCH's or SORT's result
// (hits, in the result's order), or says NOUPDATE when the session has
// too many.
func (c *conn) addUpdate(cmd *command, k *searchKey, crit []sortCriterion, hits []searchHit) {
	v := c.sel
	if v.updates == nil {
		v.updates = &searchUpdates{}
	}
	u := v.updates
	if len(u.list) >= maxSearchUpdates {
		c.w.Raw(`* NO [NOUPDATE "`).Raw(cmd.tag).Raw(`"] Too many searches with UPDATE`).CRLF()
		return
	}
	if len(u.list) == 0 {
		// The search looked at every message the client knows.
		u.touched = nil
		u.seen = 0
		if n := len(v.uids); n > 0 {
			u.seen = v.uids[n-1]
		}
	}
	res := make([]uint32, len(hits))
	for i, h := range hits {
		res[i] = h.info.UID
	}
	u.list = append(u.list, &searchUpdate{tag: cmd.tag, uid: cmd.uid, key: k, crit: crit, result: res})
}

func (c *conn) cmdCancelUpdate(cmd *command) error {
	var tags []string
	for {
		t, err := arg(c, c.r.AString)
		if err != nil {
			return err
		}
		tags = append(tags, t)
		if c.r.AtEnd() {
			break
		}
	}
	if err := c.r.End(); err != nil {
		return err
	}
	u := c.sel.updates
	for _, t := range tags {
		if u == nil || !slices.ContainsFunc(u.list, func(x *searchUpdate) bool { return x.tag == t }) {
			return bad("No search with UPDATE has the tag %s", t)
		}
	}
	u.list = slices.DeleteFunc(u.list, func(x *searchUpdate) bool { return slices.Contains(tags, x.tag) })
	return nil
}

// esearchHead starts a context's ESEARCH response.
func (c *conn) esearchHead(x *searchUpdate) {
	c.w.Raw(`* ESEARCH (TAG "`).Raw(x.tag).Raw(`")`)
	if x.uid {
		c.w.Raw(" UID")
	}
}

// id is how the client names a message of the view: its UID or its
// sequence number.
func (c *conn) id(x *searchUpdate, uid uint32) uint32 {
	if x.uid {
		return uid
	}
	return c.sel.seqOf(uid)
}

// searchExpunged takes an expunged message out of the results that have
// it, before the EXPUNGE (or VANISHED) goes out: a REMOVEFROM with
// sequence numbers (or a SORT's positions) is only right before it (RFC
// 5267 4.3.4). A UID SEARCH's waits for the next REMOVEFROM. seq is the
// message's sequence number before the expunge.
func (c *conn) searchExpunged(seq, uid uint32) {
	v := c.sel
	if v == nil || v.updates == nil {
		return
	}
	delete(v.updates.touched, uid)
	for _, x := range v.updates.list {
		i := x.index(uid)
		if i < 0 {
			continue
		}
		x.result = slices.Delete(x.result, i, i+1)
		if x.uid && x.crit == nil {
			x.gone = append(x.gone, uid)
			continue
		}
		pos, id := 0, seq
		if x.crit != nil {
			pos = i + 1
		}
		if x.uid {
			id = uid
		}
		c.esearchHead(x)
		c.w.Raw(" REMOVEFROM (").Num(uint32(pos)).SP().Num(id).Raw(")").CRLF()
	}
}

// searchUpdates writes what changed in the results of the updating
// contexts: it tests the messages whose flags changed and the new ones
// (after the EXISTS that announced them) against each context's
// criteria.
func (c *conn) searchUpdates() error {
	v := c.sel
	if v == nil || v.updates == nil || len(v.updates.list) == 0 {
		return nil
	}
	u := v.updates
	first := len(v.uids)
	if u.seen < 1<<32-1 {
		first, _ = slices.BinarySearch(v.uids, u.seen+1)
	}
	var idx []int
	for uid := range u.touched {
		if i, ok := slices.BinarySearch(v.uids, uid); ok && i < first {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	for i := first; i < len(v.uids); i++ {
		idx = append(idx, i)
	}
	for _, x := range u.list {
		if len(idx) == 0 && len(x.gone) == 0 {
			continue
		}
		// On failure the messages stay to be looked at again: what was
		// written already is in the results, and is not said twice.
		if err := c.updateContext(x, idx); err != nil {
			return err
		}
	}
	u.touched = nil
	if n := len(v.uids); n > 0 {
		u.seen = max(u.seen, v.uids[n-1])
	}
	return c.w.Err()
}

// updateContext tests the messages at the view's indexes idx against a
// context's criteria and writes the changes to its result.
func (c *conn) updateContext(x *searchUpdate, idx []int) error {
	v := c.sel
	var hits []searchHit
	if len(idx) > 0 {
		var err error
		if hits, err = c.searchAt(x.key, idx); err != nil {
			return err
		}
	}
	match := make(map[uint32]bool, len(hits))
	for _, h := range hits {
		match[h.info.UID] = true
	}
	var in map[uint32]bool
	if x.crit != nil {
		in = make(map[uint32]bool, len(x.result))
		for _, uid := range x.result {
			in[uid] = true
		}
	}
	var added, removed []uint32 // ascending
	for _, i := range idx {
		uid := v.uids[i]
		has := false
		if in != nil {
			has = in[uid]
		} else {
			_, has = slices.BinarySearch(x.result, uid)
		}
		switch {
		case match[uid] && !has:
			added = append(added, uid)
		case !match[uid] && has:
			removed = append(removed, uid)
		}
	}
	if x.crit == nil {
		c.updateSearch(x, added, removed)
		return nil
	}
	return c.updateSort(x, added, removed)
}

// updateSearch applies a SEARCH context's changes: REMOVEFROM and ADDTO
// with position 0, in mailbox order (RFC 5267 4.3.3, 4.3.4).
func (c *conn) updateSearch(x *searchUpdate, added, removed []uint32) {
	gone := x.gone
	x.gone = nil
	if len(added) == 0 && len(removed) == 0 && len(gone) == 0 {
		return
	}
	out := x.result[:0:0]
	for _, uid := range x.result {
		if _, drop := slices.BinarySearch(removed, uid); !drop {
			out = append(out, uid)
		}
	}
	out = append(out, added...)
	slices.Sort(out)
	x.result = out

	c.esearchHead(x)
	if len(removed) > 0 || len(gone) > 0 {
		ids := make([]uint32, 0, len(removed)+len(gone))
		ids = append(ids, gone...) // UIDs (only a UID SEARCH has gone)
		for _, uid := range removed {
			ids = append(ids, c.id(x, uid))
		}
		slices.Sort(ids)
		c.w.Raw(" REMOVEFROM (0 ").Raw(imapwire.Compact(ids)).Raw(")")
	}
	if len(added) > 0 {
		ids := make([]uint32, len(added))
		for i, uid := range added {
			ids[i] = c.id(x, uid)
		}
		c.w.Raw(" ADDTO (0 ").Raw(imapwire.Compact(ids)).Raw(")")
	}
	c.w.CRLF()
}

// updateSort applies a SORT context's changes with positions, so the
// client's result stays in the sort's order (RFC 5267 4.3.2): the
// removals from the last to the first (each leaves the positions before
// it as they were), then the additions at their places in the new
// result, from the first. Sort keys do not change with flags, so the
// messages that stay keep their order.
func (c *conn) updateSort(x *searchUpdate, added, removed []uint32) error {
	if len(added) == 0 && len(removed) == 0 {
		return nil
	}
	v := c.sel
	drop := make(map[uint32]bool, len(removed))
	for _, uid := range removed {
		drop[uid] = true
	}
	var hits []searchHit
	if len(added) > 0 {
		// The new result's messages as the store has them, in
		// sequence order; one of the result's it no longer has is
		// removed too.
		members := append(slices.Clone(x.result), added...)
		slices.Sort(members)
		infos, _, err := c.srv.st.MessagesByUID(c.ctx, c.account, v.name, members)
		if err != nil {
			return c.storeError(err, "NONEXISTENT")
		}
		have := make(map[uint32]bool, len(infos))
		for _, m := range infos {
			seq := v.seqOf(m.UID)
			if seq == 0 || drop[m.UID] {
				continue
			}
			have[m.UID] = true
			hits = append(hits, searchHit{idx: int(seq - 1), info: m})
		}
		for _, uid := range x.result {
			if !have[uid] {
				drop[uid] = true
			}
		}
		if err := c.sortHits(hits, x.crit); err != nil {
			return err
		}
	}

	// Removals: runs of consecutive positions, the last first.
	var pos []int
	for i, uid := range x.result {
		if drop[uid] {
			pos = append(pos, i)
		}
	}
	var line []byte
	if len(pos) > 0 {
		line = append(line, " REMOVEFROM ("...)
		for end := len(pos); end > 0; {
			start := end - 1
			for start > 0 && pos[start-1] == pos[start]-1 {
				start--
			}
			ids := make([]uint32, 0, end-start)
			for _, i := range pos[start:end] {
				ids = append(ids, c.idOrUID(x, x.result[i]))
			}
			line = appendUint(line, uint32(pos[start]+1))
			line = append(line, ' ')
			line = append(line, compactOrdered(ids)...)
			if start > 0 {
				line = append(line, ' ')
			}
			end = start
		}
		line = append(line, ')')
		x.result = slices.DeleteFunc(x.result, func(uid uint32) bool { return drop[uid] })
	}
	if hits != nil {
		isNew := make(map[uint32]bool, len(added))
		for _, uid := range added {
			isNew[uid] = true
		}
		res := make([]uint32, len(hits))
		for i, h := range hits {
			res[i] = h.info.UID
		}
		sep := " ADDTO ("
		for i := 0; i < len(res); {
			if !isNew[res[i]] {
				i++
				continue
			}
			j := i
			var ids []uint32
			for ; j < len(res) && isNew[res[j]]; j++ {
				ids = append(ids, c.id(x, res[j]))
			}
			line = append(line, sep...)
			line = appendUint(line, uint32(i+1))
			line = append(line, ' ')
			line = append(line, compactOrdered(ids)...)
			sep = " "
			i = j
		}
		if sep == " " {
			line = append(line, ')')
		}
		x.result = res
	}
	if len(line) > 0 {
		c.esearchHead(x)
		c.w.Raw(string(line)).CRLF()
	}
	return nil
}

// idOrUID is id for a message that may have left the view meanwhile
// (then only its UID names it; a sequence number context cannot have
// such, as expunges leave the results before they leave the view).
func (c *conn) idOrUID(x *searchUpdate, uid uint32) uint32 {
	if id := c.id(x, uid); id != 0 {
		return id
	}
	return uid
}
