package bolt

import (
	"context"
	"strings"
	"sync"
)

// LockMaildrop takes the POP3 maildrop lock of an account (see
// store.MaildropLocker). The file has one process, so the locks are kept
// in memory.
func (s *Store) LockMaildrop(ctx context.Context, account string) (func(), bool, error) {
	account = strings.ToLower(account)
	s.dropMu.Lock()
	defer s.dropMu.Unlock()
	if s.drops == nil {
		s.drops = map[string]bool{}
	}
	if s.drops[account] {
		return nil, false, nil
	}
	s.drops[account] = true
	var once sync.Once
	return func() {
		once.Do(func() {
			s.dropMu.Lock()
			defer s.dropMu.Unlock()
			delete(s.drops, account)
		})
	}, true, nil
}
