// Package delivery is the one path every accepted message takes, whichever
// listener it came in on: SMTP on port 25 (MX) and submission on 587/465.
//
// A message runs through a list of stages (each a Stage, in its own file:
// authentication checks, scanning, forwarding, ...), which may refuse it,
// rewrite it, or change what each recipient gets; then everything that
// remains is stored in one durable store transaction, and one log line is
// written per message. The listeners only ever call Deliver.
package delivery

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"time"

	"yubin/internal/dnsbl"
	"yubin/store"
)

// Source says which kind of listener a message came in on.
type Source int

const (
	// MX is mail from the Internet (port 25): no authentication.
	MX Source = iota
	// Submission is mail from an authenticated user (port 587 or 465).
	Submission
)

func (s Source) String() string {
	switch s {
	case MX:
		return "mx"
	case Submission:
		return "submission"
	}
	return "unknown"
}

// Envelope is everything about a message except its content.
type Envelope struct {
	QueueID    string   // from NewQueueID; Deliver makes one if empty
	Source     Source   // listener kind
	From       string   // envelope sender; "" is the null sender <>
	Recipients []string // account addresses, as returned by store.Resolve
	// Remote are remote addresses for the outbound queue: recipients of a
	// submission on other domains, or the original senders of bounces to
	// SRS addresses (port 25).
	Remote     []string
	RemoteAddr net.Addr // client address
	Helo       string   // HELO/EHLO name the client gave
	TLS        bool     // the session was encrypted
	AuthUser   string   // authenticated account ("" on MX)
	// DNSBL are the client's listings on the spam.dnsbl zones (port 25
	// only; empty on submission, when the client is listed nowhere, and
	// when the lists did not answer in time): spam signals for the spam
	// stage to score. A listing on a zone marked reject never gets here
	// (the client was refused at RCPT).
	DNSBL []dnsbl.Hit
}

// Result is what happened to an accepted message.
type Result struct {
	QueueID   string
	Delivered []store.Delivered // one per distinct recipient account
	Queued    []string          // outbound queue entries (one per remote domain)
}

// Deliverer delivers messages. It is safe for concurrent use.
type Deliverer struct {
	store   store.Inbound
	log     *slog.Logger
	now     func() time.Time
	stages  []Stage
	metrics Metrics
	// structure, if set, encodes a stored message's MIME structure
	// (SetStructure).
	structure func(r io.Reader) ([]byte, error)
}

// SetStructure makes every delivery carry the stored message's MIME
// structure as fn encodes it (imapd.EncodeStructure), for the store to
// keep (store.Delivery.Structure); call it before the first delivery.
func (d *Deliverer) SetStructure(fn func(r io.Reader) ([]byte, error)) {
	d.structure = fn
}

// addStructures sets the Structure of each delivery, when SetStructure
// was called: of the bytes stored, the header on top included. One that
// cannot be read is left without (IMAP then parses the message).
func (d *Deliverer) addStructures(batch []store.Delivery) {
	if d.structure == nil {
		return
	}
	for i := range batch {
		b := &batch[i]
		rs := []io.Reader{bytes.NewReader(b.Header), bytes.NewReader(b.Message)}
		if b.Tail != nil {
			rs = append(rs, io.NewSectionReader(b.Tail, 0, b.Tail.Size()))
		}
		if enc, err := d.structure(io.MultiReader(rs...)); err == nil {
			b.Structure = enc
		}
	}
}

// Metrics is what the delivery path counts (internal/metrics).
type Metrics interface {
	// Deliveries counts n recipients that got verdict: one of the
	// Verdict* words.
	Deliveries(verdict string, n int)
	// ScanDuration records one message's scan (ScanStage).
	ScanDuration(time.Duration)
	// CommitDuration records one message's store commit.
	CommitDuration(time.Duration)
}

// What a recipient of a message got, for Metrics.
const (
	VerdictClean       = "clean"       // the message as it came (INBOX or the mailbox chosen)
	VerdictStripped    = "stripped"    // infected parts removed
	VerdictDiscarded   = "discarded"   // nothing (the scan policy discards; a report says so)
	VerdictJunk        = "junk"        // spam, into Junk
	VerdictQuarantined = "quarantined" // spam, held in the quarantine
	VerdictRejected    = "rejected"    // the message was refused for its content
)

