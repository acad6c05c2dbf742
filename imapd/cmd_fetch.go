package imapd

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"strconv"
	"strings"

	"yubin/internal/imapwire"
	"yubin/internal/mailheader"
	"yubin/store"
)

// FETCH and UID FETCH (RFC 3501 6.4.5, 6.4.8), with BINARY (RFC 3516).
func init() {
	register("FETCH", commandSpec{run: (*conn).cmdFetch, states: selState, uid: true, updates: true, noExpunge: true})
	authCaps = append(authCaps, "BINARY")
}

// fetchRequest is what a FETCH asks for.
type fetchRequest struct {
	uid, flags, internalDate, size, envelope bool
	body, bodyStructure                      bool
	sections                                 []*fetchSection
	// seen: a section without PEEK sets \Seen.
	seen bool
	// CONDSTORE/QRESYNC (RFC 7162): MODSEQ asked for (or implied by
	// CHANGEDSINCE); only messages changed since changedSince (when
	// hasChangedSince); VANISHED (EARLIER) for UIDs expunged since.
	modseq, hasChangedSince, vanished bool
	changedSince                      uint64
}

// Kinds of fetchSection.
const (
	sectionBody       = iota // BODY[...], RFC822, RFC822.HEADER, RFC822.TEXT
	sectionBinary            // BINARY[...]
	sectionBinarySize        // BINARY.SIZE[...]
)

// fetchSection is one body section asked for.
type fetchSection struct {
	kind int
	// name is the item's name in the response, without its partial
	// origin: "BODY[1.HEADER.FIELDS (FROM)]", "RFC822.TEXT", "BINARY[2]".
	name   string
	part   []int
	spec   string   // "", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"
	fields []string // HEADER.FIELDS[.NOT], upper case
	peek   bool
	// partial: <offset.count>; count -1 is "to the end".
	partial       bool
	offset, count int64
}

func (s *fetchSection) key() string {
	if s.partial {
		return s.name + "<" + strconv.FormatInt(s.offset, 10) + "." + strconv.FormatInt(s.count, 10) + ">"
	}
	return s.name
}

func (c *conn) cmdFetch(cmd *command) error {
	set, err := arg(c, c.r.NumSet)
	if err != nil {
		return err
	}
	if err := c.r.SP(); err != nil {
		return err
	}
	req := &fetchRequest{uid: cmd.uid}
	if c.r.Peek() == '(' {
		n := 0
		err = c.r.List(func() error { n++; return c.fetchAtt(req, true) })
		if err == nil && n == 0 {
			err = bad("Empty FETCH attribute list")
		}
	} else {
		err = c.fetchAtt(req, false)
	}
	if err != nil {
		return err
	}
	if c.r.Peek() == ' ' {
		// fetch-modifiers (RFC 4466 2.4)
		c.r.SP()
		n := 0
		if err := c.r.List(func() error { n++; return c.fetchModifier(req) }); err != nil {
			return err
		}
		if n == 0 {
			return bad("Empty FETCH modifier list")
		}
	}
	if err := c.r.End(); err != nil {
		return err
	}
	if req.vanished && (!cmd.uid || !req.hasChangedSince || !c.enabled["QRESYNC"]) {
		return bad("VANISHED needs UID FETCH, CHANGEDSINCE and QRESYNC enabled")
	}
	if req.modseq {
		c.condstoreBySearch() // FETCH MODSEQ enables CONDSTORE too
	}
	return c.fetch(req, set, cmd.uid)
}

// fetchModifier reads one FETCH modifier. CONDSTORE's CHANGEDSINCE (RFC
// 7162 3.1.4) and QRESYNC's VANISHED go here.
func (c *conn) fetchModifier(req *fetchRequest) error {
	name, err := c.r.Atom()
	if err != nil {
		return err
	}
	switch strings.ToUpper(name) {
	case "CHANGEDSINCE":
		if err := c.r.SP(); err != nil {
			return err
		}
		if req.changedSince, err = c.r.Number64(); err != nil {
			return err
		}
		req.hasChangedSince, req.modseq = true, true
		return nil
	case "VANISHED":
		req.vanished = true
		return nil
	}
	return bad("Unknown FETCH modifier %s", name)
}

