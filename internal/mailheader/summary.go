// Package mailheader reads what a mail client lists about a message without
// opening it — date, subject, addresses, message ids: IMAP's ENVELOPE — from
// a header section, and encodes it compactly so a store can cache it.
package mailheader

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// Summary is what a mail client lists about a message without reading
// it: the date, subject and address fields of its header (RFC 5322), as
// IMAP's ENVELOPE reports them.
type Summary struct {
	Date      time.Time // the Date field; zero if missing or unparseable
	Subject   string    // decoded (RFC 2047)
	From      []Address
	Sender    []Address
	ReplyTo   []Address
	To        []Address
	Cc        []Address
	Bcc       []Address
	InReplyTo []string // message ids, without angle brackets
	MessageID string   // without angle brackets
}

// Address is one mailbox of an address field, or a group marker (see
// IsGroupStart).
type Address struct {
	Name    string // display name, decoded (RFC 2047)
	Route   string // obsolete source route ("@relay1,@relay2"), rarely set
	Mailbox string // local part; a group's name in its start marker
	Host    string // domain; empty only in group markers
}

// HeaderSize returns the length of the header section including the empty
// line that ends it (the whole message if there is no body). Lines may end
// in CRLF or, as some clients APPEND them, in a bare LF.
func HeaderSize(msg []byte) int {
	for i := 0; i < len(msg); {
		switch {
		case msg[i] == '\n':
			return i + 1
		case msg[i] == '\r' && i+1 < len(msg) && msg[i+1] == '\n':
			return i + 2
		}
		j := bytes.IndexByte(msg[i:], '\n')
		if j < 0 {
			break
		}
		i += j + 1
	}
	return len(msg)
}

// Version is the first byte of an encoded Summary. Bump it when the
// encoding or the parsing changes: older entries are then parsed again
// (and rewritten) when next asked for.
const Version = 2

// filterFields drops, in place, the header fields an envelope is not
// made of (Received, DKIM-Signature, ...), which are most of a header, so
// that parsing allocates for the few that count. A line that is not a
// well-formed field is kept: the parser stops there as it would have.
func filterFields(hdr []byte) []byte {
	if len(hdr) == 0 || hdr[0] == ' ' || hdr[0] == '\t' {
		return hdr // malformed from the start
	}
	out := hdr[:0]
	drop := false
	for r := 0; r < len(hdr); {
		end := len(hdr)
		if i := bytes.IndexByte(hdr[r:], '\n'); i >= 0 {
			end = r + i + 1
		}
		line := hdr[r:end]
		r = end
		if line[0] == ' ' || line[0] == '\t' { // continuation
			if !drop {
				out = append(out, line...)
			}
			continue
		}
		drop = false
		if c := bytes.IndexByte(line, ':'); c >= 0 {
			if key := bytes.Trim(line[:c], " \t"); validFieldName(key) && !summaryField(key) {
				drop = true
				continue
			}
		}
		out = append(out, line...)
	}
	return out
}

