package store

import (
	"fmt"
	"time"
)

// ScanAction is what inbound scanning does with a message that meets a
// policy condition, for one recipient account.
type ScanAction string

const (
	ScanDiscard ScanAction = "discard" // keep only the headers; report to the recipient
	ScanAccept  ScanAction = "accept"  // deliver unchecked, with a header saying why
	ScanReject  ScanAction = "reject"  // (encrypted archives only) treat like discard
)

// ScanPolicy is an account's inbound scanning policy. The zero value is
// the default: discard for every condition, accept for encrypted archives.
type ScanPolicy struct {
	Oversize    ScanAction `json:"oversize,omitempty"`     // message over the scan size limit
	Depth       ScanAction `json:"depth,omitempty"`        // archives nested too deep
	ExtractSize ScanAction `json:"extract_size,omitempty"` // too big inside an archive
	Partial     ScanAction `json:"partial,omitempty"`      // message/partial
	Encrypted   ScanAction `json:"encrypted,omitempty"`    // password-protected archive member: accept or reject
}

// Effective returns p with the defaults filled in.
func (p ScanPolicy) Effective() ScanPolicy {
	for _, a := range []*ScanAction{&p.Oversize, &p.Depth, &p.ExtractSize, &p.Partial} {
		if *a == "" {
			*a = ScanDiscard
		}
	}
	if p.Encrypted == "" {
		p.Encrypted = ScanAccept
	}
	return p
}

// Validate checks every field.
func (p ScanPolicy) Validate() error {
	for name, a := range map[string]ScanAction{"oversize": p.Oversize, "depth": p.Depth, "extract-size": p.ExtractSize, "partial": p.Partial} {
		if a != "" && a != ScanDiscard && a != ScanAccept {
			return fmt.Errorf("%w: %s must be discard or accept, not %q", ErrInvalid, name, a)
		}
	}
	if a := p.Encrypted; a != "" && a != ScanAccept && a != ScanReject {
		return fmt.Errorf("%w: encrypted must be accept or reject, not %q", ErrInvalid, a)
	}
	return nil
}

// Stop is one message (or one recipient's copy) that scanning stopped:
// the record behind warning mails and the daily report.
type Stop struct {
	Time       time.Time `json:"time"`
	QueueID    string    `json:"queue_id"`
	Direction  string    `json:"direction"` // "inbound" or "outbound"
	Sender     string    `json:"sender"`
	Recipients []string  `json:"recipients"`
	Domains    []string  `json:"domains"` // our (parent) domains concerned, for per-domain reports
	Reasons    []string  `json:"reasons"` // virus, partial, depth, extract-size, oversize, encrypted
	Virus      string    `json:"virus,omitempty"`
	File       string    `json:"file,omitempty"`
	Action     string    `json:"action"` // rejected, discarded, stripped, accepted-unchecked
}
