package store

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Queue origins: why an entry is on the queue.
const (
	OriginSubmission = "submission" // remote recipients of an authenticated user's message
	OriginForward    = "forward"    // remote forward targets
	OriginBounce     = "bounce"     // a bounce to an SRS address, routed back
	OriginDSN        = "dsn"        // a delivery status notification we generated
)

// Outbound is a message for remote recipients, to be put on the outbound
// queue. The store makes one queue entry per recipient domain.
type Outbound struct {
	QueueID    string   // id of the message it belongs to (logs, queue ids)
	From       string   // envelope sender to use ("" = null sender <>)
	ReturnPath string   // where a DSN goes if delivery fails; "" = nowhere
	Recipients []string // remote addresses
	Origin     string   // OriginSubmission, ...
	Message    []byte   // raw message, CRLF line endings
	// Tail, when not nil, is the rest of the message after Message, read
	// from a spool file as Delivery.Tail is.
	Tail *io.SectionReader
}

// Size is the size of the message: Message and Tail.
func (o *Outbound) Size() int64 { return int64(len(o.Message)) + TailSize(o.Tail) }

// Recipient states in a queue entry.
const (
	RcptPending = ""
	RcptSent    = "sent"
	RcptFailed  = "failed"
)

// QueueRecipient is one recipient of a queue entry.
type QueueRecipient struct {
	Addr   string `json:"addr"`
	Status string `json:"status,omitempty"` // RcptPending, RcptSent, RcptFailed
	Error  string `json:"error,omitempty"`  // last reply or problem
}

// QueueEntry is one message waiting for delivery to one remote domain.
type QueueEntry struct {
	ID          string           `json:"id"`
	QueueID     string           `json:"queue_id"`
	Domain      string           `json:"domain"`
	From        string           `json:"from"`
	ReturnPath  string           `json:"return_path,omitempty"`
	Origin      string           `json:"origin"`
	Recipients  []QueueRecipient `json:"recipients"`
	Size        int64            `json:"size"`
	Created     time.Time        `json:"created"`
	NextAttempt time.Time        `json:"next_attempt"`
	// LeaseHolder works on the entry until LeaseUntil (see Queue.LeaseQueued).
	LeaseHolder string    `json:"lease_holder,omitempty"`
	LeaseUntil  time.Time `json:"lease_until,omitzero"`
	Attempts    int       `json:"attempts"`
	LastError   string    `json:"last_error,omitempty"`
}

// Pending returns the addresses still to be delivered.
func (e *QueueEntry) Pending() []string {
	var out []string
	for _, r := range e.Recipients {
		if r.Status == RcptPending {
			out = append(out, r.Addr)
		}
	}
	return out
}

// MarkSent marks those of rcpts still pending sent (Queue.RecordSent).
func (e *QueueEntry) MarkSent(rcpts []string) {
	for i := range e.Recipients {
		if r := &e.Recipients[i]; r.Status == RcptPending && slices.Contains(rcpts, r.Addr) {
			r.Status = RcptSent
		}
	}
}

// prepareOutbound checks and normalises o and splits it by domain.
func SplitOutbound(o Outbound) ([]Outbound, error) {
	if len(o.Recipients) == 0 {
		return nil, fmt.Errorf("%w: outbound message without recipients", ErrInvalid)
	}
	byDomain := map[string][]string{}
	var order []string
	for _, r := range o.Recipients {
		at := strings.LastIndexByte(r, '@')
		if at <= 0 || at == len(r)-1 {
			return nil, fmt.Errorf("%w: bad outbound recipient %q", ErrInvalid, r)
		}
		// The domain is case-insensitive; the local part is the remote
		// server's business (RFC 5321 section 2.4) and is kept as given.
		d := strings.ToLower(r[at+1:])
		r = r[:at+1] + d
		if _, ok := byDomain[d]; !ok {
			order = append(order, d)
		}
		if !slices.Contains(byDomain[d], r) {
			byDomain[d] = append(byDomain[d], r)
		}
	}
	out := make([]Outbound, 0, len(order))
	for _, d := range order {
		p := o
		p.Recipients = byDomain[d]
		out = append(out, p)
	}
	return out, nil
}
