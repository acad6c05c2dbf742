package store

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	bolt "go.etcd.io/bbolt"
)

// Envelope is what a mail client lists about a message without reading
// it: the date, subject and address fields of its header (RFC 5322), as
// IMAP's ENVELOPE reports them.
type Envelope struct {
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

// Address is one mailbox of an address field.
type Address struct {
	Name    string // display name, decoded (RFC 2047)
	Mailbox string // local part
	Host    string // domain
}

// Envelope cache.
//
// Parsing a header for every message of a big FETCH ENVELOPE costs far more
// than the rest of the command, so the parsed envelope is kept, like
// Dovecot's cache, in its own bucket keyed by the blob id of the raw
// message. Blobs never change and their ids are never reused, so an entry
// never goes stale; a copy of a message (COPY, MOVE, several recipients)
// shares the entry. Entries are made on first request and written in the
// background, one group commit per call; dropEnvelope removes the entry
// of a blob that is deleted.
//
//	envelopes  blob id -> encodeEnvelope
var bEnvelopes = []byte("envelopes")

// envelopeVersion is the first byte of a cached envelope. Bump it when the
// encoding or the parsing changes: older entries are then parsed again
// (and rewritten) when next asked for.
const envelopeVersion = 1

// maxEnvelopeHeader bounds how much of a header section is read to build
// an envelope: a message without a body is all header.
const maxEnvelopeHeader = 1 << 20

// envelopeWrites counts the background cache writes in flight (tests wait
// for them).
var envelopeWrites sync.WaitGroup

// Envelopes returns the envelopes of the given messages of a mailbox, in
// the order asked, from one snapshot. A UID that does not exist gets a
// zero Envelope. Envelopes not cached yet are parsed from the message and
// cached in the background.
func (s *Store) Envelopes(ctx context.Context, account, mailbox string, uids []uint32) ([]Envelope, error) {
	out := make([]Envelope, len(uids))
	var misses []envelopeMiss
	err := s.db.View(func(tx *bolt.Tx) error {
		b, _, err := mailboxBucket(tx, account, mailbox)
		if err != nil {
			return err
		}
		var cache *seqCursor
		if cb := tx.Bucket(bEnvelopes); cb != nil { // none until the first entry is written
			cache = &seqCursor{c: cb.Cursor()}
		}
		recs := seqCursor{c: b.Bucket(bMsgs).Cursor()}
		var uk [4]byte
		var bk [8]byte
		for i, uid := range uids {
			binary.BigEndian.PutUint32(uk[:], uid)
			v := recs.get(uk[:])
			if v == nil {
				continue
			}
			m, err := decodeRecord(uid, v)
			if err != nil {
				return fmt.Errorf("%s/%s uid %d: %w", account, mailbox, uid, err)
			}
			if cache != nil {
				binary.BigEndian.PutUint64(bk[:], m.blob)
				if e, ok := decodeEnvelope(cache.get(bk[:])); ok {
					out[i] = e
					continue
				}
			}
			misses = append(misses, envelopeMiss{i: i, blob: m.blob, size: min(m.HeaderSize, maxEnvelopeHeader)})
		}
		return nil
	})
	if err != nil || len(misses) == 0 {
		return out, err
	}
	entries := make([]envelopeEntry, 0, len(misses))
	for len(misses) > 0 {
		// Headers are read a few MiB at a time, however many are missing.
		n, total := 0, int64(0)
		for n < len(misses) && (n == 0 || total+misses[n].size <= envelopeReadBudget) {
			total += misses[n].size
			n++
		}
		batch := misses[:n]
		misses = misses[n:]
		s.db.View(func(tx *bolt.Tx) error {
			blobs := tx.Bucket(bBlobs)
			for j := range batch {
				batch[j].hdr = readHeaderBytes(blobs, batch[j].blob, batch[j].size)
			}
			return nil
		})
		// Parse on every CPU: a first FETCH of a big mailbox parses them all.
		enc := make([][]byte, len(batch))
		workers := min(runtime.GOMAXPROCS(0), (len(batch)+63)/64)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for j := w; j < len(batch); j += workers {
					m := &batch[j]
					out[m.i] = parseEnvelope(m.hdr)
					enc[j] = encodeEnvelope(&out[m.i])
					m.hdr = nil
				}
			})
		}
		wg.Wait()
		for j, m := range batch {
			entries = append(entries, envelopeEntry{m.blob, enc[j]})
		}
	}
	envelopeWrites.Add(1)
	go func() {
		defer envelopeWrites.Done()
		s.saveEnvelopes(entries)
	}()
	return out, nil
}

