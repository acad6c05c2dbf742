package spam

import (
	"bytes"
	"html"
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
func (t *tokenizer) html(b []byte) {
	var text bytes.Buffer
	for len(b) > 0 && !t.full() {
		i := bytes.IndexByte(b, '<')
		if i < 0 {
			text.Write(b)
			break
		}
		text.Write(b[:i])
		text.WriteByte(' ')
		b = b[i:]
		if bytes.HasPrefix(b, []byte("<!--")) {
			end := bytes.Index(b, []byte("-->"))
			if end < 0 {
				break
			}
			b = b[end+3:]
			continue
		}
		end := bytes.IndexByte(b, '>')
		if end < 0 {
			break
		}
		tag := b[1:end]
		b = b[end+1:]
		closing := len(tag) > 0 && tag[0] == '/'
		name := tagName(tag)
		if htmlTags[name] {
			t.add("html:" + name)
		}
		t.urls(tag)
		if !closing && (name == "script" || name == "style") {
			// Skip to the closing tag.
			end := indexFold(b, []byte("</"+name))
			if end < 0 {
				break
			}
			b = b[end:]
		}
	}
	s := html.UnescapeString(text.String())
	t.urls([]byte(s))
	t.words("", s)
}

// tagName returns the lower-cased name of a tag from the text between < and >.
func tagName(tag []byte) string {
	tag = bytes.TrimPrefix(tag, []byte("/"))
	end := 0
	for end < len(tag) && end < 16 {
		c := tag[end]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			break
		}
		end++
	}
	return string(bytes.ToLower(tag[:end]))
}