type noMetrics struct{}

func (noMetrics) Deliveries(string, int)       {}
func (noMetrics) ScanDuration(time.Duration)   {}
func (noMetrics) CommitDuration(time.Duration) {}

// SetMetrics makes d count what it delivers; call it before the first
// delivery.
func (d *Deliverer) SetMetrics(m Metrics) {
	if m == nil {
		m = noMetrics{}
	}
	d.metrics = m
}

// New returns a Deliverer that runs stages in order and stores into st,
// logging to log (nil: discard).
func New(st store.Inbound, log *slog.Logger, stages ...Stage) *Deliverer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Deliverer{store: st, log: log, now: time.Now, stages: stages, metrics: noMetrics{}}
}

// Stages returns the stages d runs, in order.
func (d *Deliverer) Stages() []Stage { return d.stages }

// Outcome words used in the log line.
const (
	OutcomeDelivered = "delivered"
	OutcomeQuota     = "refused-quota"
	OutcomeFailed    = "failed"
	OutcomeRefused   = "refused"
)

// Deliver takes msg (CRLF line endings, trace headers already added) for
// env's recipients. It returns only once the result is durable: a nil error
// means every recipient's outcome is on disk; a non-nil error means nothing
// was stored. A *Reject (errors.As) is a refusal with its SMTP reply; a
// *store.QuotaError says a recipient's quota does not allow the message; any
// other error is temporary.
func (d *Deliverer) Deliver(ctx context.Context, env Envelope, msg []byte) (Result, error) {
	return d.DeliverSpooled(ctx, env, msg, nil)
}

// DeliverSpooled is Deliver for a message that may be too big to hold in
// memory: head is its header section (through the empty line) and tail
// the rest, read from a spool file by the stages that need the whole
// message and by the store, which copies it in chunks. tail must stay
// readable until DeliverSpooled returns. With a nil tail, head is the
// whole message, as for Deliver.
func (d *Deliverer) DeliverSpooled(ctx context.Context, env Envelope, head []byte, tail *io.SectionReader) (Result, error) {
	if env.QueueID == "" {
		env.QueueID = NewQueueID()
	}
	start := d.now()
	m := newMessage(env, head, tail)
	res := Result{QueueID: env.QueueID}
	err := d.deliver(ctx, m, &res)
	d.logLine(ctx, m, start, err)
	d.count(m, err)
	if err != nil {
		return res, err
	}
	for _, fn := range m.after {
		fn(ctx)
	}
	return res, nil
}

func (d *Deliverer) deliver(ctx context.Context, m *Message, res *Result) error {
	if len(m.Local) == 0 && len(m.Remote) == 0 {
		return errors.New("delivery: no recipients")
	}
	for _, st := range d.stages {
		if err := st.Process(ctx, m); err != nil {
			m.failedStage = st.Name()
			var rj *Reject
			if errors.As(err, &rj) && len(m.Stops) > 0 {
				// Refused for what scanning found: the stop still counts
				// (warnings, the daily report). Recording it is part of
				// the refusal, so a failure makes the refusal temporary.
				if serr := d.recordStops(ctx, m); serr != nil {
					return serr
				}
			}
			return err
		}
	}
	batch, out := m.batch(), m.outbound()
	d.addStructures(batch)
	if len(batch) > 0 || len(out) > 0 {
		var err error
		t0 := time.Now()
		res.Delivered, res.Queued, err = d.store.DeliverAndQueue(ctx, batch, out)
		if err != nil {
			return err
		}
		d.metrics.CommitDuration(time.Since(t0))
	}
	if err := d.recordStops(ctx, m); err != nil {
		// The mail itself is safe; a missing report line is not worth a retry.
		d.log.Error("recording a stopped message", "queue_id", m.Env.QueueID, "err", err)
	}
	return nil
}

