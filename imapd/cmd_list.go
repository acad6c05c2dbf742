package imapd

import (
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
		if opt.selectRecursive && !opt.selectSubscribed {
			return bad("RECURSIVEMATCH needs another selection option")
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
			case "STATUS":
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
	if lsub {
		opt.selectSubscribed = true
	}
	if len(patterns) == 1 && patterns[0] == "" && !opt.extended {
		// The hierarchy delimiter and root (RFC 3501 6.3.8).
		c.w.Raw("* ").Raw(cmd.name).Raw(` (\Noselect) "/" ""`).CRLF()
		return nil
	}
	return c.list(cmd.name, ref, patterns, &opt)
}

// list writes the LIST (or LSUB) responses of the mailboxes matching.
func (c *conn) list(resp, ref string, patterns []string, opt *listOptions) error {
	boxes, err := c.srv.st.Mailboxes(c.ctx, c.account)
	if err != nil {
		return c.storeError(err, "NONEXISTENT")
	}
	children := map[string]bool{}
	subscribedChild := map[string]bool{}
	for i := range boxes {
		b := &boxes[i]
		for j := 0; j < len(b.Name); j++ {
			if b.Name[j] == '/' {
				children[b.Name[:j]] = true
				if b.Subscribed {
					subscribedChild[b.Name[:j]] = true
				}
			}
		}
	}
	matches := func(name string) bool {
		for _, p := range patterns {
			if listMatch(name, ref, p) {
				return true
			}
		}
		return false
	}
	// Names to list: the mailboxes, and for LSUB and (SUBSCRIBED) the
	// parents of subscribed mailboxes that do not exist or are not
	// subscribed (with \Noselect / \NonExistent, CHILDINFO).
	type entry struct {
		name  string
		box   *store.Mailbox
		attrs []string
		child bool // CHILDINFO ("SUBSCRIBED")
	}
	var out []entry
	listed := map[string]bool{}
	for i := range boxes {
		b := &boxes[i]
		if !matches(b.Name) {
			continue
		}
		e := entry{name: b.Name, box: b}
		if opt.selectSubscribed && !b.Subscribed {
			if !opt.selectRecursive || !subscribedChild[b.Name] {
				if resp != "LSUB" || !subscribedChild[b.Name] {
					continue
				}
				// LSUB %: a parent of subscribed mailboxes (RFC 3501 6.3.9).
				e.attrs = append(e.attrs, `\Noselect`)
			}
			e.child = opt.selectRecursive
		}
		if opt.selectSpecialUse && b.SpecialUse == "" {
			continue
		}
		listed[b.Name] = true
		out = append(out, e)
	}
	for _, e := range out {
		b := e.box
		attrs := e.attrs
		if resp == "LIST" || opt.returnChildren {
			if children[b.Name] {
				attrs = append(attrs, `\HasChildren`)
			} else {
				attrs = append(attrs, `\HasNoChildren`)
			}
		}
		if b.SpecialUse != "" && resp == "LIST" {
			attrs = append(attrs, b.SpecialUse)
		}
		if b.Subscribed && resp == "LIST" && (opt.returnSubscribed || opt.selectSubscribed) {
			attrs = append(attrs, `\Subscribed`)
		}
		c.w.Raw("* ").Raw(resp).Raw(" (").Raw(strings.Join(attrs, " ")).Raw(`) "/" `)
		c.mailboxName(b.Name)
		if e.child {
			c.w.Raw(` ("CHILDINFO" ("SUBSCRIBED"))`)
		}
		c.w.CRLF()
		if opt.status != nil && !hasFlag(attrs, `\Noselect`) {
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
