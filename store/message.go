package store

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"yubin/internal/mailheader"
)

// Delivery is one message for one or more local accounts.
type Delivery struct {
	Recipients []string  // account addresses, as returned by Resolve
	Mailbox    string    // "" means INBOX
	Flags      []string  // initial flags (IMAP APPEND)
	Date       time.Time // internal date; zero means now
	// Header holds header fields (CRLF-terminated lines) stored on top of
	// Message for these recipients: per-recipient fields over a body that
	// several deliveries share, without copying it. May be nil.
	Header  []byte
	Message []byte // the raw message, CRLF line endings
	// Tail, when not nil, is more of the message, after Message: a big
	// message is kept in a spool file rather than in memory, and then
	// Message is its header section (it must contain the empty line that
	// ends it) and Tail the rest. The stored message is Header, Message,
	// Tail. A backend reads Tail (ReadAt, in pieces, possibly more than
	// once: a write may be retried) only while the call that stores it
	// runs.
	Tail *io.SectionReader
	// Quarantine, if set, holds the message in the recipients'
	// quarantine instead of a mailbox (Mailbox and Flags are ignored).
	Quarantine *QuarantineHold
	// Summary, when not nil, is the envelope of the stored message:
	// mailheader.Parse of its header section (Header and that of
	// Message). A caller that has parsed it already passes it so that the
	// backend need not; nil means the backend parses it. Either way a
	// backend may keep it with the message, so that Summaries of a new
	// message need no parsing.
	Summary *mailheader.Summary
	// Structure, when not nil, is the stored message's MIME structure as
	// the IMAP server encodes it (imapd.EncodeStructure of Header,
	// Message and Tail): a backend that implements Structures keeps it
	// with the message, so that the first FETCH BODYSTRUCTURE of a new
	// message parses nothing. Opaque to the store.
	Structure []byte
}

// Structures is what a backend that keeps Delivery.Structure offers: the
// structure stored with each message of uids (nil for one stored without,
// or gone), in the order of uids. Optional: imapd parses the messages of a
// backend without it.
type Structures interface {
	Structures(ctx context.Context, account, mailbox string, uids []uint32) ([][]byte, error)
}

// Size is the stored size of the message: Header, Message and Tail.
func (d *Delivery) Size() int64 { return int64(len(d.Header)+len(d.Message)) + TailSize(d.Tail) }

// TailSize is the size of a Delivery's or Outbound's Tail (0 for nil).
func TailSize(t *io.SectionReader) int64 {
	if t == nil {
		return 0
	}
	return t.Size()
}

// Delivered tells where one copy of a delivered message went.
type Delivered struct {
	Account     string
	Mailbox     string
	UIDValidity uint32
	UID         uint32
	// Quarantine is the id of the quarantine entry the copy went to
	// (then Mailbox is ""); a copy for a full quarantine went to Mailbox.
	Quarantine string
}

