package delivery

import (
	"bytes"
	"context"
	"fmt"

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
type Message struct {
	Env Envelope
	// Raw is the message as received, with trace headers. Stages that
	// change it for everyone replace it; per-recipient changes go into
	// Recipient.Content.
	Raw []byte
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

	after       []func(context.Context)
	failedStage string
}

// Recipient is what one local account gets.
type Recipient struct {
	Account string // account address
	Mailbox string // "" = INBOX
	// Content replaces Message.Raw for this recipient when not nil.
	Content []byte
	// Drop delivers nothing to this account; Why says why (for the log).
	Drop bool
	Why  string
}

// RemoteCopy is a copy of the message for remote recipients.
type RemoteCopy struct {
	From       string   // envelope sender to use ("" = the null sender)
	ReturnPath string   // where a DSN goes if delivery fails; "" = nowhere
	To         []string // remote addresses
	Content    []byte   // nil: Message.Raw as it is when the message is committed
	Origin     string   // store.OriginSubmission, store.OriginForward, ...
}

func newMessage(env Envelope, raw []byte) *Message {
	m := &Message{Env: env, Raw: raw, Verdict: "not-scanned"}
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

// PrependHeader adds a header field (without CRLF) at the top of the
// message for every recipient, including per-recipient contents.
func (m *Message) PrependHeader(field string) {
	h := []byte(field + "\r\n")
	m.Raw = append(h, m.Raw...)
	for _, r := range m.Local {
		if r.Content != nil {
			r.Content = append(append([]byte(nil), h...), r.Content...)
		}
	}
	for _, r := range m.Remote {
		if r.Content != nil {
			r.Content = append(append([]byte(nil), h...), r.Content...)
		}
	}
}

// outbound is what goes on the outbound queue.
func (m *Message) outbound() []store.Outbound {
	var out []store.Outbound
	for _, r := range m.Remote {
		if len(r.To) == 0 {
			continue
		}
		c := r.Content
		if c == nil {
			c = m.Raw
		}
		out = append(out, store.Outbound{QueueID: m.Env.QueueID, From: r.From, ReturnPath: r.ReturnPath,
			Recipients: r.To, Origin: r.Origin, Message: c})
	}
	return out
}

// ContentFor is what r receives.
func (m *Message) ContentFor(r *Recipient) []byte {
	if r.Content != nil {
		return r.Content
	}
	return m.Raw
}

// batch groups recipients that get the same bytes into the same mailbox,
// so each distinct content is stored once.
func (m *Message) batch() []store.Delivery {
	var out []store.Delivery
next:
	for _, r := range m.Local {
		if r.Drop {
			continue
		}
		c := m.ContentFor(r)
		for i := range out {
			if out[i].Mailbox == r.Mailbox && bytes.Equal(out[i].Message, c) {
				out[i].Recipients = append(out[i].Recipients, r.Account)
				continue next
			}
		}
		out = append(out, store.Delivery{Recipients: []string{r.Account}, Mailbox: r.Mailbox, Message: c})
	}
	return out
}
