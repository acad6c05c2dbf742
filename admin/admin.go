// Package admin holds Yubin's administration operations — domains and
// accounts — independent of how they are reached.
//
// Service performs them on an open store: its methods are the one place
// where input is validated. Each operation is also one entry of the table
// in ops.go, an Op with its name and request and response types. A running
// server owns the store's file lock, so it also serves the operations of
// the table on a local control socket (ListenControl, Service.ServeControl),
// and Client speaks to that socket. Both implement API and Do runs an Op on
// either; Open picks whichever works, so the CLI has one code path whether
// or not the server runs.
//
// Every operation validates its whole input before it writes anything and
// writes in one store transaction: on error nothing has changed. Errors are
// one human-readable line; errors.Is with the store's sentinels
// (store.ErrNoSuchDomain, store.ErrNoSuchAccount, store.ErrExists,
// store.ErrInvalid) tells them apart, also across the socket.
package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"yubin/internal/address"
	"yubin/internal/auth"
	"yubin/internal/notify"
	"yubin/internal/spam"
	"yubin/store"
)

// API runs administration operations, with Do: a *Service on an open
// store, a *Client through a running server's control socket. Open picks
// whichever works.
type API interface {
	// perform runs the operation named op (see Do): a Service calls
	// local, a Client sends req to the server and decodes its answer
	// into resp.
	perform(ctx context.Context, op string, req, resp any, local func(*Service) error) error
	// performStream runs a stream operation (see DoStream): its bytes
	// go to w, its answer into resp.
	performStream(ctx context.Context, op string, req, resp any, w io.Writer, local func(*Service) error) error
}

// Domain is a domain as the admin sees it.
type Domain struct {
	Name     string    `json:"name"`
	Parent   string    `json:"parent,omitempty"`   // set for a child domain
	Children []string  `json:"children,omitempty"` // child domains of a parent
	Accounts int       `json:"accounts"`           // accounts on it (always 0 on a child)
	Created  time.Time `json:"created"`
}

// Role names, as accepted by NewAccount.Role.
const (
	RoleAdmin = string(store.RoleAdmin)
	RoleUser  = string(store.RoleUser)
)

// NewAccount is the input of AddAccount.
type NewAccount struct {
	Address  string `json:"address"`
	Password string `json:"password"`        // clear text; hashed by the Service
	Role     string `json:"role,omitempty"`  // admin or user; "" = user
	Quota    *int64 `json:"quota,omitempty"` // bytes, 0 = unlimited; nil = the configured default
	// DryRun validates everything but the password (when empty) and
	// writes nothing: the CLI checks its arguments before prompting.
	DryRun bool `json:"dry_run,omitempty"`
}

// Account is an account without secrets.
type Account struct {
	Address string    `json:"address"`
	Role    string    `json:"role"`
	Quota   int64     `json:"quota"` // bytes; 0 = unlimited
	Used    int64     `json:"used"`  // bytes stored, exact
	Created time.Time `json:"created"`
}

// Mailbox is one mailbox of an account.
type Mailbox struct {
	Name       string `json:"name"`
	Messages   int    `json:"messages"`
	Size       int64  `json:"size"`
	SpecialUse string `json:"special_use,omitempty"`
}

// AccountDetail is what "account show" prints.
type AccountDetail struct {
	Account
	// Addresses are all the addresses the account receives mail for:
	// its own and the same local part at each child domain.
	Addresses []string  `json:"addresses"`
	Mailboxes []Mailbox `json:"mailboxes"`
}

// Error is an administration error: Msg is the one line shown to the user,
// Kind one of the store's sentinel errors (or nil for internal failures).
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Kind }

func errorf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// translate turns a store error into an *Error with a message free of the
// sentinels' generic text ("invalid request: ...").
func translate(err error) error {
	if err == nil {
		return nil
	}
	var ae *Error
	if errors.As(err, &ae) {
		return err
	}
	for _, k := range []error{store.ErrInvalid, store.ErrNoSuchDomain, store.ErrNoSuchAccount, store.ErrExists, store.ErrInUse} {
		if errors.Is(err, k) {
			msg := err.Error()
			msg = strings.TrimPrefix(msg, k.Error()+": ")
			return &Error{Kind: k, Msg: msg}
		}
	}
	return err
}

// Service performs administration operations on an open store.
type Service struct {
	st           store.Store
	defaultQuota int64
	reporter     *notify.Reporter // nil: reports cannot be sent
	trainer      *spam.Trainer    // releases quarantined mail and learns it as ham
	statusInfo   func(context.Context) StatusInfo
	dns          dnsSetup // dns.records, dns.check
}

