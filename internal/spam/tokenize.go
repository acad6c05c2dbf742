package spam

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // charset-aware decoding of text parts and encoded words
	gomail "github.com/emersion/go-message/mail"
	"golang.org/x/net/publicsuffix"
)

// Bounds of the tokenizer: what one message can cost, however it is made.
const (
	// MaxTokens is the most distinct tokens taken from one message.
	MaxTokens = 2000
	// MaxTokenLen is the longest token kept, in bytes; a longer word
	// becomes a "skip:" token that says roughly how long it was.
	MaxTokenLen = 40
	// MaxText is how many decoded bytes of text (plain and HTML, all parts
	// together) are read from one message.
	MaxText = 256 << 10
	// MaxHeaderBytes bounds the header section of the message and of each
	// MIME part.
	MaxHeaderBytes = 128 << 10
	// MaxFieldLen is how much of one header field's value is tokenized.
	MaxFieldLen = 2 << 10
	// MaxParts bounds the MIME parts looked at, MaxDepth their nesting.
	MaxParts = 100
	MaxDepth = 8
	// MaxReceived is how many Received fields are tokenized, from the top.
	MaxReceived = 10
)

// Tokenize returns the distinct tokens of a raw message (RFC 5322, any line
// endings), sorted: words of the header fields that tell messages apart,
// prefixed with a short form of the field's name ("subject:free"), the
// names of the fields present ("h:x-mailer"), the results of
// Authentication-Results fields ("auth:spf=fail"), words of the text/plain
// and text/html parts (MIME-decoded: base64 and quoted-printable, any
// charset go-message knows, converted to UTF-8; HTML without its tags,
// scripts and styles), the hosts of URLs ("url:example.com"), and the
// types of the parts ("mime:image/gif"). Words are lower-cased; Chinese,
// Japanese and Korean text, written without spaces, gives pairs of
// characters.
//
// It is bounded (MaxTokens, MaxTokenLen, MaxText, MaxParts, MaxDepth) and
// never fails: a message it cannot parse is tokenized as plain text as far
// as it goes. Fields Yubin itself adds (X-Yubin-*, Received) are left out,
// so that training on a stored message learns what the sender wrote, never
// what the filter said about it.
func Tokenize(raw []byte) []string {
	t := getTokenizer()
	defer putTokenizer(t)
	t.message(raw)
	return t.result()
}

// TokenizeHeader returns the tokens of header fields alone (CRLF-terminated
// lines): the fields a delivery adds on top of a message, such as
// Authentication-Results, tokenized as Tokenize would find them there.
func TokenizeHeader(fields []byte) []string {
	t := getTokenizer()
	defer putTokenizer(t)
	if h, err := readHeader(fields); err == nil {
		t.header(h)
	}
	return t.result()
}

type tokenizer struct {
	set  tokenSet
	text int // decoded text bytes read so far
	// parts counts the MIME parts seen.
	parts int
	// prev is the previous word of the text being tokenized, for pairs.
	prev   []byte
	buf    []byte // the token being made
	rawLen int    // of the message
	// Reused buffers: the decoded text of a part, an HTML part's text,
	// runs of CJK characters.
	textBuf bytes.Buffer
	htmlBuf []byte
	cjk     []rune
	qpFree  []*qpReader
}

// tokenizerPool keeps tokenizers, their token sets and buffers, between
// messages.
var tokenizerPool = sync.Pool{New: func() any { return new(tokenizer) }}

func getTokenizer() *tokenizer {
	t := tokenizerPool.Get().(*tokenizer)
	t.set.reset()
	t.text, t.parts, t.rawLen = 0, 0, 0
	t.prev = t.prev[:0]
	return t
}

// putTokenizer returns t to the pool unless a huge message left it with
// buffers worth freeing.
func putTokenizer(t *tokenizer) {
	if t.textBuf.Cap() > 2*MaxText || cap(t.htmlBuf) > 2*MaxText {
		return
	}
	tokenizerPool.Put(t)
}

func (t *tokenizer) full() bool { return t.set.len() >= MaxTokens }

// add records one token (already lower-cased and prefixed).
func (t *tokenizer) add(tok string) {
	t.addJoined(tok)
}

