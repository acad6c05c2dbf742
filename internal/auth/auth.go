// Package auth checks account passwords for every protocol and slows down
// and then refuses addresses that keep failing.
package auth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"yubin/internal/address"
	"yubin/store"
)

// MaxPasswordLen is bcrypt's limit; longer passwords are refused rather
// than silently truncated.
const MaxPasswordLen = 72

// HashPassword returns a bcrypt hash of password.
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", errors.New("empty password")
	}
	if len(password) > MaxPasswordLen {
		return "", fmt.Errorf("password longer than %d bytes", MaxPasswordLen)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	return string(h), err
}

// Errors from Authenticate.
var (
	ErrBadCredentials  = errors.New("invalid user name or password")
	ErrTooManyFailures = errors.New("too many failed logins from this address; try again later")
	// ErrUnavailable: the store could not be asked (a database that is
	// away); not a failed login, and not counted as one.
	ErrUnavailable = errors.New("logins cannot be checked now; try again later")
)

// Policy bounds failed logins per client IP address.
//
// Every attempt counts against its address before the password is
// checked, so guesses sent in parallel are refused once the limit is
// reached however fast they come; a success takes back only its own
// attempt. A success never clears an address's failures (logging into
// one's own account does not buy more guesses at another's), only the
// failures recorded against that account, which slow its logins down.
type Policy struct {
	MaxFailures int           // failed attempts from one address within Window before refusing; default 10
	Window      time.Duration // default 15 minutes
	Lockout     time.Duration // how long to refuse after MaxFailures; default 15 minutes
	Delay       time.Duration // added to every failure, times the failure count (up to 8); 0 = none
}

// Authenticator checks credentials against the store.
type Authenticator struct {
	store  store.Directory
	policy Policy
	now    func() time.Time

	mu     sync.Mutex
	byIP   map[string]*failRecord // attempts in flight and failures, per client address
	byUser map[string]*failRecord // failures per account name tried (that can be one)
	cache  *credCache
}

type failRecord struct {
	count int // attempts (in flight or failed) within the window
	first time.Time
	until time.Time // refused until then
}

// New returns an Authenticator. now may be nil (time.Now).
func New(s store.Directory, p Policy, now func() time.Time) *Authenticator {
	if p.MaxFailures <= 0 {
		p.MaxFailures = 10
	}
	if p.Window <= 0 {
		p.Window = 15 * time.Minute
	}
	if p.Lockout <= 0 {
		p.Lockout = 15 * time.Minute
	}
	if p.Delay < 0 {
		p.Delay = 0
	}
	if now == nil {
		now = time.Now
	}
	return &Authenticator{store: s, policy: p, now: now, byIP: map[string]*failRecord{}, byUser: map[string]*failRecord{}, cache: newCredCache()}
}

// dummyHash makes a login for an unknown user cost as much as a known one.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("yubin-dummy-password"), bcrypt.DefaultCost)

// Authenticate checks user (a full address, any case) and password for a
// client at remote. It returns the account on success.
func (a *Authenticator) Authenticate(ctx context.Context, remote net.Addr, user, password string) (store.Account, error) {
	ip, name := hostOf(remote), strings.ToLower(user)
	if !a.begin(ip) {
		return store.Account{}, ErrTooManyFailures
	}
	acct, err := a.store.Account(ctx, user)
	if err != nil && !errors.Is(err, store.ErrNoSuchAccount) && !errors.Is(err, store.ErrInvalid) {
		a.end(ip)
		return store.Account{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	hash := []byte(acct.PasswordHash)
	if err != nil {
		hash = dummyHash
	}
	if err == nil && acct.PasswordHash != "" && a.cache.verified(name, acct.PasswordHash, password, a.now()) {
		a.succeeded(ip, name)
		return acct, nil
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || err != nil {
		a.cache.forget(name)
		if d := a.failed(ip, name); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		return store.Account{}, ErrBadCredentials
	}
	a.succeeded(ip, name)
	a.cache.remember(name, acct.PasswordHash, password, a.now())
	return acct, nil
}

// record returns the live record of key in m, starting a new one when
// the window of the old one has passed (and it is not refusing).
func (a *Authenticator) record(m map[string]*failRecord, key string, now time.Time) *failRecord {
	r := m[key]
	if r != nil && (now.Sub(r.first) <= a.policy.Window || now.Before(r.until)) {
		return r
	}
	if len(m) > 100000 { // bound memory under a spray from many addresses
		for k, v := range m {
			if now.After(v.until) && now.Sub(v.first) > a.policy.Window {
				delete(m, k)
			}
		}
	}
	r = &failRecord{first: now}
	m[key] = r
	return r
}

// begin counts an attempt from ip before its password is checked, or
// reports false if ip may not try now.
func (a *Authenticator) begin(ip string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	r := a.record(a.byIP, ip, now)
	if now.Before(r.until) {
		return false
	}
	if r.count >= a.policy.MaxFailures {
		r.until = now.Add(a.policy.Lockout)
		return false
	}
	r.count++
	return true
}

// failed keeps the attempt begin counted, counts it against the account
// name too, and returns how long to delay the reply. A name longer than
// any account's (a login line may hold kilobytes) is counted against the
// address only: the names tried are kept, and must stay small.
func (a *Authenticator) failed(ip, name string) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	r := a.record(a.byIP, ip, now)
	if r.count >= a.policy.MaxFailures {
		r.until = now.Add(a.policy.Lockout)
	}
	n := r.count
	if len(name) <= address.MaxAccountAddress {
		u := a.record(a.byUser, name, now)
		u.count++
		n = max(n, u.count)
	}
	return time.Duration(min(n, 8)) * a.policy.Delay
}

// succeeded takes back the attempt begin counted and forgets the
// failures against the account: never the address's.
// end takes back what begin counted, for an attempt that could not be
// decided (ErrUnavailable).
func (a *Authenticator) end(ip string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r := a.byIP[ip]; r != nil && r.count > 0 {
		r.count--
	}
}

func (a *Authenticator) succeeded(ip, name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r := a.byIP[ip]; r != nil && r.count > 0 {
		r.count--
	}
	delete(a.byUser, name)
}

func hostOf(addr net.Addr) string {
	if addr == nil {
		return ""
	}
	if h, _, err := net.SplitHostPort(addr.String()); err == nil {
		return h
	}
	return addr.String()
}
