package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"yubin/internal/address"
	"yubin/store"
)

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
	return s.write(ctx, func(w *wtx) error {
		if _, err := getDomain(ctx, w, name); err == nil {
			return fmt.Errorf("domain %s: %w", name, store.ErrExists)
		} else if !errors.Is(err, store.ErrNoSuchDomain) {
			return err
		}
		var par *string
		if parent != "" {
			// Locked, so that it is not removed meanwhile.
			var pp *string
			err := w.QueryRow(ctx, `SELECT parent FROM domains WHERE name = $1 FOR SHARE`, parent).Scan(&pp)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("parent domain %s: %w", parent, store.ErrNoSuchDomain)
			}
			if err != nil {
				return err
			}
			if pp != nil {
				return fmt.Errorf("%w: %s is itself a child of %s; a child domain cannot have children", store.ErrInvalid, parent, *pp)
			}
			par = &parent
		}
		_, err := w.Exec(ctx, `INSERT INTO domains (name, parent, created) VALUES ($1, $2, $3)`, name, par, s.now().UTC())
		if isUnique(err) {
			return fmt.Errorf("domain %s: %w", name, store.ErrExists)
		}
		return err
	})
}

func getDomain(ctx context.Context, tx querier, name string) (store.Domain, error) {
	var d store.Domain
	var parent *string
	err := tx.QueryRow(ctx, `SELECT name, parent, created FROM domains WHERE name = $1`, lower(name)).Scan(&d.Name, &parent, &d.Created)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, fmt.Errorf("domain %s: %w", name, store.ErrNoSuchDomain)
	}
	if parent != nil {
		d.Parent = *parent
	}
	d.Created = d.Created.UTC()
	return d, err
}

// RemoveDomain removes a domain that has no accounts and no children.
func (s *Store) RemoveDomain(ctx context.Context, name string) error {
	name = lower(name)
	return s.write(ctx, func(w *wtx) error {
		var exists bool
		if err := w.QueryRow(ctx, `SELECT true FROM domains WHERE name = $1 FOR UPDATE`, name).Scan(&exists); errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("domain %s: %w", name, store.ErrNoSuchDomain)
		} else if err != nil {
			return err
		}
		children, err := strings1(ctx, w, `SELECT name FROM domains WHERE parent = $1 ORDER BY name`, name)
		if err != nil {
			return err
		}
		if len(children) > 0 {
			return fmt.Errorf("%w: domain %s has child domains (%s); remove them first", store.ErrInvalid, name, strings.Join(children, ", "))
		}
		var n int
		if err := w.QueryRow(ctx, `SELECT count(*) FROM accounts WHERE domain = $1`, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: domain %s has %d account(s); remove them first", store.ErrInvalid, name, n)
		}
		if _, err := w.Exec(ctx, `DELETE FROM spam_models WHERE owner = $1`, name); err != nil {
			return err
		}
		_, err = w.Exec(ctx, `DELETE FROM domains WHERE name = $1`, name)
		return err
	})
}