func isFetchNameChar(b byte) bool {
	return 'A' <= b && b <= 'Z' || 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '.' || b == '-'
}

// fetchAtt reads one fetch-att (or, outside a list, a macro).
func (c *conn) fetchAtt(req *fetchRequest, inList bool) error {
	name := strings.ToUpper(c.r.Run(isFetchNameChar))
	if name == "" {
		return bad("Invalid FETCH attribute")
	}
	switch name {
	case "ALL", "FAST", "FULL":
		if inList {
			return bad("FETCH macro %s in a list", name)
		}
		req.flags, req.internalDate, req.size = true, true, true
		req.envelope = name != "FAST"
		req.body = name == "FULL"
	case "UID":
		req.uid = true
	case "FLAGS":
		req.flags = true
	case "INTERNALDATE":
		req.internalDate = true
	case "RFC822.SIZE":
		req.size = true
	case "ENVELOPE":
		req.envelope = true
	case "BODYSTRUCTURE":
		req.bodyStructure = true
	case "RFC822":
		req.add(&fetchSection{name: "RFC822"})
	case "RFC822.HEADER":
		req.add(&fetchSection{name: "RFC822.HEADER", spec: "HEADER", peek: true})
	case "RFC822.TEXT":
		req.add(&fetchSection{name: "RFC822.TEXT", spec: "TEXT"})
	case "BODY", "BODY.PEEK":
		if c.r.Peek() != '[' {
			if name == "BODY.PEEK" {
				return bad("BODY.PEEK needs a section")
			}
			req.body = true
			return nil
		}
		return c.fetchSection(req, sectionBody, name == "BODY.PEEK")
	case "BINARY", "BINARY.PEEK":
		return c.fetchSection(req, sectionBinary, name == "BINARY.PEEK")
	case "BINARY.SIZE":
		return c.fetchSection(req, sectionBinarySize, true)
	case "MODSEQ":
		req.modseq = true
	default:
		return bad("Unknown FETCH attribute %s", name)
	}
	return nil
}

// add adds a section unless it is asked for already (BODY[1] and
// BODY.PEEK[1] are one item: the response names both BODY[1]).
func (req *fetchRequest) add(s *fetchSection) {
	if !s.peek {
		req.seen = true
	}
	for _, o := range req.sections {
		if o.key() == s.key() {
			return
		}
	}
	req.sections = append(req.sections, s)
}

// fetchSection reads a section ("[" section-spec "]") and its partial.
func (c *conn) fetchSection(req *fetchRequest, kind int, peek bool) error {
	if err := c.r.Byte('[', "'['"); err != nil {
		return err
	}
	s := &fetchSection{kind: kind, peek: peek}
	dot := false
	for '0' <= c.r.Peek() && c.r.Peek() <= '9' {
		n, err := c.r.Number()
		if err != nil {
			return err
		}
		if n == 0 || len(s.part) >= 100 {
			return bad("Invalid section part %d", n)
		}
		s.part = append(s.part, int(n))
		if dot = c.r.Maybe('.'); !dot {
			break
		}
	}
	s.spec = strings.ToUpper(c.r.Run(func(b byte) bool { return 'A' <= b && b <= 'Z' || 'a' <= b && b <= 'z' || b == '.' }))
	switch s.spec {
	case "":
		if dot {
			return bad("Invalid section: a part number ends in '.'")
		}
	case "HEADER", "TEXT":
	case "MIME":
		if len(s.part) == 0 {
			return bad("MIME needs a part number")
		}
	case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
		if err := c.r.SP(); err != nil {
			return err
		}
		err := c.r.List(func() error {
			f, err := c.r.AString()
			if err != nil {
				return err
			}
			s.fields = append(s.fields, strings.ToUpper(f))
			return nil
		})
		if err != nil {
			return err
		}
		if len(s.fields) == 0 {
			return bad("Empty header field list")
		}
	default:
		return bad("Invalid section %s", s.spec)
	}
	if kind != sectionBody && s.spec != "" {
		return bad("BINARY takes part numbers only")
	}
	if err := c.r.Byte(']', "']'"); err != nil {
		return err
	}
	if kind != sectionBinarySize && c.r.Maybe('<') {
		off, err := c.r.Number()
		if err != nil {
			return err
		}
		s.partial, s.offset, s.count = true, int64(off), -1
		if c.r.Maybe('.') {
			n, err := c.r.Number()
			if err != nil {
				return err
			}
			if n == 0 {
				return bad("Partial of 0 bytes")
			}
			s.count = int64(n)
		}
		if err := c.r.Byte('>', "'>'"); err != nil {
			return err
		}
	}
	s.name = s.sectionName()
	req.add(s)
	return nil
}

