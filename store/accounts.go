package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

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
}

// Domain returns the account's domain.
func (a Account) Domain() string { return a.Address[strings.LastIndexByte(a.Address, '@')+1:] }

// DefaultMailboxes are created with every account, with their RFC 6154
// special-use attribute.
var DefaultMailboxes = []struct{ Name, SpecialUse string }{
	{"INBOX", ""}, {"Sent", `\Sent`}, {"Drafts", `\Drafts`}, {"Trash", `\Trash`}, {"Junk", `\Junk`},
}

func getJSON(b *bolt.Bucket, key string, v any) bool {
	data := b.Get([]byte(key))
	if data == nil {
		return false
	}
	if err := json.Unmarshal(data, v); err != nil {
		panic(fmt.Sprintf("store: corrupt record %q: %v", key, err))
	}
	return true
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

// AddDomain adds a parent domain, or a child of parent when parent != "".
func (s *Store) AddDomain(ctx context.Context, name, parent string) error {
	name, err := address.ParseDomain(name)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if parent != "" {
		if parent, err = address.ParseDomain(parent); err != nil {
			return fmt.Errorf("%w: parent: %v", ErrInvalid, err)
		}
		if parent == name {
			return fmt.Errorf("%w: a domain cannot be its own parent", ErrInvalid)
		}
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bDomains)
		var d Domain
		if getJSON(b, name, &d) {
			return fmt.Errorf("domain %s: %w", name, ErrExists)
		}
		if parent != "" {
			var p Domain
			if !getJSON(b, parent, &p) {
				return fmt.Errorf("parent domain %s: %w", parent, ErrNoSuchDomain)
			}
			if p.Parent != "" {
				return fmt.Errorf("%w: %s is itself a child of %s; a child domain cannot have children", ErrInvalid, parent, p.Parent)
			}
		}
		return putJSON(b, name, Domain{Name: name, Parent: parent, Created: s.now().UTC()})
	})
}

// RemoveDomain removes a domain that has no accounts and no children.
func (s *Store) RemoveDomain(ctx context.Context, name string) error {
	name = strings.ToLower(name)
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bDomains)
		var d Domain
		if !getJSON(b, name, &d) {
			return fmt.Errorf("domain %s: %w", name, ErrNoSuchDomain)
		}
		var children []string
		b.ForEach(func(k, v []byte) error {
			var c Domain
			getJSON(b, string(k), &c)
			if c.Parent == name {
				children = append(children, c.Name)
			}
			return nil
		})
		if len(children) > 0 {
			return fmt.Errorf("%w: domain %s has child domains (%s); remove them first", ErrInvalid, name, strings.Join(children, ", "))
		}
		if n := countAccounts(tx, name); n > 0 {
			return fmt.Errorf("%w: domain %s has %d account(s); remove them first", ErrInvalid, name, n)
		}
		return b.Delete([]byte(name))
	})
}

func countAccounts(tx *bolt.Tx, domain string) int {
	n := 0
	suffix := "@" + domain
	tx.Bucket(bAccounts).ForEach(func(k, _ []byte) error {
		if strings.HasSuffix(string(k), suffix) {
			n++
		}
		return nil
	})
	return n
}

// Domains lists every domain, sorted by name.
func (s *Store) Domains(ctx context.Context) ([]Domain, error) {
	var out []Domain
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bDomains)
		return b.ForEach(func(k, _ []byte) error {
			var d Domain
			getJSON(b, string(k), &d)
			out = append(out, d)
			return nil
		})
	})
	return out, err
}

// Domain returns one domain.
func (s *Store) Domain(ctx context.Context, name string) (Domain, error) {
	var d Domain
	err := s.db.View(func(tx *bolt.Tx) error {
		if !getJSON(tx.Bucket(bDomains), strings.ToLower(name), &d) {
			return fmt.Errorf("domain %s: %w", name, ErrNoSuchDomain)
		}
		return nil
	})
	return d, err
}

// Resolve maps a recipient address to the account that receives it:
// lower-cases it and maps child domains to their parent. The error is
// ErrNoSuchDomain (not ours: relaying) or ErrNoSuchAccount (ours, no user).
func (s *Store) Resolve(ctx context.Context, addr string) (string, error) {
	a, err := address.Parse(addr)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var account string
	err = s.db.View(func(tx *bolt.Tx) error {
		var d Domain
		if !getJSON(tx.Bucket(bDomains), a.Domain, &d) {
			return fmt.Errorf("%s: %w", a.Domain, ErrNoSuchDomain)
		}
		dom := a.Domain
		if d.Parent != "" {
			dom = d.Parent
		}
		account = a.Local + "@" + dom
		if tx.Bucket(bAccounts).Get([]byte(account)) == nil {
			return fmt.Errorf("%s: %w", a, ErrNoSuchAccount)
		}
		return nil
	})
	return account, err
}

// IsLocalDomain reports whether d is one of our parent or child domains.
func (s *Store) IsLocalDomain(ctx context.Context, d string) bool {
	_, err := s.Domain(ctx, d)
	return err == nil
}