// count counts the recipients of a message by what they got: each local
// account by its fate (dropped, held, Junk, stripped, or as it came: the
// first that applies), and
// each remote recipient of the envelope (submission, SRS bounces) as
// clean, since only a clean message leaves; every recipient of a message
// refused for its content (a 5xx Reject) as rejected. A message that
// failed otherwise (quota, a temporary refusal or error) got nothing and
// is not counted.
func (d *Deliverer) count(m *Message, err error) {
	var rj *Reject
	if err != nil {
		if errors.As(err, &rj) && rj.Code >= 500 { // not a 451 (clamd or DNS down)
			d.metrics.Deliveries(VerdictRejected, len(m.Env.Recipients)+len(m.Env.Remote))
		}
		return
	}
	var n [5]int // clean, stripped, discarded, junk, quarantined
	for _, r := range m.Local {
		switch {
		case r.Drop:
			n[2]++
		case r.Quarantine != nil:
			n[4]++
		case r.Mailbox == "Junk": // spam, or a DMARC quarantine policy
			n[3]++
		case r.Stripped:
			n[1]++
		default:
			n[0]++
		}
	}
	n[0] += len(m.Env.Remote)
	for i, v := range [5]string{VerdictClean, VerdictStripped, VerdictDiscarded, VerdictJunk, VerdictQuarantined} {
		if n[i] > 0 {
			d.metrics.Deliveries(v, n[i])
		}
	}
}

// recordStops stores what the stages stopped (m.Stops): the one place stop
// records are written, for delivered and refused messages alike.
func (d *Deliverer) recordStops(ctx context.Context, m *Message) error {
	for _, s := range m.Stops {
		if err := d.store.RecordStop(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

func (d *Deliverer) logLine(ctx context.Context, m *Message, start time.Time, err error) {
	outcome := OutcomeDelivered
	level := slog.LevelInfo
	var qe *store.QuotaError
	var rj *Reject
	switch {
	case errors.As(err, &qe):
		outcome = OutcomeQuota
	case errors.As(err, &rj):
		outcome = OutcomeRefused
	case err != nil:
		outcome = OutcomeFailed
		level = slog.LevelError
	}
	env := m.Env
	attrs := []slog.Attr{
		slog.String("queue_id", env.QueueID),
		slog.String("source", env.Source.String()),
		slog.String("from", env.From),
		slog.Any("rcpts", env.Recipients),
	}
	if len(env.Remote) > 0 {
		attrs = append(attrs, slog.Any("remote_rcpts", env.Remote))
	}
	for _, r := range m.Remote {
		if r.Origin == store.OriginForward {
			attrs = append(attrs, slog.Any("forwarded", r.To))
		}
	}
	attrs = append(attrs,
		slog.Int64("size", m.Size()),
		slog.String("verdict", m.Verdict),
		slog.String("outcome", outcome),
		slog.Duration("took", d.now().Sub(start)),
	)
	if env.RemoteAddr != nil {
		attrs = append(attrs, slog.String("remote", env.RemoteAddr.String()))
	}
	if env.Helo != "" {
		attrs = append(attrs, slog.String("helo", env.Helo))
	}
	if env.AuthUser != "" {
		attrs = append(attrs, slog.String("user", env.AuthUser))
	}
	if len(env.DNSBL) > 0 {
		attrs = append(attrs, slog.Any("dnsbl", env.DNSBL))
	}
	attrs = append(attrs, slog.Bool("tls", env.TLS))
	if m.failedStage != "" {
		attrs = append(attrs, slog.String("stage", m.failedStage))
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	d.log.LogAttrs(ctx, level, "delivery", attrs...)
}

var queueIDEncoding = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

// NewQueueID returns a new queue id: 16 characters of Crockford base32,
// 48 bits of milliseconds since the epoch (so ids sort by time) and 32
// random bits.
func NewQueueID() string {
	var b [10]byte
	ms := uint64(time.Now().UnixMilli())
	binary.BigEndian.PutUint16(b[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:6], uint32(ms))
	rand.Read(b[6:])
	return queueIDEncoding.EncodeToString(b[:])
}
