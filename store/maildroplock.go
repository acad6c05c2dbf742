package store

import "context"

// MaildropLocker is the POP3 maildrop lock (RFC 1939 8: one session at a
// time in the TRANSACTION state), held across every process that shares
// the store: a backend that several Yubin nodes share takes it in the
// shared database. pop3d uses it when its store has it.
type MaildropLocker interface {
	// LockMaildrop takes the lock of an account's maildrop for the
	// caller's session. ok is false when another session holds it, on
	// this process or another; else release gives it back. A lock whose
	// process dies is released with it.
	LockMaildrop(ctx context.Context, account string) (release func(), ok bool, err error)
}
