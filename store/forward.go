package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"yubin/internal/address"
)

// MaxForwardTargets is how many targets one account may forward to.
const MaxForwardTargets = 10

// Forward is an account's forwarding rule.
type Forward struct {
	Targets  []string  `json:"targets"`   // normalised addresses, local or remote
	KeepCopy bool      `json:"keep_copy"` // also deliver to the account's INBOX
	Updated  time.Time `json:"updated"`
}

// ForwardTargets checks and normalises the forward targets of account acct
// as every backend's SetForward stores them, with resolve mapping a local
// address to its account (Directory.Resolve): a malformed address, the
// account itself (or one of its addresses at a child domain), a local
// address without an account, or more than MaxForwardTargets give
// ErrInvalid; duplicates are removed.
func ForwardTargets(ctx context.Context, resolve func(ctx context.Context, addr string) (string, error), acct string, targets []string) ([]string, error) {
	var norm []string
	for _, t := range targets {
		a, err := address.Parse(strings.TrimSpace(t))
		if err != nil {
			return nil, fmt.Errorf("%w: forward target %q: %v", ErrInvalid, t, err)
		}
		switch target, err := resolve(ctx, a.String()); {
		case err == nil && target == acct:
			return nil, fmt.Errorf("%w: %s cannot forward to itself (%s)", ErrInvalid, acct, a)
		case err == nil:
		case errors.Is(err, ErrNoSuchDomain):
			// remote
		case errors.Is(err, ErrNoSuchAccount):
			return nil, fmt.Errorf("%w: forward target %s: no such account here", ErrInvalid, a)
		default:
			return nil, err
		}
		if !slices.Contains(norm, a.String()) {
			norm = append(norm, a.String())
		}
	}
	if len(norm) > MaxForwardTargets {
		return nil, fmt.Errorf("%w: at most %d forward targets, %d given", ErrInvalid, MaxForwardTargets, len(norm))
	}
	return norm, nil
}