// strings1 returns the one text column of a query's rows.
func strings1(ctx context.Context, tx pgx.Tx, sql string, args ...any) ([]string, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Domains lists every domain, sorted by name.
func (s *Store) Domains(ctx context.Context) ([]store.Domain, error) {
	var out []store.Domain
	err := s.read(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT name, coalesce(parent, ''), created FROM domains ORDER BY name COLLATE "C"`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Domain, error) {
			var d store.Domain
			err := r.Scan(&d.Name, &d.Parent, &d.Created)
			d.Created = d.Created.UTC()
			return d, err
		})
		return err
	})
	return out, err
}

// Domain returns one domain.
func (s *Store) Domain(ctx context.Context, name string) (store.Domain, error) {
	var d store.Domain
	err := s.readOne(ctx, func(q querier) error {
		var err error
		d, err = getDomain(ctx, q, name)
		return err
	})
	return d, err
}

// IsLocalDomain reports whether d is one of our parent or child domains.
func (s *Store) IsLocalDomain(ctx context.Context, d string) bool {
	_, err := s.Domain(ctx, d)
	return err == nil
}

// Resolve maps a recipient address to the account that receives it.
func (s *Store) Resolve(ctx context.Context, addr string) (string, error) {
	a, err := address.Parse(addr)
	if err != nil {
		return "", fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	var parent *string
	var exists *bool
	err = s.pool.QueryRow(ctx, `SELECT d.parent, EXISTS (SELECT 1 FROM accounts WHERE address = $2 || '@' || coalesce(d.parent, d.name))
		FROM domains d WHERE d.name = $1`, a.Domain, a.Local).Scan(&parent, &exists)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("%s: %w", a.Domain, store.ErrNoSuchDomain)
	}
	if err != nil {
		return "", dbError(err)
	}
	dom := a.Domain
	if parent != nil {
		dom = *parent
	}
	if !*exists {
		return "", fmt.Errorf("%s: %w", a, store.ErrNoSuchAccount)
	}
	return a.Local + "@" + dom, nil
}

// AddAccount creates an account on a parent domain with its default
// mailboxes. a.Used and a.Created are ignored.
func (s *Store) AddAccount(ctx context.Context, a store.Account) error {
	a, err := a.Checked()
	if err != nil {
		return err
	}
	dom := a.Address[strings.LastIndexByte(a.Address, '@')+1:]
	scan, _ := json.Marshal(a.Scan)
	spam, _ := json.Marshal(a.Spam)
	return s.write(ctx, func(w *wtx) error {
		var parent *string
		err := w.QueryRow(ctx, `SELECT parent FROM domains WHERE name = $1 FOR SHARE`, dom).Scan(&parent)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("domain %s: %w", dom, store.ErrNoSuchDomain)
		}
		if err != nil {
			return err
		}
		if parent != nil {
			return fmt.Errorf("%w: %s is a child domain of %s; create the account on %s (it receives mail for both)", store.ErrInvalid, dom, *parent, *parent)
		}
		_, err = w.Exec(ctx, `INSERT INTO accounts (address, domain, role, quota, used, password_hash, created, scan, spam)
			VALUES ($1, $2, $3, $4, 0, $5, $6, $7, $8)`, a.Address, dom, string(a.Role), a.Quota, a.PasswordHash, s.now().UTC(), scan, spam)
		if isUnique(err) {
			return fmt.Errorf("account %s: %w", a.Address, store.ErrExists)
		}
		if err != nil {
			return err
		}
		// The default mailboxes start subscribed: clients that show the
		// subscribed mailboxes only (LSUB) rely on it.
		for _, m := range store.DefaultMailboxes {
			if err := createMailbox(ctx, w, a.Address, m.Name, m.SpecialUse); err != nil {
				return err
			}
			if _, err := w.Exec(ctx, `INSERT INTO subscriptions (account, name) VALUES ($1, $2)`, a.Address, m.Name); err != nil {
				return err
			}
		}
		return nil
	})
}

const accountColumns = `address, role, quota, used, password_hash, created, scan, spam`

func scanAccount(r pgx.Row) (store.Account, error) {
	var a store.Account
	var role string
	var scan, spam []byte
	if err := r.Scan(&a.Address, &role, &a.Quota, &a.Used, &a.PasswordHash, &a.Created, &scan, &spam); err != nil {
		return a, err
	}
	a.Role = store.Role(role)
	a.Created = a.Created.UTC()
	if err := json.Unmarshal(scan, &a.Scan); err != nil {
		return a, fmt.Errorf("account %s: scan policy: %w", a.Address, err)
	}
	if err := json.Unmarshal(spam, &a.Spam); err != nil {
		return a, fmt.Errorf("account %s: spam policy: %w", a.Address, err)
	}
	return a, nil
}

func getAccount(ctx context.Context, tx querier, addr string) (store.Account, error) {
	a, err := scanAccount(tx.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts WHERE address = $1`, lower(addr)))
	if errors.Is(err, pgx.ErrNoRows) {
		return a, fmt.Errorf("account %s: %w", lower(addr), store.ErrNoSuchAccount)
	}
	return a, err
}

// Account returns one account.
func (s *Store) Account(ctx context.Context, addr string) (store.Account, error) {
	var a store.Account
	err := s.readOne(ctx, func(q querier) error {
		var err error
		a, err = getAccount(ctx, q, addr)
		return err
	})
	return a, err
}

// Accounts lists the accounts of a domain (all accounts when domain is
// ""), sorted by address.
func (s *Store) Accounts(ctx context.Context, domain string) ([]store.Account, error) {
	domain = lower(domain)
	var out []store.Account
	err := s.read(ctx, func(tx pgx.Tx) error {
		if domain != "" {
			if _, err := getDomain(ctx, tx, domain); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, `SELECT `+accountColumns+` FROM accounts WHERE $1 = '' OR domain = $1`, domain)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Account, error) { return scanAccount(r) })
		return err
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out, err
}

// accountRow is an account as a write holding its lock sees it.
type accountRow struct {
	store.Account
}

