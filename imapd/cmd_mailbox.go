package imapd

import (
	"errors"
	"fmt"
	"strings"

	"yubin/internal/imapwire"

	"yubin/store"
)

// Commands on mailboxes (RFC 3501 6.3, with NAMESPACE, QUOTA, UNSELECT).
func init() {
	register("SELECT", commandSpec{run: (*conn).cmdSelect, states: authState})
	register("EXAMINE", commandSpec{run: (*conn).cmdSelect, states: authState})
	register("CREATE", commandSpec{run: (*conn).cmdCreate, states: authState, updates: true})
	register("DELETE", commandSpec{run: (*conn).cmdDelete, states: authState, updates: true})
	register("RENAME", commandSpec{run: (*conn).cmdRename, states: authState, updates: true})
	register("SUBSCRIBE", commandSpec{run: (*conn).cmdSubscribe, states: authState, updates: true})
	register("UNSUBSCRIBE", commandSpec{run: (*conn).cmdSubscribe, states: authState, updates: true})
	register("NAMESPACE", commandSpec{run: (*conn).cmdNamespace, states: authState, updates: true})
	register("GETQUOTA", commandSpec{run: (*conn).cmdGetQuota, states: authState, updates: true})
	register("GETQUOTAROOT", commandSpec{run: (*conn).cmdGetQuota, states: authState, updates: true})
	register("CHECK", commandSpec{run: (*conn).cmdNoop, states: selState, updates: true})
	register("CLOSE", commandSpec{run: (*conn).cmdClose, states: selState})
	register("UNSELECT", commandSpec{run: (*conn).cmdClose, states: selState})
}

// storeError maps a store error to a reply; missing is the code for a
// mailbox that does not exist (NONEXISTENT, or TRYCREATE for COPY/APPEND).
func (c *conn) storeError(err error, missing string) error {
	var qe *store.QuotaError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &qe):
		return no("OVERQUOTA", "Quota exceeded: %d of %d bytes used, %d more needed", qe.Used, qe.Quota, qe.Need)
	case errors.Is(err, store.ErrNoSuchMailbox):
		return no(missing, "No such mailbox")
	case errors.Is(err, store.ErrExists):
		return no("ALREADYEXISTS", "Mailbox already exists")
	case errors.Is(err, store.ErrHasChildren):
		return no("HASCHILDREN", "Mailbox has child mailboxes; delete them first")
	case errors.Is(err, store.ErrInvalid):
		return no("CANNOT", "%s", reason(err))
	case errors.Is(err, store.ErrLimit):
		return no("LIMIT", "%s", reason(err))
	case errors.Is(err, store.ErrNoSuchMessage):
		return no("NONEXISTENT", "Message was expunged")
	case errors.Is(err, store.ErrClosed):
		return &status{kind: "BYE", text: "Server shutting down"}
	}
	c.log.Error("store error", "err", err)
	return no("SERVERBUG", "Internal error")
}

// reason is a store error's text after its kind ("invalid request: ...").
func reason(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return msg
}

// checkName validates a mailbox name for CREATE and RENAME.
func checkName(name string) error {
	if err := store.CheckMailboxName(strings.TrimSuffix(name, store.HierarchySeparator)); err != nil {
		return no("CANNOT", "Invalid mailbox name: %s", reason(err))
	}
	return nil
}

func canonical(name string) string { return store.CanonicalMailbox(name) }

func hasFlag(flags []string, f string) bool {
	for _, g := range flags {
		if g == f {
			return true
		}
	}
	return false
}

var systemFlags = []string{`\Answered`, `\Flagged`, `\Deleted`, `\Seen`, `\Draft`}

// unselect closes the selected mailbox, if any.
func (c *conn) unselect() {
	if c.sel != nil {
		c.sel.close()
		c.sel = nil
	}
	if c.state == stateSelected {
		c.state = stateAuth
	}
}

// selectParams are SELECT/EXAMINE's parameters (RFC 7162: CONDSTORE,
// QRESYNC).
type selectParams struct {
	condstore bool
	qresync   *qresyncParams
}

