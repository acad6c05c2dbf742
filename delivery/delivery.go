// Package delivery is the one path every accepted message takes, whichever
// listener it came in on: SMTP on port 25 (MX) and submission on 587/465.
//
// Today it stores the message for local accounts in one durable store
// transaction and logs one line per message. Later issues add the virus
// scan, forwarding and the outbound queue here, behind the same
// Deliver call, so the listeners never change.
package delivery

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"time"

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
	RemoteAddr net.Addr // client address
	Helo       string   // HELO/EHLO name the client gave
	TLS        bool     // the session was encrypted
	AuthUser   string   // authenticated account ("" on MX)
}

// Result is what happened to an accepted message.
type Result struct {
	QueueID   string
	Delivered []store.Delivered // one per distinct recipient account
}

// Deliverer delivers messages. It is safe for concurrent use.
type Deliverer struct {
	store *store.Store
	log   *slog.Logger
	now   func() time.Time
}

// New returns a Deliverer that stores into st and logs to log (nil: discard).
func New(st *store.Store, log *slog.Logger) *Deliverer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Deliverer{store: st, log: log, now: time.Now}
}

// Outcome words used in the log line.
const (
	OutcomeDelivered = "delivered"
	OutcomeQuota     = "refused-quota"
	OutcomeFailed    = "failed"
)

// Deliver takes msg (CRLF line endings, trace headers already added) for
// env's recipients. It returns only once the result is durable: a nil error
// means every recipient has the message on disk; a non-nil error means none
// does. A *store.QuotaError (errors.As) says a recipient's quota does not
// allow the message; any other error is temporary.
func (d *Deliverer) Deliver(ctx context.Context, env Envelope, msg []byte) (Result, error) {
	if env.QueueID == "" {
		env.QueueID = NewQueueID()
	}
	start := d.now()
	res := Result{QueueID: env.QueueID}
	var err error
	if len(env.Recipients) == 0 {
		err = errors.New("delivery: no recipients")
	} else {
		res.Delivered, err = d.store.Deliver(ctx, store.Delivery{Recipients: env.Recipients, Message: msg})
	}
	outcome := OutcomeDelivered
	level := slog.LevelInfo
	var qe *store.QuotaError
	switch {
	case errors.As(err, &qe):
		outcome = OutcomeQuota
	case err != nil:
		outcome = OutcomeFailed
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String("queue_id", env.QueueID),
		slog.String("source", env.Source.String()),
		slog.String("from", env.From),
		slog.Any("rcpts", env.Recipients),
		slog.Int("size", len(msg)),
		slog.String("verdict", "not-scanned"), // the scanner arrives in a later issue
		slog.String("outcome", outcome),
		slog.Duration("took", d.now().Sub(start)),
	}
	if env.RemoteAddr != nil {
		attrs = append(attrs, slog.String("remote", env.RemoteAddr.String()))
	}
	if env.Helo != "" {
		attrs = append(attrs, slog.String("helo", env.Helo))
	}
	if env.AuthUser != "" {
		attrs = append(attrs, slog.String("user", env.AuthUser))
	}
	attrs = append(attrs, slog.Bool("tls", env.TLS))
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	d.log.LogAttrs(ctx, level, "delivery", attrs...)
	if err != nil {
		return res, err
	}
	return res, nil
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
