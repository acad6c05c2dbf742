// Package mailimport moves mail in from elsewhere ("yubin import"): from
// mail files (a Maildir with its Maildir++ folders, an mbox file, a
// directory of mbox files; read with internal/mailfiles) or from the old
// provider's IMAP server (go-imap's client), into an account, through the
// admin API — the running server's control socket, or the store when the
// server is stopped.
//
// Each message goes in under a key that names it in its source and the
// mailbox it goes to: for files a hash of that mailbox and the message's
// text, for IMAP a hash of the server's host name, the user, the source
// mailbox, its UIDVALIDITY and the message's UID. The store keeps the keys of what was
// imported (store.Importer), so an import run again brings in only what
// is missing, and an IMAP import asks for the text of those messages only.
// The account's quota stops an import with those before stored (FullError).
package mailimport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"yubin/admin"
	"yubin/internal/spool"
	"yubin/store"
)

// Mailbox is one mailbox of a source, as it will be imported.
type Mailbox struct {
	// Name is where its messages go in the account ("INBOX",
	// "Work/2024"): the source's name mapped by the source (hierarchy
	// separator, special use), then put below Options.Into.
	Name string `json:"name"`
	// From names it in the source: a path, or the IMAP mailbox.
	From string `json:"from"`
	// Messages is how many messages it holds.
	Messages int `json:"messages"`
	Counts
}

// Counts say what an import did with messages.
type Counts struct {
	Imported int   `json:"imported"`
	Skipped  int   `json:"already_there"` // imported by an earlier run
	TooBig   int   `json:"too_big"`       // over Options.MaxMessage: not imported
	Bytes    int64 `json:"bytes"`         // of those imported
}

func (c *Counts) add(o Counts) {
	c.Imported += o.Imported
	c.Skipped += o.Skipped
	c.TooBig += o.TooBig
	c.Bytes += o.Bytes
}

// Done is how many messages were dealt with, one way or another.
func (c Counts) Done() int { return c.Imported + c.Skipped + c.TooBig }

// Options are an import's.
type Options struct {
	// Address is the account that receives the mail.
	Address string
	// Into, when not "", is a mailbox under which everything goes: the
	// source's INBOX into Into itself, its other mailboxes below it.
	Into string
	// MaxMessage is the largest message imported (bytes); larger ones
	// are counted and named in the result, not imported. At most
	// admin.MaxImportMessage, which 0 means.
	MaxMessage int64
	// Progress, if not nil, is told how the import goes: after each
	// batch, and when a mailbox begins and ends.
	Progress func(Status)
}

// Status is where an import is, for a progress display.
type Status struct {
	Mailboxes []Mailbox // every mailbox, with its counts so far
	Current   int       // the index of the mailbox being imported
	Total     int       // messages in all the mailboxes
	Counts              // of all the mailboxes so far
	// MailboxDone is true when the current mailbox has just ended.
	MailboxDone bool
}

// Result is what an import did.
type Result struct {
	Account   admin.Account `json:"account"` // as it was before the import
	Mailboxes []Mailbox     `json:"mailboxes"`
	Created   []string      `json:"created,omitempty"` // mailboxes made
	Counts                  // of all the mailboxes
	// TooBigFrom names the messages over Options.MaxMessage.
	TooBigFrom []string `json:"too_big_from,omitempty"`
	// Skipped names what a directory of mbox files held besides them.
	SkippedFiles []string `json:"skipped_files,omitempty"`
}

// FullError says that the account's quota stopped an import: the messages
// counted in the Result were imported, Left were not.
type FullError struct {
	Address string
	Full    admin.ImportFull
	Left    int
}

func (e *FullError) Error() string {
	return fmt.Sprintf("the mailbox of %s is full (%s of %s used; the next message needs %s)",
		e.Address, admin.FormatBytes(e.Full.Used), admin.FormatBytes(e.Full.Quota), admin.FormatBytes(e.Full.Need))
}

// Source is where mail comes from.
type Source interface {
	// Mailboxes lists the source's mailboxes, Name mapped as the source
	// maps it (not yet below Options.Into), Messages counted.
	Mailboxes(ctx context.Context) ([]Mailbox, error)
	// Import reads mailbox i of those Mailboxes returned and hands its
	// messages to im.
	Import(ctx context.Context, i int, im *Importer) error
	Close() error
}

// Message is one message handed to the Importer.
type Message struct {
	Key   string
	Flags []string
	Date  time.Time
	Size  int64  // as the source tells, before Raw is read
	Raw   []byte // the message; line ends are made CRLF
	// Where names it in the source, for messages too big to import.
	Where string
}

