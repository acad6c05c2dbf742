package imapd

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	nettextproto "net/textproto"
	"slices"
	"strings"
	"sync"
	"time"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"

	"yubin/internal/imapwire"
	"yubin/internal/mailheader"
	"yubin/store"
)

// SEARCH (RFC 3501 6.4.4) with ESEARCH's RETURN options (RFC 4731) and
// SEARCHRES's SAVE and "$" (RFC 5182); SORT and THREAD (RFC 5256) are in
// sort.go and thread.go and share the search criteria.
func init() {
	register("SEARCH", commandSpec{run: (*conn).cmdSearch, states: selState, uid: true, updates: true, noExpunge: true})
	authCaps = append(authCaps, "SEARCHRES")
}

// Bounds of a search.
const (
	// maxSearchBody bounds how much of one message a BODY or TEXT search
	// reads.
	maxSearchBody = 8 << 20
	// maxSearchHeader bounds the header section read for HEADER keys.
	maxSearchHeader = 1 << 20
	// maxSearchDepth bounds the nesting of NOT, OR and parentheses.
	maxSearchDepth = 50
	// maxSearchParts bounds the MIME parts of one message a BODY or TEXT
	// search looks at.
	maxSearchParts = 200
	// searchChunk is how many messages a search reads from the store at a
	// time.
	searchChunk = 1000
)

// searchOp is what a search key tests.
type searchOp uint8

const (
	opAll searchOp = iota
	opAnd
	opOr
	opNot
	opSeq    // set: sequence numbers ($: the saved result)
	opUID    // set: UIDs
	opFlag   // str: has the flag
	opNoFlag // str: has not
	opRecent
	opNew // RECENT UNSEEN
	opOld // NOT RECENT
	opBefore
	opOn
	opSince
	opSentBefore
	opSentOn
	opSentSince
	opLarger
	opSmaller
	opAddr    // field (From, To, Cc, Bcc), str
	opSubject // str
	opHeader  // field, str
	opBody    // str
	opText    // str
	opModSeq  // n: CONDSTORE's MODSEQ (RFC 7162 3.1.5)
)

// searchNeeds says what of a message a key looks at; keys are tested in
// the order of what they cost.
type searchNeeds uint8

const (
	needInfo    searchNeeds = 0      // UID, flags, size, internal date: the store's records
	needSummary searchNeeds = 1 << 0 // the envelope cache (store.Summaries)
	needHeader  searchNeeds = 1 << 1 // the header section
	needBody    searchNeeds = 1 << 2 // the whole message
)

// cost orders needs: body > header > summary > info.
func (n searchNeeds) cost() int {
	switch {
	case n&needBody != 0:
		return 3
	case n&needHeader != 0:
		return 2
	case n&needSummary != 0:
		return 1
	}
	return 0
}

// searchKey is one search key of a parsed criteria tree. Adding a key is
// one op, one case in named and one in match.
type searchKey struct {
	op    searchOp
	set   imapwire.NumSet
	str   string // a flag, or the string to find (lower case)
	field string // header field name (canonical form)
	day   int    // date keys: yyyymmdd
	n     int64  // LARGER, SMALLER
	sub   []*searchKey
	needs searchNeeds // of the key and its sub-keys
}

// searchParser reads search criteria from the command.
type searchParser struct {
	c *conn
}

// criteria reads search keys up to the end of the command; first is a
// key name already read (or "").
func (p *searchParser) criteria(first string) (*searchKey, error) {
	var keys []*searchKey
	for {
		var k *searchKey
		var err error
		if first != "" {
			k, err = p.named(strings.ToUpper(first), 0)
			first = ""
		} else {
			k, err = p.key(0)
		}
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
		if p.c.r.AtEnd() {
			break
		}
		if err := p.c.r.SP(); err != nil {
			return nil, err
		}
	}
	if err := p.c.r.End(); err != nil {
		return nil, err
	}
	return and(keys), nil
}

// and makes one key of several, cheapest first.
func and(keys []*searchKey) *searchKey {
	if len(keys) == 1 {
		return keys[0]
	}
	k := &searchKey{op: opAnd, sub: keys}
	for _, s := range keys {
		k.needs |= s.needs
	}
	slices.SortStableFunc(k.sub, func(a, b *searchKey) int { return a.needs.cost() - b.needs.cost() })
	return k
}

// key reads one search key.
func (p *searchParser) key(depth int) (*searchKey, error) {
	if depth > maxSearchDepth {
		return nil, bad("Search keys nested too deep")
	}
	r := p.c.r
	switch c := r.Peek(); {
	case c == '(':
		var keys []*searchKey
		err := r.List(func() error {
			k, err := p.key(depth + 1)
			keys = append(keys, k)
			return err
		})
		if err != nil {
			return nil, err
		}
		if len(keys) == 0 {
			return nil, bad("Empty search key list")
		}
		return and(keys), nil
	case c == '$' || c == '*' || '0' <= c && c <= '9':
		set, err := r.NumSet()
		if err != nil {
			return nil, err
		}
		return &searchKey{op: opSeq, set: set}, nil
	}
	name, err := r.Atom()
	if err != nil {
		return nil, bad("Search key expected")
	}
	return p.named(strings.ToUpper(name), depth)
}

