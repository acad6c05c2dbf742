package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"time"
)

// The write-ahead log: a delivery acknowledged after one fdatasync.
//
// A bbolt commit syncs twice (its data pages, then its meta page), and one
// session's deliveries follow one another: each waited for both. Plain
// deliveries (no quarantine, outbound queue or once-key; at most
// walMaxDelivery) instead go like this, in the committer:
//
//  1. a batch of them runs in the open write transaction, which stays open
//     across batches (commitLogged);
//  2. the batch's redo record — its deliveries as prepareDeliveries made
//     them, of the members that succeeded — is appended to the log with a
//     sequence number one above the last, which the transaction records
//     too (meta "walseq"), and the log is synced: the callers have their
//     answer (250 in SMTP);
//  3. the open transaction is committed (a checkpoint) after
//     Options.CheckpointAfter, when it holds walMaxOpen bytes of records, before
//     any other kind of write, and as soon as a reader waits for what was
//     acknowledged (waitApplied); then the log starts again at offset 0.
//
// Open replays the records after the store's walseq, in order, by running
// the same deliveries (deliverFn) over the same state — the state after the
// last checkpoint, which every write before the records had reached and no
// other write since — which writes the same messages, UIDs, mod-sequences
// and quota usage. Records at or below walseq are in bbolt already. The log
// is read from offset 0 while records follow each other (seq one above the
// one before, checksum right): a torn record was never synced, so never
// acknowledged, and what lies after the last record of the current run is
// older (lower sequence numbers) than it.
//
// Record: walMagic, seq (8 bytes), payload length (8), CRC-32C of the
// sequence, length and payload (4), payload. The file is written with zeros
// when created and keeps its largest size (overwritten blocks: an fdatasync
// with no file system metadata to commit).

// DefaultCheckpointAfter is how long the open transaction stays open
// (Options.CheckpointAfter).
const DefaultCheckpointAfter = 50 * time.Millisecond

// WALSuffix names the log beside the store file: yubin.db-wal.
const WALSuffix = "-wal"

const (
	walMagic = "YUBINWAL2\n"
	walHead  = len(walMagic) + 8 + 8 + 4
	// walMaxDelivery is the largest delivery (bytes stored) that goes
	// through the log; a bigger one commits with bbolt's own syncs, whose
	// cost is small next to its transfer.
	walMaxDelivery = 1 << 20
	// walMaxRecord bounds a batch's record; a bigger batch commits
	// without the log.
	walMaxRecord = 16 << 20
	// walMaxOpen is the bytes of records after which the open transaction
	// is committed.
	walMaxOpen = 16 << 20
	// walInitialSize is written with zeros when the log is created.
	walInitialSize = 4 << 20
)

var (
	kWALSeq  = []byte("walseq")
	walTable = crc32.MakeTable(crc32.Castagnoli)
)

// wal is the log file. Only the committer (and Open) use it.
type wal struct {
	f      *os.File
	noSync bool
	off    int64  // where the next record goes
	buf    []byte // the record being written, reused
}

// openWAL opens or creates the log beside the store file at dbPath; a new
// store (fresh) starts a new log, whatever a file of that name holds.
func openWAL(dbPath string, fresh, noSync bool) (*wal, error) {
	path := dbPath + WALSuffix
	flags := os.O_RDWR | os.O_CREATE
	if fresh {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return nil, fmt.Errorf("write-ahead log: %w", err)
	}
	w := &wal{f: f, noSync: noSync}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("write-ahead log %s: %w", path, err)
	}
	if fi.Size() == 0 {
		if _, err := f.WriteAt(make([]byte, walInitialSize), 0); err != nil {
			f.Close()
			return nil, fmt.Errorf("write-ahead log %s: %w", path, err)
		}
		if err := w.sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("write-ahead log %s: %w", path, err)
		}
		if err := syncDir(filepath.Dir(path), noSync); err != nil {
			f.Close()
			return nil, fmt.Errorf("write-ahead log %s: %w", path, err)
		}
	}
	return w, nil
}

