package scan

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"
)

// This file is the MIME tree parser. It is our own splitter (not
// go-message's MultipartReader) because stripping an attachment must keep
// the rest of the message byte-identical, which needs the byte offsets of
// every part, and because it must never give up on malformed input: a
// missing boundary, a broken header or bad base64 ends up as raw bytes
// handed to the engines plus a Malformed note. go-message supplies the
// header container and the charset decoders (ISO-2022-JP, Shift_JIS, ...)
// for RFC 2047/2231 file names.

// hfield is one header field with its byte range inside the part.
type hfield struct {
	name, value string
	start, end  int // relative to the part's first byte; end includes the line break
}

type mimePart struct {
	path     string
	header   textproto.Header
	fields   []hfield
	ctype    string // lowercased media type
	params   map[string]string
	disp     string
	filename string
	cte      string // lowercased Content-Transfer-Encoding

	parent       *mimePart
	children     []*mimePart
	encapsulated bool // root of a message/rfc822 body
	inMessage    bool // somewhere inside an encapsulated message
	preamble     bool // pseudo-leaf: non-blank preamble/epilogue text
	leaf         bool
	partial      bool // message/partial

	// start/bodyStart/end are offsets into the top-level raw message,
	// valid only when inRaw (false inside a base64-encoded message/rfc822).
	inRaw                 bool
	start, bodyStart, end int
	body                  []byte // the (still encoded) body
}

type mimeNote struct {
	cond   Condition
	path   string
	detail string
}

type mimeParser struct {
	maxDepth, maxParts int
	nparts             int
	notes              []mimeNote
	leaves             []*mimePart
	stopped            bool // maxParts hit
}

func (p *mimeParser) note(c Condition, path, detail string) {
	p.notes = append(p.notes, mimeNote{c, path, detail})
}

func childPath(parent string, i int) string {
	if parent == "" {
		return strconv.Itoa(i + 1)
	}
	return parent + "." + strconv.Itoa(i+1)
}

// parseMessage parses a whole raw message.
func parseMIME(raw []byte, maxDepth, maxParts int) (*mimePart, *mimeParser) {
	p := &mimeParser{maxDepth: maxDepth, maxParts: maxParts}
	root := p.parse(raw, 0, "", 0, nil, false)
	return root, p
}

