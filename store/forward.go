package store

import "time"

// MaxForwardTargets is how many targets one account may forward to.
const MaxForwardTargets = 10

// Forward is an account's forwarding rule.
type Forward struct {
	Targets  []string  `json:"targets"`   // normalised addresses, local or remote
	KeepCopy bool      `json:"keep_copy"` // also deliver to the account's INBOX
	Updated  time.Time `json:"updated"`
}