func NormalizeFlags(flags []string) ([]string, error) {
	if len(flags) > MaxFlags {
		return nil, fmt.Errorf("%w: more than %d flags", ErrInvalid, MaxFlags)
	}
	var out []string
	for _, f := range flags {
		if f == "" || len(f) > MaxFlagLen || strings.ContainsAny(f, " ()[]{}%*\"\\\r\n\x00") && !strings.HasPrefix(f, `\`) {
			return nil, fmt.Errorf("%w: bad flag %q", ErrInvalid, f)
		}
		if strings.HasPrefix(f, `\`) {
			// System flags are case-insensitive; store them canonically.
			switch strings.ToLower(f) {
			case `\seen`, `\answered`, `\flagged`, `\deleted`, `\draft`:
				f = `\` + strings.ToUpper(f[1:2]) + strings.ToLower(f[2:])
			default:
				return nil, fmt.Errorf("%w: unknown system flag %q", ErrInvalid, f)
			}
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out, nil
}

// FlagOp says how SetFlags changes flags.
type FlagOp int

const (
	FlagsReplace FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// Apply returns the flags a message has after op changes its flags have
// with flags (both normalized, see NormalizeFlags): what every backend's
// SetFlags stores. The result may share memory with have or flags.
func (op FlagOp) Apply(have, flags []string) []string {
	switch op {
	case FlagsAdd:
		nf, _ := NormalizeFlags(append(slices.Clone(have), flags...))
		return nf
	case FlagsRemove:
		var nf []string
		for _, f := range have {
			if !slices.Contains(flags, f) {
				nf = append(nf, f)
			}
		}
		return nf
	}
	return flags
}

// MaxEnvelopeHeader bounds how much of a header section is read to build
// a message's envelope: a message without a body is all header.
const MaxEnvelopeHeader = 1 << 20

// Normalized is what every backend works out from a Delivery before
// storing it, whatever the store holds (Delivery.Normalize).
type Normalized struct {
	Recipients []string // lower-cased, each once, in order
	Flags      []string // NormalizeFlags'
	Date       time.Time
	Mailbox    string // CanonicalMailbox
	// HeaderSize is the stored message's header section: the header
	// fields on top and the header section of Message.
	HeaderSize int64
	// Envelope is the encoded envelope (mailheader.Encode): Summary if
	// given, else the parse of the header section as a backend reads it
	// back from the stored message (at most MaxEnvelopeHeader bytes).
	Envelope []byte
}

// Normalize checks d (recipients, flags, CheckParts) and works out what
// storing it needs; now is the date of a delivery without one.
func (d Delivery) Normalize(now time.Time) (Normalized, error) {
	if len(d.Recipients) == 0 {
		return Normalized{}, fmt.Errorf("%w: no recipients", ErrInvalid)
	}
	rcpts := make([]string, 0, len(d.Recipients))
	for _, r := range d.Recipients {
		r = strings.ToLower(r)
		if !slices.Contains(rcpts, r) {
			rcpts = append(rcpts, r)
		}
	}
	flags, err := NormalizeFlags(d.Flags)
	if err != nil {
		return Normalized{}, err
	}
	date := d.Date
	if date.IsZero() {
		date = now
	}
	if err := d.CheckParts(); err != nil {
		return Normalized{}, err
	}
	return Normalized{
		Recipients: rcpts,
		Flags:      flags,
		Date:       date,
		Mailbox:    CanonicalMailbox(d.Mailbox),
		HeaderSize: int64(len(d.Header) + mailheader.HeaderSize(d.Message)),
		Envelope:   d.envelope(),
	}, nil
}

// envelope encodes the envelope of d's message: Summary if given, else
// Envelope of its header section.
func (d Delivery) envelope() []byte {
	if d.Summary != nil {
		return mailheader.Encode(d.Summary)
	}
	return Envelope(d.Header, d.Message)
}

// Envelope encodes the envelope (mailheader.Encode) of a message stored as
// the header fields hdr on top of msg: the parse of its header section, as
// a backend reads it back (at most MaxEnvelopeHeader bytes).
func Envelope(hdr, msg []byte) []byte {
	n := mailheader.HeaderSize(msg)
	h := make([]byte, 0, min(len(hdr)+n, MaxEnvelopeHeader))
	h = append(h, hdr[:min(len(hdr), MaxEnvelopeHeader)]...)
	h = append(h, msg[:min(n, MaxEnvelopeHeader-len(h))]...)
	e := mailheader.Parse(h) // h is a copy: Parse overwrites it
	return mailheader.Encode(&e)
}

// CheckParts checks how a delivery's parts fit together, as every
// backend's Deliver does before storing: header fields on top end with
// CRLF, and a delivery with a Tail has its whole header section in Message.
func (d Delivery) CheckParts() error {
	if len(d.Header) > 0 && !bytes.HasSuffix(d.Header, []byte("\r\n")) {
		return fmt.Errorf("%w: delivery header does not end with CRLF", ErrInvalid)
	}
	if d.Tail != nil && !bytes.Contains(d.Message, []byte("\r\n\r\n")) {
		return fmt.Errorf("%w: delivery with a tail whose header section does not end in Message", ErrInvalid)
	}
	return nil
}
