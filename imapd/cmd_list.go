package imapd

import (
	"slices"
	"strings"

	"yubin/store"
)

// LIST (RFC 3501 6.3.8, LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819,
// SPECIAL-USE RFC 6154), LSUB and STATUS.
func init() {
	register("LIST", commandSpec{run: (*conn).cmdList, states: authState, updates: true})
	register("LSUB", commandSpec{run: (*conn).cmdList, states: authState, updates: true})
	register("STATUS", commandSpec{run: (*conn).cmdStatus, states: authState, updates: true})
}

// listOptions are LIST-EXTENDED's selection and return options.
type listOptions struct {
	selectSubscribed, selectRemote, selectRecursive, selectSpecialUse bool
	returnSubscribed, returnChildren, returnSpecialUse                bool
	status                                                            []string // STATUS items, nil for none
	extended                                                          bool     // the client used LIST-EXTENDED syntax
	lsubParents                                                       bool     // LSUB lists unsubscribed parents (\Noselect)
}

func (c *conn) cmdList(cmd *command) error {
	var opt listOptions
	lsub := cmd.name == "LSUB"
	if err := c.r.SP(); err != nil {
		return err
	}
	if !lsub && c.r.Peek() == '(' {
		opt.extended = true
		if err := c.r.List(func() error {
			a, err := c.r.Atom()
			if err != nil {
				return err
			}
			switch strings.ToUpper(a) {
			case "SUBSCRIBED":
				opt.selectSubscribed = true
			case "REMOTE":
				opt.selectRemote = true
			case "RECURSIVEMATCH":
				opt.selectRecursive = true
			case "SPECIAL-USE":
				opt.selectSpecialUse = true
			default:
				return bad("Unknown LIST selection option %s", a)
			}
			return nil
		}); err != nil {
			return err
		}
		if opt.selectRecursive && !opt.selectSubscribed && !opt.selectSpecialUse {
			// RFC 5258 3.1: not alone, nor with REMOTE only.
			return bad("RECURSIVEMATCH must not be the only selection option")
		}
		if err := c.r.SP(); err != nil {
			return err
		}
	}
	ref, err := c.r.AString()
	if err != nil {
		return err
	}
	if err := c.r.SP(); err != nil {
		return err
	}
	var patterns []string
	if !lsub && c.r.Peek() == '(' {
		opt.extended = true
		if err := c.r.List(func() error {
			p, err := c.r.ListMailbox()
			patterns = append(patterns, p)
			return err
		}); err != nil {
			return err
		}
	} else {
		p, err := c.r.ListMailbox()
		if err != nil {
			return err
		}
		patterns = []string{p}
	}
	if !lsub && !c.r.AtEnd() {
		if err := c.r.SP(); err != nil {
			return err
		}
		kw, err := c.r.Atom()
		if err != nil || !strings.EqualFold(kw, "RETURN") {
			return bad("Expected RETURN")
		}
		opt.extended = true
		if err := c.r.SP(); err != nil {
			return err
		}
		if err := c.r.List(func() error {
			a, err := c.r.Atom()
			if err != nil {
				return err
			}
			switch strings.ToUpper(a) {
			case "SUBSCRIBED":
				opt.returnSubscribed = true
			case "CHILDREN":
				opt.returnChildren = true
			case "SPECIAL-USE":
				opt.returnSpecialUse = true
			case "STATUS": // RFC 5819: STATUS SP (items)
				if err := c.r.SP(); err != nil {
					return err
				}
				items, err := c.statusItems()
				if err != nil {
					return err
				}
				opt.status = items
			default:
				return bad("Unknown LIST return option %s", a)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	if err := c.r.End(); err != nil {
		return err
	}
	if !c.enabled["UTF8=ACCEPT"] {
		// A reference or pattern that is not modified UTF-7 matches no
		// mailbox as it is (Dovecot answers OK with none too).
		if d, err := decodeMailboxName(ref); err == nil {
			ref = d
		}
		for i, p := range patterns {
			if d, err := decodeMailboxName(p); err == nil {
				patterns[i] = d
			}
		}
	}
	if len(patterns) == 1 && patterns[0] == "" && !opt.extended {
		// The hierarchy delimiter and root (RFC 3501 6.3.8).
		c.w.Raw("* ").Raw(cmd.name).Raw(` (\Noselect) "/" ""`).CRLF()
		return nil
	}
	if lsub {
		// LSUB is LIST (SUBSCRIBED RECURSIVEMATCH) with attributes of its
		// own (RFC 3501 6.3.9): a parent of subscribed names that is not
		// subscribed itself is \Noselect, and only for a pattern ending
		// in % (as Dovecot: for *, the names below match themselves).
		opt.selectSubscribed, opt.selectRecursive = true, true
		opt.lsubParents = strings.HasSuffix(patterns[0], "%")
	}
	if ref = inboxPrefix(ref); ref == "" {
		for i, p := range patterns {
			patterns[i] = inboxPrefix(p)
		}
	}
	var compiled []listPattern
	size := 0
	for _, p := range patterns {
		lp, ok := compileListPattern(ref, p)
		if !ok || slices.Contains(compiled, lp) {
			continue
		}
		if size += len(lp.s); size > maxListPatterns {
			return no("LIMIT", "The LIST patterns are too long (at most %d bytes together)", maxListPatterns)
		}
		compiled = append(compiled, lp)
	}
	return c.list(cmd.name, compiled, &opt)
}

// maxListPatterns bounds the bytes of a LIST command's patterns (each with
// its reference, its runs of wildcards made one), which the time it takes
// is proportional to.
const maxListPatterns = 4 << 10

// listPattern is a LIST reference and pattern made one: the first lit
// bytes (the reference) match themselves, those after are the pattern,
// where '*' matches anything and '%' anything but the hierarchy delimiter
// (RFC 3501 6.3.8). It matches what listMatch matches.
type listPattern struct {
	s   string
	lit int
}

// compileListPattern makes a reference and pattern one, with runs of
// wildcards made one ("**", "%*" and "*%" are "*", "%%" is "%"). It
// reports false for a pattern that no mailbox name can match.
func compileListPattern(ref, pattern string) (listPattern, bool) {
	if strings.HasPrefix(pattern, "/") {
		ref, pattern = "", pattern[1:]
	}
	if ref != "" && !strings.HasSuffix(ref, "/") {
		ref += "/"
	}
	b := []byte(ref)
	literals := len(ref)
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		if c != '*' && c != '%' {
			b = append(b, c)
			literals++
			continue
		}
		if n := len(b); n > len(ref) && (b[n-1] == '*' || b[n-1] == '%') {
			if c == '*' {
				b[n-1] = '*'
			}
			continue
		}
		b = append(b, c)
	}
	return listPattern{s: string(b), lit: len(ref)}, literals <= store.MaxMailboxNameLen
}

// matchPrefixes sets at[i] for each i, at the end of name or before a
// hierarchy delimiter in it, where name[:i] matches: name and its
// ancestors, in one pass (len(at) > len(name)).
func (p listPattern) matchPrefixes(name string, at []bool) {
	// prev[j]: name[:i] matches s[:j], row by row over i.
	m := len(p.s)
	prev := make([]bool, m+1)
	cur := make([]bool, m+1)
	prev[0] = true
	for j := 1; j <= m; j++ {
		prev[j] = prev[j-1] && j > p.lit && (p.s[j-1] == '*' || p.s[j-1] == '%')
	}
	for i := 1; i <= len(name); i++ {
		c := name[i-1]
		cur[0] = false
		for j := 1; j <= m; j++ {
			switch pc := p.s[j-1]; {
			case j <= p.lit:
				cur[j] = prev[j-1] && c == pc
			case pc == '*':
				cur[j] = cur[j-1] || prev[j]
			case pc == '%':
				cur[j] = cur[j-1] || prev[j] && c != '/'
			default:
				cur[j] = prev[j-1] && c == pc
			}
		}
		prev, cur = cur, prev
		if prev[m] && (i == len(name) || name[i] == '/') {
			at[i] = true
		}
	}
}

// inboxPrefix spells INBOX as the store does (RFC 3501 5.1) where a
// reference or a pattern without one starts with it, in any case, as a
// level of its own.
func inboxPrefix(p string) string {
	if len(p) >= 5 && strings.EqualFold(p[:5], "INBOX") && (len(p) == 5 || p[5] == '/') {
		return "INBOX" + p[5:]
	}
	return p
}

// list writes the LIST (or LSUB) responses of the names matching the
// patterns and the selection options, by the rules of RFC 5258 3 (and of
// RFC 3501 6.3.9 for LSUB), as Dovecot applies them (imaptest's list,
// listext and subscribe scripts):
//
//   - the names that meet the selection criteria are the mailboxes; with
//     SUBSCRIBED, the subscribed names, mailboxes or not (\NonExistent);
//     with SPECIAL-USE, the mailboxes with a special use;
//   - each such name that matches a pattern is listed;
//   - with RECURSIVEMATCH, a name that does not match lists its nearest
//     ancestor that does, with CHILDINFO; every listed ancestor of a name
//     meeting the criteria has CHILDINFO (RFC 5258 example 9), but an
//     ancestor whose descendants meeting the criteria are all listed
//     themselves is not listed for them: its CHILDINFO would say nothing
//     new (RFC 5258 3.5).
func (c *conn) list(resp string, patterns []listPattern, opt *listOptions) error {
	boxes, err := c.srv.st.Mailboxes(c.ctx, c.account)
	if err != nil {
		return c.storeError(err, "NONEXISTENT")
	}
	var subs []string
	if opt.selectSubscribed {
		if subs, err = c.srv.st.Subscriptions(c.ctx, c.account); err != nil {
			return c.storeError(err, "NONEXISTENT")
		}
	}
	exists := make(map[string]*store.Mailbox, len(boxes))
	hasChildren := map[string]bool{}
	subscribed := map[string]bool{}
	for i := range boxes {
		b := &boxes[i]
		exists[b.Name] = b
		for _, p := range store.ParentMailboxes(b.Name) {
			hasChildren[p] = true
		}
		if b.Subscribed {
			subscribed[b.Name] = true
		}
	}
	for _, n := range subs {
		subscribed[n] = true
	}
	// at[i]: name[:i] matches a pattern.
	at := make([]bool, store.MaxMailboxNameLen+1)
	matchPrefixes := func(name string) []bool {
		at := at[:len(name)+1]
		clear(at)
		for _, p := range patterns {
			p.matchPrefixes(name, at)
		}
		return at
	}
	meets := func(name string) bool {
		if opt.selectSubscribed && !subscribed[name] {
			return false
		}
		if opt.selectSpecialUse {
			b := exists[name]
			return b != nil && b.SpecialUse != ""
		}
		return true
	}
	candidates := subs
	if !opt.selectSubscribed {
		candidates = make([]string, len(boxes))
		for i, b := range boxes {
			candidates[i] = b.Name
		}
	}
	listed := map[string]bool{}
	childInfo := map[string]bool{}
	for _, n := range candidates {
		if !meets(n) {
			continue
		}
		if len(n) > store.MaxMailboxNameLen {
			continue // no mailbox name is, nor any subscribed
		}
		at := matchPrefixes(n)
		found := at[len(n)]
		if found {
			listed[n] = true
		}
		if !opt.selectRecursive {
			continue
		}
		for i := len(n) - 1; i > 0; i-- {
			if at[i] {
				p := n[:i]
				childInfo[p] = true
				if !found {
					listed[p], found = true, true
				}
			}
		}
	}
	names := make([]string, 0, len(listed))
	for n := range listed {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		if (a == "INBOX") != (b == "INBOX") {
			if a == "INBOX" {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	var criteria []string
	if opt.selectSubscribed {
		criteria = append(criteria, `"SUBSCRIBED"`)
	}
	if opt.selectSpecialUse {
		criteria = append(criteria, `"SPECIAL-USE"`)
	}
	var attrs []string
	for _, n := range names {
		b := exists[n]
		attrs = attrs[:0]
		if resp == "LSUB" {
			if !subscribed[n] {
				if !opt.lsubParents {
					continue
				}
				attrs = append(attrs, `\Noselect`)
			}
		} else {
			if b == nil {
				// Implies \Noselect, which RFC 5258 3.5 keeps apart.
				attrs = append(attrs, `\NonExistent`)
			}
			if b != nil || opt.returnChildren {
				if hasChildren[n] {
					attrs = append(attrs, `\HasChildren`)
				} else {
					attrs = append(attrs, `\HasNoChildren`)
				}
			}
			if subscribed[n] && (opt.selectSubscribed || opt.returnSubscribed) {
				attrs = append(attrs, `\Subscribed`)
			}
		}
		if b != nil && b.SpecialUse != "" {
			attrs = append(attrs, b.SpecialUse)
		}
		c.w.Raw("* ").Raw(resp).Raw(" (").Raw(strings.Join(attrs, " ")).Raw(`) "/" `)
		c.mailboxName(n)
		if childInfo[n] && opt.extended && len(criteria) > 0 {
			c.w.Raw(" (CHILDINFO (").Raw(strings.Join(criteria, " ")).Raw("))")
		}
		c.w.CRLF()
		if opt.status != nil && b != nil {
			if err := c.writeStatus(*b, opt.status); err != nil {
				return err
			}
		}
	}
	return c.w.Err()
}

// statusItems reads a parenthesized list of STATUS items.
func (c *conn) statusItems() ([]string, error) {
	items := []string{}
	err := c.r.List(func() error {
		a, err := c.r.Atom()
		if err != nil {
			return err
		}
		a = strings.ToUpper(a)
		switch a {
		case "MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE", "APPENDLIMIT":
		default:
			if !statusExtra[a] {
				return bad("Unknown STATUS item %s", a)
			}
		}
		items = append(items, a)
		return nil
	})
	if err == nil && len(items) == 0 {
		err = bad("STATUS needs at least one item")
	}
	return items, err
}

// statusExtra are STATUS items extensions add (HIGHESTMODSEQ).
var statusExtra = map[string]bool{}

func (c *conn) cmdStatus(cmd *command) error {
	name, err := c.mailboxArg()
	if err != nil {
		return err
	}
	if err := c.r.SP(); err != nil {
		return err
	}
	items, err := c.statusItems()
	if err != nil {
		return err
	}
	if err := c.r.End(); err != nil {
		return err
	}
	meta, err := c.srv.st.Mailbox(c.ctx, c.account, name)
	if err != nil {
		return c.storeError(err, "NONEXISTENT")
	}
	return c.writeStatus(meta, items)
}

// writeStatus writes a STATUS response.
func (c *conn) writeStatus(meta store.Mailbox, items []string) error {
	var unseen, deleted int
	for _, it := range items {
		if it == "UNSEEN" || it == "DELETED" {
			msgs, _, err := c.srv.st.Messages(c.ctx, c.account, meta.Name)
			if err != nil {
				return c.storeError(err, "NONEXISTENT")
			}
			for _, m := range msgs {
				if !hasFlag(m.Flags, `\Seen`) {
					unseen++
				}
				if hasFlag(m.Flags, `\Deleted`) {
					deleted++
				}
			}
			break
		}
	}
	c.w.Raw("* STATUS ")
	c.mailboxName(meta.Name)
	c.w.Raw(" (")
	for i, it := range items {
		if i > 0 {
			c.w.SP()
		}
		c.w.Raw(it).SP()
		switch it {
		case "MESSAGES":
			c.w.Num(uint32(meta.Messages))
		case "RECENT":
			c.w.Num(c.recentCount(meta))
		case "UIDNEXT":
			c.w.Num(meta.UIDNext)
		case "UIDVALIDITY":
			c.w.Num(meta.UIDValidity)
		case "UNSEEN":
			c.w.Num(uint32(unseen))
		case "DELETED":
			c.w.Num(uint32(deleted))
		case "SIZE":
			c.w.Num64(uint64(meta.Size))
		case "APPENDLIMIT":
			c.w.Num64(uint64(c.srv.cfg.AppendLimit))
		default:
			statusValue(c, meta, it)
		}
	}
	c.w.Raw(")").CRLF()
	return c.w.Err()
}

// recentCount is STATUS RECENT: the messages no session has claimed as
// \Recent yet (or this session has, when it has the mailbox selected).
func (c *conn) recentCount(meta store.Mailbox) uint32 {
	if v := c.sel; v != nil && v.name == meta.Name && v.uidValidity == meta.UIDValidity {
		return v.recentCount()
	}
	if meta.FirstRecent >= meta.UIDNext {
		return 0
	}
	msgs, _, err := c.srv.st.Messages(c.ctx, c.account, meta.Name)
	if err != nil {
		return 0
	}
	n := uint32(0)
	for _, m := range msgs {
		if m.UID >= meta.FirstRecent {
			n++
		}
	}
	return n
}

// statusValue writes the value of an extension's STATUS item.
var statusValue = func(c *conn, meta store.Mailbox, item string) { c.w.Num(0) }