func syncDir(dir string, noSync bool) error {
	if noSync {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (w *wal) sync() error {
	if w.noSync {
		return nil
	}
	return fdatasync(w.f)
}

func (w *wal) close() error { return w.f.Close() }

// append writes the record (seq, payload) after the ones since reset and
// syncs it.
func (w *wal) append(seq uint64, payload []byte) error {
	b := append(w.buf[:0], walMagic...)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint64(b, uint64(len(payload)))
	crc := crc32.Update(0, walTable, b[len(walMagic):])
	crc = crc32.Update(crc, walTable, payload)
	b = binary.BigEndian.AppendUint32(b, crc)
	b = append(b, payload...)
	if cap(b) <= 1<<20 {
		w.buf = b
	}
	if _, err := w.f.WriteAt(b, w.off); err != nil {
		return fmt.Errorf("write-ahead log: %w", err)
	}
	if err := w.sync(); err != nil {
		return fmt.Errorf("write-ahead log: %w", err)
	}
	w.off += int64(len(b))
	return nil
}

// reset starts the log again at offset 0: its records are committed.
func (w *wal) reset() { w.off = 0 }

// records calls fn with each record of the log's current run, in order.
func (w *wal) records(fn func(seq uint64, payload []byte) error) error {
	fi, err := w.f.Stat()
	if err != nil {
		return fmt.Errorf("write-ahead log: %w", err)
	}
	size := fi.Size()
	var off int64
	var last uint64
	head := make([]byte, walHead)
	for off+int64(walHead) <= size {
		if _, err := w.f.ReadAt(head, off); err != nil {
			return fmt.Errorf("write-ahead log: %w", err)
		}
		if string(head[:len(walMagic)]) != walMagic {
			return nil
		}
		fields := head[len(walMagic):]
		seq := binary.BigEndian.Uint64(fields)
		n := binary.BigEndian.Uint64(fields[8:])
		if off > 0 && seq != last+1 || n > uint64(size-off-int64(walHead)) {
			return nil
		}
		payload := make([]byte, n)
		if _, err := w.f.ReadAt(payload, off+int64(walHead)); err != nil {
			return fmt.Errorf("write-ahead log: %w", err)
		}
		crc := crc32.Update(0, walTable, fields[:16])
		crc = crc32.Update(crc, walTable, payload)
		if crc != binary.BigEndian.Uint32(fields[16:]) {
			return nil
		}
		if err := fn(seq, payload); err != nil {
			return err
		}
		last = seq
		off += int64(walHead) + int64(n)
	}
	return nil
}

// walRecord is the redo record of a deliverBatch's deliveries, or nil when
// they do not go through the log: one is held in a quarantine (its id is
// random), or bigger than walMaxDelivery.
func walRecord(preps []prepared) ([]byte, error) {
	var b []byte
	b = binary.AppendUvarint(b, uint64(len(preps)))
	for _, p := range preps {
		if p.hold != nil || p.size > walMaxDelivery {
			return nil, nil
		}
		b = binary.AppendUvarint(b, uint64(len(p.rcpts)))
		for _, r := range p.rcpts {
			b = appendBytes(b, []byte(r))
		}
		b = appendBytes(b, []byte(p.box))
		b = binary.AppendUvarint(b, uint64(len(p.flags)))
		for _, f := range p.flags {
			b = appendBytes(b, []byte(f))
		}
		b = binary.AppendVarint(b, p.date.UnixNano())
		b = appendBytes(b, p.hdr)
		// The message: msg and tail as one.
		b = binary.AppendUvarint(b, uint64(p.size-int64(len(p.hdr))))
		b = append(b, p.msg...)
		if p.tail != nil {
			n := len(b)
			b = append(b, make([]byte, p.tail.Size())...)
			if _, err := p.tail.ReadAt(b[n:], 0); err != nil && !(errors.Is(err, io.EOF) && int64(len(b)-n) == p.tail.Size()) {
				return nil, fmt.Errorf("store: reading the message to store: %w", err)
			}
		}
		b = binary.AppendVarint(b, p.hsize)
		b = appendOptional(b, p.env)
		b = appendOptional(b, p.structure)
	}
	return b, nil
}

// appendOptional appends v, telling nil from empty.
func appendOptional(b, v []byte) []byte {
	if v == nil {
		return append(b, 0)
	}
	return appendBytes(append(b, 1), v)
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// walDecoder reads what walRecord wrote.
type walDecoder struct {
	b   []byte
	err error
}

func (d *walDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errors.New("bad number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *walDecoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errors.New("bad number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *walDecoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errors.New("truncated")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// optional reads what appendOptional wrote.
func (d *walDecoder) optional() []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) == 0 {
		d.err = errors.New("truncated")
		return nil
	}
	has := d.b[0]
	d.b = d.b[1:]
	switch has {
	case 0:
		return nil
	case 1:
		return d.bytes()
	}
	d.err = errors.New("bad presence byte")
	return nil
}

func (d *walDecoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) { // every element takes a byte at least
		d.err = errors.New("bad count")
		return 0
	}
	return int(n)
}

// decodeWALRecord returns the deliveries walRecord wrote.
func decodeWALRecord(b []byte) ([]prepared, error) {
	d := &walDecoder{b: b}
	preps := make([]prepared, d.count())
	for i := range preps {
		p := &preps[i]
		p.rcpts = make([]string, d.count())
		for j := range p.rcpts {
			p.rcpts[j] = string(d.bytes())
		}
		p.box = string(d.bytes())
		if n := d.count(); n > 0 {
			p.flags = make([]string, n)
			for j := range p.flags {
				p.flags[j] = string(d.bytes())
			}
		}
		p.date = time.Unix(0, d.varint())
		if h := d.bytes(); len(h) > 0 {
			p.hdr = h
		}
		p.msg = d.bytes()
		p.size = int64(len(p.hdr) + len(p.msg))
		p.hsize = d.varint()
		p.env = d.optional()
		p.structure = d.optional()
		if d.err != nil {
			break
		}
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = errors.New("bytes after the deliveries")
	}
	if d.err != nil {
		return nil, fmt.Errorf("write-ahead log record: %w", d.err)
	}
	return preps, nil
}
