package bolt

import (
	"context"

	"yubin/store"
)

// Subscribe returns a subscription to the changes of an account's
// mailboxes. buffer is how many events may queue (at least 1).
func (s *Store) Subscribe(ctx context.Context, account string, buffer int) *store.Subscription {
	return s.feed.Subscribe(account, buffer)
}
