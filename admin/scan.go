package admin

import (
	"context"

	"yubin/store"
)

// ScanPolicy is an account's inbound scanning policy (defaults filled in).
type ScanPolicy struct {
	Address string `json:"address"`
	store.ScanPolicy
}

// ScanPolicy returns an account's inbound scanning policy.
func (s *Service) ScanPolicy(ctx context.Context, addr string) (ScanPolicy, error) {
	a, err := parseAddress(addr)
	if err != nil {
		return ScanPolicy{}, err
	}
	acct, err := s.st.Account(ctx, a.String())
	if err != nil {
		return ScanPolicy{}, translate(err)
	}
	return ScanPolicy{Address: acct.Address, ScanPolicy: acct.Scan.Effective()}, nil
}

// SetScanPolicy changes an account's inbound scanning policy: the non-empty
// fields of change replace the account's current ones; the others stay.
func (s *Service) SetScanPolicy(ctx context.Context, addr string, change store.ScanPolicy) (ScanPolicy, error) {
	if err := change.Validate(); err != nil {
		return ScanPolicy{}, translate(err)
	}
	cur, err := s.ScanPolicy(ctx, addr)
	if err != nil {
		return ScanPolicy{}, err
	}
	p := cur.ScanPolicy
	for _, f := range []struct{ dst, src *store.ScanAction }{
		{&p.Oversize, &change.Oversize}, {&p.Depth, &change.Depth}, {&p.ExtractSize, &change.ExtractSize},
		{&p.Partial, &change.Partial}, {&p.Encrypted, &change.Encrypted},
	} {
		if *f.src != "" {
			*f.dst = *f.src
		}
	}
	if err := s.st.SetScanPolicy(ctx, cur.Address, p); err != nil {
		return ScanPolicy{}, translate(err)
	}
	return ScanPolicy{Address: cur.Address, ScanPolicy: p.Effective()}, nil
}