// addJoined adds the token parts make, allocating nothing.
func (t *tokenizer) addJoined(parts ...string) {
	t.buf = t.buf[:0]
	for _, p := range parts {
		t.buf = append(t.buf, p...)
	}
	t.addBytes(t.buf)
}

// addBytes adds a token (copied).
func (t *tokenizer) addBytes(tok []byte) {
	if t.full() || len(tok) == 0 {
		return
	}
	t.set.add(tok)
}

// result returns the tokens, sorted.
func (t *tokenizer) result() []string {
	return t.set.sorted()
}

func readHeader(raw []byte) (message.Header, error) {
	e, err := message.ReadWithOptions(bytes.NewReader(raw), &message.ReadOptions{MaxHeaderBytes: MaxHeaderBytes})
	if e == nil {
		return message.Header{}, err
	}
	return e.Header, nil
}

// message tokenizes a whole message.
func (t *tokenizer) message(raw []byte) {
	t.rawLen = len(raw)
	if bytes.HasPrefix(raw, []byte("From ")) {
		// An mbox separator line, as files of saved mail start with.
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			raw = raw[i+1:]
		}
	}
	p := t.readPart(bytes.NewReader(raw))
	if p == nil {
		// Not even a header: take it as text.
		t.add("parse:header")
		t.textRaw(raw)
		return
	}
	t.header(p.header)
	t.entity(p, 0)
}

// fieldPrefix says which header fields are tokenized and how: the prefix
// of their tokens, and whether the value is a list of addresses.
var fieldPrefix = map[string]struct {
	prefix string
	addrs  bool
}{
	"subject":      {"subject:", false},
	"from":         {"from:", true},
	"reply-to":     {"reply-to:", true},
	"sender":       {"sender:", true},
	"to":           {"to:", true},
	"cc":           {"cc:", true},
	"x-mailer":     {"x-mailer:", false},
	"user-agent":   {"x-mailer:", false},
	"organization": {"org:", false},
	"list-id":      {"list-id:", false},
	"precedence":   {"precedence:", false},
	"x-priority":   {"x-priority:", false},
	"importance":   {"importance:", false},
	"content-type": {"content-type:", false},
}

// partHeader tokenizes the header of a MIME part: its type, charset and
// file name extension.
func (t *tokenizer) partHeader(p *mimePart) {
	if p.ctErr == nil {
		t.add("mime:" + clip(strings.ToLower(p.mediaType)))
		if cs := p.params["charset"]; cs != "" {
			t.add("charset:" + clip(strings.ToLower(cs)))
		}
	}
	if _, params, err := p.header.ContentDisposition(); err == nil {
		if name := params["filename"]; name != "" {
			if i := strings.LastIndexByte(name, '.'); i >= 0 && len(name)-i <= 8 {
				t.add("file:" + clip(strings.ToLower(name[i:])))
			}
		}
	}
}

// header tokenizes the header of a message: field names, and the values of
// the fields in fieldPrefix.
func (t *tokenizer) header(h message.Header) {
	fields := h.Fields()
	n, received := 0, 0
	for fields.Next() && !t.full() {
		n++
		if n > 500 {
			break
		}
		key := strings.ToLower(fields.Key())
		if strings.HasPrefix(key, "x-yubin-") || localField(key) {
			continue
		}
		if key == "received" {
			received++
			if received <= MaxReceived {
				t.received(fields.Value())
			}
			continue
		}
		if !listField(key) {
			t.add("h:" + clip(key))
		}
		if key == "message-id" {
			v := fields.Value()
			if i := strings.LastIndexByte(v, '@'); i >= 0 {
				t.add("message-id:@" + clip(strings.ToLower(strings.Trim(v[i+1:], "<> \t"))))
			} else {
				t.add("message-id:none")
			}
			continue
		}
		if key == "authentication-results" {
			t.authResults(fields.Value())
			continue
		}
		fp, ok := fieldPrefix[key]
		if !ok || fp.prefix == "" {
			continue
		}
		raw := fields.Value()
		if len(raw) > MaxFieldLen {
			raw = raw[:MaxFieldLen]
		}
		if fp.addrs {
			t.addresses(key, fp.prefix, raw)
			continue
		}
		v, err := fields.Text()
		if err != nil {
			v = raw
		}
		if len(v) > MaxFieldLen {
			v = v[:MaxFieldLen]
		}
		if key == "content-type" {
			t.add("content-type:" + clip(strings.ToLower(strings.TrimSpace(strings.SplitN(v, ";", 2)[0]))))
			continue
		}
		t.words(fp.prefix, v)
		if key == "subject" {
			t.shape("subject:", v)
		}
	}
}