func (p *mimeParser) parse(buf []byte, base int, path string, depth int, parent *mimePart, encapsulated bool) *mimePart {
	part := &mimePart{path: path, parent: parent, encapsulated: encapsulated, inRaw: base >= 0}
	if parent != nil {
		part.inMessage = parent.inMessage || encapsulated
	}
	if base >= 0 {
		part.start = base
		part.end = base + len(buf)
	}
	p.nparts++
	if p.nparts > p.maxParts {
		if !p.stopped {
			p.stopped = true
			p.note(ExtractSize, path, "too many MIME parts (limit "+strconv.Itoa(p.maxParts)+")")
		}
		return part
	}

	fields, bodyStart, bad := splitHeader(buf)
	if bad != "" {
		p.note(Malformed, path, bad)
	}
	part.fields = fields
	for _, f := range fields {
		part.header.Add(f.name, f.value)
	}
	part.body = buf[bodyStart:]
	if base >= 0 {
		part.bodyStart = base + bodyStart
	}

	if ct := part.header.Get("Content-Type"); ct != "" {
		part.ctype, part.params = parseParams(ct)
	}
	if part.ctype == "" || !strings.Contains(part.ctype, "/") {
		if part.ctype != "" {
			p.note(Malformed, path, "bad Content-Type "+strconv.Quote(part.ctype))
		}
		part.ctype = "text/plain"
		if parent != nil && parent.ctype == "multipart/digest" {
			part.ctype = "message/rfc822"
		}
	}
	if cd := part.header.Get("Content-Disposition"); cd != "" {
		var dp map[string]string
		part.disp, dp = parseParams(cd)
		part.filename = dp["filename"]
	}
	if part.filename == "" {
		part.filename = part.params["name"]
	}
	part.cte = strings.ToLower(strings.TrimSpace(part.header.Get("Content-Transfer-Encoding")))

	switch {
	case strings.HasPrefix(part.ctype, "multipart/"):
		if depth >= p.maxDepth {
			p.note(Depth, path, "MIME nesting deeper than "+strconv.Itoa(p.maxDepth))
			part.leaf = true
			break
		}
		body, bodyBase := part.body, part.bodyStart
		if !identityCTE(part.cte) {
			p.note(Malformed, path, "multipart with Content-Transfer-Encoding "+part.cte)
			body, _ = decodeCTE(part.cte, part.body)
			bodyBase = -1
		} else if base < 0 {
			bodyBase = -1
		}
		boundary := part.params["boundary"]
		if boundary == "" {
			p.note(Malformed, path, "multipart without boundary")
			part.leaf = true
			break
		}
		segs, pre, epi, found, closed := splitMultipart(body, boundary)
		if !found {
			p.note(Malformed, path, "boundary not found")
			part.leaf = true
			break
		}
		if !closed {
			p.note(Malformed, path, "missing closing boundary")
		}
		for _, r := range [][2]int{pre, epi} {
			if len(bytes.TrimSpace(body[r[0]:r[1]])) > 0 {
				pp := &mimePart{path: path, parent: part, preamble: true, leaf: true, ctype: "text/plain", body: body[r[0]:r[1]], inMessage: part.inMessage}
				part.children = append(part.children, pp)
			}
		}
		for i, s := range segs {
			if p.stopped {
				break
			}
			cb := -1
			if bodyBase >= 0 {
				cb = bodyBase + s[0]
			}
			c := p.parse(body[s[0]:s[1]], cb, childPath(path, i), depth+1, part, false)
			part.children = append(part.children, c)
		}
	case part.ctype == "message/partial":
		part.partial = true
		part.leaf = true
		p.note(Partial, path, "message/partial")
	case part.ctype == "message/rfc822" || part.ctype == "message/global":
		if depth >= p.maxDepth {
			p.note(Depth, path, "MIME nesting deeper than "+strconv.Itoa(p.maxDepth))
			part.leaf = true
			break
		}
		body, bodyBase := part.body, part.bodyStart
		if !identityCTE(part.cte) || base < 0 {
			var bad bool
			body, bad = decodeCTE(part.cte, part.body)
			if bad {
				p.note(Malformed, path, "bad "+part.cte+" encoding")
			}
			bodyBase = -1
		}
		c := p.parse(body, bodyBase, path, depth+1, part, true)
		part.children = append(part.children, c)
	default:
		part.leaf = true
	}
	return part
}

func identityCTE(cte string) bool {
	switch cte {
	case "", "7bit", "8bit", "binary":
		return true
	}
	return false
}

// decodeCTE decodes a body; bad reports malformed input (the output is
// then best effort) or an unknown encoding (the output is the input).
func decodeCTE(cte string, body []byte) (out []byte, bad bool) {
	switch cte {
	case "", "7bit", "8bit", "binary":
		return body, false
	case "base64":
		return decodeBase64(body)
	case "quoted-printable":
		return decodeQP(body)
	}
	return body, true
}

// splitHeader splits the header fields from the body. It never fails: a
// line that is neither a field nor a continuation ends the header (the body
// starts there) and is reported.
func splitHeader(buf []byte) (fields []hfield, bodyStart int, bad string) {
	pos := 0
	if bytes.HasPrefix(buf, []byte("From ")) { // mbox separator
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			pos = i + 1
		}
	}
	for pos < len(buf) {
		eol := bytes.IndexByte(buf[pos:], '\n')
		next := len(buf)
		line := buf[pos:]
		if eol >= 0 {
			line = buf[pos : pos+eol]
			next = pos + eol + 1
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			return fields, next, ""
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(fields) == 0 {
				return fields, pos, "header starts with a continuation line"
			}
			f := &fields[len(fields)-1]
			f.value += " " + strings.TrimSpace(string(line))
			f.end = next
			pos = next
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !validFieldName(line[:colon]) {
			if len(fields) == 0 {
				return fields, pos, "no header"
			}
			return fields, pos, "malformed header line; header ends without a blank line"
		}
		fields = append(fields, hfield{
			name:  string(line[:colon]),
			value: strings.TrimSpace(string(line[colon+1:])),
			start: pos, end: next,
		})
		pos = next
	}
	return fields, len(buf), ""
}