// NewService returns a Service over st. defaultQuota (bytes, 0 = unlimited)
// applies to accounts added without a quota.
func NewService(st store.Store, defaultQuota int64) *Service {
	return &Service{st: st, defaultQuota: defaultQuota, trainer: spam.NewTrainer(st, nil)}
}

var _ API = (*Service)(nil)

func parseDomain(what, name string) (string, error) {
	d, err := address.ParseDomain(strings.TrimSpace(name))
	if err != nil {
		return "", errorf(store.ErrInvalid, "invalid %s %q: %v", what, name, err)
	}
	return d, nil
}

func parseAddress(addr string) (address.Address, error) {
	return parseWith(address.Parse, addr)
}

// parseWith parses addr with parse (address.Parse or ParseAccount) and
// words the error for the CLI.
func parseWith(parse func(string) (address.Address, error), addr string) (address.Address, error) {
	addr = strings.TrimSpace(addr)
	a, err := parse(addr)
	if err != nil {
		reason := err.Error()
		if r, ok := strings.CutPrefix(reason, fmt.Sprintf("address %q", addr)); ok {
			reason = strings.TrimPrefix(strings.TrimPrefix(r, ":"), " ")
		}
		return a, errorf(store.ErrInvalid, "invalid address %q: %s", addr, reason)
	}
	return a, nil
}

// AddDomain adds a parent domain, or a child of parent when parent != "".
func (s *Service) AddDomain(ctx context.Context, name, parent string) (Domain, error) {
	n, err := parseDomain("domain name", name)
	if err != nil {
		return Domain{}, err
	}
	p := ""
	if strings.TrimSpace(parent) != "" {
		if p, err = parseDomain("parent domain", parent); err != nil {
			return Domain{}, err
		}
		if p == n {
			return Domain{}, errorf(store.ErrInvalid, "domain %s cannot be its own parent", n)
		}
	}
	if _, err := s.st.Domain(ctx, n); err == nil {
		return Domain{}, errorf(store.ErrExists, "domain %s already exists", n)
	}
	if p != "" {
		pd, err := s.st.Domain(ctx, p)
		if errors.Is(err, store.ErrNoSuchDomain) {
			return Domain{}, errorf(store.ErrNoSuchDomain, "unknown parent domain %s (add it first)", p)
		} else if err != nil {
			return Domain{}, translate(err)
		}
		if pd.Parent != "" {
			return Domain{}, errorf(store.ErrInvalid, "%s is itself a child of %s; a child domain cannot have children", p, pd.Parent)
		}
	}
	if err := s.st.AddDomain(ctx, n, p); err != nil {
		if errors.Is(err, store.ErrExists) {
			return Domain{}, errorf(store.ErrExists, "domain %s already exists", n)
		}
		return Domain{}, translate(err)
	}
	return s.domain(n)
}

func (s *Service) domain(name string) (Domain, error) {
	all, err := s.Domains(context.Background())
	if err != nil {
		return Domain{}, err
	}
	for _, d := range all {
		if d.Name == name {
			return d, nil
		}
	}
	return Domain{}, errorf(store.ErrNoSuchDomain, "unknown domain %s", name)
}

// Domain returns one domain, with its children and its number of
// accounts.
func (s *Service) Domain(ctx context.Context, name string) (Domain, error) {
	d, err := parseDomain("domain", name)
	if err != nil {
		return Domain{}, err
	}
	return s.domain(d)
}

// Domains lists every domain, sorted by name.
func (s *Service) Domains(ctx context.Context) ([]Domain, error) {
	ds, err := s.st.Domains(ctx)
	if err != nil {
		return nil, translate(err)
	}
	accts, err := s.st.Accounts(ctx, "")
	if err != nil {
		return nil, translate(err)
	}
	count := map[string]int{}
	for _, a := range accts {
		count[a.Domain()]++
	}
	children := map[string][]string{}
	for _, d := range ds {
		if d.Parent != "" {
			children[d.Parent] = append(children[d.Parent], d.Name)
		}
	}
	out := make([]Domain, 0, len(ds))
	for _, d := range ds {
		out = append(out, Domain{Name: d.Name, Parent: d.Parent, Children: children[d.Name], Accounts: count[d.Name], Created: d.Created})
	}
	return out, nil
}

