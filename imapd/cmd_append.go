package imapd

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"yubin/internal/imapwire"
	"yubin/internal/spool"
	"yubin/store"
)

// APPEND (RFC 3501 6.3.11) with MULTIAPPEND (RFC 3502), CATENATE (RFC
// 4469), APPENDUID (UIDPLUS, RFC 4315) and BINARY's literal8 (RFC 3516
// 4.4).
//
// A message's literal is streamed into the spool (a small buffer in
// memory, the rest in a spool file), never held whole in memory, and
// stored from there. What cannot be taken — over APPENDLIMIT, over the
// account's quota, over the spool's budget of bytes in flight — is
// refused before the client sends a synchronizing literal, and a
// non-synchronizing one is read and dropped; the connection goes on.
//
// MULTIAPPEND is all or nothing: every message is spooled first, then all
// are stored in one store transaction.
func init() {
	register("APPEND", commandSpec{run: (*conn).cmdAppend, states: authState, updates: true})
	authCaps = append(authCaps, "MULTIAPPEND", "CATENATE")
}

// errAppendBudget is the answer to an APPEND that does not fit into the
// spool's budget of bytes in flight.
var errAppendBudget = no("LIMIT", "Too much APPEND data in flight on this server; try again later")

// copyBufs are the buffers APPEND literals are read through.
var copyBufs = sync.Pool{New: func() any { return new([16 << 10]byte) }}

// appendDate is RFC 3501's date-time, whose day may be space-padded.
const appendDate = "_2-Jan-2006 15:04:05 -0700"

// spooledMsg is one message of an APPEND.
type spooledMsg struct {
	flags []string
	date  time.Time
	msg   *spool.Message
	// binary: some of it came in a literal8, as it was (bare line feeds
	// and all); unbinary makes it storable.
	binary bool
}

// appender is an APPEND in progress.
type appender struct {
	c    *conn
	name string        // the target mailbox as the client named it
	box  store.Mailbox // the target, once looked up
	acct store.Account // for the quota
	have bool          // box and acct are set
	msgs []*spooledMsg
	// done is the size of the messages spooled before the current one.
	done int64
}

func (a *appender) close() {
	for _, m := range a.msgs {
		m.msg.Close()
	}
}

func (c *conn) cmdAppend(cmd *command) error {
	a := &appender{c: c}
	defer a.close()
	err := a.run()
	if err != nil && c.r.Err() == nil {
		// Refused: read and drop the non-synchronizing literals the client
		// sends anyway (under the literal clock, which a big one needs).
		c.dropLiterals()
	}
	return err
}

func (a *appender) run() error {
	c := a.c
	name, err := c.mailboxArg()
	if err != nil {
		return err
	}
	a.name = name
	for {
		if err := c.r.SP(); err != nil {
			return err
		}
		if err := a.message(); err != nil {
			return err
		}
		if c.r.AtEnd() {
			break
		}
	}
	return a.store()
}

// ready looks up the target mailbox and the account, once, before the
// first message's data: a missing mailbox is NO [TRYCREATE] before any
// literal is asked for.
func (a *appender) ready() error {
	if a.have {
		return nil
	}
	c := a.c
	box, err := c.srv.st.Mailbox(c.ctx, c.account, a.name)
	if err != nil {
		return c.storeError(err, "TRYCREATE")
	}
	acct, err := c.srv.st.Account(c.ctx, c.account)
	if err != nil {
		return c.storeError(err, "TRYCREATE")
	}
	a.box, a.acct, a.have = box, acct, true
	return nil
}

