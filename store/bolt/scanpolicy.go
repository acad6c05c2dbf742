package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"yubin/store"

	bbolt "go.etcd.io/bbolt"
)

// SetScanPolicy replaces an account's inbound scanning policy.
func (s *Store) SetScanPolicy(ctx context.Context, addr string, p store.ScanPolicy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	p = p.Effective()
	return s.updateAccount(ctx, addr, func(a *store.Account) error { a.Scan = p; return nil })
}

var bStops = []byte("stops")

// RecordStop stores a stop record durably.
func (s *Store) RecordStop(ctx context.Context, st store.Stop) error {
	if st.Time.IsZero() {
		st.Time = s.now()
	}
	st.Time = st.Time.UTC()
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return s.groupWrite(ctx, func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bStops)
		if err != nil {
			return err
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		key := make([]byte, 16)
		binary.BigEndian.PutUint64(key, uint64(st.Time.UnixNano()))
		binary.BigEndian.PutUint64(key[8:], seq)
		return b.Put(key, data)
	}, nil)
}

// Stops returns the stop records with since <= Time < until concerning
// domain (every record when domain is ""), oldest first.
func (s *Store) Stops(ctx context.Context, since, until time.Time, domain string) ([]store.Stop, error) {
	domain = strings.ToLower(domain)
	var out []store.Stop
	err := s.view(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bStops)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		start, end := nanos(since), nanos(until)
		for k, v := c.Seek(u64key(start)); k != nil && binary.BigEndian.Uint64(k) < end; k, v = c.Next() {
			var st store.Stop
			if err := json.Unmarshal(v, &st); err != nil {
				return fmt.Errorf("store: corrupt stop record: %w", err)
			}
			if domain == "" || containsFold(st.Domains, domain) {
				out = append(out, st)
			}
		}
		return nil
	})
	return out, err
}

// PruneStops deletes stop records older than before and returns how many.
func (s *Store) PruneStops(ctx context.Context, before time.Time) (int, error) {
	n := 0
	err := s.groupWrite(ctx, func(tx *bbolt.Tx) error {
		n = 0
		b := tx.Bucket(bStops)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		lim := nanos(before)
		for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) < lim; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		return nil
	}, nil)
	return n, err
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// nanos is t as unsigned Unix nanoseconds, clamped to the representable range.
func nanos(t time.Time) uint64 {
	if t.Before(time.Unix(0, 0)) {
		return 0
	}
	if t.After(time.Unix(0, 1<<62)) {
		return 1 << 62
	}
	return uint64(t.UnixNano())
}