// sectionName is the section's name in the response: upper case, header
// field names as atoms or strings (as Dovecot writes them).
func (s *fetchSection) sectionName() string {
	var b strings.Builder
	switch s.kind {
	case sectionBody:
		b.WriteString("BODY[")
	case sectionBinary:
		b.WriteString("BINARY[")
	case sectionBinarySize:
		b.WriteString("BINARY.SIZE[")
	}
	for i, n := range s.part {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.Itoa(n))
	}
	if s.spec != "" {
		if len(s.part) > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.spec)
	}
	if len(s.fields) > 0 {
		b.WriteString(" (")
		for i, f := range s.fields {
			if i > 0 {
				b.WriteByte(' ')
			}
			if isAtom(f) {
				b.WriteString(f)
			} else {
				b.WriteString(quote(f))
			}
		}
		b.WriteByte(')')
	}
	b.WriteByte(']')
	return b.String()
}

// quote makes s a quoted string (without line breaks).
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\r', '\n', 0:
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func isAtom(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

// fetchBatch is how many envelopes FETCH asks the store for at a time.
const fetchBatch = 1024

// errExpunged is a message that was expunged by another session while
// this one still shows it.
var errExpunged = errors.New("message expunged")

// errUnknownCTE is a BINARY fetch of a part whose
// Content-Transfer-Encoding we cannot decode.
var errUnknownCTE = errors.New("unknown Content-Transfer-Encoding")

func (c *conn) fetch(req *fetchRequest, set imapwire.NumSet, uid bool) error {
	v := c.sel
	idx, err := v.resolve(set, uid)
	if err != nil || len(idx) == 0 {
		return err
	}
	uids := v.uidsAt(idx)
	if req.vanished {
		gone, err := c.srv.st.Expunged(c.ctx, c.account, v.name, req.changedSince)
		if err != nil {
			return c.storeError(err, "NONEXISTENT")
		}
		// "*" reaches the highest UID given out, expunged or not.
		max := v.uidNext - 1
		in := gone[:0]
		for _, u := range gone {
			if set.Contains(u, max) {
				in = append(in, u)
			}
		}
		if len(in) > 0 {
			c.w.Raw("* VANISHED (EARLIER) ").Raw(imapwire.Compact(in)).CRLF()
		}
	}
	msgs, err := c.records(v, uids)
	if err != nil {
		return c.storeError(err, "NONEXISTENT")
	}
	if req.hasChangedSince {
		// Only what changed since (RFC 7162 3.1.4).
		keep, keepIdx := msgs[:0], idx[:0]
		for i, m := range msgs {
			if m != nil && m.ModSeq > req.changedSince {
				keep, keepIdx = append(keep, m), append(keepIdx, idx[i])
			}
		}
		msgs, idx = keep, keepIdx
		if len(msgs) == 0 {
			return nil
		}
	}
	// Fetching a body section without PEEK sets \Seen (RFC 3501 6.4.5);
	// the new flags go out with the data.
	changed := map[uint32]bool{}
	if req.seen && !v.readOnly {
		var unseen []uint32
		for _, m := range msgs {
			if m != nil && !hasFlag(m.Flags, `\Seen`) {
				unseen = append(unseen, m.UID)
			}
		}
		if len(unseen) > 0 {
			res, err := c.srv.st.SetFlags(c.ctx, c.account, v.name, unseen, store.FlagsAdd, []string{`\Seen`})
			if err != nil {
				return c.storeError(err, "NONEXISTENT")
			}
			v.dropOwnFlags(res)
			c.trainFlags(v.name, store.FlagsAdd, []string{`\Seen`}, res)
			byUID := make(map[uint32]store.MessageInfo, len(res))
			for _, m := range res {
				byUID[m.UID] = m
			}
			for _, m := range msgs {
				if m == nil {
					continue
				}
				if r, ok := byUID[m.UID]; ok {
					m.Flags, m.ModSeq = r.Flags, r.ModSeq
					changed[m.UID] = true
				}
			}
		}
	}
	f := &fetcher{c: c, req: req}
	var envs []mailheader.Summary
	var structs [][]byte
	structStore, _ := c.srv.st.(store.Structures)
	if !req.body && !req.bodyStructure {
		structStore = nil
	}
	skipped := false
	for i, m := range msgs {
		if m == nil {
			skipped = true // expunged by another session; the client hears of it later
			continue
		}
		f.stored = nil
		if structStore != nil {
			if len(structs) == 0 {
				// Structures come from the store, a batch at a time.
				if structs, err = structStore.Structures(c.ctx, c.account, v.name, batchUIDs(msgs[i:])); err != nil {
					return c.storeError(err, "NONEXISTENT")
				}
			}
			f.stored, structs = structs[0], structs[1:]
		}
		var env *mailheader.Summary
		if req.envelope {
			if len(envs) == 0 {
				// Envelopes come from the store's cache, a batch at a time.
				if envs, err = c.srv.st.Summaries(c.ctx, c.account, v.name, batchUIDs(msgs[i:])); err != nil {
					return c.storeError(err, "NONEXISTENT")
				}
			}
			env, envs = &envs[0], envs[1:]
		}
		err := f.message(uint32(idx[i]+1), m, env, changed[m.UID])
		switch {
		case errors.Is(err, errExpunged) || errors.Is(err, store.ErrNoSuchMessage):
			skipped = true
		case errors.Is(err, errUnknownCTE):
			return no("UNKNOWN-CTE", "Unknown Content-Transfer-Encoding in message %d", idx[i]+1)
		case err != nil:
			if c.w.Err() != nil {
				return c.w.Err()
			}
			return c.storeError(err, "NONEXISTENT")
		}
	}
	if skipped {
		return okCode("EXPUNGEISSUED", "Some messages were already expunged")
	}
	return nil
}

// batchUIDs returns the UIDs of the next fetchBatch messages there are.
func batchUIDs(msgs []*store.MessageInfo) []uint32 {
	var batch []uint32
	for _, m := range msgs {
		if m != nil {
			batch = append(batch, m.UID)
			if len(batch) == fetchBatch {
				break
			}
		}
	}
	return batch
}

// records returns the store records of the given UIDs (ascending), with
// nil holes for messages expunged meanwhile by someone else. Reading the
// whole mailbox once is cheaper when many are asked for.
func (c *conn) records(v *view, uids []uint32) ([]*store.MessageInfo, error) {
	var msgs []store.MessageInfo
	var err error
	if len(uids) > 64 && len(uids)*4 > len(v.uids) {
		msgs, _, err = c.srv.st.Messages(c.ctx, c.account, v.name)
	} else {
		msgs, _, err = c.srv.st.MessagesByUID(c.ctx, c.account, v.name, uids)
	}
	if err != nil {
		return nil, err
	}
	out := make([]*store.MessageInfo, len(uids))
	j := 0
	for i, uid := range uids {
		for j < len(msgs) && msgs[j].UID < uid {
			j++
		}
		if j < len(msgs) && msgs[j].UID == uid {
			out[i] = &msgs[j]
		}
	}
	return out, nil
}

// internalDateLayout is INTERNALDATE's date-time (RFC 3501 9).
const internalDateLayout = "02-Jan-2006 15:04:05 -0700"

// envelopeDateLayout is how an envelope's date goes out (RFC 5322 3.3).
const envelopeDateLayout = "Mon, 02 Jan 2006 15:04:05 -0700"

// writeEnvelope writes an ENVELOPE (RFC 3501 7.4.2). Subject and names
// are decoded in the summary; they go out as UTF-8 encoded words when
// they need to. A missing Sender or Reply-To is From.
func (c *conn) writeEnvelope(e *mailheader.Summary) {
	w := c.w
	w.Open()
	if e.Date.IsZero() {
		w.NIL()
	} else {
		w.String(e.Date.Format(envelopeDateLayout))
	}
	w.SP().NString(mime.QEncoding.Encode("utf-8", e.Subject), true)
	sender, replyTo := e.Sender, e.ReplyTo
	if len(sender) == 0 {
		sender = e.From
	}
	if len(replyTo) == 0 {
		replyTo = e.From
	}
	for _, l := range [...][]mailheader.Address{e.From, sender, replyTo, e.To, e.Cc, e.Bcc} {
		w.SP()
		c.writeAddresses(l)
	}
	w.SP()
	if len(e.InReplyTo) > 0 {
		w.String("<" + strings.Join(e.InReplyTo, "> <") + ">")
	} else {
		w.NIL()
	}
	w.SP()
	if e.MessageID != "" {
		w.String("<" + e.MessageID + ">")
	} else {
		w.NIL()
	}
	w.Close()
}

// writeAddresses writes an address list: NIL when empty; groups as
// (NIL NIL "name" NIL) ... (NIL NIL NIL NIL).
func (c *conn) writeAddresses(l []mailheader.Address) {
	w := c.w
	if len(l) == 0 {
		w.NIL()
		return
	}
	w.Open()
	for _, a := range l {
		w.Open().NString(mime.QEncoding.Encode("utf-8", a.Name), true).SP().NString(a.Route, true).SP().
			NString(a.Mailbox, true).SP().NString(a.Host, true).Close()
	}
	w.Close()
}

// maxInMemory is the largest message read whole (once) when a FETCH needs
// its structure; a larger one is parsed and its parts read as streams.
var maxInMemory int64 = 4 << 20

// fetcher writes a FETCH command's responses, message by message.
type fetcher struct {
	c      *conn
	req    *fetchRequest
	buf    []byte // reused to read messages whole
	hdrBuf []byte // reused to read headers

	// The message at hand.
	m    *store.MessageInfo
	raw  []byte    // the whole message, once read
	hdr  []byte    // its header section, once read
	root *mimePart // its structure, once parsed
	// stored is the structure kept with the message (store.Structures),
	// nil for none: decoded instead of parsing the message.
	stored []byte
	rd     io.ReadCloser
	rc     *countingReader // rd, counting where it is
}

// sectionData is what one section holds: size bytes from the message at
// off, or data, or what emit writes (a decoding too large to hold).
type sectionData struct {
	size int64
	off  int64
	data []byte
	emit func(w io.Writer) error
	nul  bool // it has NUL bytes (BINARY: literal8)
	// inRange: the bytes come from the message (off, size).
	inRange bool
}

// message writes the FETCH response of one message. Everything that can
// fail but a message going away half-way is done before the response
// begins: a message expunged meanwhile is left out (errExpunged).
func (f *fetcher) message(seq uint32, m *store.MessageInfo, env *mailheader.Summary, flagsChanged bool) error {
	f.m, f.raw, f.hdr, f.root = m, nil, nil, nil
	defer f.closeReader()
	req := f.req
	if req.body || req.bodyStructure {
		if _, err := f.structure(); err != nil {
			return err
		}
	}
	data := make([]sectionData, len(req.sections))
	for i, s := range req.sections {
		d, err := f.section(s)
		if err != nil {
			return err
		}
		data[i] = d
	}

	c, w := f.c, f.c.w
	if req.flags || flagsChanged {
		// A keyword the client was not told of goes out in FLAGS first.
		c.newKeywords(m.Flags)
		c.sel.tell(m.UID, m.ModSeq)
	}
	w.Raw("* ").Num(seq).Raw(" FETCH (")
	sep := false
	item := func(name string) {
		if sep {
			w.SP()
		}
		sep = true
		w.Raw(name)
	}
	if req.uid {
		item("UID ")
		w.Num(m.UID)
	}
	if req.flags || flagsChanged {
		item("FLAGS ")
		c.flagList(c.withRecent(m.UID, m.Flags))
	}
	if req.modseq || flagsChanged && c.enabled["CONDSTORE"] {
		item("MODSEQ (")
		w.Num64(m.ModSeq).Raw(")")
	}
	if req.internalDate {
		item("INTERNALDATE ")
		w.Raw(`"`).Raw(m.Date.Format(internalDateLayout)).Raw(`"`)
	}
	if req.size {
		item("RFC822.SIZE ")
		w.Num64(uint64(m.Size))
	}
	if req.envelope {
		item("ENVELOPE ")
		c.writeEnvelope(env)
	}
	if req.body {
		item("BODY ")
		c.writeBodyStructure(f.root, false)
	}
	if req.bodyStructure {
		item("BODYSTRUCTURE ")
		c.writeBodyStructure(f.root, true)
	}
	for i, s := range req.sections {
		item(s.name)
		if s.partial {
			w.Raw("<").Num64(uint64(s.offset)).Raw(">")
		}
		w.SP()
		if s.kind == sectionBinarySize {
			w.Num64(uint64(data[i].size))
			continue
		}
		if err := f.literal(&data[i], s.kind == sectionBinary); err != nil {
			return err
		}
	}
	w.Raw(")").CRLF()
	return w.Err()
}

// section finds what a section holds.
func (f *fetcher) section(s *fetchSection) (sectionData, error) {
	m := f.m
	var d sectionData
	if s.kind != sectionBody {
		root, err := f.structure()
		if err != nil {
			return d, err
		}
		p := root
		if len(s.part) > 0 {
			p = root.find(s.part)
		}
		if p == nil {
			return d, nil
		}
		return f.binary(p, len(s.part) == 0, s)
	}
	if len(s.part) == 0 {
		switch s.spec {
		case "":
			d = rangeData(0, m.Size)
		case "HEADER":
			d = rangeData(0, m.HeaderSize)
		case "TEXT":
			d = rangeData(m.HeaderSize, m.Size-m.HeaderSize)
		default: // HEADER.FIELDS[.NOT]
			hdr, err := f.header()
			if err != nil {
				return d, err
			}
			d.data = filterHeader(hdr, s.fields, s.spec == "HEADER.FIELDS.NOT")
			d.size = int64(len(d.data))
		}
	} else {
		root, err := f.structure()
		if err != nil {
			return d, err
		}
		p := root.find(s.part)
		switch {
		case p == nil:
		case s.spec == "":
			d = rangeData(p.bodyStart, p.end-p.bodyStart)
		case s.spec == "MIME":
			d = rangeData(p.start, p.bodyStart-p.start)
		case !p.message:
			// HEADER and TEXT of a part that holds no message: nothing.
		case s.spec == "HEADER":
			q := p.children[0]
			d = rangeData(q.start, q.bodyStart-q.start)
		case s.spec == "TEXT":
			q := p.children[0]
			d = rangeData(q.bodyStart, q.end-q.bodyStart)
		default:
			q := p.children[0]
			hdr, err := f.bytes(q.start, q.bodyStart-q.start)
			if err != nil {
				return d, err
			}
			d.data = filterHeader(hdr, s.fields, s.spec == "HEADER.FIELDS.NOT")
			d.size = int64(len(d.data))
		}
	}
	d.window(s)
	return d, nil
}

func rangeData(off, size int64) sectionData {
	return sectionData{off: off, size: max(size, 0), inRange: true}
}

// window applies a section's partial (RFC 3501 6.4.5: an origin beyond
// the end gives an empty string).
func (d *sectionData) window(s *fetchSection) {
	if !s.partial {
		return
	}
	o := min(s.offset, d.size)
	n := d.size - o
	if s.count >= 0 && s.count < n {
		n = s.count
	}
	if d.data != nil {
		d.data = d.data[o : o+n]
	}
	d.off += o
	d.size = n
}

// binary finds what a BINARY section holds: the part with its content
// transfer encodings undone (RFC 3516 4.2).
func (f *fetcher) binary(p *mimePart, whole bool, s *fetchSection) (sectionData, error) {
	var d sectionData
	if f.raw != nil {
		var b bytes.Buffer
		if err := emitBinary(p, whole, f.rangeReader, &b); err != nil {
			return d, err
		}
		d.data = b.Bytes()
		d.size = int64(len(d.data))
		d.window(s)
		d.nul = bytes.IndexByte(d.data, 0) >= 0
		return d, nil
	}
	// Too large to hold: decode once to learn the size, and again to
	// send it.
	emit := func(w io.Writer) error {
		if s.partial {
			w = &windowWriter{w: w, skip: s.offset, left: s.count}
		}
		err := emitBinary(p, whole, f.rangeReader, w)
		if errors.Is(err, errWindowFull) {
			err = nil
		}
		return err
	}
	var cw countWriter
	if err := emit(&cw); err != nil {
		return d, err
	}
	d.size, d.nul, d.emit = cw.n, cw.nul, emit
	return d, nil
}

// literal writes a section's literal: literal8 for binary data with NUL
// bytes; BODY data has NULs made 0x80 (Dovecot's way: a literal must not
// carry them). A message that goes away half-way is padded with spaces,
// to keep the protocol in step.
func (f *fetcher) literal(d *sectionData, binary bool) error {
	w := f.c.w
	if binary && d.nul {
		w.Raw("~")
	}
	w.Raw("{").Num64(uint64(d.size)).Raw("}\r\n")
	if d.size == 0 {
		return w.Err()
	}
	out := &limitWriter{w: wireWriter{w}, left: d.size}
	var dst io.Writer = out
	if !binary {
		dst = &nulWriter{w: out}
	}
	var err error
	switch {
	case d.data != nil:
		_, err = dst.Write(d.data)
	case d.emit != nil:
		err = d.emit(dst)
	case d.inRange:
		var r io.Reader
		if r, err = f.rangeReader(d.off, d.size); err == nil {
			_, err = io.Copy(dst, r)
		}
	}
	if w.Err() != nil {
		return w.Err()
	}
	if err != nil || out.left > 0 {
		f.c.log.Warn("message gone while fetching", "uid", f.m.UID, "err", err)
		pad := bytes.Repeat([]byte{' '}, int(min(out.left, 4096)))
		for out.left > 0 {
			w.Bytes(pad[:min(out.left, int64(len(pad)))])
			out.left -= min(out.left, int64(len(pad)))
		}
	}
	return w.Err()
}

// load reads the whole message.
func (f *fetcher) load() error {
	if f.raw != nil {
		return nil
	}
	r, _, err := f.c.srv.st.OpenMessage(f.c.ctx, f.c.account, f.c.sel.name, f.m.UID)
	if err != nil {
		return err
	}
	defer r.Close()
	if int64(cap(f.buf)) < f.m.Size {
		f.buf = make([]byte, f.m.Size)
	}
	b := f.buf[:f.m.Size]
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return errExpunged
		}
		return err
	}
	f.raw = b
	return nil
}