func validFieldName(b []byte) bool {
	if len(b) > 200 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// splitMultipart finds the body parts of a multipart body. Segment ranges
// exclude the delimiter lines and the line break before each delimiter.
func splitMultipart(body []byte, boundary string) (segs [][2]int, pre, epi [2]int, found, closed bool) {
	delim := []byte("--" + boundary)
	partStart := -1
	pos := 0
	epi = [2]int{len(body), len(body)}
	for pos <= len(body) {
		i := bytes.Index(body[pos:], delim)
		if i < 0 {
			break
		}
		ls := pos + i
		pos = ls + len(delim)
		if ls > 0 && body[ls-1] != '\n' {
			continue // not at a line start
		}
		rest := body[ls+len(delim):]
		eol := bytes.IndexByte(rest, '\n')
		lineEnd := len(body)
		if eol >= 0 {
			lineEnd = ls + len(delim) + eol + 1
			rest = rest[:eol]
		}
		isClose := bytes.HasPrefix(rest, []byte("--"))
		if isClose {
			rest = rest[2:]
		}
		if len(bytes.Trim(rest, " \t\r")) != 0 {
			continue // a longer boundary, or text
		}
		// the line break before the delimiter belongs to it
		segEnd := ls
		if segEnd > 0 && body[segEnd-1] == '\n' {
			segEnd--
			if segEnd > 0 && body[segEnd-1] == '\r' {
				segEnd--
			}
		}
		if !found {
			found = true
			pre = [2]int{0, segEnd}
		} else if partStart >= 0 {
			if segEnd < partStart {
				segEnd = partStart
			}
			segs = append(segs, [2]int{partStart, segEnd})
		}
		pos = lineEnd
		if isClose {
			closed = true
			epi = [2]int{lineEnd, len(body)}
			return
		}
		partStart = lineEnd
	}
	if found && partStart >= 0 {
		segs = append(segs, [2]int{partStart, len(body)})
	}
	return
}

var wordDecoder = &mime.WordDecoder{CharsetReader: charset.Reader}

func decode2047(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	d, err := wordDecoder.DecodeHeader(s)
	if err != nil {
		return s
	}
	return d
}

// parseParams is a lenient RFC 2045/2231 parameter parser: it never fails,
// handles RFC 2231 continuations and charsets (any charset go-message
// knows), and RFC 2047 encoded words inside values (common in the wild).
func parseParams(v string) (string, map[string]string) {
	params := map[string]string{}
	semi := strings.IndexByte(v, ';')
	mt := v
	rest := ""
	if semi >= 0 {
		mt, rest = v[:semi], v[semi+1:]
	}
	mt = strings.ToLower(strings.TrimSpace(mt))
	type seg struct {
		val string
		ext bool
	}
	ext := map[string]map[int]seg{}
	for len(rest) > 0 {
		rest = strings.TrimLeft(rest, " \t;\r\n")
		if rest == "" {
			break
		}
		eq := strings.IndexAny(rest, "=;")
		if eq < 0 {
			break
		}
		if rest[eq] == ';' {
			rest = rest[eq:]
			continue
		}
		key := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		var val string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(rest); i++ {
				c := rest[i]
				if c == '\\' && i+1 < len(rest) {
					i++
					b.WriteByte(rest[i])
					continue
				}
				if c == '"' {
					break
				}
				b.WriteByte(c)
			}
			val = b.String()
			if i < len(rest) {
				i++
			}
			rest = rest[i:]
			if j := strings.IndexByte(rest, ';'); j >= 0 {
				rest = rest[j:]
			} else {
				rest = ""
			}
		} else {
			j := strings.IndexByte(rest, ';')
			if j < 0 {
				val, rest = rest, ""
			} else {
				val, rest = rest[:j], rest[j:]
			}
			val = strings.TrimSpace(val)
		}
		if star := strings.IndexByte(key, '*'); star >= 0 {
			name := key[:star]
			suffix := key[star+1:]
			isExt := strings.HasSuffix(suffix, "*") || suffix == ""
			suffix = strings.TrimSuffix(suffix, "*")
			n := 0
			if suffix != "" {
				var err error
				if n, err = strconv.Atoi(suffix); err != nil || n < 0 || n > 1000 {
					continue
				}
			}
			if ext[name] == nil {
				ext[name] = map[int]seg{}
			}
			ext[name][n] = seg{val, isExt}
			continue
		}
		if _, dup := params[key]; !dup {
			params[key] = decode2047(val)
		}
	}
	for name, segs := range ext {
		idx := make([]int, 0, len(segs))
		for i := range segs {
			idx = append(idx, i)
		}
		sort.Ints(idx)
		var raw []byte
		cs := ""
		for k, i := range idx {
			s := segs[i]
			val := s.val
			if s.ext {
				if k == 0 {
					if parts := strings.SplitN(val, "'", 3); len(parts) == 3 {
						cs, val = strings.ToLower(parts[0]), parts[2]
					}
				}
				if u, err := url.PathUnescape(strings.ReplaceAll(val, "+", "%2B")); err == nil {
					val = u
				}
			}
			raw = append(raw, val...)
		}
		out := string(raw)
		if cs != "" && cs != "utf-8" && cs != "us-ascii" {
			if r, err := charset.Reader(cs, bytes.NewReader(raw)); err == nil {
				if b, err := io.ReadAll(io.LimitReader(r, 1<<16)); err == nil {
					out = string(b)
				}
			}
		}
		params[name] = out
	}
	return mt, params
}

