package store

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Mailbox hierarchy: names are UTF-8, levels separated by "/".
const (
	// HierarchySeparator separates the levels of a mailbox name.
	HierarchySeparator = "/"
	// MaxMailboxNameLen bounds a mailbox name in bytes.
	MaxMailboxNameLen = 512
	// MaxMailboxDepth bounds the number of levels of a mailbox name.
	MaxMailboxDepth = 32
)

// ErrHasChildren is returned by DeleteMailbox for a mailbox that has
// mailboxes below it.
var ErrHasChildren = errors.New("mailbox has child mailboxes")

// CheckMailboxName says whether name may be used for a new mailbox: valid
// UTF-8, no control characters, no IMAP wildcards (* and %), no "..", no
// empty, "." or over-long levels. INBOX in any case is the INBOX.
func CheckMailboxName(name string) error {
	bad := func(why string) error { return fmt.Errorf("%w: mailbox name %q: %s", ErrInvalid, name, why) }
	switch {
	case name == "":
		return bad("empty")
	case len(name) > MaxMailboxNameLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxMailboxNameLen))
	case !utf8.ValidString(name):
		return bad("not UTF-8")
	case strings.Contains(name, ".."):
		return bad(`contains ".."`)
	}
	for _, r := range name {
		switch {
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return bad("contains a control character")
		case r == '*' || r == '%':
			return bad("contains a wildcard (* or %)")
		case r == utf8.RuneError, r == '\u2028', r == '\u2029', r == '\ufeff':
			return bad("contains an invalid character")
		}
	}
	levels := strings.Split(name, HierarchySeparator)
	if len(levels) > MaxMailboxDepth {
		return bad(fmt.Sprintf("more than %d levels", MaxMailboxDepth))
	}
	for _, l := range levels {
		if l == "" {
			return bad("empty level (leading, trailing or doubled /)")
		}
		if l == "." {
			return bad(`"." level`)
		}
		if strings.TrimSpace(l) != l {
			return bad("level starts or ends with a space")
		}
	}
	return nil
}

// parents returns the ancestors of a mailbox name, outermost first.
func ParentMailboxes(name string) []string {
	var out []string
	for i := 0; i < len(name); i++ {
		if name[i] == '/' {
			out = append(out, name[:i])
		}
	}
	return out
}

// CopyResult tells where CopyMessages or MoveMessages put messages:
// Source[i] became Dest[i] in a mailbox with UIDValidity.
type CopyResult struct {
	UIDValidity uint32
	Source      []uint32
	Dest        []uint32
}
