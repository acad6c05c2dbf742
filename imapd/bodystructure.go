package imapd

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/emersion/go-message"

	"yubin/internal/mailheader"
)

// A message's MIME structure (RFC 2045, RFC 2046) as IMAP numbers it
// (RFC 3501 6.4.5), with where each part's header and body lie in the raw
// message: what BODYSTRUCTURE describes and BODY[1.2.MIME] or BINARY[2]
// fetch. The parse follows Dovecot's: a boundary line ends every part
// inside the multipart it belongs to, the line break before it belongs
// to the boundary, Content-* fields count only in a MIME entity (one with
// MIME-Version or Content-Type, or a part of a multipart), and parts
// without a type are text/plain (message/rfc822 in a multipart/digest).

// mimePart is one part: the message itself (the root), a part of a
// multipart, or the message a message/rfc822 part holds.
type mimePart struct {
	start     int64 // where its header begins
	bodyStart int64 // where its body begins (the header ends)
	end       int64 // where its body ends
	lines     int64 // line breaks in its body

	typ, subtype string // lower case; "" when it has no usable Content-Type
	params       []mimeParam
	id, desc     string
	cte          string // Content-Transfer-Encoding, lower case; "" for none
	md5          string
	disp         string // Content-Disposition's type, lower case
	dispParams   []mimeParam
	lang         []string
	location     string

	multipart bool
	message   bool // message/rfc822: children[0] is the message it holds
	// truncated is a multipart or message/rfc822 part beyond the parse's
	// limits: described as application/octet-stream.
	truncated bool
	children  []*mimePart
	// header is the header section of a message held by a message/rfc822
	// part (for its ENVELOPE).
	header []byte
}

type mimeParam struct{ name, value string }

// Limits of the parse, as Dovecot's: parts nested deeper, or beyond the
// total, are left unparsed (truncated).
const (
	maxMIMEDepth = 100
	maxMIMEParts = 10000
	// maxPartHeader is how much of a part's header is read for its
	// Content-* fields (and a held message's envelope).
	maxPartHeader = 64 << 10
	// maxBoundary is the longest boundary recognized (RFC 2046 says 70).
	maxBoundary = 200
)

// find returns the part a section's part numbers name (RFC 3501 6.4.5, as
// Dovecot reads them), or nil.
func (p *mimePart) find(path []int) *mimePart {
	for i, n := range path {
		if p.multipart {
			if n < 1 || n > len(p.children) {
				return nil
			}
			p = p.children[n-1]
		} else if n != 1 || i < len(path)-1 && !p.message {
			// A non-multipart has only part 1 (itself), and only a
			// message/rfc822 has parts below.
			return nil
		}
		if p.message && i < len(path)-1 {
			p = p.children[0]
		}
	}
	return p
}

// parseStructure parses a raw message from a stream.
func parseStructure(r io.Reader) (*mimePart, error) {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(r)
	defer func() {
		br.Reset(nil)
		readerPool.Put(br)
	}()
	p := &mimeParser{br: br}
	root := &mimePart{}
	p.parsePart(root, nil, 0)
	return root, p.err
}

// parseStructureBytes parses a raw message in memory.
func parseStructureBytes(msg []byte) *mimePart {
	p := &mimeParser{data: msg}
	root := &mimePart{}
	p.parsePart(root, nil, 0)
	return root
}

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 32<<10) }}

type mimeParser struct {
	data   []byte // the message, when it is in memory (else br)
	br     *bufio.Reader
	off    int64 // offset of the next byte
	nl     int64 // line breaks before off
	bounds []mimeBoundary
	parts  int
	err    error
	prefix []byte // the first bytes of the line just read
	last   byte   // the last byte read
	// keepFull: the header being read went over maxPartHeader; the rest
	// of it is not kept.
	keepFull bool
}

type mimeBoundary struct {
	b     string
	owner *mimePart
}

// boundaryHit is a boundary line that ended a part.
type boundaryHit struct {
	idx   int   // the boundary's index in bounds
	close bool  // "--boundary--"
	start int64 // where its line begins
	nl    int64 // line breaks before its line
	prev  int   // the line break before it, which belongs to it (0 at a body's start)
}