// message reads one message: [flag-list SP] [date-time SP] and its data
// (a literal, or CATENATE's parts), into the spool.
func (a *appender) message() error {
	c := a.c
	m := &spooledMsg{}
	if c.r.Peek() == '(' {
		var flags []string
		err := c.r.List(func() error {
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
		})
		if err != nil {
			return err
		}
		if m.flags, err = store.NormalizeFlags(flags); err != nil {
			return bad("Invalid flags: %s", reason(err))
		}
		if err := c.r.SP(); err != nil {
			return err
		}
	}
	if c.r.Peek() == '"' {
		s, err := c.r.Quoted()
		if err != nil {
			return err
		}
		if m.date, err = time.Parse(appendDate, s); err != nil {
			return bad("Invalid date-time %q", s)
		}
		if err := c.r.SP(); err != nil {
			return err
		}
	}
	if err := a.ready(); err != nil {
		return err
	}
	m.msg = c.srv.cfg.Spool.New()
	a.msgs = append(a.msgs, m)
	if c.r.AtLiteral() {
		l := c.r.Pending()
		if l.Size == 0 {
			return no("", "Cannot append an empty message")
		}
		if err := a.fits(m, l.Size); err != nil {
			return err
		}
		if err := c.streamLiteral(m.literalWriter(l.Binary)); err != nil {
			return err
		}
	} else {
		kind, err := c.r.Atom()
		if err != nil {
			return bad("Expected a literal or CATENATE")
		}
		if !strings.EqualFold(kind, "CATENATE") {
			return bad("Expected a literal or CATENATE, got %s", kind)
		}
		if err := c.r.SP(); err != nil {
			return err
		}
		if err := c.r.List(func() error { return a.catPart(m) }); err != nil {
			return err
		}
		if m.msg.Size() == 0 {
			return no("", "Cannot append an empty message")
		}
	}
	if m.binary {
		if err := a.unbinary(m); err != nil {
			return err
		}
	}
	a.done += m.msg.Size()
	return nil
}

// literalWriter is where a literal's bytes go: as they are for a literal8
// (a binary part's line feeds are data; unbinary sorts them out),
// otherwise with bare line feeds made CRLF.
func (m *spooledMsg) literalWriter(binary bool) io.Writer {
	if binary {
		m.binary = true
		return m.msg
	}
	return &spool.CRLFWriter{W: m.msg}
}

// fits checks, before more bytes of m are taken, that the message stays
// within APPENDLIMIT and that all of them fit into the quota and the
// spool's budget.
func (a *appender) fits(m *spooledMsg, more int64) error {
	size := m.msg.Size() + more
	if limit := a.c.srv.cfg.AppendLimit; size > limit {
		return no("TOOBIG", "Message is larger than %d bytes", limit)
	}
	if q := a.acct.Quota; q > 0 && a.acct.Used+a.done+size > q {
		return a.c.storeError(&store.QuotaError{Account: a.acct.Address, Quota: q, Used: a.acct.Used, Need: a.done + size}, "")
	}
	if !a.c.srv.cfg.Spool.Fits(more) {
		return a.c.budgetRefused()
	}
	return nil
}

// catPart reads one CATENATE part (RFC 4469): TEXT literal, or URL of a
// message (part) of this account.
func (a *appender) catPart(m *spooledMsg) error {
	c := a.c
	kind, err := c.r.Atom()
	if err != nil {
		return err
	}
	if err := c.r.SP(); err != nil {
		return err
	}
	switch strings.ToUpper(kind) {
	case "TEXT":
		l := c.r.Pending()
		if l == nil {
			return bad("TEXT needs a literal")
		}
		if err := a.fits(m, l.Size); err != nil {
			return err
		}
		return c.streamLiteral(m.literalWriter(l.Binary))
	case "URL":
		u, err := c.r.AString()
		if err != nil {
			return err
		}
		return a.catURL(m, u)
	}
	return bad("Unknown CATENATE part %s", kind)
}