// RemoveDomain removes a domain without accounts and child domains.
func (s *Service) RemoveDomain(ctx context.Context, name string) error {
	n, err := parseDomain("domain name", name)
	if err != nil {
		return err
	}
	if err := s.st.RemoveDomain(ctx, n); err != nil {
		if errors.Is(err, store.ErrNoSuchDomain) {
			return errorf(store.ErrNoSuchDomain, "unknown domain %s", n)
		}
		return translate(err)
	}
	return nil
}

func checkRole(role string) (store.Role, error) {
	switch strings.ToLower(strings.TrimSpace(role)) {
	case "", RoleUser:
		return store.RoleUser, nil
	case RoleAdmin:
		return store.RoleAdmin, nil
	}
	return "", errorf(store.ErrInvalid, "invalid role %q: want admin or user", role)
}

func checkQuota(q int64) error {
	if q < 0 {
		return errorf(store.ErrInvalid, "invalid quota %d: cannot be negative (0 = unlimited)", q)
	}
	return nil
}

func checkPassword(pw string) error {
	if pw == "" {
		return errorf(store.ErrInvalid, "the password is empty")
	}
	if len(pw) > auth.MaxPasswordLen {
		return errorf(store.ErrInvalid, "the password is longer than %d bytes", auth.MaxPasswordLen)
	}
	if strings.ContainsAny(pw, "\r\n\x00") {
		return errorf(store.ErrInvalid, "the password contains a line break or NUL byte")
	}
	return nil
}

func hash(pw string) (string, error) {
	if err := checkPassword(pw); err != nil {
		return "", err
	}
	h, err := auth.HashPassword(pw)
	if err != nil {
		return "", errorf(store.ErrInvalid, "password: %v", err)
	}
	return h, nil
}

// AddAccount creates an account (with its default mailboxes).
func (s *Service) AddAccount(ctx context.Context, na NewAccount) (Account, error) {
	a, err := parseWith(address.ParseAccount, na.Address)
	if err != nil {
		return Account{}, err
	}
	addr := a.String()
	role, err := checkRole(na.Role)
	if err != nil {
		return Account{}, err
	}
	quota := s.defaultQuota
	if na.Quota != nil {
		quota = *na.Quota
	}
	if err := checkQuota(quota); err != nil {
		return Account{}, err
	}
	d, err := s.st.Domain(ctx, a.Domain)
	if errors.Is(err, store.ErrNoSuchDomain) {
		return Account{}, errorf(store.ErrNoSuchDomain, "unknown domain %s (add it first with \"yubin domain add %s\")", a.Domain, a.Domain)
	} else if err != nil {
		return Account{}, translate(err)
	}
	if d.Parent != "" {
		return Account{}, errorf(store.ErrInvalid, "%s is a child domain of %s and has no accounts of its own; add %s@%s instead (it receives mail for both)", a.Domain, d.Parent, a.Local, d.Parent)
	}
	if _, err := s.st.Account(ctx, addr); err == nil {
		return Account{}, errorf(store.ErrExists, "account %s already exists", addr)
	}
	if na.DryRun && na.Password == "" {
		return Account{Address: addr, Role: string(role), Quota: quota}, nil
	}
	if err := checkPassword(na.Password); err != nil {
		return Account{}, err
	}
	if na.DryRun {
		return Account{Address: addr, Role: string(role), Quota: quota}, nil
	}
	h, err := hash(na.Password)
	if err != nil {
		return Account{}, err
	}
	err = s.st.AddAccount(ctx, store.Account{Address: addr, Role: role, Quota: quota, PasswordHash: h})
	if errors.Is(err, store.ErrExists) {
		return Account{}, errorf(store.ErrExists, "account %s already exists", addr)
	} else if err != nil {
		return Account{}, translate(err)
	}
	return s.account(ctx, addr)
}

func plain(a store.Account) Account {
	return Account{Address: a.Address, Role: string(a.Role), Quota: a.Quota, Used: a.Used, Created: a.Created}
}

// account looks up an account by its (already parsed) address.
func (s *Service) account(ctx context.Context, addr string) (Account, error) {
	a, err := s.st.Account(ctx, addr)
	if errors.Is(err, store.ErrNoSuchAccount) {
		return Account{}, errorf(store.ErrNoSuchAccount, "unknown account %s", addr)
	} else if err != nil {
		return Account{}, translate(err)
	}
	return plain(a), nil
}

// lookup parses addr and returns the account.
func (s *Service) lookup(ctx context.Context, addr string) (Account, error) {
	a, err := parseAddress(addr)
	if err != nil {
		return Account{}, err
	}
	return s.account(ctx, a.String())
}