// readLine reads one line; keep, when not nil, gets its bytes while it
// stays under maxPartHeader. It returns where the line began and the
// length of its line break (0 for a last line without one); ok is false at
// the end of the message.
func (p *mimeParser) readLine(keep *[]byte) (start int64, nlLen int, ok bool) {
	start = p.off
	if p.data != nil {
		rest := p.data[start:]
		if len(rest) == 0 {
			return start, 0, false
		}
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i+1]
			nlLen = 1
			if i > 0 && rest[i-1] == '\r' {
				nlLen = 2
			}
			p.nl++
		}
		p.prefix = line[:min(len(line), 2+maxBoundary+2)]
		p.keep(keep, line)
		p.off += int64(len(line))
		return start, nlLen, true
	}
	p.prefix = p.prefix[:0]
	for {
		chunk, err := p.br.ReadSlice('\n')
		if len(chunk) > 0 {
			if room := 2 + maxBoundary + 2 - len(p.prefix); room > 0 {
				p.prefix = append(p.prefix, chunk[:min(room, len(chunk))]...)
			}
			p.keep(keep, chunk)
			p.off += int64(len(chunk))
			if chunk[len(chunk)-1] == '\n' {
				nlLen = 1
				if len(chunk) > 1 && chunk[len(chunk)-2] == '\r' || len(chunk) == 1 && p.last == '\r' {
					nlLen = 2
				}
				p.last = '\n'
				p.nl++
				return start, nlLen, true
			}
			p.last = chunk[len(chunk)-1]
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil && err != io.EOF && p.err == nil {
			p.err = err
		}
		return start, 0, p.off > start
	}
}

// keep adds b to a header being read, unless it went over
// maxPartHeader.
func (p *mimeParser) keep(keep *[]byte, b []byte) {
	switch {
	case keep == nil || p.keepFull:
	case len(*keep)+len(b) > maxPartHeader:
		p.keepFull = true
	default:
		*keep = append(*keep, b...)
	}
}

// boundary reports which boundary the line just read is, if any: the
// longest that it begins with, the innermost of equals.
func (p *mimeParser) boundary() (idx int, close bool) {
	l := p.prefix
	if len(p.bounds) == 0 || len(l) < 2 || l[0] != '-' || l[1] != '-' {
		return -1, false
	}
	l = l[2:]
	idx, best := -1, -1
	for i := len(p.bounds) - 1; i >= 0; i-- {
		b := p.bounds[i].b
		if len(b) > best && bytes.HasPrefix(l, []byte(b)) {
			idx, best = i, len(b)
		}
	}
	if idx < 0 {
		return -1, false
	}
	return idx, bytes.HasPrefix(l[best:], []byte("--"))
}

// scanBody reads body lines up to a boundary line (read too) or the end.
func (p *mimeParser) scanBody() *boundaryHit {
	prev := 0
	for {
		start, nlLen, ok := p.readLine(nil)
		if !ok {
			return nil
		}
		if idx, closing := p.boundary(); idx >= 0 {
			return p.hit(idx, closing, start, nlLen, prev)
		}
		prev = nlLen
	}
}

func (p *mimeParser) hit(idx int, closing bool, start int64, nlLen, prev int) *boundaryHit {
	h := &boundaryHit{idx: idx, close: closing, start: start, nl: p.nl, prev: prev}
	if nlLen > 0 {
		h.nl--
	}
	return h
}

// finish sets where part's body ends: at the line break before the
// boundary line that ended it, or at the end of the message.
func (p *mimeParser) finish(part *mimePart, h *boundaryHit, bodyNL int64) {
	end, nl := p.off, p.nl
	if h != nil {
		end, nl = h.start, h.nl
		if h.prev > 0 && end-int64(h.prev) >= part.bodyStart {
			end -= int64(h.prev)
			nl--
		}
	}
	part.end = max(end, part.bodyStart)
	part.lines = max(nl-bodyNL, 0)
}

