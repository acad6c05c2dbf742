package imapd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"yubin/internal/auth"
	"yubin/internal/netserve"
	"yubin/internal/spool"
	"yubin/store"
)

// session is one client connection, from the library's point of view.
type session struct {
	srv     *Server
	lc      *libConn
	log     *slog.Logger
	account string // set by Login
	logged  atomic.Bool
	counted *userIP // the login counted against MaxUserIPConnections
	sel     *view

	// idleMu is held while Idle runs. The library does not wait for Idle
	// to return when the connection fails during IDLE before it calls
	// Close; Close waits here instead.
	idleMu sync.Mutex
}

var (
	_ imapserver.Session            = (*session)(nil)
	_ imapserver.SessionNamespace   = (*session)(nil)
	_ imapserver.SessionMove        = (*session)(nil)
	_ imapserver.SessionAppendLimit = (*session)(nil)
)

func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	lc, ok := c.NetConn().(*libConn)
	if !ok {
		return nil, nil, errors.New("imapd: connection did not come through Serve")
	}
	sess := &session{srv: s, lc: lc, log: s.log.With("remote", lc.RemoteAddr().String())}
	lc.sess = sess
	return sess, nil, nil
}

func (s *session) loggedIn() bool { return s.logged.Load() }

func (s *session) ctx() context.Context { return context.Background() }

func (s *session) Close() error {
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	if s.counted != nil {
		s.srv.logoutFrom(*s.counted)
		s.counted = nil
	}
	if s.sel != nil {
		s.sel.close()
		s.sel = nil
	}
	return nil
}

// Errors, the IMAP way (RFC 5530 response codes).
func no(code imap.ResponseCode, format string, args ...any) *imap.Error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: fmt.Sprintf(format, args...)}
}

func bad(format string, args ...any) *imap.Error {
	return &imap.Error{Type: imap.StatusResponseTypeBad, Text: fmt.Sprintf(format, args...)}
}

// storeError maps a store error to a reply; missing is the code for a
// mailbox that does not exist (NONEXISTENT, or TRYCREATE for COPY/APPEND).
func (s *session) storeError(err error, missing imap.ResponseCode) error {
	var qe *store.QuotaError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &qe):
		return no(imap.ResponseCodeOverQuota, "Quota exceeded: %d of %d bytes used, %d more needed", qe.Used, qe.Quota, qe.Need)
	case errors.Is(err, store.ErrNoSuchMailbox):
		return no(missing, "No such mailbox")
	case errors.Is(err, store.ErrExists):
		return no(imap.ResponseCodeAlreadyExists, "Mailbox already exists")
	case errors.Is(err, store.ErrHasChildren):
		return no(imap.ResponseCodeHasChildren, "Mailbox has child mailboxes; delete them first")
	case errors.Is(err, store.ErrInvalid):
		return no(imap.ResponseCodeCannot, "%s", reason(err))
	case errors.Is(err, store.ErrLimit):
		return no(imap.ResponseCodeLimit, "%s", reason(err))
	case errors.Is(err, store.ErrNoSuchMessage):
		return no(imap.ResponseCodeNonExistent, "Message was expunged")
	case errors.Is(err, store.ErrClosed):
		return &imap.Error{Type: imap.StatusResponseTypeBye, Text: "Server shutting down"}
	}
	s.log.Error("store error", "account", s.account, "err", err)
	return no(imap.ResponseCodeServerBug, "Internal error")
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
		return no(imap.ResponseCodeCannot, "Invalid mailbox name: %s", reason(err))
	}
	return nil
}

