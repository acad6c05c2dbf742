// Package mailtext shows a message as plain text that is safe to put in
// front of a person: its header fields decoded, the text of its text/plain
// parts, its HTML converted to text (no markup, nothing that runs: scripts,
// styles and embedded objects are left out, a link is its text and its
// address), and a list of its parts. Control characters that could drive a
// terminal are removed. The quarantine shows held mail with it.
//
// It never fails: a message it cannot parse is shown as its raw text.
// Everything is bounded (MaxText, MaxFields, MaxFieldLen, MaxParts,
// MaxDepth), so a huge or hostile message costs no more than a normal one.
package mailtext

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decoding of text parts and encoded words in any charset
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Bounds of one view.
const (
	MaxText     = 256 << 10 // bytes of text, all parts together
	MaxFields   = 200       // header fields shown
	MaxFieldLen = 2000      // bytes of one field's value
	MaxParts    = 100
	MaxDepth    = 8
	maxHeader   = 256 << 10 // bytes of a header section read
)

// View is a message as plain text.
type View struct {
	Header []Field `json:"header"`
	// Text is the message's text: its text/plain parts as they are, its
	// text/html parts converted to text (of alternatives, the plain one).
	Text  string `json:"text"`
	Parts []Part `json:"parts"`
	// Truncated says that the text, the header or the parts were cut at
	// their bounds.
	Truncated bool `json:"truncated,omitempty"`
	// Problem says what could not be parsed ("" = nothing).
	Problem string `json:"problem,omitempty"`
}

// Field is one header field, its value decoded (RFC 2047) and unfolded.
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Part is one leaf part of the message.
type Part struct {
	Type string `json:"type"`
	Name string `json:"name,omitempty"` // file name, if any
	Size int64  `json:"size"`           // decoded bytes
	// Shown says whether its text is in View.Text.
	Shown bool `json:"shown"`
}

// Render reads a raw message and returns its view.
func Render(r io.Reader) View {
	var v View
	head := &capped{max: MaxText}
	e, err := message.ReadWithOptions(bufio.NewReader(io.TeeReader(r, head)), &message.ReadOptions{MaxHeaderBytes: maxHeader})
	if e == nil {
		// Not even a header: show the beginning, as text.
		v.Problem = "the message could not be parsed: " + Clean(err.Error())
		io.Copy(io.Discard, io.LimitReader(r, int64(MaxText-len(head.b))))
		v.text(head.b)
		return v
	}
	if err != nil {
		v.Problem = Clean(err.Error())
	}
	v.header(e.Header)
	w := walker{v: &v}
	w.entity(e, 0, false)
	if v.Text = strings.TrimRight(v.Text, "\n"); v.Text != "" {
		v.Text += "\n"
	}
	return v
}

// capped keeps the first max bytes written to it.
type capped struct {
	b   []byte
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if left := c.max - len(c.b); left > 0 {
		c.b = append(c.b, p[:min(len(p), left)]...)
	}
	return len(p), nil
}

func (v *View) header(h message.Header) {
	fields := h.Fields()
	for fields.Next() {
		if len(v.Header) == MaxFields {
			v.Truncated = true
			return
		}
		val, err := fields.Text()
		if err != nil {
			val = fields.Value()
		}
		v.Header = append(v.Header, Field{Name: Clean(fields.Key()), Value: Line(val, MaxFieldLen)})
	}
}

// text appends b (UTF-8) to the text, within MaxText.
func (v *View) text(b []byte) {
	left := MaxText - len(v.Text)
	if len(b) > left {
		b = b[:max(left, 0)]
		v.Truncated = true
	}
	v.Text += Clean(string(b))
}

type walker struct {
	v     *View
	parts int
}

// maxAlternative bounds an alternative of a multipart/alternative, which
// is read before the choice of the one to show.
const maxAlternative = 4 << 20

