package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	bbolt "go.etcd.io/bbolt"

	"yubin/internal/address"
	"yubin/store"
)

func getJSON(b *bbolt.Bucket, key string, v any) bool {
	data := b.Get([]byte(key))
	if data == nil {
		return false
	}
	if err := json.Unmarshal(data, v); err != nil {
		panic(fmt.Sprintf("store: corrupt record %q: %v", key, err))
	}
	return true
}

func putJSON(b *bbolt.Bucket, key string, v any) error {
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
		return fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	if parent != "" {
		if parent, err = address.ParseDomain(parent); err != nil {
			return fmt.Errorf("%w: parent: %v", store.ErrInvalid, err)
		}
		if parent == name {
			return fmt.Errorf("%w: a domain cannot be its own parent", store.ErrInvalid)
		}
	}
	return s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bDomains)
		var d store.Domain
		if getJSON(b, name, &d) {
			return fmt.Errorf("domain %s: %w", name, store.ErrExists)
		}
		if parent != "" {
			var p store.Domain
			if !getJSON(b, parent, &p) {
				return fmt.Errorf("parent domain %s: %w", parent, store.ErrNoSuchDomain)
			}
			if p.Parent != "" {
				return fmt.Errorf("%w: %s is itself a child of %s; a child domain cannot have children", store.ErrInvalid, parent, p.Parent)
			}
		}
		return putJSON(b, name, store.Domain{Name: name, Parent: parent, Created: s.now().UTC()})
	})
}

// RemoveDomain removes a domain that has no accounts and no children.
func (s *Store) RemoveDomain(ctx context.Context, name string) error {
	name = strings.ToLower(name)
	return s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bDomains)
		var d store.Domain
		if !getJSON(b, name, &d) {
			return fmt.Errorf("domain %s: %w", name, store.ErrNoSuchDomain)
		}
		var children []string
		b.ForEach(func(k, v []byte) error {
			var c store.Domain
			getJSON(b, string(k), &c)
			if c.Parent == name {
				children = append(children, c.Name)
			}
			return nil
		})
		if len(children) > 0 {
			return fmt.Errorf("%w: domain %s has child domains (%s); remove them first", store.ErrInvalid, name, strings.Join(children, ", "))
		}
		if n := countAccounts(tx, name); n > 0 {
			return fmt.Errorf("%w: domain %s has %d account(s); remove them first", store.ErrInvalid, name, n)
		}
		// A domain added again must start with the defaults, even if
		// its Created time is the same as this one's.
		if ds := tx.Bucket(bDomainSettings); ds != nil {
			if err := ds.Delete([]byte(name)); err != nil {
				return err
			}
		}
		if err := s.deleteSpamModel(tx, name); err != nil {
			return err
		}
		return b.Delete([]byte(name))
	})
}

func countAccounts(tx *bbolt.Tx, domain string) int {
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
func (s *Store) Domains(ctx context.Context) ([]store.Domain, error) {
	var out []store.Domain
	err := s.view(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bDomains)
		return b.ForEach(func(k, _ []byte) error {
			var d store.Domain
			getJSON(b, string(k), &d)
			out = append(out, d)
			return nil
		})
	})
	return out, err
}

