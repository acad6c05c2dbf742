package scan

import (
	"errors"
	"strings"
)

// Disposition is a per-account policy choice for one condition.
type Disposition string

// Dispositions. For Oversize, Depth, ExtractSize and Partial: Discard (the
// default) or Accept (deliver unchecked, with a header saying why). For
// Encrypted: Accept (the default: deliver, header names the members) or
// Reject (submission: reject; inbound: treated as Discard).
const (
	Discard Disposition = "discard"
	Accept  Disposition = "accept"
	Reject  Disposition = "reject"
)

// ParseDisposition parses "discard", "accept" or "reject" ("" is valid:
// the condition's default).
func ParseDisposition(s string) (Disposition, error) {
	switch d := Disposition(strings.ToLower(strings.TrimSpace(s))); d {
	case "", Discard, Accept, Reject:
		return d, nil
	}
	return "", errors.New("scan: policy must be discard, accept or reject")
}

// Policy is one recipient account's inbound policy. The zero Policy is the
// default: discard everything, accept encrypted members.
type Policy struct {
	Oversize    Disposition
	Depth       Disposition
	ExtractSize Disposition
	Partial     Disposition
	Encrypted   Disposition
}

// For returns the disposition for c, defaults applied. Virus is always
// Discard here (stripping is decided by Inbound).
func (p Policy) For(c Condition) Disposition {
	var d Disposition
	switch c {
	case Oversize:
		d = p.Oversize
	case Depth:
		d = p.Depth
	case ExtractSize:
		d = p.ExtractSize
	case Partial:
		d = p.Partial
	case Encrypted:
		d = p.Encrypted
		if d == "" || d == Discard {
			if d == "" {
				return Accept
			}
			return Reject
		}
		return d
	case Malformed:
		return Accept
	default:
		return Discard
	}
	if d == Reject || d == "" {
		return Discard
	}
	return d
}

// Submission decides a message on submission (587/465): ok is false and
// reply is the reply to give when it must be rejected. encrypted is the
// "encrypted" policy (Accept by default). A scan error is not covered: on
// any error from Scan answer ReplyTempFail.
func (v *Verdict) Submission(encrypted Disposition) (reply Reply, ok bool) {
	for _, c := range v.Conditions() {
		if c.Blocking() || (c == Encrypted && encrypted == Reject) {
			r, _ := ReplyFor(c)
			return r, false
		}
	}
	return Reply{}, true
}

// Action is what to do with the message for one inbound recipient.
type Action string

// Inbound actions.
const (
	Deliver         Action = "deliver"  // as is (clean or accepted unchecked), with Header
	DeliverStripped Action = "stripped" // remove Strip's parts (see Strip), deliver with Header, warn the recipient
	DiscardMessage  Action = "discard"  // deliver nothing; send the recipient a report with the original headers
)

// Decision is the inbound outcome for one recipient.
type Decision struct {
	Action Action
	// Strip lists the virus findings whose parts must be removed
	// (DeliverStripped); pass them to Strip / RemovalsFor.
	Strip []Finding
	// Reasons are the findings that caused a discard, or for Deliver and
	// DeliverStripped the conditions accepted unchecked or encrypted
	// members: what the report or warning mail lists.
	Reasons []Finding
	// Unchecked lists the conditions accepted unchecked by the policy.
	Unchecked []Condition
	// Reply is the reply for the SMTP transaction if every recipient's
	// action is DiscardMessage (otherwise the transaction gets 250).
	Reply Reply
	// Header is the X-Yubin-Scan value for the delivered copy.
	Header string
	// Notify: the recipient gets a warning mail (stripped) or a report
	// mail (discarded).
	Notify bool
}

// Inbound decides the message for one recipient on port 25, following
// SPEC section 4: a virus only in attachments is stripped; a virus in the
// body or in every part, or a condition whose policy is Discard, discards;
// a condition whose policy is Accept delivers unchecked.
func (v *Verdict) Inbound(p Policy) Decision {
	var d Decision
	viruses := v.Only(Virus)
	var discard []Finding
	bodyHit := false
	for _, f := range viruses {
		if !f.Attachment || f.Index < 0 {
			bodyHit = true
		}
	}
	var encrypted []string
	for _, c := range v.Conditions() {
		if c == Virus || c == Malformed {
			continue
		}
		fs := v.Only(c)
		switch p.For(c) {
		case Discard, Reject:
			discard = append(discard, fs...)
		case Accept:
			d.Reasons = append(d.Reasons, fs...)
			if c == Encrypted {
				for _, f := range fs {
					encrypted = append(encrypted, f.Path)
				}
			} else {
				d.Unchecked = append(d.Unchecked, c)
			}
		}
	}
	allInfected := len(viruses) > 0 && v.everyPartInfected()
	if bodyHit || allInfected || len(discard) > 0 {
		d.Action = DiscardMessage
		d.Reasons = append(append([]Finding(nil), viruses...), discard...)
		d.Notify = true
		d.Reply = worstReply(d.Reasons)
		d.Header = HeaderValue(StatusInfected, v.Engines, [2]string{"reason", condList(d.Reasons)})
		return d
	}
	var unchecked []string
	for _, c := range d.Unchecked {
		unchecked = append(unchecked, string(c))
	}
	params := [][2]string{{"reason", strings.Join(unchecked, ",")}}
	status := StatusClean
	if len(unchecked) > 0 {
		status = StatusUnchecked
	}
	if len(viruses) > 0 {
		d.Action = DeliverStripped
		d.Strip = viruses
		d.Notify = true
		var names, files []string
		for _, f := range viruses {
			names = appendUniq(names, f.Virus)
			files = appendUniq(files, f.Path)
		}
		status = StatusStripped
		params = append(params, [2]string{"virus", strings.Join(names, ",")}, [2]string{"file", strings.Join(files, ",")})
	} else {
		d.Action = Deliver
	}
	params = append(params, [2]string{"encrypted", strings.Join(encrypted, ",")})
	d.Header = HeaderValue(status, v.Engines, params...)
	return d
}

func appendUniq(l []string, s string) []string {
	for _, x := range l {
		if x == s {
			return l
		}
	}
	return append(l, s)
}

func condList(fs []Finding) string {
	var l []string
	for _, f := range fs {
		l = appendUniq(l, string(f.Condition))
	}
	return strings.Join(l, ",")
}

func worstReply(fs []Finding) Reply {
	best := -1
	for i, f := range fs {
		if best < 0 || rank(f.Condition) < rank(fs[best].Condition) {
			best = i
		}
	}
	if best < 0 {
		return Reply{}
	}
	r, _ := ReplyFor(fs[best].Condition)
	return r
}

// everyPartInfected reports whether every non-blank leaf part has a virus.
func (v *Verdict) everyPartInfected() bool {
	infected := map[int]bool{}
	for _, f := range v.Only(Virus) {
		infected[f.Index] = true
	}
	for _, p := range v.Parts {
		if !p.Blank && !p.Preamble && !infected[p.Index] {
			return false
		}
	}
	return true
}
