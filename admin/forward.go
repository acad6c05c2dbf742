package admin

import (
	"context"
	"errors"
	"slices"

	"yubin/store"
)

// Forwarding is an account's forwarding rule as the admin sees it.
type Forwarding struct {
	Address  string   `json:"address"`
	Targets  []string `json:"targets"`   // none: no forwarding
	KeepCopy bool     `json:"keep_copy"` // also keep a copy in the INBOX
}

// MaxForwardTargets is how many targets one account may have.
const MaxForwardTargets = store.MaxForwardTargets

// accountOf checks addr and returns the account that receives its mail.
func (s *Service) accountOf(ctx context.Context, addr string) (string, error) {
	a, err := parseAddress(addr)
	if err != nil {
		return "", err
	}
	acct, err := s.st.Resolve(ctx, a.String())
	if errors.Is(err, store.ErrNoSuchDomain) {
		return "", errorf(store.ErrNoSuchDomain, "%s is not on one of this server's domains", a)
	}
	if errors.Is(err, store.ErrNoSuchAccount) {
		return "", errorf(store.ErrNoSuchAccount, "no account %s", a)
	}
	return acct, translate(err)
}

// Forward returns an account's forwarding rule.
func (s *Service) Forward(ctx context.Context, addr string) (Forwarding, error) {
	acct, err := s.accountOf(ctx, addr)
	if err != nil {
		return Forwarding{}, err
	}
	f, err := s.st.GetForward(ctx, acct)
	if err != nil {
		return Forwarding{}, translate(err)
	}
	return Forwarding{Address: acct, Targets: nonNil(f.Targets), KeepCopy: f.KeepCopy}, nil
}

// SetForward replaces an account's forwarding rule as a whole: the targets,
// local or remote, and the keep-copy flag. More than MaxForwardTargets
// targets, a malformed target, the account itself or an unknown local
// address is refused and nothing changes.
func (s *Service) SetForward(ctx context.Context, addr string, targets []string, keepCopy bool) (Forwarding, error) {
	acct, err := s.accountOf(ctx, addr)
	if err != nil {
		return Forwarding{}, err
	}
	if len(targets) == 0 {
		return Forwarding{}, errorf(store.ErrInvalid, "forward set: give at least one target (use \"forward clear\" to stop forwarding)")
	}
	for _, t := range targets {
		if _, err := parseAddress(t); err != nil {
			var ae *Error
			if errors.As(err, &ae) {
				ae.Msg = "forward target: " + ae.Msg
			}
			return Forwarding{}, err
		}
	}
	f, err := s.st.SetForward(ctx, acct, targets, keepCopy)
	if err != nil {
		return Forwarding{}, translate(err)
	}
	return Forwarding{Address: acct, Targets: nonNil(f.Targets), KeepCopy: f.KeepCopy}, nil
}

// ClearForward stops an account's forwarding.
func (s *Service) ClearForward(ctx context.Context, addr string) error {
	acct, err := s.accountOf(ctx, addr)
	if err != nil {
		return err
	}
	return translate(s.st.ClearForward(ctx, acct))
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}
