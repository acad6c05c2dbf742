package spam

import (
	"html"
	"strings"
)

// htmlTags are the tags whose use is a token ("html:img"): what a mail
// written to be looked at rather than read is made of.
var htmlTags = map[string]bool{
	"img": true, "font": true, "table": true, "form": true, "input": true, "iframe": true,
	"center": true, "map": true, "area": true, "object": true, "embed": true, "base": true,
	"meta": true, "a": true, "b": true, "style": true, "script": true,
}

// html tokenizes an HTML part: the text between its tags (entities
// decoded; scripts, styles and comments left out), the hosts of URLs in its
// attributes and text, and which of htmlTags it uses.
func (t *tokenizer) html(b string) {
	text := t.htmlBuf[:0]
	for len(b) > 0 && !t.full() {
		i := strings.IndexByte(b, '<')
		if i < 0 {
			text = append(text, b...)
			break
		}
		text = append(append(text, b[:i]...), ' ')
		b = b[i:]
		if strings.HasPrefix(b, "<!--") {
			end := strings.Index(b, "-->")
			if end < 0 {
				break
			}
			b = b[end+3:]
			continue
		}
		end := strings.IndexByte(b, '>')
		if end < 0 {
			break
		}
		tag := b[1:end]
		b = b[end+1:]
		closing := len(tag) > 0 && tag[0] == '/'
		name := tagName(tag)
		if htmlTags[name] {
			t.addJoined("html:", name)
		}
		t.urls(tag)
		if !closing && (name == "script" || name == "style") {
			// Skip to the closing tag.
			end := indexFold(b, "</"+name)
			if end < 0 {
				break
			}
			b = b[end:]
		}
	}
	t.htmlBuf = text
	s := html.UnescapeString(string(text))
	t.urls(s)
	t.words("", s)
}

// tagName returns the lower-cased name of a tag from the text between < and >.
func tagName(tag string) string {
	tag = strings.TrimPrefix(tag, "/")
	end, lower := 0, true
	for end < len(tag) && end < 16 {
		c := tag[end]
		if 'A' <= c && c <= 'Z' {
			lower = false
		} else if !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			break
		}
		end++
	}
	if lower {
		return tag[:end]
	}
	return strings.ToLower(tag[:end])
}
