package postgres

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"yubin/store"
)

// DomainSettings returns a domain's settings (the defaults until set).
func (s *Store) DomainSettings(ctx context.Context, domain string) (store.DomainSettings, error) {
	var ds store.DomainSettings
	domain = lower(domain)
	var data []byte
	err := s.pool.QueryRow(ctx, `SELECT settings FROM domains WHERE name = $1`, domain).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return ds, fmt.Errorf("domain %s: %w", domain, store.ErrNoSuchDomain)
	}
	if err != nil {
		return ds, dbError(err)
	}
	if data != nil {
		if err := json.Unmarshal(data, &ds); err != nil {
			return ds, fmt.Errorf("domain %s: settings: %w", domain, err)
		}
	}
	return ds, nil
}

// SetDomainSettings replaces a domain's settings.
func (s *Store) SetDomainSettings(ctx context.Context, domain string, ds store.DomainSettings) error {
	switch ds.Language {
	case "", "en", "ja", "both":
	default:
		return fmt.Errorf("%w: language must be en, ja or both, not %q", store.ErrInvalid, ds.Language)
	}
	if math.IsNaN(ds.SpamRejectScore) || ds.SpamRejectScore < 0 || ds.SpamRejectScore > 1 {
		return fmt.Errorf("%w: spam reject score must be between 0 (off) and 1, not %v", store.ErrInvalid, ds.SpamRejectScore)
	}
	data, err := json.Marshal(ds)
	if err != nil {
		return err
	}
	domain = lower(domain)
	return s.write(ctx, func(w *wtx) error {
		tag, err := w.Exec(ctx, `UPDATE domains SET settings = $2 WHERE name = $1`, domain, data)
		if err == nil && tag.RowsAffected() == 0 {
			return fmt.Errorf("domain %s: %w", domain, store.ErrNoSuchDomain)
		}
		return err
	})
}

// SetScanPolicy replaces an account's scanning policy.
func (s *Store) SetScanPolicy(ctx context.Context, addr string, p store.ScanPolicy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	data, _ := json.Marshal(p.Effective())
	return s.updateAccount(ctx, addr, `UPDATE accounts SET scan = $2 WHERE address = $1`, data)
}

// SetSpamPolicy replaces an account's spam filter policy.
func (s *Store) SetSpamPolicy(ctx context.Context, addr string, p store.SpamPolicy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	data, _ := json.Marshal(p)
	return s.updateAccount(ctx, addr, `UPDATE accounts SET spam = $2 WHERE address = $1`, data)
}

// SetForward sets (or with no targets clears) an account's forwarding.
func (s *Store) SetForward(ctx context.Context, addr string, targets []string, keepCopy bool) (store.Forward, error) {
	acct, err := s.Resolve(ctx, addr)
	if err != nil {
		return store.Forward{}, err
	}
	norm, err := store.ForwardTargets(ctx, s.Resolve, acct, targets)
	if err != nil {
		return store.Forward{}, err
	}
	f := store.Forward{Targets: norm, KeepCopy: keepCopy, Updated: s.now().UTC()}
	var data []byte
	if len(norm) > 0 {
		data, _ = json.Marshal(f)
	}
	if err := s.updateAccount(ctx, acct, `UPDATE accounts SET forward = $2 WHERE address = $1`, data); err != nil {
		return store.Forward{}, err
	}
	if len(norm) == 0 {
		return store.Forward{}, nil
	}
	return f, nil
}

// ClearForward removes an account's forwarding.
func (s *Store) ClearForward(ctx context.Context, addr string) error {
	_, err := s.SetForward(ctx, addr, nil, false)
	return err
}

// GetForward returns an account's forwarding (zero when none).
func (s *Store) GetForward(ctx context.Context, addr string) (store.Forward, error) {
	var f store.Forward
	var data []byte
	err := s.pool.QueryRow(ctx, `SELECT forward FROM accounts WHERE address = $1`, lower(addr)).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return f, fmt.Errorf("account %s: %w", lower(addr), store.ErrNoSuchAccount)
	}
	if err != nil {
		return f, dbError(err)
	}
	if data != nil {
		err = json.Unmarshal(data, &f)
	}
	return f, err
}

// SRSSecret returns the server's SRS key, made on first use (by whichever
// node comes first: the others read it).
func (s *Store) SRSSecret(ctx context.Context) ([]byte, error) {
	fresh := make([]byte, 32)
	rand.Read(fresh)
	var key []byte
	err := s.write(ctx, func(w *wtx) error {
		if _, err := w.Exec(ctx, `INSERT INTO meta (key, value) VALUES ('srs-secret', $1) ON CONFLICT DO NOTHING`, fresh); err != nil {
			return err
		}
		return w.QueryRow(ctx, `SELECT value FROM meta WHERE key = 'srs-secret'`).Scan(&key)
	})
	return key, err
}

// DKIMKeys returns a domain's DKIM keys (none until made).
func (s *Store) DKIMKeys(ctx context.Context, domain string) ([]store.DKIMKey, error) {
	var keys []store.DKIMKey
	var data []byte
	err := s.pool.QueryRow(ctx, `SELECT keys FROM dkim WHERE domain = $1`, lower(domain)).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, dbError(err)
	}
	return keys, json.Unmarshal(data, &keys)
}