// entity adds one entity: a multipart's parts, or a leaf. A leaf's text is
// shown unless hide (an alternative not chosen).
func (w *walker) entity(e *message.Entity, depth int, hide bool) {
	if w.parts >= MaxParts || depth > MaxDepth {
		w.v.Truncated = true
		return
	}
	mr := e.MultipartReader()
	if mr == nil {
		w.leaf(e, hide)
		return
	}
	ct, _, _ := e.Header.ContentType()
	var alts []*message.Entity
	for {
		p, err := mr.NextPart()
		if err != nil && p == nil {
			if err != io.EOF && w.v.Problem == "" {
				w.v.Problem = Clean(err.Error())
			}
			break
		}
		if ct != "multipart/alternative" {
			w.entity(p, depth+1, hide)
			continue
		}
		// Read now: the next part ends this one.
		b, _ := io.ReadAll(io.LimitReader(p.Body, maxAlternative))
		p.Body = bytes.NewReader(b)
		alts = append(alts, p)
	}
	// Of alternatives, the plain text is shown (else the first); the
	// others are listed.
	show := 0
	for i, p := range alts {
		if t, _, _ := p.Header.ContentType(); t == "text/plain" {
			show = i
			break
		}
	}
	for i, p := range alts {
		w.entity(p, depth+1, hide || i != show)
	}
}

// leaf adds a part that is not a multipart.
func (w *walker) leaf(e *message.Entity, hide bool) {
	w.parts++
	ct, params, err := e.Header.ContentType()
	if err != nil && ct == "" {
		ct = "text/plain"
	}
	disp, dparams, _ := e.Header.ContentDisposition()
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	p := Part{Type: Clean(ct), Name: Line(name, 200)}
	text := !hide && disp != "attachment" && (ct == "text/plain" || ct == "text/html")
	var b []byte
	if text {
		b, _ = io.ReadAll(io.LimitReader(e.Body, int64(MaxText+1)))
	}
	n, _ := io.Copy(io.Discard, e.Body)
	p.Size = int64(len(b)) + n
	if text && len(b) > 0 {
		if w.v.Text != "" {
			w.v.text([]byte("\n"))
		}
		// HTML sent as text/plain (or without a type) is HTML all the
		// same to whoever pastes it somewhere: converted too.
		if ct == "text/html" || looksLikeHTML(b) {
			b = FromHTML(b)
		}
		w.v.text(b)
		p.Shown = true
	}
	w.v.Parts = append(w.v.Parts, p)
}