// flagKeys are the search keys that test a system flag.
var flagKeys = map[string]struct {
	flag string
	has  bool
}{
	"ANSWERED": {`\Answered`, true}, "DELETED": {`\Deleted`, true}, "DRAFT": {`\Draft`, true},
	"FLAGGED": {`\Flagged`, true}, "SEEN": {`\Seen`, true},
	"UNANSWERED": {`\Answered`, false}, "UNDELETED": {`\Deleted`, false}, "UNDRAFT": {`\Draft`, false},
	"UNFLAGGED": {`\Flagged`, false}, "UNSEEN": {`\Seen`, false},
}

// named reads the arguments of the search key name (upper case).
func (p *searchParser) named(name string, depth int) (*searchKey, error) {
	r := p.c.r
	if f, ok := flagKeys[name]; ok {
		if f.has {
			return &searchKey{op: opFlag, str: f.flag}, nil
		}
		return &searchKey{op: opNoFlag, str: f.flag}, nil
	}
	str := func() (string, error) {
		s, err := arg(p.c, r.AString)
		return strings.ToLower(s), err
	}
	date := func(op searchOp, needs searchNeeds) (*searchKey, error) {
		if err := r.SP(); err != nil {
			return nil, err
		}
		d, err := p.date()
		return &searchKey{op: op, day: d, needs: needs}, err
	}
	switch name {
	case "ALL":
		return &searchKey{op: opAll}, nil
	case "RECENT":
		return &searchKey{op: opRecent}, nil
	case "NEW":
		return &searchKey{op: opNew}, nil
	case "OLD":
		return &searchKey{op: opOld}, nil
	case "KEYWORD", "UNKEYWORD":
		f, err := arg(p.c, r.Flag)
		if err != nil {
			return nil, err
		}
		if name == "KEYWORD" {
			return &searchKey{op: opFlag, str: f}, nil
		}
		return &searchKey{op: opNoFlag, str: f}, nil
	case "FROM", "TO", "CC", "BCC":
		s, err := str()
		field := map[string]string{"FROM": "From", "TO": "To", "CC": "Cc", "BCC": "Bcc"}[name]
		return &searchKey{op: opAddr, field: field, str: s, needs: needSummary}, err
	case "SUBJECT":
		s, err := str()
		return &searchKey{op: opSubject, str: s, needs: needSummary}, err
	case "HEADER":
		field, err := arg(p.c, r.AString)
		if err != nil {
			return nil, err
		}
		s, err := str()
		if err != nil {
			return nil, err
		}
		return headerKey(field, s), nil
	case "BODY":
		s, err := str()
		return &searchKey{op: opBody, str: s, needs: needBody}, err
	case "TEXT":
		s, err := str()
		return &searchKey{op: opText, str: s, needs: needBody}, err
	case "BEFORE":
		return date(opBefore, needInfo)
	case "ON":
		return date(opOn, needInfo)
	case "SINCE":
		return date(opSince, needInfo)
	case "SENTBEFORE":
		return date(opSentBefore, needSummary)
	case "SENTON":
		return date(opSentOn, needSummary)
	case "SENTSINCE":
		return date(opSentSince, needSummary)
	case "LARGER", "SMALLER":
		n, err := arg(p.c, r.Number64)
		op := opLarger
		if name == "SMALLER" {
			op = opSmaller
		}
		return &searchKey{op: op, n: int64(n)}, err
	case "UID":
		set, err := arg(p.c, r.NumSet)
		return &searchKey{op: opUID, set: set}, err
	case "MODSEQ":
		// MODSEQ ["/flags/name" priv|shared|all] modseq: the store keeps
		// a mod-sequence per message, not per flag, so the message's
		// counts whatever the entry (RFC 7162 3.1.5 allows it).
		if err := r.SP(); err != nil {
			return nil, err
		}
		if r.Peek() == '"' {
			if _, err := r.Quoted(); err != nil {
				return nil, err
			}
			t, err := arg(p.c, r.Atom)
			if err != nil {
				return nil, err
			}
			if t = strings.ToLower(t); t != "priv" && t != "shared" && t != "all" {
				return nil, bad("Unknown MODSEQ entry type %s", t)
			}
			if err := r.SP(); err != nil {
				return nil, err
			}
		}
		n, err := r.Number64()
		return &searchKey{op: opModSeq, n: int64(n)}, err
	case "NOT":
		if err := r.SP(); err != nil {
			return nil, err
		}
		k, err := p.key(depth + 1)
		if err != nil {
			return nil, err
		}
		return &searchKey{op: opNot, sub: []*searchKey{k}, needs: k.needs}, nil
	case "OR":
		if err := r.SP(); err != nil {
			return nil, err
		}
		a, err := p.key(depth + 1)
		if err != nil {
			return nil, err
		}
		if err := r.SP(); err != nil {
			return nil, err
		}
		b, err := p.key(depth + 1)
		if err != nil {
			return nil, err
		}
		if b.needs.cost() < a.needs.cost() {
			a, b = b, a
		}
		return &searchKey{op: opOr, sub: []*searchKey{a, b}, needs: a.needs | b.needs}, nil
	}
	return nil, bad("Unknown search key %s", name)
}

