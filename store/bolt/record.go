package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"yubin/store"
)

// recordVersion is the version byte of the message records this code
// writes. Version 1 (written before mod-sequences) has no ModSeq: such a
// record reads as ModSeq 1, which migrateModSeq made every old mailbox's
// HighestModSeq.
const (
	recordVersion1 = 1
	recordVersion  = 2
)

// record is a message record as stored: what the store tells about the
// message, and the id of the blob holding its bytes.
type record struct {
	store.MessageInfo
	blob uint64
}

// encodeRecord is the on-disk form of a message record: version byte, then
// uvarints for blob id, size, header size, unix nanoseconds, flag count,
// each flag as a length-prefixed string, and (version 2) the ModSeq.
func encodeRecord(m *record) []byte {
	b := make([]byte, 0, 48+16*len(m.Flags))
	b = append(b, recordVersion)
	b = binary.AppendUvarint(b, m.blob)
	b = binary.AppendUvarint(b, uint64(m.Size))
	b = binary.AppendUvarint(b, uint64(m.HeaderSize))
	b = binary.AppendVarint(b, m.Date.UnixNano())
	b = binary.AppendUvarint(b, uint64(len(m.Flags)))
	for _, f := range m.Flags {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return binary.AppendUvarint(b, m.ModSeq)
}

var errCorruptRecord = errors.New("store: corrupt message record")

func decodeRecord(uid uint32, b []byte) (record, error) {
	m := record{MessageInfo: store.MessageInfo{UID: uid}}
	if len(b) == 0 || b[0] != recordVersion && b[0] != recordVersion1 {
		return m, errCorruptRecord
	}
	version := b[0]
	b = b[1:]
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	var ok bool
	var size, hsize, nflags uint64
	if m.blob, ok = next(); !ok {
		return m, errCorruptRecord
	}
	if size, ok = next(); !ok || size > 1<<40 {
		return m, errCorruptRecord
	}
	if hsize, ok = next(); !ok || hsize > size {
		return m, errCorruptRecord
	}
	m.Size, m.HeaderSize = int64(size), int64(hsize)
	date, n := binary.Varint(b)
	if n <= 0 {
		return m, errCorruptRecord
	}
	b = b[n:]
	m.Date = time.Unix(0, date)
	if nflags, ok = next(); !ok || nflags > store.MaxFlags {
		return m, errCorruptRecord
	}
	if nflags > 0 {
		m.Flags = make([]string, 0, nflags)
	}
	for i := uint64(0); i < nflags; i++ {
		l, ok := next()
		if !ok || l > store.MaxFlagLen || l > uint64(len(b)) {
			return m, errCorruptRecord
		}
		m.Flags = append(m.Flags, string(b[:l]))
		b = b[l:]
	}
	m.ModSeq = 1
	if version >= recordVersion {
		if m.ModSeq, ok = next(); !ok || m.ModSeq == 0 || m.ModSeq > maxModSeq {
			return m, errCorruptRecord
		}
	}
	if len(b) != 0 {
		return m, fmt.Errorf("%w: %d trailing bytes", errCorruptRecord, len(b))
	}
	return m, nil
}

func u64key(v uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], v)
	return k[:]
}

func u32key(v uint32) []byte {
	var k [4]byte
	binary.BigEndian.PutUint32(k[:], v)
	return k[:]
}