func validFieldName(k []byte) bool {
	for _, c := range k {
		if c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

func summaryField(k []byte) bool {
	for _, f := range [...]string{"Date", "Subject", "From", "Sender", "Reply-To", "To", "Cc", "Bcc", "In-Reply-To", "Message-Id"} {
		if len(k) == len(f) && strings.EqualFold(string(k), f) {
			return true
		}
	}
	return false
}

// HasSummaryFields reports whether header fields (CRLF- or LF-terminated
// lines) include one a Summary is made of: whether putting them on top of
// a header section can change its Summary.
func HasSummaryFields(hdr []byte) bool {
	for len(hdr) > 0 {
		line := hdr
		if i := bytes.IndexByte(hdr, '\n'); i >= 0 {
			line, hdr = hdr[:i], hdr[i+1:]
		} else {
			hdr = nil
		}
		if len(line) == 0 || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		if i := bytes.IndexByte(line, ':'); i >= 0 && summaryField(bytes.TrimRight(line[:i], " \t")) {
			return true
		}
	}
	return false
}

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

// rfc5322Date is the date-time of RFC 5322 3.3 in its usual form. A value
// it parses is parsed the same by net/mail.ParseDate.
const rfc5322Date = "Mon, 02 Jan 2006 15:04:05 -0700"

// Parse builds an envelope from a header section, the way
// go-imap's imapserver.ExtractEnvelope does. It overwrites hdr.
func Parse(hdr []byte) Summary {
	return parseAll(filterFields(hdr))
}

func parseAll(hdr []byte) Summary {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(bytes.NewReader(hdr))
	h, _ := textproto.ReadHeader(br)
	br.Reset(nil)
	readerPool.Put(br)
	mh := mail.Header{}
	mh.Header.Header = h
	var e Summary
	if v := mh.Get("Date"); v != "" {
		// The usual form first: net/mail tries a dozen layouts, and each
		// miss costs an error.
		if d, err := time.Parse(rfc5322Date, v); err == nil {
			e.Date = d
		} else if d, err := mh.Date(); err == nil {
			e.Date = d
		}
	}
	e.Subject, _ = mh.Subject()
	e.From = parseAddresses(mh, "From")
	e.Sender = parseAddresses(mh, "Sender")
	e.ReplyTo = parseAddresses(mh, "Reply-To")
	e.To = parseAddresses(mh, "To")
	e.Cc = parseAddresses(mh, "Cc")
	e.Bcc = parseAddresses(mh, "Bcc")
	e.InReplyTo, _ = mh.MsgIDList("In-Reply-To")
	e.MessageID, _ = mh.MessageID()
	return e
}

// parseAddresses returns the addresses of a field (parseAddressList).
func parseAddresses(mh mail.Header, key string) []Address {
	v := mh.Get(key)
	if v == "" {
		return nil
	}
	return parseAddressList(v)
}

// Encode is the cached form of an envelope: version byte, flag
// byte (1: has a date), then if dated varints for unix seconds and zone
// offset in seconds; the subject; the total number of addresses; six
// address lists (uvarint count, then name, route, mailbox, host each); the
// In-Reply-To ids (uvarint count, then each); the Message-ID. Strings are
// uvarint length and bytes.
func Encode(e *Summary) []byte {
	b := make([]byte, 0, 128)
	b = append(b, Version)
	if e.Date.IsZero() {
		b = append(b, 0)
	} else {
		_, off := e.Date.Zone()
		b = append(b, 1)
		b = binary.AppendVarint(b, e.Date.Unix())
		b = binary.AppendVarint(b, int64(off))
	}
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	str(e.Subject)
	lists := e.addressLists()
	total := 0
	for _, l := range lists {
		total += len(*l)
	}
	b = binary.AppendUvarint(b, uint64(total))
	for _, l := range lists {
		b = binary.AppendUvarint(b, uint64(len(*l)))
		for _, a := range *l {
			str(a.Name)
			str(a.Route)
			str(a.Mailbox)
			str(a.Host)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(e.InReplyTo)))
	for _, id := range e.InReplyTo {
		str(id)
	}
	str(e.MessageID)
	return b
}

func (e *Summary) addressLists() [6]*[]Address {
	return [6]*[]Address{&e.From, &e.Sender, &e.ReplyTo, &e.To, &e.Cc, &e.Bcc}
}

var errCorruptEnvelope = errors.New("corrupt cached envelope")

// Decode reads a cached envelope; ok is false if there is none,
// or one of another version, or it is corrupt. All its strings share one
// allocation, all its addresses another.
func Decode(v []byte) (Summary, bool) {
	var e Summary
	if len(v) < 2 || v[0] != Version {
		return e, false
	}
	err := func() error {
		all := string(v) // one copy out of the transaction for every string
		p := 1
		dated := v[p] == 1
		if v[p] > 1 {
			return errCorruptEnvelope
		}
		p++
		varint := func() (int64, error) {
			x, n := binary.Varint(v[p:])
			if n <= 0 {
				return 0, errCorruptEnvelope
			}
			p += n
			return x, nil
		}
		uvarint := func(limit uint64) (int, error) {
			x, n := binary.Uvarint(v[p:])
			if n <= 0 || x > limit {
				return 0, errCorruptEnvelope
			}
			p += n
			return int(x), nil
		}
		str := func() (string, error) {
			l, err := uvarint(uint64(len(v)))
			if err != nil || l > len(v)-p {
				return "", errCorruptEnvelope
			}
			p += l
			return all[p-l : p], nil
		}
		if dated {
			sec, err := varint()
			if err != nil {
				return err
			}
			off, err := varint()
			if err != nil || off < -1<<31 || off > 1<<31-1 {
				return errCorruptEnvelope
			}
			e.Date = time.Unix(sec, 0).In(fixedZone(int(off)))
		}
		var err error
		if e.Subject, err = str(); err != nil {
			return err
		}
		total, err := uvarint(uint64(len(v)) / 4) // an address takes 4 bytes at least
		if err != nil {
			return err
		}
		var addrs []Address
		if total > 0 {
			addrs = make([]Address, total)
		}
		for _, l := range e.addressLists() {
			n, err := uvarint(uint64(len(addrs)))
			if err != nil {
				return err
			}
			if n == 0 {
				continue
			}
			*l, addrs = addrs[:n:n], addrs[n:]
			for i := range *l {
				a := &(*l)[i]
				if a.Name, err = str(); err != nil {
					return err
				}
				if a.Route, err = str(); err != nil {
					return err
				}
				if a.Mailbox, err = str(); err != nil {
					return err
				}
				if a.Host, err = str(); err != nil {
					return err
				}
			}
		}
		n, err := uvarint(uint64(len(v)))
		if err != nil {
			return err
		}
		if n > 0 {
			e.InReplyTo = make([]string, n)
			for i := range e.InReplyTo {
				if e.InReplyTo[i], err = str(); err != nil {
					return err
				}
			}
		}
		if e.MessageID, err = str(); err != nil {
			return err
		}
		if p != len(v) {
			return errCorruptEnvelope
		}
		return nil
	}()
	if err != nil {
		return Summary{}, false
	}
	return e, true
}

// zones holds one *time.Location per zone offset seen, so that decoding
// a date does not make a new one each time.
var zones sync.Map

func fixedZone(off int) *time.Location {
	if off%60 != 0 || off < -100*3600 || off > 100*3600 {
		return time.FixedZone("", off) // not from a Date field; not kept
	}
	if z, ok := zones.Load(off); ok {
		return z.(*time.Location)
	}
	z, _ := zones.LoadOrStore(off, time.FixedZone("", off))
	return z.(*time.Location)
}