// headerKey is HEADER field string: the envelope cache answers it for
// the subject and the address fields when there is a string to find;
// other fields, and whether a field is there at all, need the header.
func headerKey(field, s string) *searchKey {
	field = nettextproto.CanonicalMIMEHeaderKey(field)
	if s != "" {
		switch field {
		case "Subject":
			return &searchKey{op: opSubject, str: s, needs: needSummary}
		case "From", "To", "Cc", "Bcc":
			return &searchKey{op: opAddr, field: field, str: s, needs: needSummary}
		}
	}
	return &searchKey{op: opHeader, field: field, str: s, needs: needHeader}
}

var months = map[string]int{"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6,
	"JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12}

// date reads a search date (RFC 3501 date: 1-Feb-2024, or quoted) as
// yyyymmdd.
func (p *searchParser) date() (int, error) {
	var s string
	var err error
	if p.c.r.Peek() == '"' {
		s, err = p.c.r.Quoted()
	} else {
		s, err = p.c.r.Atom()
	}
	if err != nil {
		return 0, err
	}
	d, m, ok := strings.Cut(s, "-")
	m, y, ok2 := strings.Cut(m, "-")
	month := months[strings.ToUpper(m)]
	if !ok || !ok2 || len(d) < 1 || len(d) > 2 || len(y) != 4 || month == 0 {
		return 0, bad("Invalid date %q", s)
	}
	day, year := 0, 0
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, bad("Invalid date %q", s)
		}
		day = day*10 + int(c-'0')
	}
	for _, c := range y {
		if c < '0' || c > '9' {
			return 0, bad("Invalid date %q", s)
		}
		year = year*10 + int(c-'0')
	}
	if day < 1 || day > 31 {
		return 0, bad("Invalid date %q", s)
	}
	return year*10000 + month*100 + day, nil
}

// dayOf is a time's date in its own zone as yyyymmdd.
func dayOf(t time.Time) int {
	y, m, d := t.Date()
	return y*10000 + int(m)*100 + d
}

// searchMsg is one message being tested, and what was read of it.
type searchMsg struct {
	seq  uint32
	info *store.MessageInfo
	sum  *mailheader.Summary

	hdr     *gomessage.Header // the header section, once read
	hdrRead bool
	texts   *searchTexts // decoded text, once read
}

// searchTexts is a message's text as BODY and TEXT look at it, in lower
// case: its header fields (of every part) and its text parts, decoded.
type searchTexts struct {
	header [][]byte
	body   [][]byte
}

// searcher runs a search over the selected mailbox.
type searcher struct {
	c      *conn
	v      *view
	n      uint32 // messages in the view: '*' of sequence numbers
	maxUID uint32 // '*' of UIDs
}

// searchHit is a message that matched.
type searchHit struct {
	idx  int // in the view (sequence number - 1)
	info store.MessageInfo
}

// search returns the messages of the selected mailbox that match k, in
// sequence-number order. Messages the client knows of but the store
// expunged meanwhile match nothing.
func (c *conn) search(k *searchKey) ([]searchHit, error) { return c.searchAt(k, nil) }

// searchAt is search over some of the messages: those at the view's
// indexes only (ascending), or all when only is nil.
func (c *conn) searchAt(k *searchKey, only []int) ([]searchHit, error) {
	v := c.sel
	s := &searcher{c: c, v: v, n: uint32(len(v.uids))}
	if len(v.uids) > 0 {
		s.maxUID = v.uids[len(v.uids)-1]
	}
	n := len(v.uids)
	if only != nil {
		n = len(only)
	}
	at := func(i int) int {
		if only == nil {
			return i
		}
		return only[i]
	}
	var hits []searchHit
	chunk := make([]uint32, 0, min(n, searchChunk))
	for lo := 0; lo < n; lo += searchChunk {
		chunk = chunk[:0]
		for i := lo; i < min(lo+searchChunk, n); i++ {
			chunk = append(chunk, v.uids[at(i)])
		}
		infos, _, err := c.srv.st.MessagesByUID(c.ctx, c.account, v.name, chunk)
		if err != nil {
			return nil, c.storeError(err, "NONEXISTENT")
		}
		var sums []mailheader.Summary
		if k.needs&needSummary != 0 {
			if sums, err = c.srv.st.Summaries(c.ctx, c.account, v.name, chunk); err != nil {
				return nil, c.storeError(err, "NONEXISTENT")
			}
		}
		j := 0
		for i, uid := range chunk {
			for j < len(infos) && infos[j].UID < uid {
				j++
			}
			if j == len(infos) || infos[j].UID != uid {
				continue
			}
			idx := at(lo + i)
			m := &searchMsg{seq: uint32(idx + 1), info: &infos[j]}
			if sums != nil {
				m.sum = &sums[i]
			}
			if s.match(k, m) {
				hits = append(hits, searchHit{idx: idx, info: infos[j]})
			}
		}
	}
	return hits, nil
}

