package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"

	"yubin/store"
)

// Scope is what a caller may touch: with Account set, that account only
// (a user); with Domain set, every account of that parent domain and of its
// child domains (the domain's admin); with neither, everything (the
// server's owner, who runs the CLI or speaks to the control socket).
//
// The rule is enforced here, in one place, for every caller that is not
// the owner: a caller with a scope puts it in the context (WithScope), and
// Do then checks the request of every operation against it before the
// operation runs (see authorize and the op constructors in ops.go). An
// operation that has not declared what it touches is refused to every
// scoped caller. The web (internal/web) calls the Service with the scope of
// the account logged in; the CLI, the owner, never has one.
type Scope struct {
	Account string `json:"account,omitempty"`
	Domain  string `json:"domain,omitempty"`
}

// IsOwner reports whether the scope is the owner's: everything.
func (sc Scope) IsOwner() bool { return sc.Account == "" && sc.Domain == "" }

// check normalizes a scope.
func (sc Scope) check() (Scope, error) {
	switch {
	case sc.Account != "" && sc.Domain != "":
		return sc, errorf(store.ErrInvalid, "a scope is an account or a domain, not both")
	case sc.Account != "":
		a, err := parseAddress(sc.Account)
		return Scope{Account: a.String()}, err
	case sc.Domain != "":
		d, err := parseDomain("domain", sc.Domain)
		return Scope{Domain: d}, err
	}
	return sc, nil
}

// holds reports whether account (an account's own address, on a parent
// domain) is in the scope.
func (sc Scope) holds(account string) bool {
	switch {
	case sc.Account != "":
		return strings.EqualFold(account, sc.Account)
	case sc.Domain != "":
		return strings.EqualFold(domainOf(account), sc.Domain)
	}
	return true
}

func (sc Scope) String() string {
	switch {
	case sc.Account != "":
		return sc.Account
	case sc.Domain != "":
		return sc.Domain
	}
	return "everything"
}

type scopeKey struct{}

// WithScope returns a context whose operations (Do on a *Service) are
// limited to sc. The owner's scope (the zero Scope) limits nothing.
func WithScope(ctx context.Context, sc Scope) context.Context {
	return context.WithValue(ctx, scopeKey{}, sc)
}

// ScopeFrom returns the scope WithScope put in ctx: the owner's when none.
func ScopeFrom(ctx context.Context) Scope {
	sc, _ := ctx.Value(scopeKey{}).(Scope)
	return sc
}

// ScopeOf returns the scope of an account that is logged in: its
// domain's for an admin, its own for a user.
func (s *Service) ScopeOf(ctx context.Context, addr string) (Scope, error) {
	a, err := s.lookup(ctx, addr)
	if err != nil {
		return Scope{}, err
	}
	if a.Role == RoleAdmin {
		return Scope{Domain: domainOf(a.Address)}, nil
	}
	return Scope{Account: a.Address}, nil
}

// Caller is an account logged in elsewhere than the CLI (the web): who it
// is, what it may touch, and a stamp of its password.
type Caller struct {
	Address string
	Role    string
	Scope   Scope
	// Stamp changes whenever the account's password does, by any path:
	// a session keeps the stamp it began with and ends when it differs.
	// It is a hash of the password hash, never the hash itself.
	Stamp string
}

// Caller returns the account addr as a caller: its scope and password
// stamp, read now. An unknown account is store.ErrNoSuchAccount.
func (s *Service) Caller(ctx context.Context, addr string) (Caller, error) {
	a, err := parseAddress(addr)
	if err != nil {
		return Caller{}, err
	}
	acct, err := s.st.Account(ctx, a.String())
	if err != nil {
		return Caller{}, s.notFound(a.String(), err)
	}
	sum := sha256.Sum256([]byte("yubin session stamp\x00" + acct.PasswordHash))
	c := Caller{Address: acct.Address, Role: string(acct.Role), Scope: Scope{Account: acct.Address}, Stamp: hex.EncodeToString(sum[:16])}
	if acct.Role == store.RoleAdmin {
		c.Scope = Scope{Domain: domainOf(acct.Address)}
	}
	return c, nil
}

