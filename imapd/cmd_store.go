package imapd

import (
	"errors"
	"strings"

	"yubin/internal/imapwire"
	"yubin/store"
)

// Commands that change the selected mailbox's messages: STORE, COPY, MOVE
// (RFC 6851), EXPUNGE and UID EXPUNGE (UIDPLUS, RFC 4315).
func init() {
	register("STORE", commandSpec{run: (*conn).cmdStore, states: selState, uid: true, updates: true, noExpunge: true})
	register("COPY", commandSpec{run: (*conn).cmdCopy, states: selState, uid: true, updates: true})
	register("MOVE", commandSpec{run: (*conn).cmdCopy, states: selState, uid: true, updates: true})
	register("EXPUNGE", commandSpec{run: (*conn).cmdExpunge, states: selState, uid: true, updates: true})
}

func hasFlagFold(flags []string, f string) bool {
	for _, g := range flags {
		if strings.EqualFold(g, f) {
			return true
		}
	}
	return false
}

// changing resolves the messages a command that changes the selected
// mailbox names; none (nil, nil) means there is nothing to do.
func (c *conn) changing(set imapwire.NumSet, uid bool) ([]int, error) {
	if c.sel.readOnly {
		return nil, no("", "Mailbox is read-only (EXAMINE)")
	}
	return c.sel.resolve(set, uid)
}

func (c *conn) cmdStore(cmd *command) error {
	set, err := arg(c, c.r.NumSet)
	if err != nil {
		return err
	}
	if err := c.r.SP(); err != nil {
		return err
	}
	// (UNCHANGEDSINCE n): RFC 7162 3.1.3.
	var unchangedSince uint64
	conditional := false
	if c.r.Peek() == '(' {
		if err := c.r.List(func() error {
			name, err := c.r.Atom()
			if err != nil {
				return err
			}
			if !strings.EqualFold(name, "UNCHANGEDSINCE") {
				return bad("Unknown STORE modifier %s", name)
			}
			if err := c.r.SP(); err != nil {
				return err
			}
			unchangedSince, err = c.r.Number64()
			conditional = true
			return err
		}); err != nil {
			return err
		}
		if err := c.r.SP(); err != nil {
			return err
		}
		c.enabled["CONDSTORE"] = true
	}
	item, err := c.r.Atom()
	if err != nil {
		return err
	}
	var op store.FlagOp
	item = strings.ToUpper(item)
	silent := strings.HasSuffix(item, ".SILENT")
	switch strings.TrimSuffix(item, ".SILENT") {
	case "FLAGS":
		op = store.FlagsReplace
	case "+FLAGS":
		op = store.FlagsAdd
	case "-FLAGS":
		op = store.FlagsRemove
	default:
		return bad("Unknown STORE item %s", item)
	}
	if err := c.r.SP(); err != nil {
		return err
	}
	var flags []string
	readFlag := func() error {
		f, err := c.r.Flag()
		if err != nil {
			return err
		}
		if f == `\*` {
			return bad(`\* is not a flag`)
		}
		if !strings.EqualFold(f, `\Recent`) {
			flags = append(flags, canonicalFlag(f))
		}
		return nil
	}
	if c.r.Peek() == '(' {
		err = c.r.List(readFlag)
	} else {
		for err = readFlag(); err == nil && c.r.Peek() == ' '; {
			c.r.SP()
			err = readFlag()
		}
	}
	if err != nil {
		return err
	}
	if err := c.r.End(); err != nil {
		return err
	}
	v := c.sel
	idx, err := c.changing(set, cmd.uid)
	if err != nil || len(idx) == 0 {
		return err
	}
	var msgs []store.MessageInfo
	var failed []uint32
	if conditional {
		msgs, failed, err = c.srv.st.SetFlagsIf(c.ctx, c.account, v.name, v.uidsAt(idx), op, flags, unchangedSince)
	} else {
		msgs, err = c.srv.st.SetFlags(c.ctx, c.account, v.name, v.uidsAt(idx), op, flags)
	}
	if errors.Is(err, store.ErrInvalid) {
		return bad("Invalid flag: %s", reason(err))
	}
	if err != nil {
		return c.storeError(err, "NONEXISTENT")
	}
	v.dropOwnFlags(msgs)
	c.trainFlags(v.name, op, flags, msgs)
	c.newKeywords(flags)
	modseq := c.enabled["CONDSTORE"]
	for _, m := range msgs {
		c.newKeywords(m.Flags) // keywords others set on it
		v.tell(m.UID, m.ModSeq)
		seq := v.seqOf(m.UID)
		if seq == 0 || silent && !modseq {
			continue
		}
		// With CONDSTORE, .SILENT still reports the new MODSEQ (RFC
		// 7162 3.1.3).
		c.w.Raw("* ").Num(seq).Raw(" FETCH (")
		if cmd.uid {
			c.w.Raw("UID ").Num(m.UID).SP()
		}
		if !silent {
			c.w.Raw("FLAGS ")
			c.flagList(c.withRecent(m.UID, m.Flags))
			if modseq {
				c.w.SP()
			}
		}
		if modseq {
			c.w.Raw("MODSEQ (").Num64(m.ModSeq).Raw(")")
		}
		c.w.Raw(")").CRLF()
	}
	if len(failed) > 0 {
		// The numbers of the messages not stored, as the client named
		// them.
		nums := failed
		if !cmd.uid {
			nums = make([]uint32, 0, len(failed))
			for _, uid := range failed {
				if seq := v.seqOf(uid); seq != 0 {
					nums = append(nums, seq)
				}
			}
		}
		return okCode("MODIFIED "+imapwire.Compact(nums), "Conditional STORE failed for some messages")
	}
	return c.w.Err()
}

