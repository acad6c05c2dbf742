package scan

import (
	"fmt"
	"strings"
)

// Reply is an SMTP reply: code, enhanced status code and text.
type Reply struct {
	Code     int    // 554
	Enhanced string // "5.6.5"
	Text     string // "VC01 Virus Check Service found VIRUS in your email."
}

// String is the reply line without CRLF: "554 5.6.5 VC01 Virus Check ...".
func (r Reply) String() string { return fmt.Sprintf("%d %s %s", r.Code, r.Enhanced, r.Text) }

// Temporary reports whether the reply is a 4xx reply.
func (r Reply) Temporary() bool { return r.Code >= 400 && r.Code < 500 }

// The exact replies of SPEC section 4 (submission rejects with these).
var (
	ReplyVirus       = Reply{554, "5.6.5", "VC01 Virus Check Service found VIRUS in your email."}
	ReplyPartial     = Reply{554, "5.6.5", "VC02 Partial message."}
	ReplyDepth       = Reply{554, "5.6.5", "VC03 Attachment exceeds maximum extract depth."}
	ReplyExtractSize = Reply{554, "5.6.5", "VC04 Attachment exceeds maximum extract size."}
	ReplyOversize    = Reply{552, "5.2.3", "Message exceeds maximum size."}
	// ReplyEncrypted is used only under policy encrypted = reject. The spec
	// has no VC code for it; this text is a proposal.
	ReplyEncrypted = Reply{554, "5.6.5", "Encrypted attachment cannot be checked for viruses."}
	// ReplyTempFail is the answer when an engine (clamd) is configured but
	// unavailable: never deliver unscanned, ask the client to retry.
	ReplyTempFail = Reply{451, "4.7.1", "Virus check temporarily unavailable, try again later."}
)

// ReplyFor returns the SMTP reply for a condition; ok is false for
// Malformed, which has none.
func ReplyFor(c Condition) (r Reply, ok bool) {
	switch c {
	case Virus:
		return ReplyVirus, true
	case Partial:
		return ReplyPartial, true
	case Depth:
		return ReplyDepth, true
	case ExtractSize:
		return ReplyExtractSize, true
	case Oversize:
		return ReplyOversize, true
	case Encrypted:
		return ReplyEncrypted, true
	}
	return Reply{}, false
}

// HeaderName is the header added to every delivered message.
const HeaderName = "X-Yubin-Scan"

// Header statuses (the first word of the X-Yubin-Scan value).
const (
	StatusClean     = "clean"     // scanned, nothing found
	StatusStripped  = "stripped"  // infected attachment(s) removed, rest delivered
	StatusUnchecked = "unchecked" // delivered without (complete) scanning, reason given
	StatusInfected  = "infected"  // only for the record: an infected message is never delivered as is
)

// HeaderValue formats an X-Yubin-Scan value:
//
//	clean; engines=builtin,clamd
//	clean; engines=builtin; encrypted="secret.zip/plan.docx"
//	stripped; engines=builtin; virus="Eicar-Test-Signature"; file="invoice.zip/eicar.com"
//	unchecked; engines=builtin; reason=oversize
//
// Parameters are name=value pairs separated by "; "; a value that is not a
// plain token is a quoted string, lists are comma-separated, and bytes
// outside printable ASCII are percent-encoded.
func HeaderValue(status string, engines []string, params ...[2]string) string {
	var b strings.Builder
	b.WriteString(status)
	b.WriteString("; engines=")
	if len(engines) == 0 {
		b.WriteString("none")
	} else {
		b.WriteString(strings.Join(engines, ","))
	}
	for _, p := range params {
		if p[1] == "" {
			continue
		}
		b.WriteString("; ")
		b.WriteString(p[0])
		b.WriteByte('=')
		b.WriteString(headerParam(p[1]))
	}
	return b.String()
}

func headerParam(s string) string {
	token := true
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 0x20 || c >= 0x7f || c == '%':
			fmt.Fprintf(&b, "%%%02X", c)
			token = false
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
			token = false
		default:
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.,", c) >= 0) {
				token = false
			}
			b.WriteByte(c)
		}
	}
	if token {
		return b.String()
	}
	return `"` + b.String() + `"`
}

// HeaderValue is the X-Yubin-Scan value for this verdict when the message
// is delivered as is: clean (with encrypted= naming unscanned members, if
// any), or unchecked with the reasons. For a stripped or discarded message
// use Decision.Header from Inbound.
func (v *Verdict) HeaderValue() string {
	var reasons []string
	for _, c := range v.Conditions() {
		if c.Blocking() {
			reasons = append(reasons, string(c))
		}
	}
	enc := v.encryptedList()
	if len(reasons) > 0 {
		return HeaderValue(StatusUnchecked, v.Engines, [2]string{"reason", strings.Join(reasons, ",")}, [2]string{"encrypted", enc})
	}
	return HeaderValue(StatusClean, v.Engines, [2]string{"encrypted", enc})
}

func (v *Verdict) encryptedList() string {
	var l []string
	for _, f := range v.Only(Encrypted) {
		l = append(l, f.Path)
	}
	return strings.Join(l, ",")
}