func (s *searcher) match(k *searchKey, m *searchMsg) bool {
	switch k.op {
	case opAll:
		return true
	case opAnd:
		for _, sub := range k.sub {
			if !s.match(sub, m) {
				return false
			}
		}
		return true
	case opOr:
		return s.match(k.sub[0], m) || s.match(k.sub[1], m)
	case opNot:
		return !s.match(k.sub[0], m)
	case opSeq:
		if k.set.Search {
			return s.saved(m.info.UID)
		}
		return k.set.Contains(m.seq, s.n)
	case opUID:
		if k.set.Search {
			return s.saved(m.info.UID)
		}
		return k.set.Contains(m.info.UID, s.maxUID)
	case opFlag:
		return hasFlagFold(m.info.Flags, k.str)
	case opNoFlag:
		return !hasFlagFold(m.info.Flags, k.str)
	case opRecent:
		return s.c.isRecent(m.info.UID)
	case opNew:
		return s.c.isRecent(m.info.UID) && !hasFlagFold(m.info.Flags, `\Seen`)
	case opOld:
		return !s.c.isRecent(m.info.UID)
	case opBefore:
		return dayOf(m.info.Date) < k.day
	case opOn:
		return dayOf(m.info.Date) == k.day
	case opSince:
		return dayOf(m.info.Date) >= k.day
	case opSentBefore:
		return dayOf(sentDate(m.sum, m.info)) < k.day
	case opSentOn:
		return dayOf(sentDate(m.sum, m.info)) == k.day
	case opSentSince:
		return dayOf(sentDate(m.sum, m.info)) >= k.day
	case opModSeq:
		return m.info.ModSeq >= uint64(k.n)
	case opLarger:
		return m.info.Size > k.n
	case opSmaller:
		return m.info.Size < k.n
	case opSubject:
		return strings.Contains(strings.ToLower(m.sum.Subject), k.str)
	case opAddr:
		return s.matchAddr(k, m)
	case opHeader:
		return s.matchHeader(k, m)
	case opBody, opText:
		if k.str == "" {
			return true
		}
		t := s.texts(m)
		needle := []byte(k.str)
		if k.op == opText {
			for _, h := range t.header {
				if bytes.Contains(h, needle) {
					return true
				}
			}
		}
		for _, b := range t.body {
			if bytes.Contains(b, needle) {
				return true
			}
		}
		return false
	}
	return false
}

// saved reports whether uid is in the saved search result ($).
func (s *searcher) saved(uid uint32) bool {
	_, ok := slices.BinarySearch(s.v.saved, uid)
	return ok
}

// sentDate is a message's Date field, or its internal date when it has
// none that parses (RFC 5256 2.2).
func sentDate(sum *mailheader.Summary, info *store.MessageInfo) time.Time {
	if sum != nil && !sum.Date.IsZero() {
		return sum.Date
	}
	return info.Date
}

// summaryAddrs returns an address field of the envelope cache.
func summaryAddrs(sum *mailheader.Summary, field string) []mailheader.Address {
	switch field {
	case "From":
		return sum.From
	case "To":
		return sum.To
	case "Cc":
		return sum.Cc
	case "Bcc":
		return sum.Bcc
	}
	return nil
}

// matchAddr finds a string in an address field as Dovecot does: in the
// addresses written out ("Name <box@host>, ..."), decoded. The envelope
// cache answers when it has addresses for the field; a field it has none
// for may be missing, or not parse the strict way (comments inside the
// address, a group, an address without a domain), and is read from the
// header with a lenient parser.
func (s *searcher) matchAddr(k *searchKey, m *searchMsg) bool {
	if list := summaryAddrs(m.sum, k.field); len(list) > 0 {
		return strings.Contains(strings.ToLower(addrListText(fromSummary(list))), k.str)
	}
	h := s.header(m)
	if h == nil {
		return false
	}
	found := false
	fields := h.FieldsByKey(k.field)
	for fields.Next() {
		found = true
		if strings.Contains(strings.ToLower(addrListText(parseAddrList(fields.Value()))), k.str) {
			return true
		}
	}
	return found && k.str == ""
}

// matchHeader is HEADER field string: a field of that name whose decoded
// value has the string; any such field for "".
func (s *searcher) matchHeader(k *searchKey, m *searchMsg) bool {
	h := s.header(m)
	if h == nil {
		return false
	}
	fields := h.FieldsByKey(k.field)
	for fields.Next() {
		if k.str == "" {
			return true
		}
		if strings.Contains(strings.ToLower(fieldText(fields)), k.str) {
			return true
		}
	}
	return false
}

// fieldText is a header field's value, decoded (RFC 2047) and unfolded.
func fieldText(f gomessage.HeaderFields) string {
	v, err := f.Text()
	if err != nil {
		v = f.Value()
	}
	return unfold(v)
}

func unfold(s string) string {
	if strings.ContainsAny(s, "\r\n") {
		s = strings.NewReplacer("\r\n", "", "\r", "", "\n", "").Replace(s)
	}
	return s
}

var searchReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

// header reads a message's header section (once); nil if it cannot.
func (s *searcher) header(m *searchMsg) *gomessage.Header {
	if m.hdrRead {
		return m.hdr
	}
	m.hdrRead = true
	r, _, err := s.c.srv.st.OpenMessage(s.c.ctx, s.c.account, s.v.name, m.info.UID)
	if err != nil {
		return nil
	}
	defer r.Close()
	br := searchReaders.Get().(*bufio.Reader)
	br.Reset(io.LimitReader(r, min(m.info.HeaderSize, maxSearchHeader)))
	h, _ := textproto.ReadHeader(br)
	br.Reset(nil)
	searchReaders.Put(br)
	m.hdr = &gomessage.Header{Header: h}
	return m.hdr
}

