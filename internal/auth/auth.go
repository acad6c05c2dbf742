// Package auth checks account passwords for every protocol and slows down
// and then refuses addresses that keep failing.
package auth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

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
)

// Policy bounds failed logins per client IP address.
type Policy struct {
	MaxFailures int           // failures within Window before refusing; default 10
	Window      time.Duration // default 15 minutes
	Lockout     time.Duration // how long to refuse after MaxFailures; default 15 minutes
	Delay       time.Duration // added to every failure, times the failure count (up to 8); 0 = none
}

// Authenticator checks credentials against the store.
type Authenticator struct {
	store  store.Directory
	policy Policy
	now    func() time.Time

	mu       sync.Mutex
	failures map[string]*failRecord
}

type failRecord struct {
	count int
	first time.Time
	until time.Time
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
	return &Authenticator{store: s, policy: p, now: now, failures: map[string]*failRecord{}}
}

// dummyHash makes a login for an unknown user cost as much as a known one.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("yubin-dummy-password"), bcrypt.DefaultCost)

// Authenticate checks user (a full address, any case) and password for a
// client at remote. It returns the account on success.
func (a *Authenticator) Authenticate(ctx context.Context, remote net.Addr, user, password string) (store.Account, error) {
	ip := hostOf(remote)
	if a.locked(ip) {
		return store.Account{}, ErrTooManyFailures
	}
	acct, err := a.store.Account(ctx, user)
	hash := []byte(acct.PasswordHash)
	if err != nil {
		hash = dummyHash
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || err != nil {
		d := a.fail(ip)
		if d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		return store.Account{}, ErrBadCredentials
	}
	a.mu.Lock()
	delete(a.failures, ip)
	a.mu.Unlock()
	return acct, nil
}

func (a *Authenticator) locked(ip string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.failures[ip]
	return r != nil && a.now().Before(r.until)
}

// fail records a failure and returns how long to delay the reply.
func (a *Authenticator) fail(ip string) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	r := a.failures[ip]
	if r == nil || now.Sub(r.first) > a.policy.Window {
		if len(a.failures) > 100000 { // bound memory under a spray from many addresses
			for k, v := range a.failures {
				if now.After(v.until) && now.Sub(v.first) > a.policy.Window {
					delete(a.failures, k)
				}
			}
		}
		r = &failRecord{first: now}
		a.failures[ip] = r
	}
	r.count++
	if r.count >= a.policy.MaxFailures {
		r.until = now.Add(a.policy.Lockout)
	}
	return time.Duration(min(r.count, 8)) * a.policy.Delay
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