// AddAccount creates an account on a parent domain with its default
// mailboxes. a.Used and a.Created are ignored.
func (s *Store) AddAccount(ctx context.Context, a Account) error {
	p, err := address.Parse(a.Address)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	a.Address = p.String()
	if a.Role == "" {
		a.Role = RoleUser
	}
	if a.Role != RoleAdmin && a.Role != RoleUser {
		return fmt.Errorf("%w: role must be admin or user, not %q", ErrInvalid, a.Role)
	}
	if a.Quota < 0 {
		return fmt.Errorf("%w: quota cannot be negative", ErrInvalid)
	}
	if a.PasswordHash == "" {
		return fmt.Errorf("%w: a password is required", ErrInvalid)
	}
	if err := a.Scan.Validate(); err != nil {
		return err
	}
	a.Scan = a.Scan.Effective()
	a.Used = 0
	a.Created = s.now().UTC()
	return s.db.Update(func(tx *bolt.Tx) error {
		var d Domain
		if !getJSON(tx.Bucket(bDomains), p.Domain, &d) {
			return fmt.Errorf("domain %s: %w", p.Domain, ErrNoSuchDomain)
		}
		if d.Parent != "" {
			return fmt.Errorf("%w: %s is a child domain of %s; create the account on %s (it receives mail for both)", ErrInvalid, p.Domain, d.Parent, d.Parent)
		}
		accts := tx.Bucket(bAccounts)
		if accts.Get([]byte(a.Address)) != nil {
			return fmt.Errorf("account %s: %w", a.Address, ErrExists)
		}
		if err := putJSON(accts, a.Address, a); err != nil {
			return err
		}
		mb, err := tx.Bucket(bMail).CreateBucket([]byte(a.Address))
		if err != nil {
			return err
		}
		if _, err := mb.CreateBucket(bBoxes); err != nil {
			return err
		}
		for _, m := range DefaultMailboxes {
			if _, err := createMailbox(tx, mb, m.Name, m.SpecialUse); err != nil {
				return err
			}
		}
		return nil
	})
}

// Account returns one account.
func (s *Store) Account(ctx context.Context, addr string) (Account, error) {
	var a Account
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		a, err = getAccount(tx, addr)
		return err
	})
	return a, err
}

func getAccount(tx *bolt.Tx, addr string) (Account, error) {
	var a Account
	addr = strings.ToLower(addr)
	if !getJSON(tx.Bucket(bAccounts), addr, &a) {
		return a, fmt.Errorf("account %s: %w", addr, ErrNoSuchAccount)
	}
	return a, nil
}

// Accounts lists the accounts of a domain (all accounts when domain is ""),
// sorted by address.
func (s *Store) Accounts(ctx context.Context, domain string) ([]Account, error) {
	domain = strings.ToLower(domain)
	var out []Account
	err := s.db.View(func(tx *bolt.Tx) error {
		if domain != "" {
			var d Domain
			if !getJSON(tx.Bucket(bDomains), domain, &d) {
				return fmt.Errorf("domain %s: %w", domain, ErrNoSuchDomain)
			}
		}
		b := tx.Bucket(bAccounts)
		return b.ForEach(func(k, _ []byte) error {
			if domain != "" && !strings.HasSuffix(string(k), "@"+domain) {
				return nil
			}
			var a Account
			getJSON(b, string(k), &a)
			out = append(out, a)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out, err
}

func (s *Store) updateAccount(addr string, fn func(a *Account) error) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		a, err := getAccount(tx, addr)
		if err != nil {
			return err
		}
		if err := fn(&a); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bAccounts), a.Address, a)
	})
}

// SetPasswordHash replaces an account's password hash.
func (s *Store) SetPasswordHash(ctx context.Context, addr, hash string) error {
	if hash == "" {
		return fmt.Errorf("%w: a password is required", ErrInvalid)
	}
	return s.updateAccount(addr, func(a *Account) error { a.PasswordHash = hash; return nil })
}

// SetQuota sets an account's quota in bytes (0 = unlimited). A quota below
// current usage is allowed: the account then takes no new mail.
func (s *Store) SetQuota(ctx context.Context, addr string, quota int64) error {
	if quota < 0 {
		return fmt.Errorf("%w: quota cannot be negative", ErrInvalid)
	}
	return s.updateAccount(addr, func(a *Account) error { a.Quota = quota; return nil })
}

// SetRole changes an account's role.
func (s *Store) SetRole(ctx context.Context, addr string, role Role) error {
	if role != RoleAdmin && role != RoleUser {
		return fmt.Errorf("%w: role must be admin or user, not %q", ErrInvalid, role)
	}
	return s.updateAccount(addr, func(a *Account) error { a.Role = role; return nil })
}

// RemoveAccount deletes an account and all its mail.
func (s *Store) RemoveAccount(ctx context.Context, addr string) error {
	addr = strings.ToLower(addr)
	return s.db.Update(func(tx *bolt.Tx) error {
		if _, err := getAccount(tx, addr); err != nil {
			return err
		}
		mail := tx.Bucket(bMail)
		if mb := mail.Bucket([]byte(addr)); mb != nil {
			err := mb.Bucket(bBoxes).ForEach(func(_, id []byte) error {
				box := mb.Bucket(boxKey(id))
				return box.Bucket(bMsgs).ForEach(func(k, v []byte) error {
					m, err := decodeRecord(0, v)
					if err != nil {
						return err
					}
					return unrefBlob(tx, m.blob)
				})
			})
			if err != nil {
				return err
			}
			if err := mail.DeleteBucket([]byte(addr)); err != nil {
				return err
			}
		}
		if err := deleteForward(tx, addr); err != nil {
			return err
		}
		return tx.Bucket(bAccounts).Delete([]byte(addr))
	})
}
