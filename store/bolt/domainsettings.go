package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"yubin/store"

	bbolt "go.etcd.io/bbolt"
)

var (
	bDomainSettings = []byte("domainsettings")
	bOnce           = []byte("once")
	bQuotaWarned    = []byte("quotawarned")
)

// DomainSettings returns a domain's settings (defaults if never set).
func (s *Store) DomainSettings(ctx context.Context, domain string) (store.DomainSettings, error) {
	var ds store.DomainSettings
	domain = strings.ToLower(domain)
	err := s.view(func(tx *bbolt.Tx) error {
		var d store.Domain
		if !getJSON(tx.Bucket(bDomains), domain, &d) {
			return fmt.Errorf("domain %s: %w", domain, store.ErrNoSuchDomain)
		}
		if b := tx.Bucket(bDomainSettings); b != nil {
			var stored struct {
				store.DomainSettings
				Created string `json:"domain_created"`
			}
			// Settings of an earlier domain of the same name do not count.
			if getJSON(b, domain, &stored) && stored.Created == d.Created.String() {
				ds = stored.DomainSettings
			}
		}
		return nil
	})
	return ds, err
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
	domain = strings.ToLower(domain)
	return s.update(ctx, func(tx *bbolt.Tx) error {
		var d store.Domain
		if !getJSON(tx.Bucket(bDomains), domain, &d) {
			return fmt.Errorf("domain %s: %w", domain, store.ErrNoSuchDomain)
		}
		b, err := tx.CreateBucketIfNotExists(bDomainSettings)
		if err != nil {
			return err
		}
		return putJSON(b, domain, struct {
			store.DomainSettings
			Created string `json:"domain_created"`
		}{ds, d.Created.String()})
	})
}

// DeliverOnce delivers d only if nothing was delivered under key before,
// and records key in the same transaction: a report keyed by its day is
// sent exactly once, across restarts and crashes. It reports whether it
// delivered.
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
	last := ""
	err := s.view(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bOnce)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		p := []byte(prefix)
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
			last = string(k)
		}
		return nil
	})
	return last, err
}

// errDeliveredBefore says DeliverOnce's key was recorded before.
var errDeliveredBefore = errors.New("delivered before under this key")

// CheckQuotaWarning reports whether account has just crossed percent of
// its quota: true once when usage reaches it, and again only after usage
// has gone below it and back. Accounts without a quota never cross.
func (s *Store) CheckQuotaWarning(ctx context.Context, account string, percent int) (bool, store.Account, error) {
	var crossed bool
	var acct store.Account
	// Most deliveries change nothing: find out without a write.
	change := true
	err := s.accountUse(account, func(tx *bbolt.Tx, a store.Account) error {
		acct = a
		over := a.Quota > 0 && a.Used*100 >= a.Quota*int64(percent)
		b := tx.Bucket(bQuotaWarned)
		warned := b != nil && b.Get([]byte(a.Address)) != nil
		change = over != warned
		return nil
	})
	if err != nil || !change {
		return false, acct, err
	}
	err = s.groupWrite(ctx, func(tx *bbolt.Tx) error {
		crossed = false
		a, err := getAccount(tx, account)
		if err != nil {
			return clean(err)
		}
		acct = a
		b, err := tx.CreateBucketIfNotExists(bQuotaWarned)
		if err != nil {
			return err
		}
		over := a.Quota > 0 && a.Used*100 >= a.Quota*int64(percent)
		warned := b.Get([]byte(a.Address)) != nil
		switch {
		case over && !warned:
			crossed = true
			return b.Put([]byte(a.Address), []byte{1})
		case !over && warned:
			return b.Delete([]byte(a.Address))
		}
		return nil
	}, nil)
	return crossed, acct, err
}