// lockAccounts locks the rows of accounts, in address order (so that
// writers to several accounts never deadlock), and returns them: every
// write to an account's mail does this first.
func (w *wtx) lockAccounts(ctx context.Context, addrs ...string) (map[string]accountRow, error) {
	var need []string
	for _, a := range addrs {
		a = lower(a)
		if _, ok := w.locked[a]; !ok && !contains(need, a) {
			need = append(need, a)
		}
	}
	sort.Strings(need)
	for _, a := range need {
		acct, err := scanAccount(w.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts WHERE address = $1 FOR UPDATE`, a))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("account %s: %w", a, store.ErrNoSuchAccount)
		}
		if err != nil {
			return nil, err
		}
		w.locked[a] = accountRow{acct}
	}
	return w.locked, nil
}

// lockAccount is lockAccounts of one.
func (w *wtx) lockAccount(ctx context.Context, addr string) (store.Account, error) {
	m, err := w.lockAccounts(ctx, addr)
	if err != nil {
		return store.Account{}, err
	}
	return m[lower(addr)].Account, nil
}

// addUsed changes a locked account's usage by delta.
func (w *wtx) addUsed(ctx context.Context, addr string, delta int64) error {
	addr = lower(addr)
	if delta == 0 {
		return nil
	}
	w.later(`UPDATE accounts SET used = used + $2 WHERE address = $1`, addr, delta)
	// The account is locked (every write locks it first): what it read
	// plus what it adds is what is stored.
	if r, ok := w.locked[addr]; ok {
		r.Used += delta
		w.locked[addr] = r
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (s *Store) updateAccount(ctx context.Context, addr string, sql string, args ...any) error {
	addr = lower(addr)
	return s.write(ctx, func(w *wtx) error {
		tag, err := w.Exec(ctx, sql, append([]any{addr}, args...)...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("account %s: %w", addr, store.ErrNoSuchAccount)
		}
		return nil
	})
}

// SetPasswordHash replaces an account's password hash.
func (s *Store) SetPasswordHash(ctx context.Context, addr, hash string) error {
	if hash == "" {
		return fmt.Errorf("%w: a password is required", store.ErrInvalid)
	}
	return s.updateAccount(ctx, addr, `UPDATE accounts SET password_hash = $2 WHERE address = $1`, hash)
}

// SetQuota sets an account's quota in bytes (0 = unlimited).
func (s *Store) SetQuota(ctx context.Context, addr string, quota int64) error {
	if quota < 0 {
		return fmt.Errorf("%w: quota cannot be negative", store.ErrInvalid)
	}
	return s.updateAccount(ctx, addr, `UPDATE accounts SET quota = $2 WHERE address = $1`, quota)
}

// SetRole changes an account's role.
func (s *Store) SetRole(ctx context.Context, addr string, role store.Role) error {
	if role != store.RoleAdmin && role != store.RoleUser {
		return fmt.Errorf("%w: role must be admin or user, not %q", store.ErrInvalid, role)
	}
	return s.updateAccount(ctx, addr, `UPDATE accounts SET role = $2 WHERE address = $1`, string(role))
}

// RemoveAccount deletes an account and all its mail.
func (s *Store) RemoveAccount(ctx context.Context, addr string) error {
	addr = lower(addr)
	return s.write(ctx, func(w *wtx) error {
		if _, err := w.lockAccount(ctx, addr); err != nil {
			return err
		}
		blobs, err := int64s(ctx, w, `DELETE FROM messages WHERE mailbox IN (SELECT id FROM mailboxes WHERE account = $1) RETURNING blob`, addr)
		if err != nil {
			return err
		}
		qb, err := int64s(ctx, w, `DELETE FROM quarantine WHERE account = $1 RETURNING blob`, addr)
		if err != nil {
			return err
		}
		if _, err := w.Exec(ctx, `DELETE FROM spam_trained WHERE account = $1`, addr); err != nil {
			return err
		}
		if err := w.dropBlobs(ctx, append(blobs, qb...)); err != nil {
			return err
		}
		if _, err := w.Exec(ctx, `DELETE FROM events WHERE account = $1`, addr); err != nil {
			return err
		}
		if _, err := w.Exec(ctx, `DELETE FROM spam_models WHERE owner = $1`, addr); err != nil {
			return err
		}
		_, err = w.Exec(ctx, `DELETE FROM accounts WHERE address = $1`, addr)
		return err
	})
}

func int64s(ctx context.Context, tx pgx.Tx, sql string, args ...any) ([]int64, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}