// texts reads a message's text (once) for BODY and TEXT: every part's
// header fields, and the text of its text parts (and of message parts,
// as they are) with their transfer encoding and charset decoded.
func (s *searcher) texts(m *searchMsg) *searchTexts {
	if m.texts != nil {
		return m.texts
	}
	m.texts = &searchTexts{}
	r, _, err := s.c.srv.st.OpenMessage(s.c.ctx, s.c.account, s.v.name, m.info.UID)
	if err != nil {
		return m.texts
	}
	defer r.Close()
	e, _ := gomessage.Read(bufio.NewReader(io.LimitReader(r, maxSearchBody)))
	if e == nil {
		return m.texts
	}
	// Unknown charsets and encodings still give a readable entity.
	parts := 0
	budget := int64(maxSearchBody)
	var walk func(e *gomessage.Entity, depth int)
	walk = func(e *gomessage.Entity, depth int) {
		parts++
		fields := e.Header.Fields()
		for fields.Next() {
			m.texts.header = append(m.texts.header, bytes.ToLower([]byte(fieldText(fields))))
		}
		if mr := e.MultipartReader(); mr != nil {
			for parts < maxSearchParts && depth < 20 {
				p, err := mr.NextPart()
				if err != nil {
					return
				}
				walk(p, depth+1)
			}
			return
		}
		t, _, _ := e.Header.ContentType()
		if t != "" && !strings.HasPrefix(t, "text/") && !strings.HasPrefix(t, "message/") {
			return
		}
		b, _ := io.ReadAll(io.LimitReader(e.Body, budget))
		budget -= int64(len(b))
		m.texts.body = append(m.texts.body, bytes.ToLower(b))
	}
	walk(e, 0)
	return m.texts
}

// Addresses as search and sort see them.

// addr is one address, or the start (group, with name) or end (end) of a
// group.
type addr struct {
	name, mailbox, host string
	group, end          bool
}

// fromSummary converts the envelope cache's addresses, groups as IMAP's
// ENVELOPE has them.
func fromSummary(list []mailheader.Address) []addr {
	out := make([]addr, len(list))
	for i, a := range list {
		out[i] = summaryAddr(a)
	}
	return out
}

// summaryAddr converts one address of the envelope cache; a mailbox
// always has a host there, a group marker none (the start has the
// group's name as its mailbox).
func summaryAddr(a mailheader.Address) addr {
	switch {
	case a.Host == "" && a.Mailbox != "":
		return addr{name: a.Mailbox, group: true}
	case a.Host == "":
		return addr{end: true}
	}
	return addr{name: a.Name, mailbox: a.Mailbox, host: a.Host}
}

// spec is the address as mailbox@host (just the mailbox without a host).
func (a addr) spec() string {
	if a.host == "" {
		return a.mailbox
	}
	return a.mailbox + "@" + a.host
}

// addrListText writes addresses out as a header would have them:
// "Name <box@host>, group: a@b, c@d;".
func addrListText(list []addr) string {
	var b strings.Builder
	sep := ""
	for _, a := range list {
		switch {
		case a.group:
			b.WriteString(sep + a.name + ":")
			sep = " "
			continue
		case a.end:
			b.WriteString(";")
			sep = ", "
			continue
		}
		b.WriteString(sep)
		if a.name != "" {
			b.WriteString(a.name + " <" + a.spec() + ">")
		} else {
			b.WriteString(a.spec())
		}
		sep = ", "
	}
	return b.String()
}

var wordDecoder = &mime.WordDecoder{CharsetReader: charset.Reader}

func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	if d, err := wordDecoder.DecodeHeader(s); err == nil {
		return d
	}
	return s
}

// addrToken is a lexical element of an address field: an atom-like run
// ('a'), a quoted string ('q'), a comment ('c'), an angle address with
// its comments and spaces removed ('<'), or one of , : ; as itself.
type addrToken struct {
	kind byte
	s    string
}

// parseAddrList reads an address list (RFC 5322 3.4) leniently: comments
// anywhere, groups, addresses without a domain, a comment as the name of
// an address that has none ("box@host (Name)").
func parseAddrList(v string) []addr {
	toks := addrTokens(v)
	var out []addr
	var cur []addrToken
	inGroup := false
	flush := func() {
		if a, ok := addrOf(cur); ok {
			out = append(out, a)
		}
		cur = cur[:0]
	}
	for _, t := range toks {
		switch t.kind {
		case ',':
			flush()
		case ':':
			if inGroup { // a stray colon: part of the address
				cur = append(cur, addrToken{'a', ":"})
				continue
			}
			var words []string
			for _, w := range cur {
				if w.kind == 'a' || w.kind == 'q' {
					words = append(words, w.s)
				}
			}
			out = append(out, addr{name: decodeWords(strings.Join(words, " ")), group: true})
			cur = cur[:0]
			inGroup = true
		case ';':
			flush()
			if inGroup {
				out = append(out, addr{end: true})
				inGroup = false
			}
		default:
			cur = append(cur, t)
		}
	}
	flush()
	if inGroup {
		out = append(out, addr{end: true})
	}
	return out
}