// localField reports whether a header field is one that mail readers and
// local delivery agents write — the message's state in a mailbox, the
// mailbox's bookkeeping, another filter's verdict, the envelope sender
// the final delivery recorded (Return-Path, RFC 5321 section 4.4; mail
// arriving over SMTP has none of its own, or a previous hop's): it tells
// where a message was kept, not who sent it, so it is no evidence either
// way (and mail moved in with yubin import carries it).
func localField(key string) bool {
	switch key {
	case "status", "x-status", "x-keywords", "x-uid", "delivery-date", "content-length", "lines", "return-path":
		return true
	}
	return strings.HasPrefix(key, "x-mozilla-") || strings.HasPrefix(key, "x-spam-")
}

// listField reports whether a header field is one of those a mailing list
// manager writes on every message it sends out (RFC 2369's List-* fields,
// Mailman's and ezmlm's own), apart from List-Id. They come together, so
// their names are one piece of evidence — "this came through a list" —
// that List-Id's tokens already give (with which list); counted as a
// dozen tokens they would outweigh what the message says, and spam sent
// through a list the user reads would pass for the list's ham.
func listField(key string) bool {
	switch key {
	case "list-id":
		return false
	case "x-mailman-version", "x-beenthere", "errors-to", "x-list-administrivia", "mailing-list", "x-mailing-list":
		return true
	}
	return strings.HasPrefix(key, "list-")
}

// received adds the hosts and networks a Received field names: the
// registered domains of host names ("received:example.com") and the /24
// and /16 of IPv4 addresses ("received:ip:192.0.2", "received:ip:192.0").
func (t *tokenizer) received(v string) {
	if len(v) > MaxFieldLen {
		v = v[:MaxFieldLen]
	}
	for _, w := range strings.FieldsFunc(v, func(r rune) bool {
		return !(r == '.' || r == '-' || r == ':' || 'a' <= r|0x20 && r|0x20 <= 'z' || '0' <= r && r <= '9')
	}) {
		w = strings.ToLower(strings.Trim(w, ".-:"))
		if !strings.Contains(w, ".") {
			continue
		}
		if ip := parseIP(w); ip != nil {
			if ip4 := ip.To4(); ip4 != nil {
				t.add("received:ip:" + strconv.Itoa(int(ip4[0])) + "." + strconv.Itoa(int(ip4[1])) + "." + strconv.Itoa(int(ip4[2])))
				t.add("received:ip:" + strconv.Itoa(int(ip4[0])) + "." + strconv.Itoa(int(ip4[1])))
			}
			continue
		}
		if strings.Contains(w, ":") {
			continue
		}
		last := w[strings.LastIndexByte(w, '.')+1:]
		if len(last) < 2 || strings.IndexFunc(last, func(r rune) bool { return r < 'a' || r > 'z' }) >= 0 {
			continue
		}
		if reg, err := publicsuffix.EffectiveTLDPlusOne(w); err == nil {
			t.add("received:" + clip(reg))
		}
	}
}

// authResults adds "auth:method=result" for each result of an
// Authentication-Results field (RFC 8601), e.g. "auth:spf=softfail".
func (t *tokenizer) authResults(v string) {
	if len(v) > MaxFieldLen {
		v = v[:MaxFieldLen]
	}
	parts := strings.Split(v, ";")
	for _, p := range parts[1:] {
		p = strings.TrimSpace(p)
		method, rest, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		method = strings.ToLower(strings.TrimSpace(method))
		result := strings.ToLower(strings.Fields(rest + " ")[0])
		switch method {
		case "spf", "dkim", "dmarc", "arc", "iprev", "auth":
			t.add("auth:" + method + "=" + clip(result))
		}
	}
}