// qresyncParams is QRESYNC's (uidvalidity modseq [known-uids
// [(seq-match-data)]]).
type qresyncParams struct {
	uidValidity uint32
	modSeq      uint64
	knownUIDs   *imapwire.NumSet
	seqs, uids  *imapwire.NumSet
}

func (c *conn) readSelectParams() (selectParams, error) {
	var p selectParams
	if c.r.AtEnd() {
		return p, nil
	}
	if err := c.r.SP(); err != nil {
		return p, err
	}
	err := c.r.List(func() error {
		name, err := c.r.Atom()
		if err != nil {
			return err
		}
		switch strings.ToUpper(name) {
		case "CONDSTORE":
			p.condstore = true
		case "QRESYNC":
			if !c.enabled["QRESYNC"] {
				return bad("QRESYNC is not enabled")
			}
			q := &qresyncParams{}
			if err := c.r.SP(); err != nil {
				return err
			}
			if err := c.r.Byte('(', "'('"); err != nil {
				return err
			}
			if q.uidValidity, err = c.r.Number(); err != nil {
				return err
			}
			if err := c.r.SP(); err != nil {
				return err
			}
			if q.modSeq, err = c.r.Number64(); err != nil {
				return err
			}
			if c.r.Maybe(' ') {
				if c.r.Peek() != '(' {
					set, err := c.r.NumSet()
					if err != nil {
						return err
					}
					q.knownUIDs = &set
					c.r.Maybe(' ')
				}
				if c.r.Peek() == '(' {
					c.r.Byte('(', "'('")
					seqs, err := c.r.NumSet()
					if err != nil {
						return err
					}
					if err := c.r.SP(); err != nil {
						return err
					}
					uids, err := c.r.NumSet()
					if err != nil {
						return err
					}
					if err := c.r.Byte(')', "')'"); err != nil {
						return err
					}
					q.seqs, q.uids = &seqs, &uids
				}
			}
			if err := c.r.Byte(')', "')'"); err != nil {
				return err
			}
			p.qresync = q
		default:
			return bad("Unknown SELECT parameter %s", name)
		}
		return nil
	})
	return p, err
}