// parsePart parses a part from its header on; parent is nil for the root.
// It returns the boundary line that ended the part (nil at the end of the
// message).
func (p *mimeParser) parsePart(part, parent *mimePart, depth int) *boundaryHit {
	p.parts++
	part.start = p.off
	var hdr []byte
	p.keepFull = false
	prev := 0
	var cut *boundaryHit
	for {
		kept := len(hdr)
		start, nlLen, ok := p.readLine(&hdr)
		if !ok {
			part.bodyStart = p.off
			break
		}
		if idx, closing := p.boundary(); idx >= 0 {
			// A boundary inside the header: the part ends there, and
			// the line break before belongs to the boundary.
			hdr = hdr[:kept]
			cut = p.hit(idx, closing, start, nlLen, prev)
			part.bodyStart = max(start-int64(prev), part.start)
			break
		}
		if int(p.off-start) == nlLen {
			part.bodyStart = p.off
			break
		}
		prev = nlLen
	}
	part.parseHeader(hdr, parent)
	if parent != nil && parent.message {
		part.header = hdr
	}
	bodyNL := p.nl
	if cut != nil {
		part.end, part.lines = part.bodyStart, 0
		if part.message { // it holds an empty message
			part.children = []*mimePart{{start: part.end, bodyStart: part.end, end: part.end}}
		}
		return cut
	}
	overLimits := depth+1 >= maxMIMEDepth || p.parts >= maxMIMEParts
	switch {
	case part.multipart && overLimits, part.message && overLimits:
		part.multipart, part.message, part.truncated = false, false, true
		h := p.scanBody()
		p.finish(part, h, bodyNL)
		return h
	case part.multipart:
		b := part.param("boundary")
		if b == "" {
			h := p.scanBody()
			p.finish(part, h, bodyNL)
			return h
		}
		if len(b) > maxBoundary {
			b = b[:maxBoundary]
		}
		p.bounds = append(p.bounds, mimeBoundary{b: b, owner: part})
		mine := len(p.bounds) - 1
		h := p.scanBody() // the preamble
		for h != nil && h.idx == mine && !h.close && p.parts < maxMIMEParts {
			child := &mimePart{}
			part.children = append(part.children, child)
			h = p.parsePart(child, part, depth+1)
		}
		if h != nil && h.idx == mine {
			// The close delimiter (or past the part limit): what
			// follows up to an outer boundary is the epilogue.
			p.bounds = p.bounds[:mine]
			h = p.scanBody()
		} else {
			p.bounds = p.bounds[:mine]
		}
		p.finish(part, h, bodyNL)
		return h
	case part.message:
		child := &mimePart{}
		part.children = []*mimePart{child}
		h := p.parsePart(child, part, depth+1)
		p.finish(part, h, bodyNL)
		return h
	default:
		h := p.scanBody()
		p.finish(part, h, bodyNL)
		return h
	}
}

// param returns a Content-Type parameter.
func (p *mimePart) param(name string) string {
	for _, pr := range p.params {
		if pr.name == name {
			return pr.value
		}
	}
	return ""
}

// parseHeader reads the Content-* fields of a part's header.
func (p *mimePart) parseHeader(hdr []byte, parent *mimePart) {
	isMIME := parent != nil && parent.multipart
	var ctype string
	seen := map[string]bool{}
	eachField(hdr, func(name, value []byte) {
		k := strings.ToLower(string(name))
		if !strings.HasPrefix(k, "content-") && k != "mime-version" || seen[k] {
			return
		}
		seen[k] = true
		v := string(value)
		switch k {
		case "mime-version":
			isMIME = true
		case "content-type":
			isMIME = true
			ctype = v
		case "content-transfer-encoding":
			lx := lexer{s: v}
			lx.cfws()
			p.cte = strings.ToLower(lx.token())
		case "content-id":
			p.id = v
		case "content-description":
			p.desc = v
		case "content-md5":
			p.md5 = v
		case "content-location":
			p.location = v
		case "content-disposition":
			lx := lexer{s: v}
			lx.cfws()
			if d := lx.token(); d != "" {
				p.disp = strings.ToLower(d)
				p.dispParams = lx.params()
			}
		case "content-language":
			lx := lexer{s: v}
			for {
				lx.cfws()
				t := lx.token()
				if t == "" {
					break
				}
				p.lang = append(p.lang, t)
				lx.cfws()
				if !lx.consume(',') {
					break
				}
			}
		}
	})
	if !isMIME {
		// Not a MIME entity: its Content-* fields mean nothing.
		*p = mimePart{start: p.start, bodyStart: p.bodyStart}
		ctype = ""
	}
	if ctype != "" {
		lx := lexer{s: ctype}
		lx.cfws()
		typ := lx.token()
		lx.cfws()
		if typ != "" && lx.consume('/') {
			lx.cfws()
			if sub := lx.token(); sub != "" {
				p.typ, p.subtype = strings.ToLower(typ), strings.ToLower(sub)
				p.params = lx.params()
			}
		}
	}
	switch {
	case p.typ == "multipart":
		p.multipart = true
	case p.typ == "message" && p.subtype == "rfc822":
		p.message = true
	case p.typ == "" && parent != nil && parent.multipart && parent.subtype == "digest":
		p.typ, p.subtype, p.message = "message", "rfc822", true
	}
}