// envelopeMiss is a message whose envelope is not cached.
type envelopeMiss struct {
	i    int // in the caller's list
	blob uint64
	size int64 // of the header to read
	hdr  []byte
}

// envelopeEntry is an envelope to cache.
type envelopeEntry struct {
	blob uint64
	enc  []byte
}

// envelopeReadBudget is how many bytes of headers Envelopes holds at once.
const envelopeReadBudget = 4 << 20

// seqCursor looks keys up in a bucket. Its position carries over from one
// lookup to the next, so keys asked in ascending order (UIDs, and the blob
// ids of the messages they name) are found by stepping forward a little
// rather than by searching the bucket each time.
type seqCursor struct {
	c    *bolt.Cursor
	k, v []byte
}

func (u *seqCursor) get(want []byte) []byte {
	for step := 0; u.k != nil && step < 8 && bytes.Compare(u.k, want) < 0; step++ {
		u.k, u.v = u.c.Next()
	}
	if u.k == nil || !bytes.Equal(u.k, want) {
		u.k, u.v = u.c.Seek(want)
	}
	if u.k != nil && bytes.Equal(u.k, want) {
		return u.v
	}
	return nil
}

// readHeaderBytes copies up to size bytes (at most maxEnvelopeHeader) of
// the start of a blob.
func readHeaderBytes(blobs *bolt.Bucket, id uint64, size int64) []byte {
	size = min(size, maxEnvelopeHeader)
	out := make([]byte, 0, size)
	for chunk := uint32(0); int64(len(out)) < size; chunk++ {
		v := blobs.Get(chunkKey(id, chunk))
		if len(v) == 0 {
			break
		}
		out = append(out, v[:min(int64(len(v)), size-int64(len(out)))]...)
	}
	return out
}

// saveEnvelopes caches parsed envelopes, in one group commit, skipping
// blobs deleted meanwhile. A failure only means they are parsed again
// next time.
func (s *Store) saveEnvelopes(entries []envelopeEntry) {
	if s.closed.Load() {
		return
	}
	slices.SortFunc(entries, func(a, b envelopeEntry) int { return cmp.Compare(a.blob, b.blob) })
	s.groupWrite(context.Background(), func(tx *bolt.Tx) error {
		refs := tx.Bucket(bBlobRefs)
		var b *bolt.Bucket
		for _, e := range entries {
			id, v := e.blob, e.enc
			if refs.Get(u64key(id)) == nil {
				continue // expunged since it was read
			}
			if b == nil {
				var err error
				if b, err = tx.CreateBucketIfNotExists(bEnvelopes); err != nil {
					return err
				}
			}
			if err := b.Put(u64key(id), v); err != nil {
				return err
			}
		}
		return nil
	}, nil)
}

// dropEnvelope forgets the cached envelope of a blob that is deleted;
// for unrefBlob.
func dropEnvelope(tx *bolt.Tx, id uint64) error {
	if b := tx.Bucket(bEnvelopes); b != nil {
		return b.Delete(u64key(id))
	}
	return nil
}

