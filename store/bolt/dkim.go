package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"yubin/store"

	bbolt "go.etcd.io/bbolt"
)

var bDKIM = []byte("dkim")

// DKIMKeys returns a domain's DKIM keys (none if never generated).
func (s *Store) DKIMKeys(ctx context.Context, domain string) ([]store.DKIMKey, error) {
	var keys []store.DKIMKey
	err := s.view(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bDKIM)
		if b == nil {
			return nil
		}
		data := b.Get([]byte(strings.ToLower(domain)))
		if data == nil {
			return nil
		}
		return json.Unmarshal(data, &keys)
	})
	return keys, err
}

// EnsureDKIMKeys returns a domain's DKIM keys, storing the ones generate
// makes if the domain has none yet. generate runs outside any transaction;
// if another caller stored keys first, theirs are kept and returned.
func (s *Store) EnsureDKIMKeys(ctx context.Context, domain string, generate func() ([]store.DKIMKey, error)) ([]store.DKIMKey, error) {
	domain = strings.ToLower(domain)
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
	var keys []store.DKIMKey
	err = s.update(ctx, func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bDKIM)
		if err != nil {
			return err
		}
		if data := b.Get([]byte(domain)); data != nil {
			return json.Unmarshal(data, &keys)
		}
		keys = fresh
		data, err := json.Marshal(fresh)
		if err != nil {
			return err
		}
		return b.Put([]byte(domain), data)
	})
	return keys, err
}
