package delivery

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"yubin/internal/mailheader"
	"yubin/store"
)

// Stage is one step of the delivery path. Process may change m, or refuse
// the whole message by returning a *Reject (or a temporary error).
type Stage interface {
	Name() string
	Process(ctx context.Context, m *Message) error
}

// StageFunc makes a Stage of a function (like http.HandlerFunc): small
// stages and tests need no type of their own.
func StageFunc(name string, fn func(ctx context.Context, m *Message) error) Stage {
	return stageFunc{name, fn}
}

type stageFunc struct {
	name string
	fn   func(ctx context.Context, m *Message) error
}

func (s stageFunc) Name() string                                  { return s.name }
func (s stageFunc) Process(ctx context.Context, m *Message) error { return s.fn(ctx, m) }

// Reject refuses a message with an SMTP reply.
type Reject struct {
	Code     int    // e.g. 554
	Enhanced [3]int // e.g. {5, 6, 5}
	Text     string
}

func (r *Reject) Error() string {
	return fmt.Sprintf("%d %d.%d.%d %s", r.Code, r.Enhanced[0], r.Enhanced[1], r.Enhanced[2], r.Text)
}

// Message is one message on its way through the stages.
//
// What a local recipient (or a remote copy) gets is its own Header on top
// of a body: the message as received (Raw and Tail), or a Body variant
// some recipients share (the message with infected parts stripped, say).
// Stages add header fields per recipient instead of copying the message;
// the store writes each distinct header and body once.
type Message struct {
	Env Envelope
	// Raw is the message as received, with trace headers: the body of
	// every recipient without a Body of its own. Stages that change it for
	// everyone replace it. When Tail is set, Raw is only the header
	// section, through the empty line.
	Raw []byte
	// Tail, when not nil, is the rest of a message too big to keep in
	// memory, read from its spool file: what reads the whole message uses
	// Reader, and the store copies it from there. Nil for a message held
	// whole in Raw.
	Tail *io.SectionReader
	// Local are the local accounts that receive it, one per account.
	Local []*Recipient
	// Verdict summarises what the stages found, for the log line.
	Verdict string
	// Stops are records of what scanning stopped. The Deliverer stores them
	// (after delivery, or with the refusal when a stage refuses).
	Stops []store.Stop
	// Remote are the copies for the outbound queue (remote recipients of
	// a submission, remote forward targets), queued in the same store
	// transaction as the local deliveries.
	Remote []*RemoteCopy
	// Auth is what the authentication checks (SPF, DKIM, DMARC) found on
	// port 25, for the stages after them.
	Auth AuthResults

	after       []func(context.Context)
	failedStage string
	summary     *mailheader.Summary // of summaryRaw's header section
	summaryRaw  []byte
}

// Summary is the envelope (mailheader.Parse) of Raw's header section,
// parsed once per Raw: the spam stage reads it and the delivery stores it
// with the message, so that its first FETCH ENVELOPE needs no parsing.
func (m *Message) Summary() *mailheader.Summary {
	if m.summary == nil || len(m.summaryRaw) != len(m.Raw) || len(m.Raw) > 0 && &m.summaryRaw[0] != &m.Raw[0] {
		e := mailheader.Parse(bytes.Clone(m.Raw[:mailheader.HeaderSize(m.Raw)])) // Parse overwrites what it is given
		m.summary, m.summaryRaw = &e, m.Raw
	}
	return m.summary
}

// Body is a version of the message other than Message.Raw, held whole in
// memory (it is made from a message the scanner read). Recipients share a
// *Body; they are grouped by it, never by comparing bytes.
type Body struct {
	Raw []byte
}

// Recipient is what one local account gets: Header on top of its body.
type Recipient struct {
	Account string // account address
	Mailbox string // "" = INBOX
	// Header holds header fields for this recipient only (CRLF-terminated
	// lines), on top of the body.
	Header []byte
	// Body is this recipient's version of the message; nil: the message
	// as received (Raw, Tail).
	Body *Body
	// Drop delivers nothing to this account; Why says why (for the log).
	Drop bool
	Why  string
	// Quarantine, if set, holds this account's copy in its quarantine
	// instead of Mailbox (the store puts it in Junk when the quarantine is
	// full). Recipients that share a hold share its entry's details.
	Quarantine *store.QuarantineHold
	// Stripped says the scan stage removed infected parts (Body), for
	// the Deliverer's count.
	Stripped bool
}

// AuthResults are the outcomes of the authentication checks as RFC 8601
// words ("pass", "fail", "softfail", "none", ...); "" = not checked.
type AuthResults struct {
	SPF, DKIM, DMARC string
}

// RemoteCopy is a copy of the message for remote recipients.
type RemoteCopy struct {
	From       string   // envelope sender to use ("" = the null sender)
	ReturnPath string   // where a DSN goes if delivery fails; "" = nowhere
	To         []string // remote addresses
	Header     []byte   // header fields on top of the body, for this copy only
	Body       *Body    // nil: the message (Raw, Tail) as it is when committed
	Origin     string   // store.OriginSubmission, store.OriginForward, ...
}

func newMessage(env Envelope, raw []byte, tail *io.SectionReader) *Message {
	m := &Message{Env: env, Raw: raw, Tail: tail, Verdict: "not-scanned"}
	for _, a := range env.Recipients {
		m.Local = append(m.Local, &Recipient{Account: a})
	}
	if len(env.Remote) > 0 {
		origin := store.OriginSubmission
		if env.Source != Submission {
			origin = store.OriginBounce // only SRS bounces reach remote addresses from port 25
		}
		m.Remote = append(m.Remote, &RemoteCopy{From: env.From, ReturnPath: env.From, To: env.Remote, Origin: origin})
	}
	return m
}