func (c *conn) cmdSelect(cmd *command) error {
	name, err := c.mailboxArg()
	if err != nil {
		return err
	}
	params, err := c.readSelectParams()
	if err != nil {
		return err
	}
	if err := c.r.End(); err != nil {
		return err
	}
	if params.condstore {
		c.enabled["CONDSTORE"] = true
	}
	readOnly := cmd.name == "EXAMINE"
	hadSel := c.sel != nil
	c.unselect()
	if hadSel && (c.enabled["CONDSTORE"] || c.enabled["QRESYNC"]) {
		// RFC 7162 3.2.11: say where the old mailbox's updates end.
		c.untagged("OK [CLOSED] Previous mailbox closed")
	}
	v, msgs, meta, err := openView(c.ctx, c.srv.st, c.account, name, readOnly)
	if err != nil {
		return c.storeError(err, "NONEXISTENT")
	}
	if readOnly {
		v.addRecent(meta.FirstRecent, ^uint32(0))
	} else {
		first, m, err := c.srv.st.ClaimRecent(c.ctx, c.account, v.name)
		if err != nil {
			v.close()
			return c.storeError(err, "NONEXISTENT")
		}
		if m.UIDValidity == v.uidValidity {
			v.addRecent(first, m.UIDNext)
		}
	}
	c.sel = v
	c.state = stateSelected
	flags := append([]string(nil), systemFlags...)
	seen := map[string]bool{}
	var firstUnseen uint32
	for i, m := range msgs {
		isSeen := false
		for _, f := range m.Flags {
			if f == `\Seen` {
				isSeen = true
			}
			if !strings.HasPrefix(f, `\`) && !seen[f] {
				seen[f] = true
				flags = append(flags, f)
			}
		}
		if !isSeen && firstUnseen == 0 {
			firstUnseen = uint32(i + 1)
		}
	}
	v.keywords = seen
	c.w.Raw("* FLAGS ")
	c.flagList(flags)
	c.w.CRLF()
	c.w.Raw("* ").Num(uint32(len(msgs))).Raw(" EXISTS").CRLF()
	c.w.Raw("* ").Num(v.recentCount()).Raw(" RECENT").CRLF()
	if firstUnseen > 0 {
		c.w.Raw("* OK [UNSEEN ").Num(firstUnseen).Raw("] First unseen").CRLF()
	}
	c.w.Raw("* OK [UIDVALIDITY ").Num(meta.UIDValidity).Raw("] UIDs valid").CRLF()
	c.w.Raw("* OK [UIDNEXT ").Num(meta.UIDNext).Raw("] Predicted next UID").CRLF()
	if readOnly {
		c.w.Raw("* OK [PERMANENTFLAGS ()] Read-only mailbox").CRLF()
	} else {
		c.w.Raw("* OK [PERMANENTFLAGS ")
		c.flagList(append(flags, `\*`))
		c.w.Raw("] Flags permitted").CRLF()
	}
	if c.enabled["CONDSTORE"] {
		c.w.Raw("* OK [HIGHESTMODSEQ ").Num64(meta.HighestModSeq).Raw("] Highest").CRLF()
	}
	if q := params.qresync; q != nil && q.uidValidity == meta.UIDValidity {
		if err := c.qresync(q, msgs); err != nil {
			return err
		}
	}
	if readOnly {
		return okCode("READ-ONLY", "EXAMINE completed")
	}
	return okCode("READ-WRITE", "SELECT completed")
}

// qresync tells a client what changed since the mod-sequence it knows
// (RFC 7162 3.2.5): the UIDs expunged since (VANISHED (EARLIER)), and the
// flags of the messages changed since.
func (c *conn) qresync(q *qresyncParams, msgs []store.MessageInfo) error {
	v := c.sel
	gone, err := c.srv.st.Expunged(c.ctx, c.account, v.name, q.modSeq)
	if err != nil {
		return c.storeError(err, "NONEXISTENT")
	}
	if q.knownUIDs != nil {
		var max uint32
		if n := len(v.uids); n > 0 {
			max = v.uids[n-1]
		}
		keep := gone[:0]
		for _, uid := range gone {
			if q.knownUIDs.Contains(uid, max) {
				keep = append(keep, uid)
			}
		}
		gone = keep
	}
	if len(gone) > 0 {
		c.w.Raw("* VANISHED (EARLIER) ").Raw(imapwire.Compact(gone)).CRLF()
	}
	for i, m := range msgs {
		if m.ModSeq <= q.modSeq {
			continue
		}
		c.sel.tell(m.UID, m.ModSeq)
		c.w.Raw("* ").Num(uint32(i + 1)).Raw(" FETCH (UID ").Num(m.UID).Raw(" FLAGS ")
		c.flagList(c.withRecent(m.UID, m.Flags))
		c.w.Raw(" MODSEQ (").Num64(m.ModSeq).Raw("))").CRLF()
	}
	return c.w.Err()
}

func (c *conn) cmdClose(cmd *command) error {
	if err := c.r.End(); err != nil {
		return err
	}
	if cmd.name == "CLOSE" && !c.sel.readOnly {
		// CLOSE expunges silently (RFC 3501 6.4.2).
		if err := c.expungeDeleted(nil, false); err != nil {
			return err
		}
	}
	c.unselect()
	return nil
}

// expungeDeleted expunges the selected mailbox's messages flagged
// \Deleted (only those with UIDs in only, when not nil), telling the
// client with EXPUNGE responses when tell.
func (c *conn) expungeDeleted(only map[uint32]bool, tell bool) error {
	v := c.sel
	msgs, _, err := c.srv.st.MessagesByUID(c.ctx, c.account, v.name, v.uids)
	if err != nil {
		return c.storeError(err, "NONEXISTENT")
	}
	var del []uint32
	for _, m := range msgs {
		if hasFlag(m.Flags, `\Deleted`) && (only == nil || only[m.UID]) {
			del = append(del, m.UID)
		}
	}
	if len(del) == 0 {
		return nil
	}
	gone, err := c.srv.st.Expunge(c.ctx, c.account, v.name, del)
	if err != nil {
		return c.storeError(err, "NONEXISTENT")
	}
	if !tell {
		return nil
	}
	return v.expunged(c, gone)
}

// expunged removes UIDs this session expunged and says so.
func (v *view) expunged(w updateWriter, uids []uint32) error {
	for _, uid := range uids {
		seq := v.seqOf(uid)
		if seq == 0 {
			continue
		}
		v.remove(seq)
		if err := w.WriteExpunge(seq, uid); err != nil {
			return err
		}
	}
	return nil
}

func (c *conn) cmdCreate(cmd *command) error {
	name, err := c.mailboxArg()
	if err != nil {
		return err
	}
	if !c.r.AtEnd() {
		// CREATE-SPECIAL-USE and other options are not offered.
		return bad("CREATE takes one argument")
	}
	if err := checkName(name); err != nil {
		return err
	}
	_, err = c.srv.st.CreateMailbox(c.ctx, c.account, name)
	return c.storeError(err, "NONEXISTENT")
}

func (c *conn) cmdDelete(cmd *command) error {
	name, err := c.mailboxArg()
	if err != nil {
		return err
	}
	if err := c.r.End(); err != nil {
		return err
	}
	if name == "INBOX" {
		return no("CANNOT", "INBOX cannot be deleted")
	}
	return c.storeError(c.srv.st.DeleteMailbox(c.ctx, c.account, name), "NONEXISTENT")
}

func (c *conn) cmdRename(cmd *command) error {
	from, err := c.mailboxArg()
	if err != nil {
		return err
	}
	to, err := c.mailboxArg()
	if err != nil {
		return err
	}
	if err := c.r.End(); err != nil {
		return err
	}
	if err := checkName(to); err != nil {
		return err
	}
	return c.storeError(c.srv.st.RenameMailbox(c.ctx, c.account, from, to), "NONEXISTENT")
}

func (c *conn) cmdSubscribe(cmd *command) error {
	name, err := c.mailboxArg()
	if err != nil {
		return err
	}
	if err := c.r.End(); err != nil {
		return err
	}
	return c.storeError(c.srv.st.SetSubscribed(c.ctx, c.account, name, cmd.name == "SUBSCRIBE"), "NONEXISTENT")
}

func (c *conn) cmdNamespace(cmd *command) error {
	if err := c.r.End(); err != nil {
		return err
	}
	c.untagged(`NAMESPACE (("" "/")) NIL NIL`)
	return nil
}

// cmdGetQuota answers GETQUOTA and GETQUOTAROOT (RFC 9208) for the
// logged-in account. Every mailbox of an account shares one quota root,
// "", with one resource: STORAGE in units of 1024 bytes. An account
// without a quota has no quota root.
func (c *conn) cmdGetQuota(cmd *command) error {
	var name string
	var err error
	if cmd.name == "GETQUOTA" {
		name, err = arg(c, c.r.AString)
	} else {
		name, err = c.mailboxArg()
	}
	if err != nil {
		return err
	}
	if err := c.r.End(); err != nil {
		return err
	}
	acct, err := c.srv.st.Account(c.ctx, c.account)
	if err != nil {
		return c.storeError(err, "NONEXISTENT")
	}
	var quota string
	if acct.Quota > 0 {
		quota = fmt.Sprintf(`QUOTA "" (STORAGE %d %d)`, (acct.Used+1023)/1024, acct.Quota/1024)
	}
	if cmd.name == "GETQUOTA" {
		if name != "" || quota == "" {
			return no("NONEXISTENT", "No such quota root")
		}
		c.untagged(quota)
		return nil
	}
	if _, err := c.srv.st.Mailbox(c.ctx, c.account, name); err != nil {
		return c.storeError(err, "NONEXISTENT")
	}
	c.w.Raw("* QUOTAROOT ")
	c.mailboxName(name)
	if quota != "" {
		c.w.Raw(` ""`).CRLF()
		c.untagged(quota)
	} else {
		c.w.CRLF()
	}
	return nil
}