// addresses tokenizes an address field: for To and Cc the domains and how
// many addresses there are; for the others also the address and the words
// of the display name.
func (t *tokenizer) addresses(key, prefix, raw string) {
	h := gomail.Header{}
	h.Set(key, raw)
	list, err := h.AddressList(key)
	if err != nil || len(list) == 0 {
		// Unparseable: the words will have to do.
		t.add(prefix + "unparsed")
		t.words(prefix, raw)
		return
	}
	many := key == "to" || key == "cc"
	if many {
		n := len(list)
		switch {
		case n == 1:
			t.add(prefix + "n:1")
		case n <= 5:
			t.add(prefix + "n:2-5")
		default:
			t.add(prefix + "n:many")
		}
	}
	for i, a := range list {
		if i >= 20 {
			break
		}
		addr := strings.ToLower(a.Address)
		dom := ""
		if at := strings.LastIndexByte(addr, '@'); at >= 0 {
			dom = addr[at+1:]
		}
		t.add(prefix + "dom:" + clip(dom))
		if !many && dom != "" {
			if reg, err := publicsuffix.EffectiveTLDPlusOne(dom); err == nil && reg != dom {
				t.add(prefix + "org:" + clip(reg))
			}
		}
		if many {
			continue
		}
		t.add(prefix + "addr:" + clip(addr))
		if a.Name == "" {
			t.add(prefix + "noname")
		}
		t.words(prefix+"name:", a.Name)
	}
}

// entity tokenizes the body of a MIME entity and its parts.
func (t *tokenizer) entity(e *mimePart, depth int) {
	defer t.done(e)
	t.parts++
	if t.parts > MaxParts || depth > MaxDepth || t.full() {
		return
	}
	if mr := e.multipart(); mr != nil {
		for !t.full() && t.parts <= MaxParts {
			p, err := mr.NextPart()
			if err != nil {
				if err != io.EOF {
					t.add("parse:multipart")
				}
				return
			}
			part, err := t.newPart(message.Header{Header: p.Header}, p)
			if err != nil {
				// An unknown transfer encoding or charset: go-message's
				// NextPart fails there.
				t.done(part)
				t.add("parse:multipart")
				return
			}
			t.partHeader(part)
			t.entity(part, depth+1)
		}
		return
	}
	ct := e.mediaType
	if e.ctErr != nil && ct == "" {
		ct = "text/plain"
	}
	switch ct {
	case "text/plain", "":
		t.readText(e.body, false)
	case "text/html":
		t.readText(e.body, true)
	case "message/rfc822":
		if inner := t.readPart(bufio.NewReader(io.LimitReader(e.body, MaxText))); inner != nil {
			t.header(inner.header)
			t.entity(inner, depth+1)
		}
	}
}

// readText reads what is left of the text budget from r and tokenizes it.
func (t *tokenizer) readText(r io.Reader, html bool) {
	left := MaxText - t.text
	if left <= 0 {
		return
	}
	// Decoded text is rarely longer than the raw message: one buffer.
	buf := &t.textBuf
	buf.Reset()
	buf.Grow(min(left, t.rawLen+512))
	_, err := buf.ReadFrom(io.LimitReader(r, int64(left)))
	if err != nil {
		t.add("parse:body")
	}
	b := buf.Bytes()
	t.text += len(b)
	if html {
		t.html(string(b))
		return
	}
	t.textBytes(b)
}

// textBytes tokenizes decoded text.
func (t *tokenizer) textBytes(b []byte) {
	s := string(b)
	t.urls(s)
	t.words("", s)
}

// textRaw tokenizes raw bytes as text, within the text budget.
func (t *tokenizer) textRaw(b []byte) {
	left := MaxText - t.text
	if left <= 0 {
		return
	}
	if len(b) > left {
		b = b[:left]
	}
	t.text += len(b)
	t.textBytes(b)
}