// systemFlagCase gives system flags their usual spelling.
var systemFlagCase = map[string]string{`\answered`: `\Answered`, `\flagged`: `\Flagged`, `\deleted`: `\Deleted`,
	`\seen`: `\Seen`, `\draft`: `\Draft`, `\recent`: `\Recent`}

func canonicalFlag(f string) string {
	if strings.HasPrefix(f, `\`) {
		if s, ok := systemFlagCase[strings.ToLower(f)]; ok {
			return s
		}
	}
	return f
}

// newKeywords sends FLAGS and PERMANENTFLAGS again when a keyword the
// mailbox had not used appears (RFC 3501 7.2.6).
func (c *conn) newKeywords(flags []string) {
	v := c.sel
	if v == nil {
		return
	}
	added := false
	for _, f := range flags {
		if !strings.HasPrefix(f, `\`) && !v.keywords[f] {
			if v.keywords == nil {
				v.keywords = map[string]bool{}
			}
			v.keywords[f] = true
			added = true
		}
	}
	if !added {
		return
	}
	all := append([]string(nil), systemFlags...)
	for _, k := range sortedKeys(v.keywords) {
		all = append(all, k)
	}
	c.w.Raw("* FLAGS ")
	c.flagList(all)
	c.w.CRLF()
	if !v.readOnly {
		c.w.Raw("* OK [PERMANENTFLAGS ")
		c.flagList(append(all, `\*`))
		c.w.Raw("] Flags permitted").CRLF()
	}
}

func (c *conn) cmdCopy(cmd *command) error {
	set, err := arg(c, c.r.NumSet)
	if err != nil {
		return err
	}
	dest, err := c.mailboxArg()
	if err != nil {
		return err
	}
	if err := c.r.End(); err != nil {
		return err
	}
	v := c.sel
	move := cmd.name == "MOVE"
	var idx []int
	if move {
		idx, err = c.changing(set, cmd.uid)
	} else {
		idx, err = v.resolve(set, cmd.uid)
	}
	if err != nil {
		return err
	}
	if _, err := c.srv.st.Mailbox(c.ctx, c.account, dest); err != nil {
		return c.storeError(err, "TRYCREATE")
	}
	if len(idx) == 0 {
		return nil
	}
	var res store.CopyResult
	if move && dest == v.name {
		// A move into the same mailbox: the messages get new UIDs, as a
		// copy and an expunge would give them (Dovecot does the same).
		res, err = c.srv.st.CopyMessages(c.ctx, c.account, v.name, dest, v.uidsAt(idx))
		if err == nil && len(res.Source) > 0 {
			_, err = c.srv.st.Expunge(c.ctx, c.account, v.name, res.Source)
		}
	} else if move {
		res, err = c.srv.st.MoveMessages(c.ctx, c.account, v.name, dest, v.uidsAt(idx))
	} else {
		res, err = c.srv.st.CopyMessages(c.ctx, c.account, v.name, dest, v.uidsAt(idx))
	}
	if err != nil {
		return c.storeError(err, "TRYCREATE")
	}
	if len(res.Source) == 0 {
		return nil
	}
	c.trainMoved(v.name, dest, res)
	if !move {
		c.usageGrew()
	}
	code := "COPYUID " + itoa(res.UIDValidity) + " " + imapwire.Compact(res.Source) + " " + imapwire.Compact(res.Dest)
	if !move {
		return okCode(code, "COPY completed")
	}
	// MOVE: COPYUID comes untagged before the expunges (RFC 6851 4.3).
	c.untagged("OK [" + code + "] Moved")
	if err := v.expunged(c, res.Source); err != nil {
		return err
	}
	return nil
}

// usageGrew tells the server that this account's usage went up.
func (c *conn) usageGrew() {
	if f := c.srv.cfg.UsageGrew; f != nil {
		f(c.ctx, c.account)
	}
}

func (c *conn) cmdExpunge(cmd *command) error {
	var only map[uint32]bool
	if cmd.uid {
		set, err := arg(c, c.r.NumSet)
		if err != nil {
			return err
		}
		if c.sel != nil && len(c.sel.uids) > 0 {
			only = map[uint32]bool{}
			for _, i := range mustResolve(c.sel, set) {
				only[c.sel.uids[i]] = true
			}
		} else {
			only = map[uint32]bool{}
		}
	}
	if err := c.r.End(); err != nil {
		return err
	}
	if c.sel.readOnly {
		return nil // EXAMINE: nothing is expunged
	}
	return c.expungeDeleted(only, true)
}

func mustResolve(v *view, set imapwire.NumSet) []int {
	idx, _ := v.resolve(set, true)
	return idx
}