// catURL appends what an IMAP URL names to m, byte for byte.
func (a *appender) catURL(m *spooledMsg, raw string) error {
	c := a.c
	u, why := parseIMAPURL(raw, c.account, c.srv.cfg.Hostname)
	if why != "" {
		return badURL(raw, why)
	}
	box, err := a.urlMailbox(u.mailbox)
	if err != nil {
		return badURL(raw, "no such mailbox")
	}
	if u.uidValidity != 0 && u.uidValidity != box.UIDValidity {
		return badURL(raw, "UIDVALIDITY does not match")
	}
	r, info, err := c.srv.st.OpenMessage(c.ctx, c.account, box.Name, u.uid)
	if errors.Is(err, store.ErrNoSuchMessage) {
		return badURL(raw, "no such message")
	}
	if err != nil {
		return c.storeError(err, "")
	}
	defer r.Close()
	if u.section == nil && u.partial == nil {
		// The whole message: streamed.
		if err := a.fits(m, info.Size); err != nil {
			return err
		}
		tw := &trackWriter{w: m.msg}
		_, err := io.Copy(tw, r)
		switch {
		case tw.err != nil:
			return c.spoolError(tw.err)
		case err != nil:
			return c.storeError(err, "")
		}
		return nil
	}
	// A section or a range: cut from the message in memory (it fitted
	// into the store, and is read once).
	if info.Size > c.srv.cfg.AppendLimit {
		return no("TOOBIG", "Message is larger than %d bytes", c.srv.cfg.AppendLimit)
	}
	whole, err := io.ReadAll(io.LimitReader(r, info.Size))
	if err != nil {
		return c.storeError(err, "")
	}
	b := whole
	if u.section != nil {
		b = imapserver.ExtractBodySection(bytes.NewReader(whole), u.section)
		if b == nil && len(u.section.Part) > 0 {
			// Nothing: an empty section, or a part that does not exist?
			// An existing part has a MIME header, if only its empty line.
			mime := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierMIME, Part: u.section.Part}
			if imapserver.ExtractBodySection(bytes.NewReader(whole), mime) == nil {
				return badURL(raw, "no such section")
			}
		}
	}
	if p := u.partial; p != nil {
		if p.Offset >= int64(len(b)) {
			b = nil
		} else {
			b = b[p.Offset:]
			if p.Size >= 0 && p.Size < int64(len(b)) {
				b = b[:p.Size]
			}
		}
	}
	if err := a.fits(m, int64(len(b))); err != nil {
		return err
	}
	if _, err := m.msg.Write(b); err != nil {
		return c.spoolError(err)
	}
	return nil
}

// urlMailbox looks up a URL's mailbox: UTF-8 (RFC 5092), or modified
// UTF-7 as in commands (RFC 2192, and clients that copy names over).
func (a *appender) urlMailbox(name string) (store.Mailbox, error) {
	c := a.c
	var tried []string
	if dec, err := decodeMailboxName(name); err == nil {
		tried = append(tried, canonical(dec))
	}
	tried = append(tried, canonical(name))
	var err error
	for i, n := range tried {
		if i > 0 && n == tried[0] {
			break
		}
		var box store.Mailbox
		if box, err = c.srv.st.Mailbox(c.ctx, c.account, n); err == nil {
			return box, nil
		}
	}
	return store.Mailbox{}, err
}

