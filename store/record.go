package store

import "time"

// MessageInfo is what the store knows about one stored message (like
// fs.FileInfo for a file): its UID, sizes, internal date, flags and
// mod-sequence.
type MessageInfo struct {
	UID        uint32
	Size       int64     // bytes of the raw message as stored
	HeaderSize int64     // bytes of the header section, including the blank line
	Date       time.Time // internal date (arrival time)
	Flags      []string  // IMAP flags, e.g. \Seen; sorted, no duplicates
	// ModSeq is the mod-sequence of the message's last change in its
	// mailbox (RFC 7162 MODSEQ): its arrival or its last flag change that
	// changed something. At least 1, at most the mailbox's HighestModSeq.
	ModSeq uint64
}

// MaxFlags and MaxFlagLen bound the flags of a message; they are far above
// what any IMAP client sets.
const (
	MaxFlags   = 128
	MaxFlagLen = 256
)
