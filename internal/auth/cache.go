package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"strings"
	"sync"
	"time"
)

// Verified credentials are remembered for a short while, as Dovecot's auth
// cache does: a client that logs in again and again (a phone, a webmail,
// a mail client opening several connections) costs one bcrypt comparison
// per CacheTTL instead of one a login. The cache keeps no password: an
// HMAC of it under a key made at start, with the account's password hash
// as it was; a changed password (a new hash) or a failed login for the
// account drops the entry, and only successes are ever answered from it.
const (
	CacheTTL     = 5 * time.Minute
	CacheEntries = 10_000
)

type credCache struct {
	key     [32]byte
	mu      sync.Mutex
	entries map[string]credEntry // by account name as given, lower-cased
}

type credEntry struct {
	mac     [32]byte // HMAC-SHA256 of the password
	hash    string   // the account's password hash when it was verified
	expires time.Time
}

func newCredCache() *credCache {
	c := &credCache{entries: map[string]credEntry{}}
	rand.Read(c.key[:])
	return c
}

func (c *credCache) mac(password string) [32]byte {
	m := hmac.New(sha256.New, c.key[:])
	m.Write([]byte(password))
	var out [32]byte
	copy(out[:], m.Sum(nil))
	return out
}

// verified reports whether name logged in with password against the
// password hash hash within CacheTTL of now.
func (c *credCache) verified(name, hash, password string, now time.Time) bool {
	c.mu.Lock()
	e, ok := c.entries[name]
	c.mu.Unlock()
	if !ok || e.hash != hash || now.After(e.expires) {
		return false
	}
	m := c.mac(password)
	return hmac.Equal(m[:], e.mac[:])
}

// remember records a successful login.
func (c *credCache) remember(name, hash, password string, now time.Time) {
	m := c.mac(password)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= CacheEntries {
		for k, e := range c.entries {
			if now.After(e.expires) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < CacheEntries {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[name] = credEntry{mac: m, hash: hash, expires: now.Add(CacheTTL)}
}

// Cached reports whether a login of user with password would be answered
// from the cache now (for tests and diagnostics).
func (a *Authenticator) Cached(ctx context.Context, user, password string) bool {
	acct, err := a.store.Account(ctx, user)
	return err == nil && a.cache.verified(strings.ToLower(user), acct.PasswordHash, password, a.now())
}

// forget drops name's entry (a failed login for it).
func (c *credCache) forget(name string) {
	c.mu.Lock()
	delete(c.entries, name)
	c.mu.Unlock()
}
