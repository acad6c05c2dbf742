package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ScanAction is what inbound scanning does with a message that meets a
// policy condition, for one recipient account.
type ScanAction string

const (
	ScanDiscard ScanAction = "discard" // keep only the headers; report to the recipient
	ScanAccept  ScanAction = "accept"  // deliver unchecked, with a header saying why
	ScanReject  ScanAction = "reject"  // (encrypted archives only) treat like discard
)

// ScanPolicy is an account's inbound scanning policy. The zero value is
// the default: discard for every condition, accept for encrypted archives.
type ScanPolicy struct {
	Oversize    ScanAction `json:"oversize,omitempty"`     // message over the scan size limit
	Depth       ScanAction `json:"depth,omitempty"`        // archives nested too deep
	ExtractSize ScanAction `json:"extract_size,omitempty"` // too big inside an archive
	Partial     ScanAction `json:"partial,omitempty"`      // message/partial
	Encrypted   ScanAction `json:"encrypted,omitempty"`    // password-protected archive member: accept or reject
}

// Effective returns p with the defaults filled in.
func (p ScanPolicy) Effective() ScanPolicy {
	for _, a := range []*ScanAction{&p.Oversize, &p.Depth, &p.ExtractSize, &p.Partial} {
		if *a == "" {
			*a = ScanDiscard
		}
	}
	if p.Encrypted == "" {
		p.Encrypted = ScanAccept
	}
	return p
}

// Validate checks every field.
func (p ScanPolicy) Validate() error {
	for name, a := range map[string]ScanAction{"oversize": p.Oversize, "depth": p.Depth, "extract-size": p.ExtractSize, "partial": p.Partial} {
		if a != "" && a != ScanDiscard && a != ScanAccept {
			return fmt.Errorf("%w: %s must be discard or accept, not %q", ErrInvalid, name, a)
		}
	}
	if a := p.Encrypted; a != "" && a != ScanAccept && a != ScanReject {
		return fmt.Errorf("%w: encrypted must be accept or reject, not %q", ErrInvalid, a)
	}
	return nil
}

// SetScanPolicy replaces an account's inbound scanning policy.
func (s *Store) SetScanPolicy(ctx context.Context, addr string, p ScanPolicy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	p = p.Effective()
	return s.updateAccount(addr, func(a *Account) error { a.Scan = p; return nil })
}

// Stop is one message (or one recipient's copy) that scanning stopped:
// the record behind warning mails and the daily report.
type Stop struct {
	Time       time.Time `json:"time"`
	QueueID    string    `json:"queue_id"`
	Direction  string    `json:"direction"` // "inbound" or "outbound"
	Sender     string    `json:"sender"`
	Recipients []string  `json:"recipients"`
	Domains    []string  `json:"domains"` // our (parent) domains concerned, for per-domain reports
	Reasons    []string  `json:"reasons"` // virus, partial, depth, extract-size, oversize, encrypted
	Virus      string    `json:"virus,omitempty"`
	File       string    `json:"file,omitempty"`
	Action     string    `json:"action"` // rejected, discarded, stripped, accepted-unchecked
}

var bStops = []byte("stops")

// RecordStop stores a stop record durably.
func (s *Store) RecordStop(ctx context.Context, st Stop) error {
	if st.Time.IsZero() {
		st.Time = s.now()
	}
	st.Time = st.Time.UTC()
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return s.groupWrite(ctx, func(tx *bolt.Tx) error {
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
func (s *Store) Stops(ctx context.Context, since, until time.Time, domain string) ([]Stop, error) {
	domain = strings.ToLower(domain)
	var out []Stop
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bStops)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		start, end := nanos(since), nanos(until)
		for k, v := c.Seek(u64key(start)); k != nil && binary.BigEndian.Uint64(k) < end; k, v = c.Next() {
			var st Stop
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
	err := s.groupWrite(ctx, func(tx *bolt.Tx) error {
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
