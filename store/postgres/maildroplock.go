package postgres

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
)

// dropLocks holds this node's POP3 maildrop locks: session-level advisory
// locks on a connection of their own, so that they die with the node (its
// connection closes) and other nodes see them. Two sessions of this node
// are kept apart in memory first: advisory locks are reentrant within a
// connection.
type dropLocks struct {
	mu    sync.Mutex
	conn  *pgx.Conn
	held  map[string]bool
	space int32 // the first key of the locks: this schema's
}

// LockMaildrop takes the POP3 maildrop lock of an account, across every
// node sharing the database (see store.MaildropLocker). Two accounts whose
// names hash alike share a lock: a rare spurious [IN-USE], never a missed
// one.
func (s *Store) LockMaildrop(ctx context.Context, account string) (func(), bool, error) {
	account = lower(account)
	l := &s.drops
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[account] {
		return nil, false, nil
	}
	if !s.enter() {
		return nil, false, fmt.Errorf("maildrop lock: %w", errClosed())
	}
	defer s.inflight.RUnlock()
	ok, err := s.tryLock(ctx, account)
	if err != nil && l.conn != nil {
		// The connection broke (its locks with it): once more on a new one.
		l.conn.Close(context.Background())
		l.conn = nil
		l.held = nil
		ok, err = s.tryLock(ctx, account)
	}
	if err != nil {
		return nil, false, fmt.Errorf("maildrop lock of %s: %w", account, dbError(err))
	}
	if !ok {
		return nil, false, nil
	}
	if l.held == nil {
		l.held = map[string]bool{}
	}
	l.held[account] = true
	conn := l.conn
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.conn != conn {
				return // that connection is gone, and its locks with it
			}
			delete(l.held, account)
			if _, err := conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1, hashtext($2))`, l.space, account); err != nil {
				conn.Close(context.Background())
				l.conn, l.held = nil, nil
			}
		})
	}, true, nil
}

func (s *Store) tryLock(ctx context.Context, account string) (bool, error) {
	l := &s.drops
	if l.conn == nil {
		conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
		if err != nil {
			return false, err
		}
		if err := conn.QueryRow(ctx, `SELECT hashtext(current_schema() || '.yubin_maildrop')`).Scan(&l.space); err != nil {
			conn.Close(context.Background())
			return false, err
		}
		l.conn = conn
	}
	var ok bool
	err := l.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`, l.space, account).Scan(&ok)
	return ok, err
}

// closeDropLocks releases every lock (Close).
func (s *Store) closeDropLocks() {
	l := &s.drops
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		l.conn.Close(context.Background())
		l.conn, l.held = nil, nil
	}
}
