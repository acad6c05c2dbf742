package storetest

import (
	"testing"

	"yubin/internal/testutil"
	"yubin/store"
)

var maildropLockTests = []test{
	{"one session at a time", testMaildropLock},
}

// testMaildropLock: the POP3 maildrop lock of an account is held by one
// session at a time, whatever the case of the name, and free again when
// released; other accounts' are their own.
func testMaildropLock(t *testing.T, e *env) {
	l, ok := e.s.(store.MaildropLocker)
	if !ok {
		t.Skip("the backend has no maildrop lock (pop3d then locks in its process)")
	}
	ctx := t.Context()
	release, ok, err := l.LockMaildrop(ctx, info)
	testutil.Must(t, err)
	if !ok {
		t.Fatal("the first lock of a maildrop was refused")
	}
	if _, ok, err := l.LockMaildrop(ctx, "INFO@example.com"); err != nil || ok {
		t.Errorf("a second lock of a held maildrop: ok %v, %v; want refused", ok, err)
	}
	other, ok, err := l.LockMaildrop(ctx, bob)
	if err != nil || !ok {
		t.Fatalf("another account's maildrop: ok %v, %v", ok, err)
	}
	other()
	release()
	release() // twice is once
	again, ok, err := l.LockMaildrop(ctx, info)
	if err != nil || !ok {
		t.Fatalf("a released maildrop cannot be locked again: ok %v, %v", ok, err)
	}
	again()
}