// SetPassword replaces an account's password.
func (s *Service) SetPassword(ctx context.Context, addr, password string) error {
	a, err := s.lookup(ctx, addr)
	if err != nil {
		return err
	}
	h, err := hash(password)
	if err != nil {
		return err
	}
	if err := s.st.SetPasswordHash(ctx, a.Address, h); err != nil {
		return s.notFound(a.Address, err)
	}
	return nil
}

func (s *Service) notFound(addr string, err error) error {
	if errors.Is(err, store.ErrNoSuchAccount) {
		return errorf(store.ErrNoSuchAccount, "unknown account %s", addr)
	}
	return translate(err)
}

// SetQuota sets an account's quota in bytes (0 = unlimited).
func (s *Service) SetQuota(ctx context.Context, addr string, quota int64) (Account, error) {
	a, err := s.lookup(ctx, addr)
	if err != nil {
		return Account{}, err
	}
	if err := checkQuota(quota); err != nil {
		return Account{}, err
	}
	if err := s.st.SetQuota(ctx, a.Address, quota); err != nil {
		return Account{}, s.notFound(a.Address, err)
	}
	return s.account(ctx, a.Address)
}

// SetRole changes an account's role: admin (the domain's site admin) or
// user.
func (s *Service) SetRole(ctx context.Context, addr, role string) (Account, error) {
	a, err := s.lookup(ctx, addr)
	if err != nil {
		return Account{}, err
	}
	if strings.TrimSpace(role) == "" {
		return Account{}, errorf(store.ErrInvalid, "role must be admin or user")
	}
	r, err := checkRole(role)
	if err != nil {
		return Account{}, err
	}
	if err := s.st.SetRole(ctx, a.Address, r); err != nil {
		return Account{}, s.notFound(a.Address, err)
	}
	return s.account(ctx, a.Address)
}

// Accounts lists the accounts of a domain, or all when domain is "", sorted
// by domain and address. A child domain lists the accounts of its parent,
// which receive its mail.
func (s *Service) Accounts(ctx context.Context, domain string) ([]Account, error) {
	d := ""
	if strings.TrimSpace(domain) != "" {
		var err error
		if d, err = parseDomain("domain name", domain); err != nil {
			return nil, err
		}
		dom, err := s.st.Domain(ctx, d)
		if errors.Is(err, store.ErrNoSuchDomain) {
			return nil, errorf(store.ErrNoSuchDomain, "unknown domain %s", d)
		} else if err != nil {
			return nil, translate(err)
		}
		if dom.Parent != "" {
			d = dom.Parent
		}
	}
	as, err := s.st.Accounts(ctx, d)
	if err != nil {
		return nil, translate(err)
	}
	out := make([]Account, 0, len(as))
	for _, a := range as {
		out = append(out, plain(a))
	}
	// By domain, then by address.
	sort.SliceStable(out, func(i, j int) bool {
		di, dj := domainOf(out[i].Address), domainOf(out[j].Address)
		if di != dj {
			return di < dj
		}
		return out[i].Address < out[j].Address
	})
	return out, nil
}

func domainOf(addr string) string { return addr[strings.LastIndexByte(addr, '@')+1:] }

// Account returns one account with its mailboxes.
func (s *Service) Account(ctx context.Context, addr string) (AccountDetail, error) {
	a, err := s.lookup(ctx, addr)
	if err != nil {
		return AccountDetail{}, err
	}
	boxes, err := s.st.Mailboxes(ctx, a.Address)
	if err != nil {
		return AccountDetail{}, s.notFound(a.Address, err)
	}
	det := AccountDetail{Account: a, Addresses: []string{a.Address}, Mailboxes: make([]Mailbox, 0, len(boxes))}
	for _, b := range boxes {
		det.Mailboxes = append(det.Mailboxes, Mailbox{Name: b.Name, Messages: b.Messages, Size: b.Size, SpecialUse: b.SpecialUse})
	}
	ds, err := s.st.Domains(ctx)
	if err != nil {
		return AccountDetail{}, translate(err)
	}
	at := strings.LastIndexByte(a.Address, '@')
	local, dom := a.Address[:at], a.Address[at+1:]
	for _, d := range ds {
		if d.Parent == dom {
			det.Addresses = append(det.Addresses, local+"@"+d.Name)
		}
	}
	return det, nil
}

// RemoveAccount deletes an account and all its mail.
func (s *Service) RemoveAccount(ctx context.Context, addr string) error {
	a, err := s.lookup(ctx, addr)
	if err != nil {
		return err
	}
	if err := s.st.RemoveAccount(ctx, a.Address); err != nil {
		return s.notFound(a.Address, err)
	}
	return nil
}
