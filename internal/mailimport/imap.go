package mailimport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

// IMAP is a source on an IMAP server: every mailbox of one user, read
// only (EXAMINE and BODY.PEEK: nothing changes there, not even \Seen).
type IMAP struct {
	c      *imapclient.Client
	server string // host:port, for messages
	host   string // the host name, lower case, for the keys (not the port: imaps and imap are one server)
	user   string
	prefix string // the personal namespace's prefix ("INBOX." on some servers)
	boxes  []imapBox
}

type imapBox struct {
	Mailbox
	name string // on the server
}

// IMAPURL checks an import source URL: imaps://user@host[:port] (TLS from
// the start, port 993) or imap://user@host[:port] (STARTTLS, port 143,
// never without TLS). A user name holding "@" may be written as it is
// (imaps://info@example.com@imap.example.com) or with %40.
func IMAPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q: %v", s, err)
	}
	switch {
	case u.Scheme != "imaps" && u.Scheme != "imap":
		return nil, fmt.Errorf("%q: not an imaps:// or imap:// URL", s)
	case u.User == nil || u.User.Username() == "":
		return nil, fmt.Errorf("%q: no user name: write imaps://USER@%s", s, u.Host)
	case u.Hostname() == "":
		return nil, fmt.Errorf("%q: no host", s)
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return nil, fmt.Errorf("%q: only imaps://USER@HOST[:PORT] (no path, query or fragment)", s)
	}
	if _, has := u.User.Password(); has {
		return nil, fmt.Errorf("%q: the password does not go in the URL: it is read from stdin", redact(u))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%q: bad port %q", s, p)
		}
	}
	return u, nil
}

func redact(u *url.URL) string {
	v := *u
	if v.User != nil {
		v.User = url.User(v.User.Username())
	}
	return v.String()
}