// Login checks credentials; failures are rate-limited per client address.
func (s *session) Login(username, password string) error {
	acct, err := s.srv.au.Authenticate(s.ctx(), s.lc.RemoteAddr(), username, password)
	if errors.Is(err, auth.ErrTooManyFailures) {
		s.log.Warn("login refused: too many failures", "user", username)
		return no(imap.ResponseCodeUnavailable, "Too many failed logins; try again later")
	}
	if err != nil {
		s.log.Info("login failed", "user", username)
		return imapserver.ErrAuthFailed
	}
	k := userIP{acct.Address, remoteIP(s.lc.RemoteAddr())}
	if !s.srv.loginFrom(k) {
		s.log.Warn("login refused: too many connections", "user", acct.Address, "max", s.srv.cfg.MaxUserIPConnections)
		return no(imap.ResponseCodeLimit, "Too many connections of this account from your address (at most %d)", s.srv.cfg.MaxUserIPConnections)
	}
	s.counted = &k
	s.account = acct.Address
	s.logged.Store(true)
	if tc, ok := s.lc.Conn.(*netserve.TimedConn); ok {
		tc.LoggedIn()
	}
	s.log = s.log.With("account", s.account)
	s.log.Info("login")
	return nil
}

// remoteIP is the IP address of a connection's peer.
func remoteIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

func (s *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: '/'}}}, nil
}

func (s *session) AppendLimit() uint32 { return uint32(s.srv.cfg.AppendLimit) }

var systemFlags = []imap.Flag{imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagSeen, imap.FlagDraft}

func (s *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	ctx := s.ctx()
	if s.sel != nil {
		s.sel.close()
		s.sel = nil
	}
	v, msgs, meta, err := openView(ctx, s.srv.st, s.account, name, options.ReadOnly)
	if err != nil {
		return nil, s.storeError(err, imap.ResponseCodeNonExistent)
	}
	s.sel = v
	flags := append([]imap.Flag(nil), systemFlags...)
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
				flags = append(flags, imap.Flag(f))
			}
		}
		if !isSeen && firstUnseen == 0 {
			firstUnseen = uint32(i + 1)
		}
	}
	perm := append(append([]imap.Flag(nil), flags...), imap.FlagWildcard)
	if options.ReadOnly {
		perm = nil
	}
	return &imap.SelectData{
		Flags:             flags,
		PermanentFlags:    perm,
		NumMessages:       uint32(len(msgs)),
		FirstUnseenSeqNum: firstUnseen,
		UIDNext:           imap.UID(meta.UIDNext),
		UIDValidity:       meta.UIDValidity,
	}, nil
}

func (s *session) Unselect() error {
	if s.sel != nil {
		s.sel.close()
		s.sel = nil
	}
	return nil
}

func (s *session) Create(name string, options *imap.CreateOptions) error {
	if err := checkName(name); err != nil {
		return err
	}
	_, err := s.srv.st.CreateMailbox(s.ctx(), s.account, name)
	return s.storeError(err, imap.ResponseCodeNonExistent)
}

func (s *session) Delete(name string) error {
	if strings.EqualFold(name, "INBOX") {
		return no(imap.ResponseCodeCannot, "INBOX cannot be deleted")
	}
	return s.storeError(s.srv.st.DeleteMailbox(s.ctx(), s.account, name), imap.ResponseCodeNonExistent)
}

func (s *session) Rename(oldName, newName string, options *imap.RenameOptions) error {
	if err := checkName(newName); err != nil {
		return err
	}
	return s.storeError(s.srv.st.RenameMailbox(s.ctx(), s.account, oldName, newName), imap.ResponseCodeNonExistent)
}

func (s *session) Subscribe(name string) error {
	return s.storeError(s.srv.st.SetSubscribed(s.ctx(), s.account, name, true), imap.ResponseCodeNonExistent)
}

func (s *session) Unsubscribe(name string) error {
	return s.storeError(s.srv.st.SetSubscribed(s.ctx(), s.account, name, false), imap.ResponseCodeNonExistent)
}