// FromHTML converts HTML to plain text: the text between the tags with
// entities decoded, line breaks for blocks, links as "text [address]",
// images as their alt text. What is not text — scripts, styles, the head,
// embedded objects, forms' controls, comments — is left out.
func FromHTML(b []byte) []byte {
	var out bytes.Buffer
	z := html.NewTokenizer(bytes.NewReader(b))
	skip := 0 // depth inside elements whose content is left out
	pre := 0  // depth inside <pre>
	type link struct {
		href string
		at   int // where its text begins in out
	}
	var links []link // the open links
	space := false   // a space is due before the next word
	lineStart := func() bool { return out.Len() == 0 || out.Bytes()[out.Len()-1] == '\n' }
	newline := func(n int) {
		space = false
		if out.Len() == 0 {
			return
		}
		have := 0
		for s := out.Bytes(); have < len(s) && s[len(s)-1-have] == '\n'; have++ {
		}
		for ; have < n; have++ {
			out.WriteByte('\n')
		}
	}
	// write adds text, its runs of white space made one space (but in
	// <pre>).
	write := func(s string) {
		if pre > 0 {
			out.WriteString(s)
			space = false
			return
		}
		if s == "" {
			return
		}
		first, _ := utf8.DecodeRuneInString(s)
		last, _ := utf8.DecodeLastRuneInString(s)
		words := strings.Fields(s)
		if len(words) == 0 {
			space = true
			return
		}
		if (space || unicode.IsSpace(first)) && !lineStart() {
			out.WriteByte(' ')
		}
		out.WriteString(strings.Join(words, " "))
		space = unicode.IsSpace(last)
	}
	for out.Len() < MaxText {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		tok := z.Token()
		switch tt {
		case html.TextToken:
			if skip == 0 {
				write(tok.Data)
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			if hidden[tok.DataAtom] {
				if tt == html.StartTagToken && !void[tok.DataAtom] {
					skip++
				}
				continue
			}
			if skip > 0 {
				continue
			}
			switch tok.DataAtom {
			case atom.Br:
				newline(1)
			case atom.Pre:
				newline(2)
				pre++
			case atom.A:
				links = append(links, link{attr(tok, "href"), out.Len()})
			case atom.Td, atom.Th:
				space = true
			case atom.Img:
				if alt := strings.TrimSpace(attr(tok, "alt")); alt != "" {
					write(" [image: " + alt + "] ")
				}
			case atom.Li:
				newline(1)
				out.WriteString("- ")
			default:
				if block[tok.DataAtom] {
					newline(2)
				}
			}
		case html.EndTagToken:
			if hidden[tok.DataAtom] {
				skip = max(skip-1, 0)
				continue
			}
			if skip > 0 {
				continue
			}
			switch tok.DataAtom {
			case atom.Pre:
				pre = max(pre-1, 0)
				newline(2)
			case atom.A:
				if n := len(links); n > 0 {
					l := links[n-1]
					links = links[:n-1]
					h := strings.TrimSpace(l.href)
					text := strings.TrimSpace(string(out.Bytes()[min(l.at, out.Len()):]))
					if h != "" && !strings.HasPrefix(h, "#") && h != text && h != "mailto:"+text {
						write(" [" + h + "]")
					}
				}
			default:
				if block[tok.DataAtom] {
					newline(2)
				}
			}
		}
	}
	return bytes.TrimSpace(out.Bytes())
}

// looksLikeHTML reports whether text begins as an HTML document does.
func looksLikeHTML(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n\ufeff")
	b = b[:min(len(b), 16)]
	for _, p := range []string{"<!doctype html", "<html", "<head", "<body", "<!--", "<script", "<meta", "<div", "<table", "<p>"} {
		if len(b) >= len(p) && strings.EqualFold(string(b[:len(p)]), p) {
			return true
		}
	}
	return false
}

func attr(t html.Token, name string) string {
	for _, a := range t.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// hidden are the elements whose content is not text to read.
var hidden = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Title: true, atom.Noscript: true, atom.Template: true,
	atom.Iframe: true, atom.Object: true, atom.Embed: true, atom.Applet: true, atom.Svg: true, atom.Math: true,
	atom.Select: true, atom.Textarea: true, atom.Frameset: true,
}

// void elements have no end tag.
var void = map[atom.Atom]bool{atom.Embed: true}

// block elements end a paragraph.
var block = map[atom.Atom]bool{
	atom.P: true, atom.Div: true, atom.Table: true, atom.Tr: true, atom.Ul: true, atom.Ol: true,
	atom.Blockquote: true, atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true, atom.H5: true,
	atom.H6: true, atom.Hr: true, atom.Section: true, atom.Article: true, atom.Header: true,
	atom.Footer: true, atom.Form: true, atom.Center: true, atom.Body: true, atom.Html: true,
}

// Clean returns s as valid UTF-8 without control characters but tab and
// line feed (a CR LF becomes a LF), C1 controls, and the characters that
// reorder text (bidi overrides and isolates): nothing in it can move a
// terminal's cursor, change its colours or disguise what it shows.
func Clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	clean := true
	for _, r := range s {
		if unsafe(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var b strings.Builder
	for _, r := range s {
		if !unsafe(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func unsafe(r rune) bool {
	switch {
	case r == '\t' || r == '\n':
		return false
	case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e || r == 0x200f || r == 0x061c:
		return true
	}
	return false
}

// Line returns s cleaned (see Clean) as one line, its runs of white space
// made one space, and cut after n bytes with an ellipsis: a
// From or Subject as a list shows it.
func Line(s string, n int) string {
	return clip(strings.Join(strings.Fields(Clean(s)), " "), n)
}

// clip shortens s to at most n bytes (on a rune boundary) with an ellipsis.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// String writes v as a person reads it: the header fields, an empty line,
// the text, and the list of parts.
func (v View) String() string {
	var b strings.Builder
	for _, f := range v.Header {
		fmt.Fprintf(&b, "%s: %s\n", f.Name, f.Value)
	}
	b.WriteString("\n")
	b.WriteString(v.Text)
	if len(v.Parts) > 0 {
		b.WriteString("\n--- parts ---\n")
		for _, p := range v.Parts {
			line := fmt.Sprintf("%s, %d bytes", p.Type, p.Size)
			if p.Name != "" {
				line = fmt.Sprintf("%q %s", p.Name, line)
			}
			if p.Shown {
				line += " (shown above)"
			}
			b.WriteString(line + "\n")
		}
	}
	if v.Truncated {
		b.WriteString("(cut: the message is longer than can be shown)\n")
	}
	if v.Problem != "" {
		b.WriteString("(" + v.Problem + ")\n")
	}
	return b.String()
}