// batchBytes and batchMessages bound one batch sent to the store: one
// store transaction, one request on the control socket.
const (
	batchBytes    = 8 << 20
	batchMessages = 500
	checkKeys     = 2000 // keys asked about in one request
)

// Importer takes a source's messages and stores them in batches.
type Importer struct {
	api   admin.API
	opts  Options
	res   *Result
	cur   int // the mailbox being imported
	total int

	pending      []admin.ImportMessage // of the current mailbox
	pendingBytes int64
	full         *FullError
}

// Run imports src into the account: the mailboxes first (those missing
// are made), then each mailbox's messages, in batches. On a quota stop
// it returns the result so far and a *FullError.
func Run(ctx context.Context, api admin.API, src Source, opts Options) (*Result, error) {
	if opts.MaxMessage <= 0 || opts.MaxMessage > admin.MaxImportMessage {
		opts.MaxMessage = admin.MaxImportMessage
	}
	boxes, err := src.Mailboxes(ctx)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	var names []string
	for i := range boxes {
		boxes[i].Name = Into(opts.Into, boxes[i].Name)
		names = append(names, boxes[i].Name)
	}
	res.Mailboxes = boxes
	t, err := admin.Do(ctx, api, admin.OpImportStart, admin.ImportStart{Address: opts.Address, Mailboxes: names})
	if err != nil {
		return nil, err
	}
	res.Account, res.Created = t.Account, t.Created
	opts.Address = t.Account.Address
	im := &Importer{api: api, opts: opts, res: res}
	for _, b := range boxes {
		im.total += b.Messages
	}
	for i := range boxes {
		im.cur = i
		im.progress(false)
		if err := src.Import(ctx, i, im); err != nil {
			return res, err
		}
		if err := im.flush(ctx); err != nil {
			return res, err
		}
		if im.full != nil {
			return res, im.stopped()
		}
		im.progress(true)
	}
	return res, nil
}

func (im *Importer) progress(done bool) {
	if im.opts.Progress == nil {
		return
	}
	im.opts.Progress(Status{Mailboxes: im.res.Mailboxes, Current: im.cur, Total: im.total, Counts: im.res.Counts, MailboxDone: done})
}

// stopped is the FullError of a quota stop, with what was left.
func (im *Importer) stopped() error {
	left := 0
	for _, b := range im.res.Mailboxes {
		left += b.Messages - b.Done()
	}
	im.full.Left = left
	return im.full
}

// count adds c to mailbox i and the total.
func (im *Importer) count(i int, c Counts) {
	im.res.Mailboxes[i].add(c)
	im.res.add(c)
}

// Mailbox is the mailbox being imported.
func (im *Importer) Mailbox() Mailbox { return im.res.Mailboxes[im.cur] }

// MaxMessage is the largest message imported.
func (im *Importer) MaxMessage() int64 { return im.opts.MaxMessage }

// Known reports which keys were imported before, asking in requests of
// checkKeys keys.
func (im *Importer) Known(ctx context.Context, keys []string) ([]bool, error) {
	var out []bool
	for len(keys) > 0 {
		n := min(len(keys), checkKeys)
		got, err := admin.Do(ctx, im.api, admin.OpImportCheck, admin.ImportKeys{Address: im.opts.Address, Keys: keys[:n]})
		if err != nil {
			return nil, err
		}
		if len(got) != n {
			return nil, fmt.Errorf("import: %d answers for %d keys", len(got), n)
		}
		out = append(out, got...)
		keys = keys[n:]
	}
	return out, nil
}

// Skip counts n messages of the current mailbox as imported before.
func (im *Importer) Skip(n int) {
	if n > 0 {
		im.count(im.cur, Counts{Skipped: n})
		im.progress(false)
	}
}

// TooBig counts a message of the current mailbox as too big to import.
func (im *Importer) TooBig(where string, size int64) {
	im.count(im.cur, Counts{TooBig: 1})
	im.res.TooBigFrom = append(im.res.TooBigFrom, fmt.Sprintf("%s (%s)", where, admin.FormatBytes(size)))
}

// Full reports whether the quota has stopped the import: the source
// should stop reading.
func (im *Importer) Full() bool { return im.full != nil }