// eachField calls fn with each field of a header section: its name, and
// its value unfolded and trimmed.
func eachField(hdr []byte, fn func(name, value []byte)) {
	var name, value []byte
	flush := func() {
		if name != nil {
			fn(name, bytes.TrimSpace(value))
		}
		name, value = nil, value[:0]
	}
	for len(hdr) > 0 {
		line := hdr
		if i := bytes.IndexByte(hdr, '\n'); i >= 0 {
			line, hdr = hdr[:i], hdr[i+1:]
		} else {
			hdr = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if name != nil {
				value = append(value, line...)
			}
			continue
		}
		flush()
		c := bytes.IndexByte(line, ':')
		if c <= 0 {
			continue
		}
		name = bytes.TrimRight(line[:c], " \t")
		value = append(value, line[c+1:]...)
	}
	flush()
}

// lexer reads the structured values of MIME fields (RFC 2045 5.1, RFC
// 822 lexical tokens): tokens, quoted strings, comments.
type lexer struct {
	s string
	i int
}

func (lx *lexer) consume(c byte) bool {
	if lx.i < len(lx.s) && lx.s[lx.i] == c {
		lx.i++
		return true
	}
	return false
}

// cfws skips white space and comments.
func (lx *lexer) cfws() {
	for lx.i < len(lx.s) {
		switch lx.s[lx.i] {
		case ' ', '\t', '\r', '\n':
			lx.i++
		case '(':
			depth := 0
			for ; lx.i < len(lx.s); lx.i++ {
				switch lx.s[lx.i] {
				case '\\':
					lx.i++
				case '(':
					depth++
				case ')':
					depth--
				}
				if depth == 0 {
					break
				}
			}
			lx.i = min(lx.i+1, len(lx.s))
		default:
			return
		}
	}
}

// token reads a MIME token (any CHAR but SP, CTLs and tspecials).
func (lx *lexer) token() string {
	start := lx.i
	for lx.i < len(lx.s) {
		c := lx.s[lx.i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			break
		}
		lx.i++
	}
	return lx.s[start:lx.i]
}

// quoted reads a quoted string, unquoted.
func (lx *lexer) quoted() string {
	var b strings.Builder
	for lx.i++; lx.i < len(lx.s) && lx.s[lx.i] != '"'; lx.i++ {
		if lx.s[lx.i] == '\\' && lx.i+1 < len(lx.s) {
			lx.i++
		}
		if c := lx.s[lx.i]; c != '\r' && c != '\n' {
			b.WriteByte(c)
		}
	}
	lx.i = min(lx.i+1, len(lx.s))
	return b.String()
}

// params reads ";"-separated parameters to the end of the value (or the
// first that does not parse), joining RFC 2231 continuations and decoding
// their charsets. Names are lower case.
func (lx *lexer) params() []mimeParam {
	type segment struct {
		n   int
		ext bool
		v   string
	}
	var out []mimeParam
	var order []string
	split := map[string][]segment{}
	for {
		lx.cfws()
		if !lx.consume(';') {
			break
		}
		lx.cfws()
		name := strings.ToLower(lx.token())
		lx.cfws()
		if name == "" || !lx.consume('=') {
			if lx.i < len(lx.s) && lx.s[lx.i] == ';' {
				continue // an empty parameter
			}
			break
		}
		lx.cfws()
		var v string
		switch {
		case lx.i < len(lx.s) && lx.s[lx.i] == '"':
			v = lx.quoted()
		case lx.i < len(lx.s) && lx.s[lx.i] == '=':
			// name==?utf-8?b?...?= as some mailers write it
			start := lx.i
			for lx.i < len(lx.s) && strings.IndexByte("; \t\r\n", lx.s[lx.i]) < 0 {
				lx.i++
			}
			v = lx.s[start:lx.i]
		default:
			v = lx.token()
		}
		base, rest, starred := strings.Cut(name, "*")
		if !starred {
			out = append(out, mimeParam{name, v})
			continue
		}
		if rest == "" { // name*=charset'lang'value
			out = append(out, mimeParam{base, decode2231(v)})
			continue
		}
		ext := strings.HasSuffix(rest, "*")
		num := strings.TrimSuffix(rest, "*")
		n := 0
		for _, d := range []byte(num) {
			if d < '0' || d > '9' || n > 1000 {
				n = -1
				break
			}
			n = n*10 + int(d-'0')
		}
		if n < 0 || num == "" {
			continue
		}
		if _, ok := split[base]; !ok {
			order = append(order, base)
		}
		split[base] = append(split[base], segment{n, ext, v})
	}
	for _, base := range order {
		if paramIndex(out, base) >= 0 {
			continue // a plain value wins over continuations
		}
		segs := split[base]
		// Put the segments in order (they are few); a missing one ends
		// the value.
		var raw strings.Builder
		charset := ""
		for want := 0; ; want++ {
			i := -1
			for j, s := range segs {
				if s.n == want {
					i = j
					break
				}
			}
			if i < 0 {
				break
			}
			s := segs[i]
			v := s.v
			if s.ext {
				if want == 0 {
					if cs, rest, ok := strings.Cut(v, "'"); ok {
						if _, val, ok := strings.Cut(rest, "'"); ok {
							charset, v = cs, val
						}
					}
				}
				v = percentDecode(v)
			}
			raw.WriteString(v)
		}
		out = append(out, mimeParam{base, toUTF8(charset, raw.String())})
	}
	return out
}