// words adds the words of s with prefix.
func (t *tokenizer) words(prefix, s string) {
	// A run of Chinese, Japanese or Korean characters gives pairs.
	cjk := t.cjk[:0]
	defer func() { t.cjk = cjk[:0] }()
	flushCJK := func() {
		switch len(cjk) {
		case 0:
		case 1:
			t.addBytes(utf8.AppendRune(append(t.buf[:0], prefix...), cjk[0]))
		default:
			for i := 0; i+1 < len(cjk) && !t.full(); i++ {
				t.buf = utf8.AppendRune(append(t.buf[:0], prefix...), cjk[i])
				t.addBytes(utf8.AppendRune(t.buf, cjk[i+1]))
			}
		}
		cjk = cjk[:0]
	}
	t.prev = t.prev[:0]
	start := -1
	flushWord := func(end int) {
		if start < 0 {
			return
		}
		t.word(prefix, s[start:end])
		start = -1
	}
	for i := 0; i < len(s); {
		if t.full() {
			return
		}
		c := s[i]
		if c < utf8.RuneSelf {
			// ASCII, most text: a table says what the byte is.
			switch asciiClass[c] {
			case asciiWord:
				if len(cjk) > 0 {
					flushCJK()
				}
				if start < 0 {
					start = i
				}
				for i++; i < len(s) && s[i] < utf8.RuneSelf && asciiClass[s[i]] == asciiWord; i++ {
				}
				continue
			case asciiInner:
				// Inside a word (3.50, e.g., a@b) it is part of it.
				if start >= 0 && i+1 < len(s) && (s[i+1] >= utf8.RuneSelf || asciiClass[s[i+1]] != asciiSpace) {
					break
				}
				fallthrough
			default:
				if len(cjk) > 0 {
					flushCJK()
				}
				flushWord(i)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case isCJK(r):
			flushWord(i)
			cjk = append(cjk, r)
			if len(cjk) > 256 {
				flushCJK()
			}
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			flushCJK()
			if start < 0 {
				start = i
			}
		default:
			flushCJK()
			flushWord(i)
		}
		i += size
	}
	flushWord(len(s))
	flushCJK()
}

// What an ASCII byte is to words: part of a word, part of one only inside
// it (3.50, a@b), white space, or anything else that ends a word.
const (
	asciiOther = iota
	asciiWord
	asciiInner
	asciiSpace
)

var asciiClass = func() (t [utf8.RuneSelf]uint8) {
	for c := range t {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '$', c == '\'', c == '-', c == '_':
			t[c] = asciiWord
		case c == '.', c == ',', c == '@', c == '/':
			t[c] = asciiInner
		case c == ' ', c == '\t', c == '\r', c == '\n':
			t[c] = asciiSpace
		}
	}
	return t
}()

// word adds one word: lower-cased, trimmed of punctuation at its ends;
// short words are skipped, long ones summarised.
func (t *tokenizer) word(prefix, w string) {
	for len(w) > 0 && wordTrim[w[0]] {
		w = w[1:]
	}
	for len(w) > 0 && wordTrim[w[len(w)-1]] {
		w = w[:len(w)-1]
	}
	if w == "" {
		return
	}
	n := utf8.RuneCountInString(w)
	if n < 3 && !strings.HasPrefix(w, "$") {
		return
	}
	if len(w) > MaxTokenLen {
		r, _ := utf8.DecodeRuneInString(w)
		b := append(append(t.buf[:0], prefix...), "skip:"...)
		t.addBytes(strconv.AppendInt(utf8.AppendRune(b, unicode.ToLower(r)), int64(n/10*10), 10))
		t.prev = t.prev[:0]
		return
	}
	t.buf = appendLower(append(t.buf[:0], prefix...), w)
	t.addBytes(t.buf)
	if prefix == "" {
		// Pairs of words in the text: "click here" says more than either.
		lw := t.buf // the word, lower-cased
		if len(t.prev) > 0 && len(t.prev)+1+len(lw) <= MaxTokenLen {
			t.prev = append(append(t.prev, ' '), lw...)
			t.addBytes(t.prev)
		}
		t.prev = append(t.prev[:0], lw...)
	}
}