// addrOf makes one address of its tokens.
func addrOf(toks []addrToken) (addr, bool) {
	var words []string
	var comment string
	spec, angle := "", false
	for _, t := range toks {
		switch t.kind {
		case '<':
			spec, angle = t.s, true
		case 'c':
			if comment == "" {
				comment = strings.TrimSpace(t.s)
			}
		default:
			if !angle {
				words = append(words, t.s)
			}
		}
	}
	var a addr
	if angle {
		a.name = decodeWords(strings.Join(words, " "))
		// A source route (obsolete): "<@a,@b:box@host>".
		if strings.HasPrefix(spec, "@") {
			if i := strings.IndexByte(spec, ':'); i >= 0 {
				spec = spec[i+1:]
			}
		}
	} else {
		spec = strings.Join(words, "")
		a.name = decodeWords(comment)
	}
	if i := strings.LastIndexByte(spec, '@'); i >= 0 {
		a.mailbox, a.host = spec[:i], spec[i+1:]
	} else {
		a.mailbox = spec
	}
	return a, a.mailbox != "" || a.host != "" || a.name != ""
}

// addrTokens splits an address field into tokens.
func addrTokens(v string) []addrToken {
	var out []addrToken
	for i := 0; i < len(v); {
		c := v[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '(':
			s, n := addrComment(v[i:])
			out = append(out, addrToken{'c', s})
			i += n
		case c == '"':
			s, n := addrQuoted(v[i:])
			out = append(out, addrToken{'q', s})
			i += n
		case c == '<':
			var b strings.Builder
			i++
			for i < len(v) && v[i] != '>' {
				switch v[i] {
				case '(':
					_, n := addrComment(v[i:])
					i += n
				case '"':
					s, n := addrQuoted(v[i:])
					b.WriteString(s)
					i += n
				case ' ', '\t', '\r', '\n':
					i++
				default:
					b.WriteByte(v[i])
					i++
				}
			}
			i++ // '>'
			out = append(out, addrToken{'<', b.String()})
		case c == ',' || c == ':' || c == ';':
			out = append(out, addrToken{kind: c})
			i++
		default:
			j := i
			for j < len(v) && !strings.ContainsRune(" \t\r\n(\"<,:;", rune(v[j])) {
				j++
			}
			out = append(out, addrToken{'a', v[i:j]})
			i = j
		}
	}
	return out
}

// addrComment reads a comment, nested ones included; n is its length.
func addrComment(v string) (s string, n int) {
	var b strings.Builder
	depth := 0
	for n < len(v) {
		c := v[n]
		n++
		switch c {
		case '(':
			depth++
			if depth == 1 {
				continue
			}
		case ')':
			depth--
			if depth == 0 {
				return b.String(), n
			}
		case '\\':
			if n < len(v) {
				c = v[n]
				n++
			}
		}
		b.WriteByte(c)
	}
	return b.String(), n
}

// addrQuoted reads a quoted string; n is its length.
func addrQuoted(v string) (s string, n int) {
	var b strings.Builder
	n = 1
	for n < len(v) {
		c := v[n]
		n++
		switch c {
		case '"':
			return b.String(), n
		case '\\':
			if n < len(v) {
				c = v[n]
				n++
			}
		}
		b.WriteByte(c)
	}
	return b.String(), n
}

// The SEARCH command.

// returnOpts are the RETURN options of ESEARCH (RFC 4731), ESORT and
// CONTEXT=SEARCH/SORT (RFC 5267, PARTIAL as RFC 9394 has it); esearch
// says the client asked for them (RETURN given).
type returnOpts struct {
	esearch                   bool
	min, max, all, count, sav bool
	// update keeps the result up to date with ADDTO and REMOVEFROM
	// (context.go).
	update bool
	// partial returns the results at these positions of the result.
	partial *partialRange
}

// readReturn reads "(opt ...)" after RETURN.
func (c *conn) readReturn() (returnOpts, error) {
	o := returnOpts{esearch: true}
	err := c.r.List(func() error {
		a, err := c.r.Atom()
		if err != nil {
			return err
		}
		switch strings.ToUpper(a) {
		case "MIN":
			o.min = true
		case "MAX":
			o.max = true
		case "ALL":
			o.all = true
		case "COUNT":
			o.count = true
		case "SAVE":
			o.sav = true
		case "CONTEXT":
			// A hint that the criteria will be used again (RFC 5267 4.2).
		case "UPDATE":
			if o.update {
				return bad("UPDATE given twice")
			}
			o.update = true
		case "PARTIAL":
			if o.partial != nil {
				return bad("PARTIAL given twice")
			}
			rng, err := arg(c, c.r.Atom)
			if err != nil {
				return bad("PARTIAL needs a range")
			}
			if o.partial, err = parsePartial(rng); err != nil {
				return err
			}
		default:
			return bad("Unknown RETURN option %s", a)
		}
		return nil
	})
	if err != nil {
		return o, err
	}
	if o.partial != nil && o.all {
		return o, bad("PARTIAL and ALL cannot be combined")
	}
	if !o.min && !o.max && !o.count && !o.sav && !o.update && o.partial == nil {
		o.all = true // RETURN () is RETURN (ALL)
	}
	return o, nil
}

// partialRange is PARTIAL's range (RFC 9394 3.1): the results at
// positions lo to hi (1-based, lo <= hi) from the first, or from the
// last when last ("-1:-100" is the last hundred).
type partialRange struct {
	lo, hi uint32
	last   bool
}