func paramIndex(ps []mimeParam, name string) int {
	for i, p := range ps {
		if p.name == name {
			return i
		}
	}
	return -1
}

// decode2231 decodes an extended value charset'language'percent-encoded.
func decode2231(v string) string {
	cs, rest, ok := strings.Cut(v, "'")
	if !ok {
		return percentDecode(v)
	}
	_, val, ok := strings.Cut(rest, "'")
	if !ok {
		return percentDecode(v)
	}
	return toUTF8(cs, percentDecode(val))
}

func percentDecode(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// toUTF8 converts s from charset when it is another (and known).
func toUTF8(charset, s string) string {
	cs := strings.ToLower(charset)
	if cs == "" || cs == "utf-8" || cs == "us-ascii" || message.CharsetReader == nil {
		return s
	}
	r, err := message.CharsetReader(cs, strings.NewReader(s))
	if err != nil {
		return s
	}
	b, err := io.ReadAll(r)
	if err != nil || !utf8.Valid(b) {
		return s
	}
	return string(b)
}

// The structure written as BODY and BODYSTRUCTURE (RFC 3501 7.4.2), the
// way Dovecot writes it.

// emptyBody is what a multipart without parts holds (the syntax needs
// one).
const (
	emptyBody          = `("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)`
	emptyBodyStructure = `("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)`
)

// writeBodyStructure writes a part's BODY (ext false) or BODYSTRUCTURE.
func (c *conn) writeBodyStructure(p *mimePart, ext bool) {
	w := c.w
	w.Open()
	if p.multipart {
		for _, ch := range p.children {
			c.writeBodyStructure(ch, ext)
		}
		if len(p.children) == 0 {
			if ext {
				w.Raw(emptyBodyStructure)
			} else {
				w.Raw(emptyBody)
			}
		}
		w.SP().String(p.subtype)
		if ext {
			w.SP()
			c.writeParams(p.params, false)
			c.writeExtension(p)
		}
		w.Close()
		return
	}
	text := false
	switch {
	case p.message:
		w.Raw(`"message" "rfc822"`)
	case p.truncated:
		w.Raw(`"application" "octet-stream"`)
	case p.typ == "":
		w.Raw(`"text" "plain"`)
		text = true
	default:
		w.String(p.typ).SP().String(p.subtype)
		text = p.typ == "text"
	}
	w.SP()
	c.writeParams(p.params, text)
	w.SP().NString(oneLine(p.id), true).SP().NString(oneLine(p.desc), true).SP()
	if p.cte == "" {
		w.Raw(`"7bit"`)
	} else {
		w.String(p.cte)
	}
	w.SP().Num64(uint64(p.end - p.bodyStart))
	switch {
	case text:
		w.SP().Num64(uint64(p.lines))
	case p.message:
		held := p.children[0]
		w.SP()
		env := mailheader.Parse(bytes.Clone(held.header))
		c.writeEnvelope(&env)
		w.SP()
		c.writeBodyStructure(held, ext)
		w.SP().Num64(uint64(p.lines))
	}
	if ext {
		w.SP().NString(oneLine(p.md5), true)
		c.writeExtension(p)
	}
	w.Close()
}

// writeExtension writes the disposition, language and location.
func (c *conn) writeExtension(p *mimePart) {
	w := c.w
	w.SP()
	if p.disp == "" {
		w.NIL()
	} else {
		w.Open().String(p.disp).SP()
		c.writeParams(p.dispParams, false)
		w.Close()
	}
	w.SP()
	if len(p.lang) == 0 {
		w.NIL()
	} else {
		w.Open()
		for i, l := range p.lang {
			if i > 0 {
				w.SP()
			}
			w.String(l)
		}
		w.Close()
	}
	w.SP().NString(oneLine(p.location), true)
}

// writeParams writes a parameter list (NIL when empty); a text part
// without a charset gets us-ascii (RFC 2045 5.2).
func (c *conn) writeParams(ps []mimeParam, text bool) {
	w := c.w
	charset := text && paramIndex(ps, "charset") < 0
	if len(ps) == 0 && !charset {
		w.NIL()
		return
	}
	w.Open()
	for i, p := range ps {
		if i > 0 {
			w.SP()
		}
		w.String(p.name).SP().String(p.value)
	}
	if charset {
		if len(ps) > 0 {
			w.SP()
		}
		w.Raw(`"charset" "us-ascii"`)
	}
	w.Close()
}

// oneLine drops line breaks from a field value.
func oneLine(s string) string {
	if strings.ContainsAny(s, "\r\n") {
		s = strings.NewReplacer("\r", "", "\n", "").Replace(s)
	}
	return s
}

// Sections cut from the structure.

// eachRawField calls fn with each field of a header section as written
// (continuation lines and line break included) and its name (nil for
// lines before the first field); it stops at the blank line.
func eachRawField(hdr []byte, fn func(name, raw []byte)) {
	var name []byte
	start, i := -1, 0
	for i < len(hdr) {
		end := len(hdr)
		if j := bytes.IndexByte(hdr[i:], '\n'); j >= 0 {
			end = i + j + 1
		}
		line := hdr[i:end]
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break // the blank line
		}
		if line[0] != ' ' && line[0] != '\t' {
			if start >= 0 {
				fn(name, hdr[start:i])
			}
			start, name = i, nil
			if c := bytes.IndexByte(line, ':'); c > 0 {
				name = bytes.TrimRight(line[:c], " \t")
			}
		} else if start < 0 {
			start = i
		}
		i = end
	}
	if start >= 0 {
		fn(name, hdr[start:i])
	}
}