func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 1 && patterns[0] == "" {
		// The hierarchy delimiter and root (RFC 3501 6.3.8).
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: '/', Mailbox: ""})
	}
	boxes, err := s.srv.st.Mailboxes(s.ctx(), s.account)
	if err != nil {
		return s.storeError(err, imap.ResponseCodeNonExistent)
	}
	children := map[string]bool{}
	subscribedChild := map[string]bool{}
	for _, b := range boxes {
		for i := 0; i < len(b.Name); i++ {
			if b.Name[i] == '/' {
				children[b.Name[:i]] = true
				if b.Subscribed {
					subscribedChild[b.Name[:i]] = true
				}
			}
		}
	}
	for _, b := range boxes {
		match := false
		for _, p := range patterns {
			if listMatch(b.Name, ref, p) {
				match = true
				break
			}
		}
		if !match {
			continue
		}
		data := &imap.ListData{Delim: '/', Mailbox: b.Name}
		if options.SelectSubscribed && !b.Subscribed {
			if !options.SelectRecursiveMatch || !subscribedChild[b.Name] {
				continue
			}
			data.Attrs = append(data.Attrs, imap.MailboxAttrNonExistent)
			data.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
		}
		if options.SelectSpecialUse && b.SpecialUse == "" {
			continue
		}
		if children[b.Name] {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
		} else {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if b.SpecialUse != "" {
			data.Attrs = append(data.Attrs, imap.MailboxAttr(b.SpecialUse))
		}
		if b.Subscribed && (options.ReturnSubscribed || options.SelectSubscribed) {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if options.ReturnStatus != nil {
			st, err := s.status(b, options.ReturnStatus)
			if err != nil {
				return err
			}
			data.Status = st
		}
		if err := w.WriteList(data); err != nil {
			return err
		}
	}
	return nil
}

func (s *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	meta, err := s.srv.st.Mailbox(s.ctx(), s.account, name)
	if err != nil {
		return nil, s.storeError(err, imap.ResponseCodeNonExistent)
	}
	return s.status(meta, options)
}

func (s *session) status(meta store.Mailbox, options *imap.StatusOptions) (*imap.StatusData, error) {
	data := &imap.StatusData{Mailbox: meta.Name}
	num := func(n int) *uint32 { v := uint32(n); return &v }
	if options.NumMessages {
		data.NumMessages = num(meta.Messages)
	}
	if options.UIDNext {
		data.UIDNext = imap.UID(meta.UIDNext)
	}
	if options.UIDValidity {
		data.UIDValidity = meta.UIDValidity
	}
	if options.NumRecent {
		data.NumRecent = num(0)
	}
	if options.Size {
		size := meta.Size
		data.Size = &size
	}
	if options.AppendLimit {
		data.AppendLimit = num(int(s.srv.cfg.AppendLimit))
	}
	if options.NumUnseen || options.NumDeleted {
		msgs, _, err := s.srv.st.Messages(s.ctx(), s.account, meta.Name)
		if err != nil {
			return nil, s.storeError(err, imap.ResponseCodeNonExistent)
		}
		var unseen, deleted int
		for _, m := range msgs {
			if !hasFlag(m.Flags, `\Seen`) {
				unseen++
			}
			if hasFlag(m.Flags, `\Deleted`) {
				deleted++
			}
		}
		if options.NumUnseen {
			data.NumUnseen = num(unseen)
		}
		if options.NumDeleted {
			data.NumDeleted = num(deleted)
		}
	}
	return data, nil
}

func hasFlag(flags []string, f string) bool {
	for _, g := range flags {
		if g == f {
			return true
		}
	}
	return false
}

func (s *session) Append(name string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	size := r.Size()
	if size > s.srv.cfg.AppendLimit {
		return nil, no(imap.ResponseCodeTooBig, "Message is larger than %d bytes", s.srv.cfg.AppendLimit)
	}
	// Refuse before reading a message that cannot fit.
	acct, err := s.srv.st.Account(s.ctx(), s.account)
	if err != nil {
		return nil, s.storeError(err, imap.ResponseCodeTryCreate)
	}
	if acct.Quota > 0 && acct.Used+size > acct.Quota {
		return nil, s.storeError(&store.QuotaError{Account: acct.Address, Quota: acct.Quota, Used: acct.Used, Need: size}, "")
	}
	if _, err := s.srv.st.Mailbox(s.ctx(), s.account, name); err != nil {
		return nil, s.storeError(err, imap.ResponseCodeTryCreate)
	}
	// The literal comes at the client's pace: it goes into the spool
	// (memory up to a small buffer, then a file), and is stored from there.
	msg := s.srv.cfg.Spool.New()
	defer msg.Close()
	if err := s.receive(msg, r, size); err != nil {
		return nil, err
	}
	head, tail, err := msg.Finish()
	if err != nil {
		return nil, s.spoolError(err)
	}
	var flags []string
	for _, f := range options.Flags {
		if strings.EqualFold(string(f), `\Recent`) {
			continue
		}
		flags = append(flags, string(f))
	}
	d, err := s.srv.st.Deliver(s.ctx(), store.Delivery{Recipients: []string{s.account}, Mailbox: name, Flags: flags, Date: options.Time, Message: head, Tail: tail})
	if errors.Is(err, store.ErrInvalid) {
		return nil, bad("Invalid flags")
	}
	if err != nil {
		return nil, s.storeError(err, imap.ResponseCodeTryCreate)
	}
	s.log.Info("append", "mailbox", d[0].Mailbox, "uid", d[0].UID, "size", msg.Size())
	s.usageGrew()
	return &imap.AppendData{UIDValidity: d[0].UIDValidity, UID: imap.UID(d[0].UID)}, nil
}

// errAppendBudget is the answer to an APPEND that does not fit into the
// spool's budget of bytes in flight.
var errAppendBudget = no(imap.ResponseCodeLimit, "Too much APPEND data in flight on this server; try again later")

// copyBufs are the buffers APPEND literals are read through.
var copyBufs = sync.Pool{New: func() any { return new([16 << 10]byte) }}

// receive copies an APPEND's literal of size bytes from r into msg, bare
// LFs made CRLF. When the spool refuses more, the library reads and drops
// the rest of the literal, and the connection goes on.
func (s *session) receive(msg *spool.Message, r io.Reader, size int64) error {
	buf := copyBufs.Get().(*[16 << 10]byte)
	defer copyBufs.Put(buf)
	w := &spool.CRLFWriter{W: msg}
	var got int64
	for {
		n, err := r.Read(buf[:])
		got += int64(n)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return s.spoolError(werr)
			}
		}
		switch {
		case err == io.EOF && got == size:
			return nil
		case err == io.EOF:
			return io.ErrUnexpectedEOF // the connection ended
		case err != nil:
			return err
		}
	}
}