// badURL is CATENATE's answer to a URL it cannot use (RFC 4469 5).
func badURL(raw, why string) error {
	clean := strings.Map(func(r rune) rune {
		if r == ']' || r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, raw)
	return no("BADURL "+clean, "Bad URL: %s", why)
}

// imapURL is a CATENATE URL, resolved against this session.
type imapURL struct {
	mailbox     string
	uidValidity uint32 // 0: not given
	uid         uint32
	section     *imap.FetchItemBodySection // nil: the whole message
	partial     *imap.SectionPartial       // Size -1: to the end
}

// parseIMAPURL parses an IMAP URL naming a message or a part of one (RFC
// 5092): relative ("/INBOX;UIDVALIDITY=1/;UID=2/;SECTION=1.TEXT"), or
// absolute on this server for this account. why says what is wrong with
// it.
func parseIMAPURL(raw, account, host string) (u imapURL, why string) {
	s := raw
	if len(s) >= 7 && strings.EqualFold(s[:7], "imap://") {
		s = s[7:]
		slash := strings.IndexByte(s, '/')
		if slash < 0 {
			return u, "no message in it"
		}
		server := s[:slash]
		s = s[slash:]
		if at := strings.LastIndexByte(server, '@'); at >= 0 {
			user := server[:at]
			server = server[at+1:]
			if i := strings.IndexByte(user, ';'); i >= 0 {
				user = user[:i] // ;AUTH=...
			}
			if user != "" {
				dec, err := url.PathUnescape(user)
				if err != nil || !strings.EqualFold(dec, account) {
					return u, "another user's"
				}
			}
		}
		if i := strings.LastIndexByte(server, ':'); i >= 0 && !strings.HasSuffix(server, "]") {
			server = server[:i]
		}
		if !strings.EqualFold(server, host) {
			return u, "another server's"
		}
	}
	if !strings.HasPrefix(s, "/") {
		return u, "not an IMAP URL of a message"
	}
	s = s[1:]
	i := urlIndex(s, "/;UID=")
	if i < 0 {
		return u, "no UID in it"
	}
	box, rest := s[:i], s[i+len("/;UID="):]
	if j := urlIndex(box, ";UIDVALIDITY="); j >= 0 {
		v, err := strconv.ParseUint(box[j+len(";UIDVALIDITY="):], 10, 32)
		if err != nil || v == 0 {
			return u, "bad UIDVALIDITY"
		}
		u.uidValidity = uint32(v)
		box = box[:j]
	}
	name, err := url.PathUnescape(box)
	if err != nil || name == "" {
		return u, "bad mailbox name"
	}
	u.mailbox = name
	n := 0
	for n < len(rest) && '0' <= rest[n] && rest[n] <= '9' {
		n++
	}
	uid, err := strconv.ParseUint(rest[:n], 10, 32)
	if err != nil || uid == 0 {
		return u, "bad UID"
	}
	u.uid = uint32(uid)
	rest = rest[n:]
	if urlHasPrefix(rest, "/;SECTION=") {
		rest = rest[len("/;SECTION="):]
		end := strings.IndexByte(rest, ';')
		if end < 0 {
			end = len(rest)
		} else if end > 0 && rest[end-1] == '/' {
			end--
		}
		sec, err := url.PathUnescape(rest[:end])
		if err != nil {
			return u, "bad section"
		}
		if u.section, why = parseURLSection(sec); why != "" {
			return u, why
		}
		rest = rest[end:]
	}
	if urlHasPrefix(rest, "/;PARTIAL=") {
		rest = rest[len("/;PARTIAL="):]
		end := strings.IndexByte(rest, ';')
		if end < 0 {
			end = len(rest)
		}
		off, length, _ := strings.Cut(rest[:end], ".")
		p := &imap.SectionPartial{Size: -1}
		o, err := strconv.ParseUint(off, 10, 32)
		if err != nil {
			return u, "bad PARTIAL"
		}
		p.Offset = int64(o)
		if length != "" {
			l, err := strconv.ParseUint(length, 10, 32)
			if err != nil || l == 0 {
				return u, "bad PARTIAL"
			}
			p.Size = int64(l)
		}
		u.partial = p
		rest = rest[end:]
	}
	switch {
	case urlHasPrefix(rest, ";URLAUTH="):
		return u, "URLAUTH is not supported"
	case rest != "":
		return u, "unexpected " + strconv.Quote(rest)
	}
	return u, ""
}

// parseURLSection parses a section as in FETCH BODY[section]: part
// numbers, then HEADER, HEADER.FIELDS[.NOT] (names), TEXT or MIME.
func parseURLSection(s string) (*imap.FetchItemBodySection, string) {
	sec := &imap.FetchItemBodySection{}
	for s != "" && '0' <= s[0] && s[0] <= '9' {
		n := 0
		for n < len(s) && '0' <= s[n] && s[n] <= '9' {
			n++
		}
		p, err := strconv.ParseUint(s[:n], 10, 31)
		if err != nil || p == 0 {
			return nil, "bad section part number"
		}
		sec.Part = append(sec.Part, int(p))
		s = s[n:]
		if s == "" {
			return sec, ""
		}
		if s[0] != '.' {
			return nil, "bad section"
		}
		s = s[1:]
	}
	is := func(word string) bool { return len(s) == len(word) && urlHasPrefix(s, word) }
	switch {
	case is("HEADER"):
		sec.Specifier = imap.PartSpecifierHeader
	case is("TEXT"):
		sec.Specifier = imap.PartSpecifierText
	case is("MIME") && len(sec.Part) > 0:
		sec.Specifier = imap.PartSpecifierMIME
	case urlHasPrefix(s, "HEADER.FIELDS"):
		sec.Specifier = imap.PartSpecifierHeader
		list, not := s[len("HEADER.FIELDS"):], false
		if urlHasPrefix(list, ".NOT") {
			list, not = list[len(".NOT"):], true
		}
		list = strings.TrimPrefix(list, " ")
		if !strings.HasPrefix(list, "(") || !strings.HasSuffix(list, ")") {
			return nil, "bad header field list"
		}
		var names []string
		for _, f := range strings.Fields(list[1 : len(list)-1]) {
			f = strings.Trim(f, `"`)
			if f == "" {
				return nil, "bad header field list"
			}
			names = append(names, f)
		}
		if len(names) == 0 {
			return nil, "bad header field list"
		}
		if not {
			sec.HeaderFieldsNot = names
		} else {
			sec.HeaderFields = names
		}
	default:
		return nil, "bad section"
	}
	return sec, ""
}

// urlIndex is the index of sub (ASCII) in s, ignoring ASCII case; -1 if
// none.
func urlIndex(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if urlHasPrefix(s[i:], sub) {
			return i
		}
	}
	return -1
}

