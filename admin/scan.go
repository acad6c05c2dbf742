package admin

import (
	"context"
	"slices"
	"strings"
	"time"

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

// StopsQuery is the request of OpScanStops: the stops concerning an
// account (as sender or recipient, at any of its addresses) in the last
// Days days (1 to MaxStopDays; 0 = 7).
type StopsQuery struct {
	Address string `json:"address"`
	Days    int    `json:"days,omitempty"`
}

// MaxStopDays is how far back OpScanStops looks at most.
const MaxStopDays = 90

// Stop is one message scanning stopped (store.Stop).
type Stop = store.Stop

// ScanStops returns what scanning stopped that concerned an account in the
// last days, newest first.
func (s *Service) ScanStops(ctx context.Context, q StopsQuery) ([]Stop, error) {
	days := q.Days
	if days == 0 {
		days = 7
	}
	if days < 1 || days > MaxStopDays {
		return nil, errorf(store.ErrInvalid, "days must be 1 to %d, not %d", MaxStopDays, q.Days)
	}
	det, err := s.Account(ctx, q.Address)
	if err != nil {
		return nil, err
	}
	mine := map[string]bool{}
	for _, a := range det.Addresses {
		mine[strings.ToLower(a)] = true
	}
	now := time.Now()
	all, err := s.st.Stops(ctx, now.Add(-time.Duration(days)*24*time.Hour), now.Add(time.Minute), domainOf(det.Address))
	if err != nil {
		return nil, translate(err)
	}
	out := []Stop{}
	for _, st := range all {
		hit := mine[strings.ToLower(st.Sender)]
		for _, r := range st.Recipients {
			hit = hit || mine[strings.ToLower(r)]
		}
		if hit {
			out = append(out, st)
		}
	}
	slices.Reverse(out)
	return out, nil
}
