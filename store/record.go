package store

import "time"

// MessageInfo is what the store knows about one stored message (like
// fs.FileInfo for a file): its UID, sizes, internal date and flags.
type MessageInfo struct {
	UID        uint32
	Size       int64     // bytes of the raw message as stored
	HeaderSize int64     // bytes of the header section, including the blank line
	Date       time.Time // internal date (arrival time)
	Flags      []string  // IMAP flags, e.g. \Seen; sorted, no duplicates
}

// MaxFlags and MaxFlagLen bound the flags of a message; they are far above
// what any IMAP client sets.
const (
	MaxFlags   = 128
	MaxFlagLen = 256
)
