package imapd

import (
	"strings"

	"yubin/store"
)

// Training is what a user's command says about messages for the spam
// filter (SPEC section 10): moved or copied into Junk, or flagged $Junk,
// they are spam; moved or copied out of Junk into another mailbox than
// Trash, flagged $NotJunk, or read (\Seen) outside Junk and Trash, they
// are ham. Mailbox and UIDs say where the messages are now.
type Training struct {
	Account string
	Mailbox string
	UIDs    []uint32
	Spam    bool
}

// Keywords for spam and not spam, as mail clients set them (Thunderbird,
// Apple Mail; RFC 5788's registry).
const (
	KeywordJunk    = "$Junk"
	KeywordNotJunk = "$NotJunk"
)

// train tells Config.Train about messages.
func (c *conn) train(mailbox string, uids []uint32, spam bool) {
	if f := c.srv.cfg.Train; f != nil && len(uids) > 0 {
		f(Training{Account: c.account, Mailbox: mailbox, UIDs: uids, Spam: spam})
	}
}

// specialUse says whether a mailbox is the account's Junk (or Trash)
// mailbox: by its special use, or by its name.
func (c *conn) specialUse(name, use, usual string) bool {
	if strings.EqualFold(name, usual) {
		return true
	}
	m, err := c.srv.st.Mailbox(c.ctx, c.account, name)
	return err == nil && m.SpecialUse == use
}

func (c *conn) isJunk(name string) bool  { return c.specialUse(name, `\Junk`, "Junk") }
func (c *conn) isTrash(name string) bool { return c.specialUse(name, `\Trash`, "Trash") }

// trainMoved is the training of a COPY or MOVE from src to dst.
func (c *conn) trainMoved(src, dst string, res store.CopyResult) {
	if c.srv.cfg.Train == nil {
		return
	}
	switch {
	case c.isJunk(dst):
		c.train(dst, res.Dest, true)
	case c.isJunk(src) && !c.isTrash(dst):
		c.train(dst, res.Dest, false)
	}
}

// trainFlags is the training of flags set on messages of mailbox (STORE,
// or a FETCH that set \Seen): msgs as they are now.
func (c *conn) trainFlags(mailbox string, op store.FlagOp, flags []string, msgs []store.MessageInfo) {
	if c.srv.cfg.Train == nil || op == store.FlagsRemove || len(msgs) == 0 {
		return
	}
	uids := func(keep func(m store.MessageInfo) bool) []uint32 {
		var out []uint32
		for _, m := range msgs {
			if keep(m) {
				out = append(out, m.UID)
			}
		}
		return out
	}
	all := func(store.MessageInfo) bool { return true }
	switch {
	case hasFlagFold(flags, KeywordJunk):
		c.train(mailbox, uids(all), true)
	case hasFlagFold(flags, KeywordNotJunk):
		c.train(mailbox, uids(all), false)
	case hasFlagFold(flags, `\Seen`) && !c.isJunk(mailbox) && !c.isTrash(mailbox):
		c.train(mailbox, uids(func(m store.MessageInfo) bool { return !hasFlagFold(m.Flags, KeywordJunk) }), false)
	}
}