// Domain returns one domain.
func (s *Store) Domain(ctx context.Context, name string) (store.Domain, error) {
	var d store.Domain
	err := s.view(func(tx *bbolt.Tx) error {
		if !getJSON(tx.Bucket(bDomains), strings.ToLower(name), &d) {
			return fmt.Errorf("domain %s: %w", name, store.ErrNoSuchDomain)
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
		return "", fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	var account string
	err = s.view(func(tx *bbolt.Tx) error {
		var d store.Domain
		if !getJSON(tx.Bucket(bDomains), a.Domain, &d) {
			return fmt.Errorf("%s: %w", a.Domain, store.ErrNoSuchDomain)
		}
		dom := a.Domain
		if d.Parent != "" {
			dom = d.Parent
		}
		account = a.Local + "@" + dom
		if tx.Bucket(bAccounts).Get([]byte(account)) == nil {
			return fmt.Errorf("%s: %w", a, store.ErrNoSuchAccount)
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
func (s *Store) AddAccount(ctx context.Context, a store.Account) error {
	a, err := a.Checked()
	if err != nil {
		return err
	}
	dom := a.Address[strings.LastIndexByte(a.Address, '@')+1:]
	a.Used = 0
	a.Created = s.now().UTC()
	return s.update(ctx, func(tx *bbolt.Tx) error {
		var d store.Domain
		if !getJSON(tx.Bucket(bDomains), dom, &d) {
			return fmt.Errorf("domain %s: %w", dom, store.ErrNoSuchDomain)
		}
		if d.Parent != "" {
			return fmt.Errorf("%w: %s is a child domain of %s; create the account on %s (it receives mail for both)", store.ErrInvalid, dom, d.Parent, d.Parent)
		}
		accts := tx.Bucket(bAccounts)
		if accts.Get([]byte(a.Address)) != nil {
			return fmt.Errorf("account %s: %w", a.Address, store.ErrExists)
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
		// The default mailboxes start subscribed: clients that show the
		// subscribed mailboxes only (LSUB) rely on it.
		var names []string
		for _, m := range store.DefaultMailboxes {
			if _, err := createMailbox(tx, mb, m.Name, m.SpecialUse); err != nil {
				return err
			}
			names = append(names, m.Name)
		}
		return addSubscriptions(mb, names)
	})
}

// Account returns one account.
func (s *Store) Account(ctx context.Context, addr string) (store.Account, error) {
	var out store.Account
	err := s.accountUse(addr, func(_ *bbolt.Tx, a store.Account) error {
		out = a
		return nil
	})
	return out, err
}

func getAccount(tx *bbolt.Tx, addr string) (store.Account, error) {
	var a store.Account
	addr = strings.ToLower(addr)
	if !getJSON(tx.Bucket(bAccounts), addr, &a) {
		return a, fmt.Errorf("account %s: %w", addr, store.ErrNoSuchAccount)
	}
	return a, nil
}

// Accounts lists the accounts of a domain (all accounts when domain is ""),
// sorted by address.
func (s *Store) Accounts(ctx context.Context, domain string) ([]store.Account, error) {
	domain = strings.ToLower(domain)
	var out []store.Account
	err := s.viewFresh(func(tx *bbolt.Tx) error {
		if domain != "" {
			var d store.Domain
			if !getJSON(tx.Bucket(bDomains), domain, &d) {
				return fmt.Errorf("domain %s: %w", domain, store.ErrNoSuchDomain)
			}
		}
		b := tx.Bucket(bAccounts)
		return b.ForEach(func(k, _ []byte) error {
			if domain != "" && !strings.HasSuffix(string(k), "@"+domain) {
				return nil
			}
			var a store.Account
			getJSON(b, string(k), &a)
			out = append(out, a)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out, err
}

func (s *Store) updateAccount(ctx context.Context, addr string, fn func(a *store.Account) error) error {
	return s.update(ctx, func(tx *bbolt.Tx) error {
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
		return fmt.Errorf("%w: a password is required", store.ErrInvalid)
	}
	return s.updateAccount(ctx, addr, func(a *store.Account) error { a.PasswordHash = hash; return nil })
}

// SetQuota sets an account's quota in bytes (0 = unlimited). A quota below
// current usage is allowed: the account then takes no new mail.
func (s *Store) SetQuota(ctx context.Context, addr string, quota int64) error {
	if quota < 0 {
		return fmt.Errorf("%w: quota cannot be negative", store.ErrInvalid)
	}
	return s.updateAccount(ctx, addr, func(a *store.Account) error { a.Quota = quota; return nil })
}

// SetRole changes an account's role.
func (s *Store) SetRole(ctx context.Context, addr string, role store.Role) error {
	if role != store.RoleAdmin && role != store.RoleUser {
		return fmt.Errorf("%w: role must be admin or user, not %q", store.ErrInvalid, role)
	}
	return s.updateAccount(ctx, addr, func(a *store.Account) error { a.Role = role; return nil })
}

// RemoveAccount deletes an account and all its mail.
func (s *Store) RemoveAccount(ctx context.Context, addr string) error {
	addr = strings.ToLower(addr)
	return s.update(ctx, func(tx *bbolt.Tx) error {
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
		// An account added again gets its first quota warning.
		if b := tx.Bucket(bQuotaWarned); b != nil {
			if err := b.Delete([]byte(addr)); err != nil {
				return err
			}
		}
		if err := deleteQuarantine(tx, addr); err != nil {
			return err
		}
		if err := s.deleteSpamModel(tx, addr); err != nil {
			return err
		}
		return tx.Bucket(bAccounts).Delete([]byte(addr))
	})
}