// spoolError is the answer to a failed spool write: NO [LIMIT] when the
// budget or the disk is full.
func (s *session) spoolError(err error) error {
	if errors.Is(err, spool.ErrBudget) || errors.Is(err, syscall.ENOSPC) {
		s.log.Warn("append refused: no room for more data in flight",
			"in_flight", s.srv.cfg.Spool.InFlight(), "budget", s.srv.cfg.Spool.Budget(), "err", err)
		return errAppendBudget
	}
	s.log.Error("append: spool", "err", err)
	return no(imap.ResponseCodeServerBug, "Cannot take the message now")
}

func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	ctx := s.ctx()
	if s.sel == nil {
		return nil
	}
	return s.sel.sync(ctx, w, allowExpunge)
}

// Idle writes changes as they are committed until the client says DONE.
func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	ctx := s.ctx()
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	if s.sel == nil {
		<-stop
		return nil
	}
	if err := s.sel.sync(ctx, w, true); err != nil {
		return err
	}
	for {
		select {
		case ev, ok := <-s.sel.sub.C:
			if !ok {
				<-stop
				return nil
			}
			if ev.Mailbox == s.sel.name && ev.UIDValidity == s.sel.uidValidity {
				s.sel.pending = append(s.sel.pending, ev)
			}
			if err := s.sel.sync(ctx, w, true); err != nil {
				return err
			}
		case <-stop:
			return nil
		}
	}
}

func (s *session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	v := s.sel
	if v.readOnly {
		return nil // EXAMINE: CLOSE must not expunge; EXPUNGE does nothing
	}
	msgs, _, err := s.srv.st.MessagesByUID(s.ctx(), s.account, v.name, v.uids)
	if err != nil {
		return s.storeError(err, imap.ResponseCodeNonExistent)
	}
	var del []uint32
	for _, m := range msgs {
		if hasFlag(m.Flags, `\Deleted`) && (uids == nil || uids.Contains(imap.UID(m.UID))) {
			del = append(del, m.UID)
		}
	}
	if len(del) == 0 {
		return nil
	}
	gone, err := s.srv.st.Expunge(s.ctx(), s.account, v.name, del)
	if err != nil {
		return s.storeError(err, imap.ResponseCodeNonExistent)
	}
	return v.expunged(w, gone)
}

