package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"sync"
	"time"
)

// Cookies. The __Host- prefix makes the browser refuse them unless they
// are Secure, for path / and without a Domain: no other host can set them.
const (
	sessionCookie = "__Host-yubin-session"
	preCookie     = "__Host-yubin-login" // the login form's CSRF token, before a session exists
	langCookie    = "__Host-yubin-lang"
)

// session is one login. The id is only in the cookie; the server keeps
// its hash.
type session struct {
	account string
	stamp   string // admin.Caller.Stamp at login: a new password ends the session
	csrf    string // the token every form of the session carries
	created time.Time
	seen    time.Time
}

// sessions holds the sessions in memory: a restart logs everyone out.
type sessions struct {
	idle, maxAge time.Duration
	max          int
	now          func() time.Time

	mu sync.Mutex
	m  map[string]*session // by hashKey(id)
}

func newSessions(idle, maxAge time.Duration, max int, now func() time.Time) *sessions {
	return &sessions{idle: idle, maxAge: maxAge, max: max, now: now, m: map[string]*session{}}
}

// token returns 32 random bytes, base64url.
func token() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashKey(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:])
}

// equal compares secrets in constant time.
func equal(a, b string) bool {
	return len(a) > 0 && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// start begins a session for account and returns its id.
func (ss *sessions) start(account, stamp string) (string, *session) {
	now := ss.now()
	id := token()
	s := &session{account: account, stamp: stamp, csrf: token(), created: now, seen: now}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.m) >= ss.max {
		ss.pruneLocked(now)
	}
	// One account holds at most maxPerAccount sessions, and all at most
	// max: beyond either, the oldest goes (an account logging in again
	// and again cannot push the others out).
	for ss.countLocked(account) >= maxPerAccount {
		delete(ss.m, ss.oldestLocked(account))
	}
	for len(ss.m) >= ss.max {
		delete(ss.m, ss.oldestLocked(""))
	}
	ss.m[hashKey(id)] = s
	return id, s
}

// get returns the live session of id and marks it used, or nil. An
// expired one is ended.
func (ss *sessions) get(id string) *session {
	if id == "" {
		return nil
	}
	now := ss.now()
	k := hashKey(id)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[k]
	if s == nil {
		return nil
	}
	if ss.expired(s, now) {
		delete(ss.m, k)
		return nil
	}
	s.seen = now
	cp := *s
	return &cp
}

func (ss *sessions) expired(s *session, now time.Time) bool {
	return now.Sub(s.seen) >= ss.idle || now.Sub(s.created) >= ss.maxAge
}

// end ends the session of id.
func (ss *sessions) end(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, hashKey(id))
}

// endAccount ends every session of account and returns how many it
// ended.
func (ss *sessions) endAccount(account string) int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	n := 0
	for k, s := range ss.m {
		if s.account == account {
			delete(ss.m, k)
			n++
		}
	}
	return n
}

// maxPerAccount bounds the sessions of one account.
const maxPerAccount = 20

func (ss *sessions) countLocked(account string) int {
	n := 0
	for _, v := range ss.m {
		if v.account == account {
			n++
		}
	}
	return n
}

// oldestLocked is the key of the oldest session of account ("": of all).
func (ss *sessions) oldestLocked(account string) string {
	var oldest string
	for k, v := range ss.m {
		if account != "" && v.account != account {
			continue
		}
		if oldest == "" || v.created.Before(ss.m[oldest].created) {
			oldest = k
		}
	}
	return oldest
}

func (ss *sessions) pruneLocked(now time.Time) {
	for k, s := range ss.m {
		if ss.expired(s, now) {
			delete(ss.m, k)
		}
	}
}

// count returns how many sessions are held.
func (ss *sessions) count() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.m)
}
