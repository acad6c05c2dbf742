package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DKIMKey is one DKIM signing key of a domain, as stored.
type DKIMKey struct {
	Selector   string    `json:"selector"`
	Algorithm  string    `json:"algorithm"`   // "ed25519" or "rsa"
	PrivateKey []byte    `json:"private_key"` // PKCS #8, DER
	Created    time.Time `json:"created"`
}

var bDKIM = []byte("dkim")

// DKIMKeys returns a domain's DKIM keys (none if never generated).
func (s *Store) DKIMKeys(ctx context.Context, domain string) ([]DKIMKey, error) {
	var keys []DKIMKey
	err := s.db.View(func(tx *bolt.Tx) error {
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
func (s *Store) EnsureDKIMKeys(ctx context.Context, domain string, generate func() ([]DKIMKey, error)) ([]DKIMKey, error) {
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
	var keys []DKIMKey
	err = s.db.Update(func(tx *bolt.Tx) error {
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
