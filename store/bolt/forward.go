package bolt

import (
	"context"
	"crypto/rand"
	"slices"
	"strings"

	bbolt "go.etcd.io/bbolt"

	"yubin/store"
)

// Forwarding rules live in their own bucket, keyed by account address:
//
//	forwards  address -> JSON Forward
//	meta      "srs-secret" -> 32 random bytes
var (
	bForwards  = []byte("forwards")
	kSRSSecret = []byte("srs-secret")
)

// SetForward replaces an account's forwarding rule. Targets are checked
// and normalised first; on any error nothing changes: more than
// MaxForwardTargets, a malformed address, the account itself (or one of
// its addresses at a child domain), or a local address without an account.
// Duplicates are removed. An empty target list clears the rule.
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
	err = s.update(ctx, func(tx *bbolt.Tx) error {
		if _, err := getAccount(tx, acct); err != nil {
			return err
		}
		b, err := tx.CreateBucketIfNotExists(bForwards)
		if err != nil {
			return err
		}
		if len(norm) == 0 {
			return b.Delete([]byte(acct))
		}
		return putJSON(b, acct, f)
	})
	if err != nil {
		return store.Forward{}, err
	}
	if len(norm) == 0 {
		return store.Forward{}, nil
	}
	return f, nil
}

// ClearForward removes an account's forwarding rule.
func (s *Store) ClearForward(ctx context.Context, addr string) error {
	_, err := s.SetForward(ctx, addr, nil, false)
	return err
}

// GetForward returns an account's forwarding rule (zero: none).
func (s *Store) GetForward(ctx context.Context, addr string) (store.Forward, error) {
	var f store.Forward
	err := s.view(func(tx *bbolt.Tx) error {
		if _, err := getAccount(tx, addr); err != nil {
			return err
		}
		if b := tx.Bucket(bForwards); b != nil {
			getJSON(b, strings.ToLower(addr), &f)
		}
		return nil
	})
	return f, err
}

// deleteForward drops an account's rule (the account is being removed).
func deleteForward(tx *bbolt.Tx, addr string) error {
	if b := tx.Bucket(bForwards); b != nil {
		return b.Delete([]byte(addr))
	}
	return nil
}

// SRSSecret returns the key of SRS address hashes, made on first use.
func (s *Store) SRSSecret(ctx context.Context) ([]byte, error) {
	var key []byte
	err := s.view(func(tx *bbolt.Tx) error {
		key = slices.Clone(tx.Bucket(bMeta).Get(kSRSSecret))
		return nil
	})
	if err != nil || key != nil {
		return key, err
	}
	fresh := make([]byte, 32)
	rand.Read(fresh)
	err = s.update(ctx, func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bMeta)
		if v := meta.Get(kSRSSecret); v != nil {
			key = slices.Clone(v)
			return nil
		}
		key = fresh
		return meta.Put(kSRSSecret, fresh)
	})
	return key, err
}
