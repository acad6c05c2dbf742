// Package srs rewrites envelope senders of forwarded mail (the Sender
// Rewriting Scheme) so that SPF still passes at the destination, and turns
// the rewritten addresses back when a bounce comes home.
//
// A remote sender user@example.org forwarded by one of our domains
// fwd.example.com becomes
//
//	srs0=HHHHHHHH=TT=example.org=user@fwd.example.com
//
// with TT the day (base32, modulo 1024) and HHHHHHHH a truncated HMAC-SHA256
// over day, domain and local part under a secret kept in the store. Unlike
// classic SRS (base64 hash) everything is lower-case, because addresses are
// normalised to lower case everywhere in Yubin: the hash survives that.
// Only this server decodes its own SRS addresses, so the variant is free.
package srs

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"strings"
	"time"
)

// Prefix starts the local part of every address this package makes.
const Prefix = "srs0="

// MaxAge is how long a rewritten address is accepted for a bounce.
const MaxAge = 21 * 24 * time.Hour

// maxLocal is RFC 5321's limit on a local part. Yubin takes longer ones
// (internal/address), but what it sends as a sender must work with every
// server, and an SRS address comes back only as a bounce to that sender.
const maxLocal = 64

var enc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Errors of Reverse.
var (
	ErrNotSRS  = errors.New("srs: not an SRS address")
	ErrBadHash = errors.New("srs: hash does not match")
	ErrExpired = errors.New("srs: address has expired")
)

// SRS rewrites and reverses addresses under one secret.
type SRS struct {
	key []byte
	now func() time.Time
}

// New returns an SRS with the given secret; now may be nil (time.Now).
func New(key []byte, now func() time.Time) *SRS {
	if now == nil {
		now = time.Now
	}
	return &SRS{key: key, now: now}
}

func (s *SRS) hash(tt, domain, local string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(strings.ToLower(tt + "\x00" + domain + "\x00" + local)))
	return enc.EncodeToString(m.Sum(nil))[:8]
}

func day(t time.Time) int { return int(t.Unix()/86400) % 1024 }

func stamp(d int) string {
	const alpha = "abcdefghijklmnopqrstuvwxyz234567"
	return string([]byte{alpha[(d>>5)&31], alpha[d&31]})
}

func unstamp(tt string) (int, bool) {
	const alpha = "abcdefghijklmnopqrstuvwxyz234567"
	if len(tt) != 2 {
		return 0, false
	}
	hi, lo := strings.IndexByte(alpha, tt[0]), strings.IndexByte(alpha, tt[1])
	if hi < 0 || lo < 0 {
		return 0, false
	}
	return hi<<5 | lo, true
}

// Forward rewrites sender (user@domain) into an address at ourDomain. ok is
// false when the result would not fit into a local part (64 characters);
// the caller then needs another sender.
func (s *SRS) Forward(sender, ourDomain string) (addr string, ok bool) {
	at := strings.LastIndexByte(sender, '@')
	if at <= 0 {
		return "", false
	}
	local, domain := strings.ToLower(sender[:at]), strings.ToLower(sender[at+1:])
	tt := stamp(day(s.now()))
	lp := Prefix + s.hash(tt, domain, local) + "=" + tt + "=" + domain + "=" + local
	if len(lp) > maxLocal {
		return "", false
	}
	return lp + "@" + strings.ToLower(ourDomain), true
}

// IsSRS reports whether addr looks like an address Forward makes.
func IsSRS(addr string) bool {
	return len(addr) > len(Prefix) && strings.EqualFold(addr[:len(Prefix)], Prefix)
}

// Reverse returns the original sender of an address made by Forward,
// checking its hash and age.
func (s *SRS) Reverse(addr string) (string, error) {
	if !IsSRS(addr) {
		return "", ErrNotSRS
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "", ErrNotSRS
	}
	parts := strings.SplitN(strings.ToLower(addr[len(Prefix):at]), "=", 4)
	if len(parts) != 4 || parts[2] == "" || parts[3] == "" {
		return "", ErrNotSRS
	}
	h, tt, domain, local := parts[0], parts[1], parts[2], parts[3]
	if !hmac.Equal([]byte(h), []byte(s.hash(tt, domain, local))) {
		return "", ErrBadHash
	}
	d, ok := unstamp(tt)
	if !ok {
		return "", ErrNotSRS
	}
	age := (day(s.now()) - d + 1024) % 1024 // days, modulo the stamp's range
	if time.Duration(age)*24*time.Hour > MaxAge {
		return "", ErrExpired
	}
	return local + "@" + domain, nil
}
