package imapd

// Mailbox names on the wire: modified UTF-7 (RFC 3501 5.1.3).

import (
	"strings"

	"yubin/internal/mutf7"
)

// decodeMailboxName decodes a mailbox name in modified UTF-7; like the
// library did, it also takes raw UTF-8. INBOX is case-blind.
func decodeMailboxName(s string) (string, error) {
	if strings.EqualFold(s, "INBOX") {
		return "INBOX", nil
	}
	return mutf7.Decode(s)
}

// encodeMailboxName writes a mailbox name in modified UTF-7.
func encodeMailboxName(s string) string { return mutf7.Encode(s) }
