package store

import (
	"strings"
	"time"
)

// Domain is a mail domain served here. A child domain (Parent set) has no
// accounts of its own: mail for local@child goes to local@parent.
type Domain struct {
	Name    string    `json:"name"`
	Parent  string    `json:"parent,omitempty"`
	Created time.Time `json:"created"`
}

// Role of an account on its domain.
type Role string

const (
	RoleAdmin Role = "admin" // the domain's site admin
	RoleUser  Role = "user"
)

// Account is a mail account on a parent domain.
type Account struct {
	Address      string     `json:"address"`
	Role         Role       `json:"role"`
	Quota        int64      `json:"quota"` // bytes; 0 = unlimited
	Used         int64      `json:"used"`  // bytes of all stored messages, exact
	PasswordHash string     `json:"password_hash"`
	Created      time.Time  `json:"created"`
	Scan         ScanPolicy `json:"scan"` // inbound scanning policy; zero value = defaults
	Spam         SpamPolicy `json:"spam"` // spam filter policy; zero value = defaults
}

// Admins returns the addresses of the admin accounts among accts.
func Admins(accts []Account) []string {
	var out []string
	for _, a := range accts {
		if a.Role == RoleAdmin {
			out = append(out, a.Address)
		}
	}
	return out
}

// Domain returns the account's domain.
func (a Account) Domain() string { return a.Address[strings.LastIndexByte(a.Address, '@')+1:] }

// DefaultMailboxes are created with every account, with their RFC 6154
// special-use attribute.
var DefaultMailboxes = []struct{ Name, SpecialUse string }{
	{"INBOX", ""}, {"Sent", `\Sent`}, {"Drafts", `\Drafts`}, {"Trash", `\Trash`}, {"Junk", `\Junk`},
}