// urlHasPrefix reports whether s starts with prefix (ASCII), ignoring
// ASCII case.
func urlHasPrefix(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// batchDeliverer is a store that stores several deliveries in one
// transaction (store.Inbound's DeliverBatch; the bolt store has it).
type batchDeliverer interface {
	DeliverBatch(ctx context.Context, ds []store.Delivery) ([]store.Delivered, error)
}

// store stores the spooled messages: all or none.
func (a *appender) store() error {
	c := a.c
	ds := make([]store.Delivery, len(a.msgs))
	var keywords []string
	for i, m := range a.msgs {
		head, tail, err := m.msg.Finish()
		if err != nil {
			return c.spoolError(err)
		}
		ds[i] = store.Delivery{Recipients: []string{c.account}, Mailbox: a.box.Name, Flags: m.flags, Date: m.date, Message: head, Tail: tail}
		if _, ok := c.srv.st.(store.Structures); ok {
			// Kept with the message: its first FETCH BODYSTRUCTURE
			// parses nothing. Unreadable: stored without, parsed then.
			rs := []io.Reader{bytes.NewReader(head)}
			if tail != nil {
				rs = append(rs, io.NewSectionReader(tail, 0, tail.Size()))
			}
			if enc, err := EncodeStructure(io.MultiReader(rs...)); err == nil {
				ds[i].Structure = enc
			}
		}
		keywords = append(keywords, m.flags...)
	}
	got, err := a.deliver(ds)
	if err != nil {
		return c.storeError(err, "TRYCREATE")
	}
	if len(got) != len(ds) {
		c.log.Error("append: store returned a different number of deliveries", "want", len(ds), "got", len(got))
		return no("SERVERBUG", "Internal error")
	}
	uids := make([]uint32, len(got))
	for i, d := range got {
		uids[i] = d.UID
	}
	c.log.Info("append", "mailbox", a.box.Name, "uids", imapwire.Compact(uids), "size", a.done)
	c.usageGrew()
	if c.sel != nil && c.sel.name == a.box.Name {
		c.newKeywords(keywords)
	}
	return okCode("APPENDUID "+itoa(got[0].UIDValidity)+" "+imapwire.Compact(uids), "APPEND completed")
}

// deliver stores ds in one transaction when the store can; otherwise one
// by one, expunging those stored when one fails.
func (a *appender) deliver(ds []store.Delivery) ([]store.Delivered, error) {
	c := a.c
	if len(ds) == 1 {
		return c.srv.st.Deliver(c.ctx, ds[0])
	}
	if b, ok := c.srv.st.(batchDeliverer); ok {
		return b.DeliverBatch(c.ctx, ds)
	}
	var got []store.Delivered
	for _, d := range ds {
		one, err := c.srv.st.Deliver(c.ctx, d)
		if err == nil && len(one) != 1 {
			err = errors.New("store returned no delivery")
		}
		if err != nil {
			if len(got) > 0 {
				uids := make([]uint32, len(got))
				for i, g := range got {
					uids[i] = g.UID
				}
				if _, xerr := c.srv.st.Expunge(c.ctx, c.account, a.box.Name, uids); xerr != nil {
					c.log.Error("append: removing the messages of a failed MULTIAPPEND", "mailbox", a.box.Name, "uids", uids, "err", xerr)
				}
			}
			return nil, err
		}
		got = append(got, one[0])
	}
	return got, nil
}

// streamLiteral streams the literal announced here into w (asking for it
// when it is synchronizing), and reads the line after it. The line
// deadline is suspended meanwhile: the literal may take as long as it
// needs, as long as no pause lasts literalTimeout. When w fails (the
// spool's budget), the rest of the literal is read and dropped and the
// answer is NO [LIMIT].
func (c *conn) streamLiteral(w io.Writer) error {
	c.tc.Hold(true)
	c.tc.SetReadDeadline(time.Now().Add(literalTimeout))
	_, lr, err := c.r.LiteralReader()
	var werr error
	if err == nil {
		werr, err = c.copyLiteral(w, lr)
	}
	c.tc.Hold(false)
	// The rest of the command comes on a line's clock again.
	c.tc.SetReadDeadline(time.Now().Add(lineTimeout))
	if err != nil {
		return err
	}
	if err := c.r.EndLiteral(); err != nil {
		return err
	}
	if werr != nil {
		return c.spoolError(werr)
	}
	return nil
}

// copyLiteral copies a literal's bytes to w, pushing the read deadline
// on as they come. After w fails it goes on reading, and dropping.
func (c *conn) copyLiteral(w io.Writer, r io.Reader) (werr, err error) {
	buf := copyBufs.Get().(*[16 << 10]byte)
	defer copyBufs.Put(buf)
	last := time.Now()
	for {
		n, rerr := r.Read(buf[:])
		if n > 0 {
			if now := time.Now(); now.Sub(last) > time.Second {
				c.tc.SetReadDeadline(now.Add(literalTimeout))
				last = now
			}
			if werr == nil {
				_, werr = w.Write(buf[:n])
			}
		}
		if rerr == io.EOF {
			return werr, nil
		}
		if rerr != nil {
			return werr, rerr
		}
	}
}

// dropLiterals reads and drops the rest of a refused command's
// non-synchronizing literals (a synchronizing one the client does not
// send once refused).
func (c *conn) dropLiterals() {
	for c.r.Err() == nil {
		c.r.Rest()
		if l := c.r.Pending(); l == nil || l.Sync {
			return
		}
		if c.streamLiteral(io.Discard) != nil {
			return
		}
	}
}

// budgetRefused is the answer to an APPEND that does not fit into the
// spool's budget.
func (c *conn) budgetRefused() error {
	c.log.Warn("append refused: no room for more data in flight",
		"in_flight", c.srv.cfg.Spool.InFlight(), "budget", c.srv.cfg.Spool.Budget())
	return errAppendBudget
}

// trackWriter remembers its writer's error, to tell it from the reader's.
type trackWriter struct {
	w   io.Writer
	err error
}

func (t *trackWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if err != nil {
		t.err = err
	}
	return n, err
}

// spoolError is the answer to a failed spool write: NO [LIMIT] when the
// budget or the disk is full.
func (c *conn) spoolError(err error) error {
	if errors.Is(err, spool.ErrBudget) || errors.Is(err, syscall.ENOSPC) {
		c.log.Warn("append refused: no room for more data in flight",
			"in_flight", c.srv.cfg.Spool.InFlight(), "budget", c.srv.cfg.Spool.Budget(), "err", err)
		return errAppendBudget
	}
	c.log.Error("append: spool", "err", err)
	return no("SERVERBUG", "Cannot take the message now")
}

// unbinary makes a message that came (in part) in a literal8 storable,
// as Dovecot does: the body of each part in the binary transfer encoding
// (RFC 2045 6.2) is encoded in base64, and its Content-Transfer-Encoding
// says so, so that BINARY[part] gives the bytes back and BODY[part] is
// text; the rest stays byte for byte, but for bare line feeds made CRLF
// as in every APPEND.
func (a *appender) unbinary(m *spooledMsg) error {
	c := a.c
	head, tail, err := m.msg.Finish()
	if err != nil {
		return c.spoolError(err)
	}
	size := m.msg.Size()
	var ra io.ReaderAt = bytes.NewReader(head)
	if tail != nil {
		ra = joinedReaderAt{head: head, tail: tail}
	}
	root, err := parseStructure(io.NewSectionReader(ra, 0, size))
	if err != nil {
		return c.spoolError(err)
	}
	var leaves []*mimePart
	var walk func(p *mimePart)
	walk = func(p *mimePart) {
		if p.multipart || p.message {
			for _, ch := range p.children {
				walk(ch)
			}
		} else if p.cte == "binary" {
			leaves = append(leaves, p)
		}
	}
	walk(root)

	out := c.srv.cfg.Spool.New()
	done := false
	defer func() {
		if !done {
			out.Close()
		}
	}()
	cw := &spool.CRLFWriter{W: out}
	copyRange := func(w io.Writer, from, to int64) error {
		if to <= from {
			return nil
		}
		_, err := io.Copy(w, io.NewSectionReader(ra, from, to-from))
		return err
	}
	pos := int64(0)
	for _, p := range leaves {
		if err := copyRange(cw, pos, p.start); err != nil {
			return c.spoolError(err)
		}
		hdr := make([]byte, p.bodyStart-p.start)
		if _, err := ra.ReadAt(hdr, p.start); err != nil {
			return c.spoolError(err)
		}
		if _, err := cw.Write(setCTE(hdr, "base64")); err != nil {
			return c.spoolError(err)
		}
		enc := base64.NewEncoder(base64.StdEncoding, &lineBreaker{w: out})
		if err := copyRange(enc, p.bodyStart, p.end); err != nil {
			return c.spoolError(err)
		}
		if err := enc.Close(); err != nil {
			return c.spoolError(err)
		}
		if p.end == size && p.end > p.bodyStart {
			// The message ends with this body: its last line, too.
			if _, err := out.Write([]byte("\r\n")); err != nil {
				return c.spoolError(err)
			}
		}
		pos = p.end
	}
	if err := copyRange(cw, pos, size); err != nil {
		return c.spoolError(err)
	}
	m.msg.Close()
	m.msg, done = out, true
	return nil
}

// setCTE gives a part's header section a Content-Transfer-Encoding of
// cte in place of its first one, where that was.
func setCTE(hdr []byte, cte string) []byte {
	const name = "content-transfer-encoding"
	for i := 0; i < len(hdr); {
		end := bytes.IndexByte(hdr[i:], '\n')
		if end < 0 {
			end = len(hdr)
		} else {
			end += i + 1
		}
		line := hdr[i:end]
		if len(line) > len(name) && strings.EqualFold(string(line[:len(name)]), name) &&
			strings.HasPrefix(strings.TrimLeft(string(line[len(name):]), " \t"), ":") {
			// The field goes on over continuation lines.
			for end < len(hdr) && (hdr[end] == ' ' || hdr[end] == '\t') {
				if j := bytes.IndexByte(hdr[end:], '\n'); j >= 0 {
					end += j + 1
				} else {
					end = len(hdr)
				}
			}
			out := make([]byte, 0, len(hdr)+len(cte))
			out = append(out, hdr[:i]...)
			out = append(out, "Content-Transfer-Encoding: "+cte+"\r\n"...)
			return append(out, hdr[end:]...)
		}
		i = end
	}
	return hdr
}

// lineBreaker writes base64 text in lines of 76 characters (RFC 2045
// 6.8), CRLF between them.
type lineBreaker struct {
	w io.Writer
	n int // characters on the current line
}

func (l *lineBreaker) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		if l.n == 76 {
			if _, err := l.w.Write([]byte("\r\n")); err != nil {
				return 0, err
			}
			l.n = 0
		}
		k := min(len(p), 76-l.n)
		if _, err := l.w.Write(p[:k]); err != nil {
			return 0, err
		}
		l.n += k
		p = p[k:]
	}
	return total, nil
}

// joinedReaderAt reads a spooled message: its head in memory, the rest
// from the spool file.
type joinedReaderAt struct {
	head []byte
	tail io.ReaderAt
}

func (j joinedReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	if off < int64(len(j.head)) {
		n = copy(p, j.head[off:])
		if n == len(p) {
			return n, nil
		}
		off += int64(n)
	}
	k, err := j.tail.ReadAt(p[n:], off-int64(len(j.head)))
	return n + k, err
}