// AllRecipients returns every envelope recipient of the message: the
// local accounts (and, with outbound delivery, the remote addresses).
func (m *Message) AllRecipients() []string {
	return append(append([]string(nil), m.Env.Recipients...), m.Env.Remote...)
}

// AfterCommit registers fn to run once the message is durably stored
// (warning mails and the like). It does not run if delivery fails.
func (m *Message) AfterCommit(fn func(ctx context.Context)) { m.after = append(m.after, fn) }

// PrependHeader adds a header field (without CRLF) at the top of what
// every recipient and remote copy gets.
func (m *Message) PrependHeader(field string) {
	h := []byte(field + "\r\n")
	for _, r := range m.Local {
		r.Header = Prepend(h, r.Header)
	}
	for _, r := range m.Remote {
		r.Header = Prepend(h, r.Header)
	}
}

// Prepend returns a new slice: field, then header.
func Prepend(field, header []byte) []byte {
	return append(append(make([]byte, 0, len(field)+len(header)), field...), header...)
}

// Size is the size of the message as received (Raw and Tail).
func (m *Message) Size() int64 {
	n := int64(len(m.Raw))
	if m.Tail != nil {
		n += m.Tail.Size()
	}
	return n
}

// Reader reads the whole message as received: Raw, then Tail. Each call
// returns a new reader from the start.
func (m *Message) Reader() *io.SectionReader {
	return io.NewSectionReader(joined{m.Raw, m.Tail}, 0, m.Size())
}

// ReadAll returns the whole message as received in memory: Raw itself, or
// for a spooled message a new copy (for the scanner, within its size
// limit, and for tests).
func (m *Message) ReadAll() ([]byte, error) {
	if m.Tail == nil {
		return m.Raw, nil
	}
	b := make([]byte, m.Size())
	if _, err := io.ReadFull(m.Reader(), b); err != nil {
		return nil, err
	}
	return b, nil
}

// joined reads head, then tail (which may be nil), as one io.ReaderAt.
type joined struct {
	head []byte
	tail *io.SectionReader
}

func (j joined) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	if off < int64(len(j.head)) {
		n = copy(p, j.head[off:])
		if n == len(p) {
			return n, nil
		}
	}
	if j.tail == nil {
		return n, io.EOF
	}
	k, err := j.tail.ReadAt(p[n:], max(off-int64(len(j.head)), 0))
	return n + k, err
}

// bodyOf is the body r gets under its Header: its own Body, or the
// message as received.
func (m *Message) bodyOf(r *Recipient) ([]byte, *io.SectionReader) {
	if r.Body != nil {
		return r.Body.Raw, nil
	}
	return m.Raw, m.Tail
}

// ContentOf is the whole message r gets: a new copy in memory, for checks
// and tests (the delivery path stores Header and body without joining
// them).
func (m *Message) ContentOf(r *Recipient) []byte {
	raw, tail := m.bodyOf(r)
	if tail != nil {
		all, err := (&Message{Raw: raw, Tail: tail}).ReadAll()
		if err != nil {
			panic(fmt.Sprintf("delivery: reading the spooled message: %v", err))
		}
		raw = all
	}
	return Prepend(r.Header, raw)
}

// HeaderSection is the header section r gets: its Header and the header
// section of its body (for checks that read header fields).
func (m *Message) HeaderSection(r *Recipient) []byte {
	b, _ := m.bodyOf(r)
	return Prepend(r.Header, b[:mailheader.HeaderSize(b)])
}

// outbound is what goes on the outbound queue.
func (m *Message) outbound() []store.Outbound {
	var out []store.Outbound
	for _, r := range m.Remote {
		if len(r.To) == 0 {
			continue
		}
		body, tail := m.Raw, m.Tail
		if r.Body != nil {
			body, tail = r.Body.Raw, nil
		}
		out = append(out, store.Outbound{QueueID: m.Env.QueueID, From: r.From, ReturnPath: r.ReturnPath,
			Recipients: r.To, Origin: r.Origin, Message: Prepend(r.Header, body), Tail: tail})
	}
	return out
}

// batch groups recipients that get the same header over the same body
// into the same mailbox, so each distinct content is stored once. Bodies
// are told apart by identity, headers (a few short fields) by value.
func (m *Message) batch() []store.Delivery {
	type key struct {
		mailbox, header string
		body            *Body
		hold            *store.QuarantineHold
	}
	var out []store.Delivery
	index := map[key]int{}
	for _, r := range m.Local {
		if r.Drop {
			continue
		}
		k := key{r.Mailbox, string(r.Header), r.Body, r.Quarantine}
		if i, ok := index[k]; ok {
			out[i].Recipients = append(out[i].Recipients, r.Account)
			continue
		}
		index[k] = len(out)
		raw, tail := m.bodyOf(r)
		var sum *mailheader.Summary // nil: the store parses the header
		if r.Body == nil && !mailheader.HasSummaryFields(r.Header) {
			sum = m.Summary()
		}
		out = append(out, store.Delivery{Recipients: []string{r.Account}, Mailbox: r.Mailbox, Header: r.Header, Message: raw, Tail: tail, Quarantine: r.Quarantine, Summary: sum})
	}
	return out
}
