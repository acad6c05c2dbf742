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
	// Subscribed reports whether the mailbox's name is among the
	// account's subscriptions (Mail.Subscriptions) when it was read.
	// (Stores of before kept subscriptions as this flag.)
	Subscribed bool `json:"subscribed"`
	// HighestModSeq is the mod-sequence of the latest change to the
	// mailbox's messages (RFC 7162 HIGHESTMODSEQ): at least 1, at least
	// every message's ModSeq, and never going back while the mailbox keeps
	// its UIDValidity.
	HighestModSeq uint64 `json:"highest_modseq"`
	// FirstRecent is the lowest UID that no session has claimed as recent
	// yet (ClaimRecent): the messages from it on are \Recent (RFC 3501
	// 2.3.2) to whoever claims them next. UIDNext when none are.
	FirstRecent uint32 `json:"first_recent"`
}

// canonicalMailbox makes "inbox" in any case mean INBOX (RFC 3501 5.1).
func CanonicalMailbox(name string) string {
	if name == "" || strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}