// requestScope returns the scope an operation whose request names one
// (the quarantine's) runs with: the request's, which must lie within the
// context's (a scoped caller cannot widen it).
func (s *Service) requestScope(ctx context.Context, req Scope) (Scope, error) {
	req, err := req.check()
	if err != nil {
		return req, err
	}
	outer := ScopeFrom(ctx)
	if outer.IsOwner() {
		return req, nil
	}
	outer, err = outer.check()
	if err != nil {
		return outer, err
	}
	switch {
	case req.IsOwner(), req == outer:
		return outer, nil
	case outer.Domain != "" && req.Account != "" && outer.holds(req.Account):
		return req, nil
	}
	return Scope{}, errorf(ErrDenied, "the scope %s is outside yours (%s)", req, outer)
}

// target is what an operation's request touches, for authorize.
type target struct {
	account   string // an address: the account that receives it
	domain    string // a domain: its parent's admin may
	adminOnly bool   // for account: a user may not, even their own
}

// onAccount is an operation on the account receiving addr: the account
// itself may, and its domain's admin.
func onAccount(addr string) target { return target{account: addr} }

// onManaged is an operation on an account that only its domain's admin
// may perform (a quota, a removal), not the account itself.
func onManaged(addr string) target { return target{account: addr, adminOnly: true} }

// onDomain is an operation on a domain (or a new account's domain): only
// the admin of the domain, or of its parent.
func onDomain(d string) target { return target{domain: d} }

// authorize checks that sc may perform an operation touching t. Errors
// are ErrDenied, and do not tell whether what is outside the scope exists.
// Malformed input inside the scope is left to the operation to report.
func (s *Service) authorize(ctx context.Context, sc Scope, op string, t target) error {
	if sc.IsOwner() {
		return nil
	}
	sc, err := sc.check()
	if err != nil {
		return err
	}
	what := t.account
	if what == "" {
		what = t.domain
	}
	denied := errorf(ErrDenied, "%s on %s is outside your scope (%s)", op, strings.TrimSpace(what), sc)
	switch {
	case t.account != "":
		if t.adminOnly && sc.Domain == "" {
			return errorf(ErrDenied, "%s is for the domain's admin", op)
		}
		a, err := parseAddress(t.account)
		if err != nil {
			if sc.Domain != "" {
				return err // the admin's own typing
			}
			return denied
		}
		acct, err := s.st.Resolve(ctx, a.String())
		switch {
		case err == nil:
			if sc.holds(acct) {
				return nil
			}
			return denied
		case errors.Is(err, store.ErrNoSuchAccount) && sc.Domain != "":
			// An unknown address on the admin's own domains: the
			// operation says it is unknown.
			if s.domainInScope(ctx, sc, a.Domain) {
				return nil
			}
			return denied
		case errors.Is(err, store.ErrNoSuchAccount), errors.Is(err, store.ErrNoSuchDomain):
			return denied
		}
		return translate(err)
	case t.domain != "":
		if sc.Domain == "" {
			return denied
		}
		d, err := parseDomain("domain", t.domain)
		if err != nil {
			return err
		}
		if s.domainInScope(ctx, sc, d) {
			return nil
		}
		return denied
	}
	return denied
}

// domainInScope reports whether domain d is sc's domain or one of its
// children.
func (s *Service) domainInScope(ctx context.Context, sc Scope, d string) bool {
	d = strings.ToLower(d)
	if sc.Domain == "" {
		return false
	}
	if d == sc.Domain {
		return true
	}
	dom, err := s.st.Domain(ctx, d)
	return err == nil && strings.EqualFold(dom.Parent, sc.Domain)
}