var b64tab = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	const a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(a); i++ {
		t[a[i]] = byte(i)
	}
	t['-'], t['_'] = 62, 63 // URL alphabet, tolerated
	return
}()

// decodeBase64 decodes leniently: whitespace is skipped, other stray bytes
// are skipped and reported, padding ends a quantum (so concatenated
// base64 blocks decode), a trailing partial quantum decodes what it can.
func decodeBase64(src []byte) ([]byte, bool) {
	// fast path: well-formed base64 (the standard decoder skips CR and LF)
	out := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
	if n, err := base64.StdEncoding.Decode(out, src); err == nil {
		return out[:n], false
	}
	out = out[:0]
	var q uint32
	n := 0
	bad := false
	flush := func() {
		switch n {
		case 1:
			bad = true
		case 2:
			out = append(out, byte(q>>4))
		case 3:
			out = append(out, byte(q>>10), byte(q>>2))
		}
		q, n = 0, 0
	}
	for _, c := range src {
		v := b64tab[c]
		if v == 0xFF {
			switch c {
			case ' ', '\t', '\r', '\n':
			case '=':
				flush()
			default:
				bad = true
			}
			continue
		}
		q = q<<6 | uint32(v)
		n++
		if n == 4 {
			out = append(out, byte(q>>16), byte(q>>8), byte(q))
			q, n = 0, 0
		}
	}
	flush()
	return out, bad
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// decodeQP decodes quoted-printable leniently: a bad escape is kept
// literally and reported.
func decodeQP(src []byte) ([]byte, bool) {
	out := make([]byte, 0, len(src))
	bad := false
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c != '=' {
			out = append(out, c)
			continue
		}
		if i+2 < len(src) {
			if h, ok := unhex(src[i+1]); ok {
				if l, ok := unhex(src[i+2]); ok {
					out = append(out, h<<4|l)
					i += 2
					continue
				}
			}
		}
		// soft line break: "=" [spaces] (CR)LF, or "=" at the very end
		j := i + 1
		for j < len(src) && (src[j] == ' ' || src[j] == '\t') {
			j++
		}
		if j == len(src) {
			i = j
			continue
		}
		if src[j] == '\n' {
			i = j
			continue
		}
		if src[j] == '\r' && j+1 < len(src) && src[j+1] == '\n' {
			i = j + 1
			continue
		}
		bad = true
		out = append(out, c)
	}
	return out, bad
}
