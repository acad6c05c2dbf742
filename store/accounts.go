package store

import (
	"fmt"
	"strings"
	"time"

	"yubin/internal/address"
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

// Checked returns a new account as every backend's AddAccount stores it:
// the address normalised (it must be an account's: on a parent domain),
// the role defaulted to user, the scan policy made effective; a bad
// address, role, negative quota, missing password hash or invalid policy
// gives ErrInvalid. Used and Created are left to the backend.
func (a Account) Checked() (Account, error) {
	p, err := address.ParseAccount(a.Address)
	if err != nil {
		return Account{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	a.Address = p.String()
	if a.Role == "" {
		a.Role = RoleUser
	}
	if a.Role != RoleAdmin && a.Role != RoleUser {
		return Account{}, fmt.Errorf("%w: role must be admin or user, not %q", ErrInvalid, a.Role)
	}
	if a.Quota < 0 {
		return Account{}, fmt.Errorf("%w: quota cannot be negative", ErrInvalid)
	}
	if a.PasswordHash == "" {
		return Account{}, fmt.Errorf("%w: a password is required", ErrInvalid)
	}
	if err := a.Scan.Validate(); err != nil {
		return Account{}, err
	}
	if err := a.Spam.Validate(); err != nil {
		return Account{}, err
	}
	a.Scan = a.Scan.Effective()
	return a, nil
}