// parsePartial parses "lo:hi" or "-lo:-hi"; either end may come first.
func parsePartial(s string) (*partialRange, error) {
	a, b, ok := strings.Cut(s, ":")
	p := &partialRange{}
	if ok && strings.HasPrefix(a, "-") && strings.HasPrefix(b, "-") {
		p.last, a, b = true, a[1:], b[1:]
	}
	x, okx := nzNumber(a)
	y, oky := nzNumber(b)
	if !ok || !okx || !oky {
		return nil, bad("Invalid PARTIAL range %s", s)
	}
	p.lo, p.hi = min(x, y), max(x, y)
	return p, nil
}

// nzNumber parses a non-zero number (RFC 3501 nz-number).
func nzNumber(s string) (uint32, bool) {
	if s == "" || s[0] == '0' || len(s) > 10 {
		return 0, false
	}
	var n uint64
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return uint32(n), n <= 1<<32-1
}

// String is the range as the response gives it back.
func (p *partialRange) String() string {
	if p.last {
		return "-" + itoa(p.lo) + ":-" + itoa(p.hi)
	}
	return itoa(p.lo) + ":" + itoa(p.hi)
}

// pick returns the indexes [from, to) of a result of n that the range
// names; from >= to when none.
func (p *partialRange) pick(n int) (from, to int) {
	lo, hi := int64(p.lo), int64(p.hi)
	if p.last {
		return int(max(int64(n)-hi, 0)), int(max(int64(n)-lo+1, 0))
	}
	return int(min(lo-1, int64(n))), int(min(hi, int64(n)))
}

// checkCharset accepts the charsets search strings may come in.
func checkCharset(cs string) error {
	switch strings.ToUpper(cs) {
	case "UTF-8", "US-ASCII":
		return nil
	}
	return no("BADCHARSET (UTF-8 US-ASCII)", "Unsupported charset %s", cs)
}

// searchArgs reads what SEARCH and SORT share after their own arguments:
// an optional (SEARCH) or required (SORT, THREAD) charset, then the
// criteria. first is a word already read ("" for none).
func (c *conn) searchArgs(first string, needCharset bool) (*searchKey, error) {
	p := &searchParser{c: c}
	if needCharset {
		cs, err := c.r.AString()
		if err != nil {
			return nil, err
		}
		if err := checkCharset(cs); err != nil {
			return nil, err
		}
		if err := c.r.SP(); err != nil {
			return nil, err
		}
		return p.criteria("")
	}
	if strings.EqualFold(first, "CHARSET") {
		cs, err := arg(c, c.r.AString)
		if err != nil {
			return nil, err
		}
		if err := checkCharset(cs); err != nil {
			return nil, err
		}
		if err := c.r.SP(); err != nil {
			return nil, err
		}
		first = ""
	}
	return p.criteria(first)
}

// leadingWord reads a word where one may start the arguments (RETURN,
// CHARSET, a search key), or "" when a search key that is not a word
// comes (a set, a parenthesized list).
func (c *conn) leadingWord() (string, error) {
	if b := c.r.Peek(); 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' {
		return c.r.Atom()
	}
	return "", nil
}

func (c *conn) cmdSearch(cmd *command) (err error) {
	if err := c.r.SP(); err != nil {
		return err
	}
	word, err := c.leadingWord()
	if err != nil {
		return err
	}
	var opts returnOpts
	if strings.EqualFold(word, "RETURN") {
		if err := c.r.SP(); err != nil {
			return err
		}
		if opts, err = c.readReturn(); err != nil {
			return err
		}
		if opts.sav {
			// A SEARCH that saves and fails leaves an empty result
			// (RFC 5182 2.1).
			defer func() {
				if err != nil {
					c.sel.saved = nil
				}
			}()
		}
		if err := c.r.SP(); err != nil {
			return err
		}
		if word, err = c.leadingWord(); err != nil {
			return err
		}
	}
	if opts.update {
		if err := c.checkUpdateTag(cmd.tag); err != nil {
			return err
		}
	}
	k, err := c.searchArgs(word, false)
	if err != nil {
		return err
	}
	hits, err := c.search(k)
	if err != nil {
		return err
	}
	c.searchResult(cmd, "SEARCH", k, opts, hits, false)
	if opts.update {
		c.addUpdate(cmd, k, nil, hits)
	}
	return c.w.Err()
}

// searchResult writes the result of a SEARCH or SORT (hits in the
// result's order): "* SEARCH ..." or, with RETURN, ESEARCH; with SAVE it
// keeps it as $. A MODSEQ key makes the session CONDSTORE's and adds the
// highest mod-sequence of what was returned (RFC 7162 3.1.5).
func (c *conn) searchResult(cmd *command, name string, k *searchKey, opts returnOpts, hits []searchHit, sorted bool) {
	var modseq uint64
	if k.has(opModSeq) {
		c.condstoreBySearch()
		modseq = resultModSeq(opts, hits)
	}
	nums := make([]uint32, len(hits))
	for i, h := range hits {
		nums[i] = uint32(h.idx + 1)
		if cmd.uid {
			nums[i] = h.info.UID
		}
	}
	if !opts.esearch {
		c.w.Raw("* ").Raw(name)
		for _, n := range nums {
			c.w.SP().Num(n)
		}
		if modseq > 0 {
			c.w.Raw(" (MODSEQ ").Num64(modseq).Raw(")")
		}
		c.w.CRLF()
		return
	}
	c.saveResult(opts, hits)
	c.esearch(cmd, opts, nums, sorted, modseq)
}

