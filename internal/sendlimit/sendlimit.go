// Package sendlimit counts what each account submits (ports 587 and 465)
// in a sliding hour, against a limit on messages and one on recipients, so
// that a stolen password cannot turn the server into a spam source.
//
// Counts are kept in memory, per process: several nodes each count their
// own. Each account that submitted within the hour has 60 one-minute
// buckets (the hour slides by the minute); accounts idle for an hour are
// dropped, so what is kept is bounded by the accounts that are sending.
package sendlimit

import (
	"sync"
	"time"
)

// Limits per account and hour; 0 is no limit.
type Limits struct {
	Messages   int
	Recipients int
}

// Window is the hour the limits are counted over, and the time between two
// warnings about one account.
const Window = time.Hour

const (
	buckets   = 60
	bucketLen = Window / buckets
)

// Result is a Limiter's answer.
type Result struct {
	OK bool // within the limits (and, for Recipient, counted)
	// Warn: over the limits, and nobody has been warned about the account
	// within the hour: the caller warns now (once an hour per account).
	Warn                 bool
	Messages, Recipients int // counted in the last hour
}

// Limiter counts submissions. It is safe for concurrent use; a nil Limiter
// allows everything.
type Limiter struct {
	lim Limits
	now func() time.Time

	mu        sync.Mutex
	accounts  map[string]*account
	lastSweep time.Time
}

type account struct {
	minute      [buckets]int64 // which minute (since the epoch) each bucket counts
	msgs, rcpts [buckets]int32
	warned      time.Time
}

// New returns a Limiter for lim, or nil if lim has no limit at all.
func New(lim Limits) *Limiter {
	if lim.Messages <= 0 && lim.Recipients <= 0 {
		return nil
	}
	return &Limiter{lim: lim, now: time.Now, accounts: map[string]*account{}}
}

// Limits returns the limits (zero for a nil Limiter).
func (l *Limiter) Limits() Limits {
	if l == nil {
		return Limits{}
	}
	return l.lim
}

// Message says whether account may start another message: neither limit
// is reached yet (a message needs a recipient). Nothing is counted.
func (l *Limiter) Message(account string) Result {
	if l == nil {
		return Result{OK: true}
	}
	return l.take(account, 1, 1, false)
}

// Recipient counts one more recipient for account, and one more message if
// newMessage (the transaction's first recipient), if that stays within the
// limits; otherwise it counts nothing and the Result is not OK. Counting at
// RCPT, before the message is sent, keeps parallel sessions of one account
// from getting past the limit together.
func (l *Limiter) Recipient(account string, newMessage bool) Result {
	if l == nil {
		return Result{OK: true}
	}
	m := 0
	if newMessage {
		m = 1
	}
	return l.take(account, m, 1, true)
}

// take says whether msgs more messages and rcpts more recipients stay
// within the limits, and if so and count, counts them.
func (l *Limiter) take(name string, msgs, rcpts int, count bool) Result {
	now := l.now()
	minute := now.UnixNano() / int64(bucketLen)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now, minute)
	a := l.accounts[name]
	if a == nil {
		a = &account{}
		l.accounts[name] = a
	}
	r := Result{}
	for i := range buckets {
		if a.minute[i] > minute-buckets {
			r.Messages += int(a.msgs[i])
			r.Recipients += int(a.rcpts[i])
		}
	}
	over := l.lim.Messages > 0 && r.Messages+msgs > l.lim.Messages ||
		l.lim.Recipients > 0 && r.Recipients+rcpts > l.lim.Recipients
	if over {
		if a.warned.IsZero() || now.Sub(a.warned) >= Window {
			a.warned = now
			r.Warn = true
		}
		return r
	}
	r.OK = true
	if !count {
		return r
	}
	i := minute % buckets
	if a.minute[i] != minute {
		a.minute[i], a.msgs[i], a.rcpts[i] = minute, 0, 0
	}
	a.msgs[i] += int32(msgs)
	a.rcpts[i] += int32(rcpts)
	r.Messages += msgs
	r.Recipients += rcpts
	return r
}

// sweep drops, every few minutes, the accounts that counted nothing and
// were not warned about within the hour. l.mu is held.
func (l *Limiter) sweep(now time.Time, minute int64) {
	if now.Sub(l.lastSweep) < 10*bucketLen {
		return
	}
	l.lastSweep = now
	for name, a := range l.accounts {
		idle := true
		for i := range buckets {
			if a.minute[i] > minute-buckets {
				idle = false
				break
			}
		}
		if idle && (a.warned.IsZero() || now.Sub(a.warned) >= Window) {
			delete(l.accounts, name)
		}
	}
}

// size is the number of accounts kept.
func (l *Limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.accounts)
}