// expunged removes UIDs this session expunged and says so.
func (v *view) expunged(w interface{ WriteExpunge(uint32) error }, uids []uint32) error {
	for _, uid := range uids {
		seq := v.seqOf(uid)
		if seq == 0 {
			continue
		}
		v.remove(seq)
		if err := w.WriteExpunge(seq); err != nil {
			return err
		}
	}
	return nil
}

// changing resolves the messages a command that changes the selected
// mailbox names; none (nil, nil) means there is nothing to do.
func (s *session) changing(numSet imap.NumSet) ([]int, error) {
	if s.sel.readOnly {
		return nil, no("", "Mailbox is read-only (EXAMINE)")
	}
	return s.sel.resolve(numSet)
}

func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	v := s.sel
	idx, err := s.changing(numSet)
	if err != nil || len(idx) == 0 {
		return err
	}
	var op store.FlagOp
	switch flags.Op {
	case imap.StoreFlagsSet:
		op = store.FlagsReplace
	case imap.StoreFlagsAdd:
		op = store.FlagsAdd
	case imap.StoreFlagsDel:
		op = store.FlagsRemove
	}
	var fs []string
	for _, f := range flags.Flags {
		if strings.EqualFold(string(f), `\Recent`) {
			continue
		}
		fs = append(fs, string(f))
	}
	msgs, err := s.srv.st.SetFlags(s.ctx(), s.account, v.name, v.uidsAt(idx), op, fs)
	if errors.Is(err, store.ErrInvalid) {
		return bad("Invalid flag")
	}
	if err != nil {
		return s.storeError(err, imap.ResponseCodeNonExistent)
	}
	v.dropOwnFlags(msgs)
	s.trainFlags(v.name, op, fs, msgs)
	if flags.Silent {
		return nil
	}
	_, isUID := numSet.(imap.UIDSet)
	for _, m := range msgs {
		seq := v.seqOf(m.UID)
		if seq == 0 {
			continue
		}
		rw := w.CreateMessage(seq)
		if isUID {
			rw.WriteUID(imap.UID(m.UID))
		}
		rw.WriteFlags(toIMAPFlags(m.Flags))
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}

func (s *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	v := s.sel
	idx, err := v.resolve(numSet)
	if err != nil {
		return nil, err
	}
	res, err := s.srv.st.CopyMessages(s.ctx(), s.account, v.name, dest, v.uidsAt(idx))
	if err != nil {
		return nil, s.storeError(err, imap.ResponseCodeTryCreate)
	}
	if len(res.Source) == 0 {
		return nil, nil
	}
	s.trainMoved(v.name, dest, res)
	s.usageGrew()
	return &imap.CopyData{UIDValidity: res.UIDValidity, SourceUIDs: uidSet(res.Source), DestUIDs: uidSet(res.Dest)}, nil
}

// usageGrew tells the server that this account's usage went up.
func (s *session) usageGrew() {
	if f := s.srv.cfg.UsageGrew; f != nil {
		f(s.ctx(), s.account)
	}
}

func (s *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	v := s.sel
	idx, err := s.changing(numSet)
	if err != nil || len(idx) == 0 {
		return err
	}
	if _, err := s.srv.st.Mailbox(s.ctx(), s.account, dest); err != nil {
		return s.storeError(err, imap.ResponseCodeTryCreate)
	}
	if canonical(dest) == v.name {
		return no(imap.ResponseCodeCannot, "Source and destination are the same mailbox")
	}
	res, err := s.srv.st.MoveMessages(s.ctx(), s.account, v.name, dest, v.uidsAt(idx))
	if err != nil {
		return s.storeError(err, imap.ResponseCodeTryCreate)
	}
	if len(res.Source) == 0 {
		return nil
	}
	s.trainMoved(v.name, dest, res)
	if err := w.WriteCopyData(&imap.CopyData{UIDValidity: res.UIDValidity, SourceUIDs: uidSet(res.Source), DestUIDs: uidSet(res.Dest)}); err != nil {
		return err
	}
	return v.expunged(w, res.Source)
}

func canonical(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}