// envelopeFields drops, in place, the header fields an envelope is not
// made of (Received, DKIM-Signature, ...), which are most of a header, so
// that parsing allocates for the few that count. A line that is not a
// well-formed field is kept: the parser stops there as it would have.
func envelopeFields(hdr []byte) []byte {
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
			if key := bytes.Trim(line[:c], " \t"); validFieldName(key) && !envelopeField(key) {
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

func envelopeField(k []byte) bool {
	for _, f := range [...]string{"Date", "Subject", "From", "Sender", "Reply-To", "To", "Cc", "Bcc", "In-Reply-To", "Message-Id"} {
		if len(k) == len(f) && strings.EqualFold(string(k), f) {
			return true
		}
	}
	return false
}

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

// rfc5322Date is the date-time of RFC 5322 3.3 in its usual form. A value
// it parses is parsed the same by net/mail.ParseDate.
const rfc5322Date = "Mon, 02 Jan 2006 15:04:05 -0700"

// verifyEnvelopes reports cached envelopes of blobs that no longer exist
// (unrefBlob drops them) and entries that do not decode. For Verify.
func verifyEnvelopes(tx *bolt.Tx, report func(format string, args ...any)) {
	b := tx.Bucket(bEnvelopes)
	if b == nil {
		return
	}
	refs := tx.Bucket(bBlobRefs)
	b.ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			report("envelope cache: bad key %x", k)
			return nil
		}
		id := binary.BigEndian.Uint64(k)
		if refs.Get(k) == nil {
			report("envelope cache: entry for deleted blob %d", id)
		}
		if _, ok := decodeEnvelope(v); !ok && len(v) > 0 && v[0] == envelopeVersion {
			report("envelope cache: entry for blob %d does not decode", id)
		}
		return nil
	})
}

// parseEnvelope builds an envelope from a header section, the way
// go-imap's imapserver.ExtractEnvelope does. It overwrites hdr.
func parseEnvelope(hdr []byte) Envelope {
	return envelopeOf(envelopeFields(hdr))
}

func envelopeOf(hdr []byte) Envelope {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(bytes.NewReader(hdr))
	h, _ := textproto.ReadHeader(br)
	br.Reset(nil)
	readerPool.Put(br)
	mh := mail.Header{}
	mh.Header.Header = h
	var e Envelope
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

// parseAddresses returns the addresses of a field; members of a group
// (RFC 5322 3.4) are listed as plain addresses, an address without a
// domain is left out.
func parseAddresses(mh mail.Header, key string) []Address {
	addrs, _ := mh.AddressList(key)
	var out []Address
	for _, a := range addrs {
		mailbox, host, ok := strings.Cut(a.Address, "@")
		if !ok {
			continue
		}
		out = append(out, Address{Name: a.Name, Mailbox: mailbox, Host: host})
	}
	return out
}

// encodeEnvelope is the cached form of an envelope: version byte, flag
// byte (1: has a date), then if dated varints for unix seconds and zone
// offset in seconds; the subject; the total number of addresses; six
// address lists (uvarint count, then name, mailbox, host each); the
// In-Reply-To ids (uvarint count, then each); the Message-ID. Strings are
// uvarint length and bytes.
func encodeEnvelope(e *Envelope) []byte {
	b := make([]byte, 0, 128)
	b = append(b, envelopeVersion)
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

func (e *Envelope) addressLists() [6]*[]Address {
	return [6]*[]Address{&e.From, &e.Sender, &e.ReplyTo, &e.To, &e.Cc, &e.Bcc}
}

var errCorruptEnvelope = errors.New("corrupt cached envelope")

// decodeEnvelope reads a cached envelope; ok is false if there is none,
// or one of another version, or it is corrupt. All its strings share one
// allocation, all its addresses another.
func decodeEnvelope(v []byte) (Envelope, bool) {
	var e Envelope
	if len(v) < 2 || v[0] != envelopeVersion {
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
		total, err := uvarint(uint64(len(v)) / 3) // an address takes 3 bytes at least
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
		return Envelope{}, false
	}
	return e, true
}

// zones holds one *time.Location per zone offset seen, so that decoding
// a date does not make a new one each time.
var zones sync.Map // int -> *time.Location

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