// structure parses the message's MIME structure.
func (f *fetcher) structure() (*mimePart, error) {
	if f.root != nil {
		return f.root, nil
	}
	if f.stored != nil {
		if root, err := decodeStructure(f.stored, f.m.Size); err == nil {
			f.root = root
			return root, nil
		}
		// Not one this server can use: parse the message.
	}
	if f.m.Size <= maxInMemory {
		if err := f.load(); err != nil {
			return nil, err
		}
		f.root = parseStructureBytes(f.raw)
		return f.root, nil
	}
	rc, _, err := f.c.srv.st.OpenMessage(f.c.ctx, f.c.account, f.c.sel.name, f.m.UID)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	root, err := parseStructure(rc)
	if err != nil {
		return nil, err
	}
	f.root = root
	return root, nil
}

// header returns the message's header section, read alone unless the
// whole message is at hand.
func (f *fetcher) header() ([]byte, error) {
	if f.hdr == nil {
		if f.raw != nil {
			f.hdr = f.raw[:f.m.HeaderSize]
			return f.hdr, nil
		}
		r, err := f.rangeReader(0, f.m.HeaderSize)
		if err != nil {
			return nil, err
		}
		if int64(cap(f.hdrBuf)) < f.m.HeaderSize {
			f.hdrBuf = make([]byte, f.m.HeaderSize)
		}
		b := f.hdrBuf[:f.m.HeaderSize]
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, errExpunged
		}
		f.hdr = b
	}
	return f.hdr, nil
}

