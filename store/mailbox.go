package store

import "strings"

// Mailbox describes one mailbox (folder) of an account.
type Mailbox struct {
	Name        string `json:"name"`
	UIDValidity uint32 `json:"uidvalidity"`
	UIDNext     uint32 `json:"uidnext"`
	Messages    int    `json:"messages"`
	Size        int64  `json:"size"` // bytes of all messages in it
	SpecialUse  string `json:"special_use,omitempty"`
	Subscribed  bool   `json:"subscribed"`
}

// canonicalMailbox makes "inbox" in any case mean INBOX (RFC 3501 5.1).
func CanonicalMailbox(name string) string {
	if name == "" || strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}