// Address is host:port of an IMAP URL, the default port filled in.
func Address(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "993"
		if u.Scheme == "imap" {
			port = "143"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// ErrLogin says that the IMAP server refused the user name or password.
var ErrLogin = errors.New("login failed")

// DialIMAP connects to the server of u (see IMAPURL) with TLS — verified
// with tlsConfig's roots, or the system's when nil — and logs in.
func DialIMAP(ctx context.Context, u *url.URL, password string, tlsConfig *tls.Config) (*IMAP, error) {
	addr := Address(u)
	opts := &imapclient.Options{
		TLSConfig: tlsConfig,
		Dialer:    &net.Dialer{Timeout: 30 * time.Second},
	}
	if opts.TLSConfig == nil {
		opts.TLSConfig = &tls.Config{}
	}
	if opts.TLSConfig.ServerName == "" {
		opts.TLSConfig = opts.TLSConfig.Clone()
		opts.TLSConfig.ServerName = u.Hostname()
	}
	var c *imapclient.Client
	var err error
	if u.Scheme == "imaps" {
		c, err = imapclient.DialTLS(addr, opts)
	} else {
		c, err = imapclient.DialStartTLS(addr, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %v", addr, err)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %v", addr, err)
	}
	user := u.User.Username()
	login := func() error { return c.Login(user, password).Wait() }
	if c.Caps().Has(imap.CapLoginDisabled) {
		// LOGIN refused even over TLS: SASL PLAIN (RFC 4616) says the same.
		login = func() error { return c.Authenticate(sasl.NewPlainClient("", user, password)) }
	}
	if err := login(); err != nil {
		c.Close()
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo {
			return nil, fmt.Errorf("%s: %w for %s: %s", addr, ErrLogin, user, strings.TrimSpace(ie.Text))
		}
		return nil, fmt.Errorf("%s: logging in as %s: %v", addr, user, err)
	}
	s := &IMAP{c: c, server: addr, host: strings.ToLower(u.Hostname()), user: user}
	if c.Caps().Has(imap.CapNamespace) {
		if ns, err := c.Namespace().Wait(); err == nil && ns != nil && len(ns.Personal) > 0 {
			s.prefix = ns.Personal[0].Prefix
		}
	}
	return s, nil
}

// specialUse maps the special uses of RFC 6154 to the mailboxes every
// Yubin account has.
var specialUse = map[imap.MailboxAttr]string{
	imap.MailboxAttrSent:   "Sent",
	imap.MailboxAttrDrafts: "Drafts",
	imap.MailboxAttrTrash:  "Trash",
	imap.MailboxAttrJunk:   "Junk",
}

// Mailboxes implements Source: every mailbox that can be selected, with
// the personal namespace's prefix taken off, the hierarchy separator made
// "/", the special-use mailboxes (\Sent, \Drafts, \Trash, \Junk) made
// Sent, Drafts, Trash and Junk, and its messages counted (STATUS).
func (s *IMAP) Mailboxes(ctx context.Context) ([]Mailbox, error) {
	stop := context.AfterFunc(ctx, func() { s.c.Close() })
	defer stop()
	var opts *imap.ListOptions
	if s.c.Caps().Has(imap.CapSpecialUse) {
		opts = &imap.ListOptions{ReturnSpecialUse: true}
	}
	list, err := s.c.List("", "*", opts).Collect()
	if err != nil {
		return nil, fmt.Errorf("%s: LIST: %v", s.server, err)
	}
	s.boxes = nil
	seen := map[string]string{}
	for _, l := range list {
		if hasAttr(l.Attrs, imap.MailboxAttrNoSelect) || hasAttr(l.Attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		name := s.mapName(l)
		if other, dup := seen[name]; dup {
			// Two mailboxes there, one here: the later goes beside it.
			name = MailboxName([]string{name + " (" + l.Mailbox + ")"})
			if _, dup := seen[name]; dup {
				return nil, fmt.Errorf("%s: mailboxes %q and %q both map to %s", s.server, other, l.Mailbox, name)
			}
		}
		seen[name] = l.Mailbox
		st, err := s.c.Status(l.Mailbox, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			return nil, fmt.Errorf("%s: STATUS %s: %v", s.server, l.Mailbox, err)
		}
		n := 0
		if st.NumMessages != nil {
			n = int(*st.NumMessages)
		}
		s.boxes = append(s.boxes, imapBox{Mailbox: Mailbox{Name: name, From: l.Mailbox, Messages: n}, name: l.Mailbox})
	}
	sortBoxes(s.boxes)
	out := make([]Mailbox, len(s.boxes))
	for i, b := range s.boxes {
		out[i] = b.Mailbox
	}
	return out, nil
}

func sortBoxes(bs []imapBox) {
	// INBOX first, then by name (stable: as listed otherwise).
	for i := 1; i < len(bs); i++ {
		for j := i; j > 0 && less(bs[j].Name, bs[j-1].Name); j-- {
			bs[j], bs[j-1] = bs[j-1], bs[j]
		}
	}
}

func less(a, b string) bool {
	if (a == "INBOX") != (b == "INBOX") {
		return a == "INBOX"
	}
	return a < b
}

func hasAttr(attrs []imap.MailboxAttr, a imap.MailboxAttr) bool {
	for _, x := range attrs {
		if strings.EqualFold(string(x), string(a)) {
			return true
		}
	}
	return false
}

// mapName is the name here of a mailbox there.
func (s *IMAP) mapName(l *imap.ListData) string {
	if strings.EqualFold(l.Mailbox, "INBOX") {
		return "INBOX"
	}
	for attr, name := range specialUse {
		if hasAttr(l.Attrs, attr) {
			return name
		}
	}
	name := l.Mailbox
	if s.prefix != "" && len(name) > len(s.prefix) && strings.EqualFold(name[:len(s.prefix)], s.prefix) {
		name = name[len(s.prefix):]
	}
	levels := []string{name}
	if l.Delim != 0 {
		levels = strings.Split(name, string(l.Delim))
	}
	return MailboxName(levels)
}

// fetchBatch bounds one FETCH of message texts.
const (
	fetchMessages = 200
	fetchBytes    = 8 << 20
)

// Import implements Source: EXAMINE the mailbox, FETCH every message's
// UID, flags, internal date and size, ask which were imported before,
// then FETCH BODY.PEEK[] of the others in batches and hand them over.
func (s *IMAP) Import(ctx context.Context, i int, im *Importer) error {
	stop := context.AfterFunc(ctx, func() { s.c.Close() })
	defer stop()
	b := s.boxes[i]
	sel, err := s.c.Select(b.name, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return fmt.Errorf("%s: EXAMINE %s: %v", s.server, b.name, err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	metas, err := s.c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, RFC822Size: true}).Collect()
	if err != nil {
		return fmt.Errorf("%s: FETCH in %s: %v", s.server, b.name, err)
	}
	target := im.Mailbox().Name
	keys := make([]string, len(metas))
	for j, m := range metas {
		keys[j] = key("imap", s.host, s.user, b.name, target, strconv.FormatUint(uint64(sel.UIDValidity), 10), strconv.FormatUint(uint64(m.UID), 10))
	}
	known, err := im.Known(ctx, keys)
	if err != nil {
		return err
	}
	type want struct {
		meta *imapclient.FetchMessageBuffer
		key  string
	}
	var todo []want
	skipped := 0
	for j, m := range metas {
		switch {
		case known[j]:
			skipped++
		case m.RFC822Size > im.MaxMessage():
			im.TooBig(fmt.Sprintf("%s UID %d", b.name, m.UID), m.RFC822Size)
		default:
			todo = append(todo, want{m, keys[j]})
		}
	}
	im.Skip(skipped)
	for len(todo) > 0 && !im.Full() {
		n, size := 0, int64(0)
		for n < len(todo) && n < fetchMessages && (n == 0 || size+todo[n].meta.RFC822Size <= fetchBytes) {
			size += todo[n].meta.RFC822Size
			n++
		}
		chunk := todo[:n]
		todo = todo[n:]
		var uids imap.UIDSet
		for _, w := range chunk {
			uids.AddNum(w.meta.UID)
		}
		section := &imap.FetchItemBodySection{Peek: true}
		bodies, err := s.c.Fetch(uids, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
		if err != nil {
			return fmt.Errorf("%s: FETCH BODY.PEEK[] in %s: %v", s.server, b.name, err)
		}
		byUID := map[imap.UID][]byte{}
		for _, m := range bodies {
			byUID[m.UID] = m.FindBodySection(section)
		}
		for _, w := range chunk {
			raw, ok := byUID[w.meta.UID]
			if !ok {
				continue // expunged there meanwhile
			}
			if err := im.Add(ctx, Message{
				Key:   w.key,
				Flags: imapFlags(w.meta.Flags),
				Date:  w.meta.InternalDate,
				Size:  int64(len(raw)),
				Raw:   raw,
				Where: fmt.Sprintf("%s UID %d", b.name, w.meta.UID),
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

// imapFlags are the flags to keep of a message's: the system flags but
// \Recent (which belongs to a session), and the keywords the store takes.
func imapFlags(flags []imap.Flag) []string {
	var out []string
	for _, f := range flags {
		s := string(f)
		switch {
		case strings.HasPrefix(s, `\`):
			switch strings.ToLower(s) {
			case `\seen`, `\answered`, `\flagged`, `\deleted`, `\draft`:
				out = append(out, s)
			}
		case s != "" && len(s) <= 100 && !strings.ContainsAny(s, " ()[]{}%*\"\\\r\n\x00"):
			out = append(out, s)
		}
	}
	return out
}

// Close implements Source: LOGOUT, then the connection is closed.
func (s *IMAP) Close() error {
	s.c.Logout().Wait()
	return s.c.Close()
}
