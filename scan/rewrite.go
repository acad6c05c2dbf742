package scan

import (
	"bytes"
	"fmt"
	"mime/quotedprintable"
	"sort"
	"strings"
)

// Removal says which MIME part to remove and what the notice part that
// replaces it says.
type Removal struct {
	Part     string   // MIME path (Finding.Part)
	FileName string   // shown in the notice
	Viruses  []string // "Eicar-Test-Signature (invoice.zip/eicar.com)"
	Text     string   // notice text; "" = NoticeText(FileName, Viruses)
}

// NoticeText is the default text of the part that replaces a removed
// attachment.
func NoticeText(file string, viruses []string) string {
	if file == "" {
		file = "(no name)"
	}
	return fmt.Sprintf("The attachment %q was removed by the virus checker.\n"+
		"Virus found: %s\n\n"+
		"ウイルスが検出されたため、添付ファイル「%s」は削除されました。\n",
		file, strings.Join(viruses, ", "), file)
}

// RemovalsFor groups virus findings by MIME part (one Removal per part).
func RemovalsFor(fs []Finding) []Removal {
	var out []Removal
	idx := map[string]int{}
	for _, f := range fs {
		if f.Condition != Virus {
			continue
		}
		desc := f.Virus
		if f.Path != "" && f.Path != f.FileName {
			desc += " (" + f.Path + ")"
		}
		i, ok := idx[f.Part]
		if !ok {
			i = len(out)
			idx[f.Part] = i
			out = append(out, Removal{Part: f.Part, FileName: f.FileName})
		}
		out[i].Viruses = appendUniq(out[i].Viruses, desc)
	}
	return out
}

// Strip removes the virus findings' parts from raw (see StripParts).
func Strip(raw []byte, fs []Finding) ([]byte, error) { return StripParts(raw, RemovalsFor(fs)) }

// StripParts returns raw with each named part replaced by a short
// text/plain notice part. Everything else is kept byte for byte. A part
// inside an encapsulated message that is itself base64/quoted-printable
// encoded cannot be cut out in place: the whole encapsulated message is
// replaced instead. Removing the top-level part replaces the message's
// Content-* header fields and body and keeps its other header fields.
func StripParts(raw []byte, rm []Removal) ([]byte, error) {
	l := DefaultLimits()
	root, _ := parseMIME(raw, l.MaxMIMEDepth, l.MaxParts)
	nl := "\n"
	if bytes.Contains(raw, []byte("\r\n")) {
		nl = "\r\n"
	}
	type target struct {
		p *mimePart
		r Removal
	}
	var targets []target
	for _, r := range rm {
		p := findPart(root, r.Part)
		if p == nil {
			return nil, fmt.Errorf("scan: no MIME part %q", r.Part)
		}
		for !p.inRaw && p.parent != nil {
			p = p.parent
		}
		// an encapsulated message's root shares its path: cut the message part
		for p.encapsulated && p.parent != nil {
			p = p.parent
		}
		targets = append(targets, target{p, r})
	}
	// merge duplicates, drop targets inside other targets
	var merged []target
	for _, t := range targets {
		dup := false
		for i := range merged {
			if merged[i].p == t.p {
				merged[i].r.Viruses = append(merged[i].r.Viruses, t.r.Viruses...)
				dup = true
			}
		}
		if !dup {
			merged = append(merged, t)
		}
	}
	targets = targets[:0:0]
	for _, t := range merged {
		inside := false
		for _, o := range merged {
			if o.p != t.p && isAncestor(o.p, t.p) {
				inside = true
			}
		}
		if !inside {
			targets = append(targets, t)
		}
	}
	sort.Slice(targets, func(i, j int) bool { return targets[i].p.start > targets[j].p.start })
	out := raw
	for _, t := range targets {
		text := t.r.Text
		if text == "" {
			text = NoticeText(t.r.FileName, t.r.Viruses)
		}
		if t.p.parent == nil {
			out = replaceRoot(out, t.p, text, nl)
			continue
		}
		var b bytes.Buffer
		b.Write(out[:t.p.start])
		b.WriteString(noticePart(text, nl))
		b.Write(out[t.p.end:])
		out = b.Bytes()
	}
	if len(targets) == 0 {
		out = append([]byte(nil), raw...)
	}
	return out, nil
}

func isAncestor(a, p *mimePart) bool {
	for q := p.parent; q != nil; q = q.parent {
		if q == a {
			return true
		}
	}
	return false
}

func findPart(p *mimePart, path string) *mimePart {
	if p.path == path && !p.preamble {
		return p
	}
	for _, c := range p.children {
		if f := findPart(c, path); f != nil {
			return f
		}
	}
	return nil
}

func noticeHeader(nl string) string {
	return "Content-Type: text/plain; charset=utf-8" + nl +
		"Content-Transfer-Encoding: quoted-printable" + nl +
		"Content-Disposition: inline" + nl
}

func noticeBody(text, nl string) string {
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	w.Write([]byte(strings.ReplaceAll(text, "\n", "\r\n")))
	w.Close()
	s := b.String()
	if nl == "\n" {
		s = strings.ReplaceAll(s, "\r\n", "\n")
	}
	return s
}

func noticePart(text, nl string) string {
	return noticeHeader(nl) + nl + noticeBody(text, nl)
}

func replaceRoot(raw []byte, root *mimePart, text, nl string) []byte {
	var b bytes.Buffer
	if len(root.fields) > 0 {
		b.Write(raw[:root.fields[0].start])
	}
	for _, f := range root.fields {
		switch strings.ToLower(f.name) {
		case "content-type", "content-transfer-encoding", "content-disposition":
			continue
		}
		b.Write(raw[f.start:f.end])
		if f.end == 0 || raw[f.end-1] != '\n' {
			b.WriteString(nl)
		}
	}
	b.WriteString(noticeHeader(nl))
	b.WriteString(nl)
	b.WriteString(noticeBody(text, nl))
	return b.Bytes()
}
