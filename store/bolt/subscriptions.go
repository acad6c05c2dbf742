package bolt

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"yubin/store"

	bbolt "go.etcd.io/bbolt"
)

// An account's subscriptions (IMAP SUBSCRIBE, RFC 3501 6.3.6) are a set of
// names, mail/<address>/subs: name -> subValue. They are not mailboxes: a
// name stays subscribed when its mailbox is deleted or renamed, and
// creating a mailbox does not subscribe it.
var (
	bSubs    = []byte("subs")
	subValue = []byte{1}
)

// DefaultMaxSubscriptions is how many names an account may subscribe to
// when Options.MaxSubscriptions is 0.
const DefaultMaxSubscriptions = 1000

// subsBucket is an account's subscriptions (nil in a file that Open has
// not upgraded yet, which no code path sees).
func subsBucket(mb *bbolt.Bucket) *bbolt.Bucket { return mb.Bucket(bSubs) }

// isSubscribed reports whether name is among an account's subscriptions.
func isSubscribed(mb *bbolt.Bucket, name string) bool {
	subs := subsBucket(mb)
	return subs != nil && subs.Get([]byte(name)) != nil
}

// subscriptionName is the name a subscription is kept under: INBOX in any
// case is INBOX, and a trailing separator is not part of it.
func subscriptionName(name string) string {
	return store.CanonicalMailbox(strings.TrimSuffix(name, store.HierarchySeparator))
}

// Subscriptions returns the names an account is subscribed to, sorted
// (INBOX first, then by name); some may name no mailbox.
func (s *Store) Subscriptions(ctx context.Context, account string) ([]string, error) {
	var out []string
	err := s.view(func(tx *bbolt.Tx) error {
		mb, err := accountBucket(tx, account)
		if err != nil {
			return err
		}
		subs := subsBucket(mb)
		if subs == nil {
			return nil
		}
		return subs.ForEach(func(k, _ []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i] == "INBOX" && out[j] != "INBOX" })
	return out, nil
}

// SetSubscribed adds a name to an account's subscriptions or removes it.
// Subscribing needs the mailbox to exist (store.ErrNoSuchMailbox) and room
// in the set: at most Options.MaxSubscriptions names, or MaxMailboxes if
// that is more (store.ErrLimit). Unsubscribing always succeeds, whether or
// not the name was subscribed or its mailbox exists.
func (s *Store) SetSubscribed(ctx context.Context, account, name string, subscribed bool) error {
	name = subscriptionName(name)
	fn := func(tx *bbolt.Tx) error {
		mb, err := accountBucket(tx, account)
		if err != nil {
			return clean(err)
		}
		subs, err := mb.CreateBucketIfNotExists(bSubs)
		if err != nil {
			return err
		}
		if !subscribed {
			return subs.Delete([]byte(name))
		}
		if mb.Bucket(bBoxes).Get([]byte(name)) == nil {
			return clean(fmt.Errorf("mailbox %s of %s: %w", name, strings.ToLower(account), store.ErrNoSuchMailbox))
		}
		if subs.Get([]byte(name)) != nil {
			return nil
		}
		if n := s.maxSubscriptions(); countKeys(subs, n) >= n {
			return clean(fmt.Errorf("%w: an account subscribes to at most %d names; unsubscribe some first", store.ErrLimit, n))
		}
		return subs.Put([]byte(name), subValue)
	}
	return s.groupWrite(ctx, fn, nil)
}

// countKeys counts a bucket's keys, up to limit. (Bucket.Stats reads the
// committed pages only, and misses what the same transaction wrote.)
func countKeys(b *bbolt.Bucket, limit int) int {
	n := 0
	c := b.Cursor()
	for k, _ := c.First(); k != nil && n < limit; k, _ = c.Next() {
		n++
	}
	return n
}

// maxSubscriptions is the bound on an account's subscriptions.
func (s *Store) maxSubscriptions() int {
	n := s.maxSubs
	if n <= 0 {
		n = DefaultMaxSubscriptions
	}
	return max(n, s.maxBoxes)
}

// addSubscriptions makes an account's subscriptions bucket, holding names.
func addSubscriptions(mb *bbolt.Bucket, names []string) error {
	subs, err := mb.CreateBucketIfNotExists(bSubs)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := subs.Put([]byte(n), subValue); err != nil {
			return err
		}
	}
	return nil
}

// legacySubscribed is how files written before subscriptions were names
// kept them: a flag in each mailbox's metadata.
type legacySubscribed struct {
	Name       string `json:"name"`
	Subscribed bool   `json:"subscribed"`
}

// migrateSubscriptions gives every account that has no subscriptions
// bucket one, holding the names of its mailboxes whose metadata says they
// are subscribed (how files written before kept subscriptions). It runs
// in the transaction that opens a store, every time: it costs a lookup
// per account once done, and also catches accounts that a server of
// before added to a file this one had upgraded.
func migrateSubscriptions(tx *bbolt.Tx) error {
	var accts [][]byte
	mail := tx.Bucket(bMail)
	err := mail.ForEach(func(acct, v []byte) error {
		if mb := mail.Bucket(acct); v == nil && mb != nil && mb.Bucket(bSubs) == nil {
			accts = append(accts, acct)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, acct := range accts {
		mb := mail.Bucket(acct)
		var names []string
		err := mb.Bucket(bBoxes).ForEach(func(name, id []byte) error {
			var m legacySubscribed
			if box := mb.Bucket(boxKey(id)); box != nil && getJSON(box, string(kMeta), &m) && m.Subscribed {
				names = append(names, string(name))
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := addSubscriptions(mb, names); err != nil {
			return err
		}
	}
	return nil
}