// bytes reads n bytes of the message from off.
func (f *fetcher) bytes(off, n int64) ([]byte, error) {
	if f.raw != nil {
		return f.raw[off : off+n], nil
	}
	r, err := f.rangeReader(off, n)
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, errExpunged
	}
	return b, nil
}

// rangeReader reads n bytes of the message from off: from memory, or
// from the store, reusing the open stream when it is not past off.
func (f *fetcher) rangeReader(off, n int64) (io.Reader, error) {
	if f.raw != nil {
		return bytes.NewReader(f.raw[off : off+n]), nil
	}
	if f.rd == nil || f.rc.n > off {
		f.closeReader()
		r, _, err := f.c.srv.st.OpenMessage(f.c.ctx, f.c.account, f.c.sel.name, f.m.UID)
		if err != nil {
			return nil, err
		}
		f.rd, f.rc = r, &countingReader{r: r}
	}
	if skip := off - f.rc.n; skip > 0 {
		if _, err := io.CopyN(io.Discard, f.rc, skip); err != nil {
			return nil, errExpunged
		}
	}
	return io.LimitReader(f.rc, n), nil
}

func (f *fetcher) closeReader() {
	if f.rd != nil {
		f.rd.Close()
		f.rd, f.rc = nil, nil
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// wireWriter writes to the connection's response writer.
type wireWriter struct{ w *imapwire.Writer }

func (w wireWriter) Write(p []byte) (int, error) {
	w.w.Bytes(p)
	if err := w.w.Err(); err != nil {
		return 0, err
	}
	return len(p), nil
}

// limitWriter writes at most left bytes (what a literal announced) and
// drops the rest.
type limitWriter struct {
	w    io.Writer
	left int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	n := len(p)
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	if len(p) > 0 {
		if _, err := l.w.Write(p); err != nil {
			return 0, err
		}
		l.left -= int64(len(p))
	}
	return n, nil
}

// nulWriter turns NUL bytes into 0x80.
type nulWriter struct {
	w   io.Writer
	buf []byte
}

func (n *nulWriter) Write(p []byte) (int, error) {
	if bytes.IndexByte(p, 0) < 0 {
		return n.w.Write(p)
	}
	n.buf = append(n.buf[:0], p...)
	for i, c := range n.buf {
		if c == 0 {
			n.buf[i] = 0x80
		}
	}
	if _, err := n.w.Write(n.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// countWriter counts bytes and notes NULs.
type countWriter struct {
	n   int64
	nul bool
}

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	if !c.nul && bytes.IndexByte(p, 0) >= 0 {
		c.nul = true
	}
	return len(p), nil
}

// windowWriter passes on the bytes from skip on, left of them (all when
// left is negative), then fails with errWindowFull to stop the writing.
type windowWriter struct {
	w          io.Writer
	skip, left int64
}

var errWindowFull = errors.New("partial window full")

func (ww *windowWriter) Write(p []byte) (int, error) {
	n := len(p)
	if ww.skip > 0 {
		k := min(ww.skip, int64(len(p)))
		p, ww.skip = p[k:], ww.skip-k
	}
	if ww.left >= 0 && int64(len(p)) > ww.left {
		p = p[:ww.left]
	}
	if len(p) > 0 {
		if _, err := ww.w.Write(p); err != nil {
			return 0, err
		}
		if ww.left >= 0 {
			ww.left -= int64(len(p))
		}
	}
	if ww.left == 0 {
		return n, errWindowFull
	}
	return n, nil
}