// EnsureDKIMKeys returns the domain's keys, storing generate's on first
// use; of nodes racing, the first to commit wins and the others read its.
func (s *Store) EnsureDKIMKeys(ctx context.Context, domain string, generate func() ([]store.DKIMKey, error)) ([]store.DKIMKey, error) {
	domain = lower(domain)
	if _, err := s.Domain(ctx, domain); err != nil {
		return nil, err
	}
	if keys, err := s.DKIMKeys(ctx, domain); err != nil || len(keys) > 0 {
		return keys, err
	}
	fresh, err := generate()
	if err != nil {
		return nil, fmt.Errorf("generating DKIM keys for %s: %w", domain, err)
	}
	data, err := json.Marshal(fresh)
	if err != nil {
		return nil, err
	}
	err = s.write(ctx, func(w *wtx) error {
		_, err := w.Exec(ctx, `INSERT INTO dkim (domain, keys) VALUES ($1, $2) ON CONFLICT DO NOTHING`, domain, data)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.DKIMKeys(ctx, domain)
}

// DeliverOnce delivers d unless key was delivered before.
func (s *Store) DeliverOnce(ctx context.Context, key string, d store.Delivery) (bool, error) {
	if key == "" {
		return false, fmt.Errorf("%w: empty key", store.ErrInvalid)
	}
	_, err := s.deliverBatch(ctx, []store.Delivery{d}, nil, key)
	if errors.Is(err, errDeliveredBefore) {
		return false, nil
	}
	return err == nil, err
}

// LastOnceKey returns the greatest key DeliverOnce recorded with prefix.
func (s *Store) LastOnceKey(ctx context.Context, prefix string) (string, error) {
	if prefix == "" {
		return "", fmt.Errorf("%w: empty prefix", store.ErrInvalid)
	}
	var last *string
	err := s.pool.QueryRow(ctx, `SELECT max(key) FROM once_keys WHERE starts_with(key, $1)`, prefix).Scan(&last)
	if err != nil || last == nil {
		return "", dbError(err)
	}
	return *last, nil
}

// CheckQuotaWarning reports once per crossing that an account's usage went
// over percent of its quota.
func (s *Store) CheckQuotaWarning(ctx context.Context, account string, percent int) (bool, store.Account, error) {
	var crossed bool
	var acct store.Account
	err := s.write(ctx, func(w *wtx) error {
		crossed = false
		a, err := w.lockAccount(ctx, account)
		if err != nil {
			return err
		}
		acct = a
		var warned bool
		if err := w.QueryRow(ctx, `SELECT quota_warned FROM accounts WHERE address = $1`, a.Address).Scan(&warned); err != nil {
			return err
		}
		over := a.Quota > 0 && a.Used*100 >= a.Quota*int64(percent)
		if over == warned {
			return nil
		}
		crossed = over
		_, err = w.Exec(ctx, `UPDATE accounts SET quota_warned = $2 WHERE address = $1`, a.Address, over)
		return err
	})
	return crossed, acct, err
}

// RecordStop keeps what scanning stopped.
func (s *Store) RecordStop(ctx context.Context, st store.Stop) error {
	if st.Time.IsZero() {
		st.Time = s.now()
	}
	st.Time = st.Time.UTC()
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return s.write(ctx, func(w *wtx) error {
		_, err := w.Exec(ctx, `INSERT INTO stops (time_ns, stop) VALUES ($1, $2)`, nanos(st.Time), data)
		return err
	})
}

// Stops returns the stops from since until until, of one domain's mail
// or ("") all, in time order.
func (s *Store) Stops(ctx context.Context, since, until time.Time, domain string) ([]store.Stop, error) {
	domain = lower(domain)
	rows, err := s.pool.Query(ctx, `SELECT stop FROM stops WHERE time_ns >= $1 AND time_ns < $2 ORDER BY time_ns, id`, nanos(since), nanos(until))
	if err != nil {
		return nil, dbError(err)
	}
	var out []store.Stop
	var data []byte
	_, err = pgx.ForEachRow(rows, []any{&data}, func() error {
		var st store.Stop
		if err := json.Unmarshal(data, &st); err != nil {
			return fmt.Errorf("corrupt stop record: %w", err)
		}
		if domain == "" || slices.ContainsFunc(st.Domains, func(d string) bool { return strings.EqualFold(d, domain) }) {
			out = append(out, st)
		}
		return nil
	})
	return out, err
}

// PruneStops deletes the stops before before.
func (s *Store) PruneStops(ctx context.Context, before time.Time) (int, error) {
	var n int
	err := s.write(ctx, func(w *wtx) error {
		tag, err := w.Exec(ctx, `DELETE FROM stops WHERE time_ns < $1`, nanos(before))
		n = int(tag.RowsAffected())
		return err
	})
	return n, err
}

// nanos is t in Unix nanoseconds, clamped as bolt's keys are.
func nanos(t time.Time) int64 {
	if t.Before(time.Unix(0, 0)) {
		return 0
	}
	if t.After(time.Unix(0, 1<<62)) {
		return 1 << 62
	}
	return t.UnixNano()
}
