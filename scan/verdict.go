package scan

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Condition is why a message is not (or not entirely) clean.
type Condition string

// The conditions. The first five are the rows of SPEC section 4's table;
// Encrypted is governed by the "encrypted = accept | reject" policy;
// Malformed is informational only (never blocks by itself).
const (
	Virus       Condition = "virus"        // VC01
	Partial     Condition = "partial"      // VC02: message/partial (RFC 2046)
	Depth       Condition = "depth"        // VC03: archives (or MIME) nested too deep
	ExtractSize Condition = "extract-size" // VC04: a file inside an archive, or the total expansion, too big
	Oversize    Condition = "oversize"     // 552 5.2.3: message larger than the scan limit
	Encrypted   Condition = "encrypted"    // a password-protected archive member: not scannable
	Malformed   Condition = "malformed"    // broken MIME/archive structure, scanned as raw bytes: informational
)

// order is the severity order used to pick the one reply for a message.
var order = []Condition{Virus, Partial, Depth, ExtractSize, Oversize, Encrypted, Malformed}

func rank(c Condition) int {
	for i, o := range order {
		if o == c {
			return i
		}
	}
	return len(order)
}

// Blocking reports whether the condition, on its own, stops a message on
// submission (Encrypted depends on policy, Malformed never blocks).
func (c Condition) Blocking() bool {
	switch c {
	case Virus, Partial, Depth, ExtractSize, Oversize:
		return true
	}
	return false
}

// Description is a short English reason, for logs and report mails.
func (c Condition) Description() string {
	switch c {
	case Virus:
		return "a virus was found"
	case Partial:
		return "the message is a partial (split) message"
	case Depth:
		return "an attachment is compressed too many times"
	case ExtractSize:
		return "a file inside a compressed attachment is too large"
	case Oversize:
		return "the message is too large to be checked"
	case Encrypted:
		return "a password-protected attachment cannot be checked"
	case Malformed:
		return "the message structure is malformed"
	}
	return string(c)
}

// ReasonJA is the reason line of the Japanese report mail ("判断理由"),
// as on the reference service's sample report.
func (c Condition) ReasonJA() string {
	switch c {
	case Virus:
		return "ウイルスが検出されました"
	case Partial:
		return "メールが分割送信されています"
	case Depth:
		return "添付ファイルの圧縮回数が多すぎます"
	case ExtractSize:
		return "圧縮ファイル内にサイズの大きなファイルがあります"
	case Oversize:
		return "メールサイズが大きすぎます"
	case Encrypted:
		return "パスワード付きファイルはウイルスチェックできません"
	case Malformed:
		return "メールの構造が不正です"
	}
	return string(c)
}

// Finding is one thing the scanner found.
type Finding struct {
	Condition Condition
	Virus     string // virus/signature name (Condition == Virus)
	Engine    string // engine that reported the virus
	Detail    string // human-readable detail for the other conditions

	// Where. Part is the MIME part path, IMAP style ("1", "2.1"; "" is the
	// whole message / its top-level body). Index is the leaf part's index
	// in walk order (Verdict.Parts[Index]), -1 when not tied to one leaf.
	Part  string
	Index int
	// Attachment is true when the finding is in an attachment (a part that
	// can be stripped), false when it is in the message body (an inline
	// text/plain or text/html part, or the raw message itself).
	Attachment bool
	FileName   string // file name of the MIME part, if any
	// Path is the file's path through archives, starting with the part's
	// file name: "invoice.zip/inner.tar.gz/eicar.com". For a finding on the
	// part itself it is just the part's name.
	Path string
}

func (f Finding) String() string {
	var b strings.Builder
	b.WriteString(string(f.Condition))
	if f.Virus != "" {
		fmt.Fprintf(&b, " virus=%q engine=%s", f.Virus, f.Engine)
	}
	fmt.Fprintf(&b, " part=%q", f.Part)
	if f.Attachment {
		b.WriteString(" attachment")
	} else {
		b.WriteString(" body")
	}
	if f.Path != "" {
		fmt.Fprintf(&b, " path=%q", f.Path)
	}
	if f.Detail != "" {
		fmt.Fprintf(&b, " detail=%q", f.Detail)
	}
	return b.String()
}

// PartInfo describes one leaf MIME part (a part that is not multipart/* nor
// an encapsulated message).
type PartInfo struct {
	Index       int
	Part        string // MIME path, as in Finding.Part
	ContentType string // lowercased media type
	FileName    string
	Attachment  bool
	Size        int64 // decoded size in bytes
	Blank       bool  // empty or only white space (ignored by "every part infected")
	Preamble    bool  // a multipart preamble/epilogue (text outside the parts), scanned as body
}

// Verdict is the result of scanning one message.
type Verdict struct {
	Findings []Finding
	Parts    []PartInfo // leaf parts in walk order
	Engines  []string   // names of the engines that ran
	Size     int64      // raw message size
	// Scanned is false when the message was not scanned at all (it was
	// larger than Limits.MaxMessageSize: the only finding is Oversize).
	Scanned  bool
	Duration time.Duration
}

// Clean reports whether nothing blocking was found (Encrypted and
// Malformed findings do not count; see Submission and Inbound for policy).
func (v *Verdict) Clean() bool {
	for _, f := range v.Findings {
		if f.Condition.Blocking() {
			return false
		}
	}
	return true
}

// Has reports whether any finding has condition c.
func (v *Verdict) Has(c Condition) bool {
	for _, f := range v.Findings {
		if f.Condition == c {
			return true
		}
	}
	return false
}

// Infected reports whether a virus was found.
func (v *Verdict) Infected() bool { return v.Has(Virus) }

// Only returns the findings with condition c.
func (v *Verdict) Only(c Condition) []Finding {
	var out []Finding
	for _, f := range v.Findings {
		if f.Condition == c {
			out = append(out, f)
		}
	}
	return out
}

// Conditions returns the distinct conditions found, most severe first.
func (v *Verdict) Conditions() []Condition {
	seen := map[Condition]bool{}
	var out []Condition
	for _, f := range v.Findings {
		if !seen[f.Condition] {
			seen[f.Condition] = true
			out = append(out, f.Condition)
		}
	}
	sort.Slice(out, func(i, j int) bool { return rank(out[i]) < rank(out[j]) })
	return out
}

func (v *Verdict) add(f Finding) {
	// One finding per (condition, virus, part, path) is enough.
	for _, g := range v.Findings {
		if g.Condition == f.Condition && g.Virus == f.Virus && g.Part == f.Part && g.Path == f.Path && g.Index == f.Index {
			return
		}
	}
	v.Findings = append(v.Findings, f)
}

// String is a one-line-per-finding summary ("clean" when there is none).
func (v *Verdict) String() string {
	if len(v.Findings) == 0 {
		return "clean"
	}
	lines := make([]string, len(v.Findings))
	for i, f := range v.Findings {
		lines[i] = f.String()
	}
	return strings.Join(lines, "\n")
}