// appendLower appends w lower-cased, its invalid UTF-8 replaced by "?".
func appendLower(b []byte, w string) []byte {
	if !hasUpperOrInvalid(w) {
		return append(b, w...)
	}
	for i := 0; i < len(w); i++ {
		if w[i] >= utf8.RuneSelf {
			return append(b, strings.ToLower(strings.ToValidUTF8(w, "?"))...)
		}
	}
	for i := 0; i < len(w); i++ {
		c := w[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// wordTrim are the bytes trimmed from the ends of a word.
var wordTrim = func() (t [256]bool) {
	for _, c := range []byte(".,'-_/@") {
		t[c] = true
	}
	return t
}()

func hasUpperOrInvalid(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || ('A' <= c && c <= 'Z') {
			return true
		}
	}
	return false
}

// shape adds tokens about how a text looks rather than what it says: a
// subject in capitals, or shouting with exclamation marks.
func (t *tokenizer) shape(prefix, s string) {
	letters, upper := 0, 0
	for _, r := range s {
		if unicode.IsLetter(r) && r < 0x80 {
			letters++
			if unicode.IsUpper(r) {
				upper++
			}
		}
	}
	if letters >= 8 && upper*10 >= letters*7 {
		t.add(prefix + "shape:caps")
	}
	if strings.Contains(s, "!!") {
		t.add(prefix + "shape:!!")
	}
	if strings.Contains(s, "$") {
		t.add(prefix + "shape:$")
	}
}

func isCJK(r rune) bool {
	switch {
	case r < 0x2e80:
		return false
	case 0x3040 <= r && r <= 0x30ff, 0x31f0 <= r && r <= 0x31ff, 0xff66 <= r && r <= 0xff9f:
		return true // kana, with the prolonged sound mark and half-width forms
	}
	return unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hangul, r)
}

// clip bounds a token taken whole from a header value.
func clip(s string) string {
	if len(s) > MaxTokenLen {
		s = s[:MaxTokenLen]
		for !utf8.ValidString(s) && len(s) > 0 {
			s = s[:len(s)-1]
		}
	}
	return s
}

// urls adds the hosts of the URLs in text: "url:" and the host without
// "www.", and the registered domain when it differs ("url:example.co.uk"
// for a.b.example.co.uk); "url:ip" for a numeric host. One pass over b.
func (t *tokenizer) urls(b string) {
	found := 0
	for i := 0; i < len(b) && found < 200 && !t.full(); i++ {
		c := b[i] | 0x20
		if c != 'h' && c != 'w' {
			continue
		}
		rest := b[i:]
		// What follows must be "t" or "w" (no other rune folds to
		// them) before the prefixes are worth comparing.
		next := byte('w')
		if c == 'h' {
			next = 't'
		}
		if len(rest) < 4 || rest[1]|0x20 != next {
			continue
		}
		skip := 0
		switch {
		case hasPrefixFold(rest, "http://"):
			skip = 7
		case hasPrefixFold(rest, "https://"):
			skip = 8
		case hasPrefixFold(rest, "www.") && (i == 0 || !isWordByte(b[i-1])):
		default:
			continue
		}
		host := rest[skip:]
		end := strings.IndexFunc(host, func(r rune) bool {
			return r <= ' ' || strings.ContainsRune("/?#\"'<>()[]{}\\,;", r)
		})
		if end < 0 {
			end = len(host)
		}
		t.host(host[:end])
		found++
		i += skip + end
	}
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func isWordByte(c byte) bool {
	return 'a' <= c|0x20 && c|0x20 <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c >= 0x80
}

func indexFold(s, sub string) int {
	for off := 0; ; {
		i := strings.IndexAny(s[off:], string([]byte{sub[0], sub[0] - 32}))
		if i < 0 {
			return -1
		}
		i += off
		if len(s)-i >= len(sub) && strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
		off = i + 1
	}
}

// host adds the tokens of one URL host (userinfo and port removed).
func (t *tokenizer) host(h string) {
	if i := strings.LastIndexByte(h, '@'); i >= 0 {
		h = h[i+1:]
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	h = strings.ToLower(strings.Trim(h, "."))
	if h == "" {
		return
	}
	if parseIP(h) != nil {
		t.add("url:ip")
		return
	}
	h = strings.TrimPrefix(h, "www.")
	if !strings.Contains(h, ".") {
		return
	}
	t.addJoined("url:", clip(h))
	if reg, err := publicsuffix.EffectiveTLDPlusOne(h); err == nil && reg != h {
		t.addJoined("url:", clip(reg))
	}
}

// parseIP is net.ParseIP, which allocates, called only when s is made of
// what IP addresses are written with (hex digits, dots, colons).
func parseIP(s string) net.IP {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f', 'A' <= c && c <= 'F', c == '.', c == ':':
		default:
			return nil
		}
	}
	return net.ParseIP(s)
}