// filterHeader returns the fields of a header section named in fields
// (upper case), or with not all others, in their order, and the blank
// line (RFC 3501 6.4.5 HEADER.FIELDS, HEADER.FIELDS.NOT).
func filterHeader(hdr []byte, fields []string, not bool) []byte {
	var out []byte
	eachRawField(hdr, func(name, raw []byte) {
		match := false
		for _, f := range fields {
			if name != nil && len(name) == len(f) && strings.EqualFold(string(name), f) {
				match = true
				break
			}
		}
		if match != not {
			out = append(out, raw...)
			if !bytes.HasSuffix(raw, []byte("\n")) {
				out = append(out, "\r\n"...)
			}
		}
	})
	return append(out, "\r\n"...)
}

// rangeFunc reads n bytes of a message from off.
type rangeFunc func(off, n int64) (io.Reader, error)

// emitBinary writes a part with its content transfer encodings undone:
// the body of a leaf decoded; a multipart's or message's parts each with
// its header (one whose body was decoded saying so: RFC 3516 4.2) and its
// body decoded. withHeader writes the part's own header first.
func emitBinary(p *mimePart, withHeader bool, src rangeFunc, w io.Writer) error {
	copyRange := func(off, n int64) error {
		if n <= 0 {
			return nil
		}
		r, err := src(off, n)
		if err != nil {
			return err
		}
		_, err = io.Copy(w, r)
		return err
	}
	converted := false
	switch p.cte {
	case "", "7bit", "8bit", "binary":
	case "base64", "quoted-printable":
		converted = true
	default:
		return errUnknownCTE
	}
	if withHeader {
		if converted {
			r, err := src(p.start, p.bodyStart-p.start)
			if err != nil {
				return err
			}
			hdr, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			var out []byte
			eachRawField(hdr, func(name, raw []byte) {
				if name == nil || !strings.EqualFold(string(name), "Content-Transfer-Encoding") {
					out = append(out, raw...)
					if !bytes.HasSuffix(raw, []byte("\n")) {
						out = append(out, "\r\n"...)
					}
				}
			})
			out = append(out, "Content-Transfer-Encoding: binary\r\n\r\n"...)
			if _, err := w.Write(out); err != nil {
				return err
			}
		} else if err := copyRange(p.start, p.bodyStart-p.start); err != nil {
			return err
		}
	}
	if len(p.children) > 0 {
		pos := p.bodyStart
		for _, ch := range p.children {
			if err := copyRange(pos, ch.start-pos); err != nil {
				return err
			}
			if err := emitBinary(ch, true, src, w); err != nil {
				return err
			}
			pos = ch.end
		}
		return copyRange(pos, p.end-pos)
	}
	if p.end <= p.bodyStart {
		return nil
	}
	switch p.cte {
	case "base64":
		r, err := src(p.bodyStart, p.end-p.bodyStart)
		if err != nil {
			return err
		}
		return decodeBase64(w, r)
	case "quoted-printable":
		r, err := src(p.bodyStart, p.end-p.bodyStart)
		if err != nil {
			return err
		}
		return decodeQP(w, r)
	}
	return copyRange(p.bodyStart, p.end-p.bodyStart)
}