// has reports whether the key or one of its sub-keys is op.
func (k *searchKey) has(op searchOp) bool {
	if k.op == op {
		return true
	}
	for _, s := range k.sub {
		if s.has(op) {
			return true
		}
	}
	return false
}

// returnedHits is what a result returns of its hits (in the result's
// order): all of them with ALL or COUNT, or when MIN, MAX and PARTIAL
// are not asked for either (SAVE or UPDATE alone); else what MIN, MAX and
// PARTIAL name.
func returnedHits(opts returnOpts, hits []searchHit) []searchHit {
	if !opts.esearch || opts.all || opts.count || !opts.min && !opts.max && opts.partial == nil || len(hits) == 0 {
		return hits
	}
	var out []searchHit
	if opts.partial != nil {
		if from, to := opts.partial.pick(len(hits)); from < to {
			out = append(out, hits[from:to]...)
		}
	}
	if opts.min {
		out = append(out, hits[0])
	}
	if opts.max {
		out = append(out, hits[len(hits)-1])
	}
	return out
}

// resultModSeq is the highest mod-sequence of the messages a result
// returns.
func resultModSeq(opts returnOpts, hits []searchHit) uint64 {
	var m uint64
	for _, h := range returnedHits(opts, hits) {
		m = max(m, h.info.ModSeq)
	}
	return m
}

// condstoreBySearch turns CONDSTORE on for a SEARCH or SORT with MODSEQ
// (an enabling command, RFC 7162 3.1), saying the mailbox's highest
// mod-sequence the first time.
func (c *conn) condstoreBySearch() {
	if c.enabled["CONDSTORE"] {
		return
	}
	c.enabled["CONDSTORE"] = true
	if meta, err := c.srv.st.Mailbox(c.ctx, c.account, c.sel.name); err == nil {
		c.w.Raw("* OK [HIGHESTMODSEQ ").Num64(meta.HighestModSeq).Raw("] Highest").CRLF()
	}
}

// saveResult keeps the result as "$" when asked to (RFC 5182 2.4): what
// the result returns (all of it, or only what MIN, MAX and PARTIAL name
// when they are the only other options). hits are in the order of the
// result.
func (c *conn) saveResult(opts returnOpts, hits []searchHit) {
	if !opts.sav {
		return
	}
	ret := returnedHits(opts, hits)
	saved := make([]uint32, len(ret))
	for i, h := range ret {
		saved[i] = h.info.UID
	}
	slices.Sort(saved)
	c.sel.saved = slices.Compact(saved)
}

// esearch writes the ESEARCH response of a SEARCH or SORT with RETURN;
// nums are in the result's order (ascending, or the sort's), MIN and MAX
// its first and last; modseq (CONDSTORE) ends it when not 0.
func (c *conn) esearch(cmd *command, opts returnOpts, nums []uint32, sorted bool, modseq uint64) {
	if opts.sav && !opts.min && !opts.max && !opts.all && !opts.count && opts.partial == nil && !opts.update {
		return // SAVE alone returns nothing (RFC 5182 2.4)
	}
	c.w.Raw(`* ESEARCH (TAG "`).Raw(cmd.tag).Raw(`")`)
	if cmd.uid {
		c.w.Raw(" UID")
	}
	if len(nums) > 0 {
		if opts.min {
			c.w.Raw(" MIN ").Num(nums[0])
		}
		if opts.max {
			c.w.Raw(" MAX ").Num(nums[len(nums)-1])
		}
		if opts.all {
			c.w.Raw(" ALL ")
			if sorted {
				c.w.Raw(compactOrdered(nums))
			} else {
				c.w.Raw(imapwire.Compact(nums))
			}
		}
	}
	if p := opts.partial; p != nil {
		c.w.Raw(" PARTIAL (").Raw(p.String()).SP()
		if from, to := p.pick(len(nums)); from < to && sorted {
			c.w.Raw(compactOrdered(nums[from:to]))
		} else if from < to {
			c.w.Raw(imapwire.Compact(nums[from:to]))
		} else {
			c.w.Raw("NIL")
		}
		c.w.Raw(")")
	}
	if opts.count {
		c.w.Raw(" COUNT ").Num(uint32(len(nums)))
	}
	if modseq > 0 {
		c.w.Raw(" MODSEQ ").Num64(modseq)
	}
	c.w.CRLF()
}

// compactOrdered writes numbers in their order as a sequence set, runs of
// consecutive ascending numbers as ranges: 5,3:4,2.
func compactOrdered(nums []uint32) string {
	var b []byte
	for i := 0; i < len(nums); {
		j := i
		for j+1 < len(nums) && nums[j+1] == nums[j]+1 {
			j++
		}
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = appendUint(b, nums[i])
		if j > i {
			b = append(b, ':')
			b = appendUint(b, nums[j])
		}
		i = j + 1
	}
	return string(b)
}

func appendUint(b []byte, n uint32) []byte {
	var tmp [10]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}