// Add hands over a message of the current mailbox; it is stored with the
// next batch. A message over MaxMessage is counted as too big.
func (im *Importer) Add(ctx context.Context, m Message) error {
	if im.full != nil {
		return nil
	}
	if int64(len(m.Raw)) > im.opts.MaxMessage || m.Size > im.opts.MaxMessage {
		im.TooBig(m.Where, max(m.Size, int64(len(m.Raw))))
		return nil
	}
	raw := CRLF(m.Raw)
	if int64(len(raw)) > im.opts.MaxMessage {
		im.TooBig(m.Where, int64(len(raw)))
		return nil
	}
	if im.pendingBytes+int64(len(raw)) > batchBytes {
		if err := im.flush(ctx); err != nil || im.full != nil {
			return err
		}
	}
	im.pending = append(im.pending, admin.ImportMessage{Key: m.Key, Mailbox: im.res.Mailboxes[im.cur].Name, Flags: m.Flags, Date: m.Date, Message: raw})
	im.pendingBytes += int64(len(raw))
	if len(im.pending) >= batchMessages {
		return im.flush(ctx)
	}
	return nil
}

// flush stores the pending messages in one batch (they are all of the
// current mailbox: Run flushes at the end of each), but for those
// imported before, which it asks about first, so that a second run sends
// nothing again.
func (im *Importer) flush(ctx context.Context) error {
	if len(im.pending) == 0 || im.full != nil {
		return nil
	}
	defer func() { im.pending, im.pendingBytes = im.pending[:0], 0 }()
	keys := make([]string, len(im.pending))
	for i, m := range im.pending {
		keys[i] = m.Key
	}
	known, err := im.Known(ctx, keys)
	if err != nil {
		return err
	}
	batch := im.pending[:0:0]
	for i, m := range im.pending {
		if !known[i] {
			batch = append(batch, m)
		}
	}
	im.Skip(len(im.pending) - len(batch))
	if len(batch) == 0 {
		return nil
	}
	done, err := admin.Do(ctx, im.api, admin.OpImportBatch, admin.ImportBatch{Address: im.opts.Address, Messages: batch})
	if err != nil {
		return err
	}
	if done.Imported+done.Skipped > len(batch) {
		return fmt.Errorf("import: the store counted %d of %d messages", done.Imported+done.Skipped, len(batch))
	}
	im.count(im.cur, Counts{Imported: done.Imported, Skipped: done.Skipped, Bytes: done.Bytes})
	if done.Full != nil {
		im.full = &FullError{Address: im.opts.Address, Full: *done.Full}
	}
	im.progress(false)
	return nil
}

// Into puts name below into: INBOX becomes into itself.
func Into(into, name string) string {
	if into == "" {
		return name
	}
	if name == "INBOX" {
		return into
	}
	return into + store.HierarchySeparator + name
}

// CRLF returns raw with every bare LF made CRLF (raw itself when it has
// none).
func CRLF(raw []byte) []byte {
	if !hasBareLF(raw) {
		return raw
	}
	var b bytes.Buffer
	b.Grow(len(raw) + len(raw)/32)
	w := &spool.CRLFWriter{W: &b}
	w.Write(raw)
	return b.Bytes()
}

func hasBareLF(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] == '\n' && (i == 0 || b[i-1] != '\r') {
			return true
		}
	}
	return false
}

// key makes an import key of a kind ("file", "imap") from its parts.
func key(kind string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return kind + ":" + hex.EncodeToString(h.Sum(nil))
}

// MailboxName makes a name the store takes from a source's mailbox
// levels: control characters go, IMAP wildcards (* and %) become "_",
// spaces at the ends of a level go, empty levels and "." and ".." levels
// are dropped or renamed, and the name is cut to the store's limits. INBOX
// (any case, alone) is INBOX. An empty result is "Imported".
func MailboxName(levels []string) string {
	name := ""
	for _, l := range levels {
		l = strings.Map(func(r rune) rune {
			switch {
			case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0), r == '\u2028', r == '\u2029', r == '\ufeff', r == '\ufffd':
				return -1
			case r == '*' || r == '%' || r == '/':
				return '_'
			}
			return r
		}, strings.ToValidUTF8(l, ""))
		l = strings.ReplaceAll(strings.TrimSpace(l), "..", "__")
		switch {
		case l == "":
			continue
		case l == ".":
			l = "_"
		case strings.Count(name, store.HierarchySeparator) == store.MaxMailboxDepth-1:
			return name // as deep as a name goes
		}
		if name != "" {
			l = store.HierarchySeparator + l
		}
		if room := store.MaxMailboxNameLen - len(name); len(l) > room {
			// Cut on a rune boundary (the cut rune's bytes go), and
			// keep the level well formed.
			l = strings.TrimRight(strings.ToValidUTF8(l[:room], ""), " ")
			if strings.Trim(l, "/") == "" {
				break
			}
			name += l
			break
		}
		name += l
	}
	if name == "" {
		return "Imported"
	}
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}