var base64Value = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" {
		t[c] = byte(i)
	}
	return t
}()

// decodeBase64 decodes leniently: characters outside the alphabet are
// skipped, padding ends a group (and concatenated encodings go on).
func decodeBase64(w io.Writer, r io.Reader) error {
	in := make([]byte, 16<<10)
	out := make([]byte, 0, 12<<10+3)
	var quad [4]byte
	n := 0
	flush := func() error {
		if len(out) == 0 {
			return nil
		}
		_, err := w.Write(out)
		out = out[:0]
		return err
	}
	group := func() {
		switch n {
		case 4:
			out = append(out, quad[0]<<2|quad[1]>>4, quad[1]<<4|quad[2]>>2, quad[2]<<6|quad[3])
		case 3:
			out = append(out, quad[0]<<2|quad[1]>>4, quad[1]<<4|quad[2]>>2)
		case 2:
			out = append(out, quad[0]<<2|quad[1]>>4)
		}
		n = 0
	}
	for {
		k, err := r.Read(in)
		for _, c := range in[:k] {
			if c == '=' {
				group()
				continue
			}
			v := base64Value[c]
			if v == 0xff {
				continue
			}
			quad[n] = v
			if n++; n == 4 {
				group()
				if len(out) >= 12<<10 {
					if err := flush(); err != nil {
						return err
					}
				}
			}
		}
		if err == io.EOF {
			group()
			return flush()
		}
		if err != nil {
			return err
		}
	}
}

// decodeQP decodes quoted-printable (RFC 2045 6.7) as Dovecot does:
// white space at the end of a line is dropped, "=" at the end joins the
// next line, a line break is CRLF, "=" not followed by two hex digits is
// kept as it is.
func decodeQP(w io.Writer, r io.Reader) error {
	br := bufio.NewReaderSize(r, 16<<10)
	var line, out []byte
	for {
		line = line[:0]
		var err error
		for {
			var chunk []byte
			chunk, err = br.ReadSlice('\n')
			line = append(line, chunk...)
			if err != bufio.ErrBufferFull {
				break
			}
		}
		if len(line) == 0 {
			if err == io.EOF {
				return nil
			}
			return err
		}
		nl := bytes.HasSuffix(line, []byte("\n"))
		l := bytes.TrimRight(line, " \t\r\n")
		soft := len(l) > 0 && l[len(l)-1] == '='
		if soft {
			l = l[:len(l)-1]
		}
		out = out[:0]
		for i := 0; i < len(l); i++ {
			if l[i] == '=' && i+2 < len(l) && isHex(l[i+1]) && isHex(l[i+2]) {
				out = append(out, unhex(l[i+1])<<4|unhex(l[i+2]))
				i += 2
				continue
			}
			out = append(out, l[i])
		}
		if nl && !soft {
			out = append(out, '\r', '\n')
		}
		if _, werr := w.Write(out); werr != nil {
			return werr
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
