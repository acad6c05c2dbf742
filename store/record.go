package store

import "time"

// Message is what the store knows about one stored message.
type Message struct {
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
