// Package dkimkey makes and keeps the DKIM keys of every local domain: an
// Ed25519 key (RFC 8463) and an RSA-2048 key, generated on first use and kept
// in the store, and the DNS TXT records that publish them.
package dkimkey

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"time"

	"yubin/store"
)

// Selectors of the two keys of every domain.
const (
	SelectorEd25519 = "yubin-ed25519"
	SelectorRSA     = "yubin-rsa"
)

// Key is a usable DKIM key of one domain.
type Key struct {
	Domain    string
	Selector  string
	Algorithm string // "ed25519" or "rsa"
	Signer    crypto.Signer
	Created   time.Time
}

// DNSName is where the public key is published: selector._domainkey.domain.
func (k Key) DNSName() string { return k.Selector + "._domainkey." + k.Domain }

// TXT is the DNS TXT record value that publishes the public key.
func (k Key) TXT() (string, error) {
	der, err := x509.MarshalPKIXPublicKey(k.Signer.Public())
	if err != nil {
		return "", err
	}
	if k.Algorithm == "ed25519" {
		// RFC 8463: the raw 32-byte key, not SubjectPublicKeyInfo.
		der = []byte(k.Signer.Public().(ed25519.PublicKey))
	}
	return fmt.Sprintf("v=DKIM1; k=%s; p=%s", k.Algorithm, base64.StdEncoding.EncodeToString(der)), nil
}

// ForDomain returns the domain's keys (Ed25519 first), generating and
// storing them on first use. The domain must be one of ours.
func ForDomain(ctx context.Context, st store.Settings, domain string) ([]Key, error) {
	stored, err := st.EnsureDKIMKeys(ctx, domain, generate)
	if err != nil {
		return nil, err
	}
	keys := make([]Key, 0, len(stored))
	for _, sk := range stored {
		priv, err := x509.ParsePKCS8PrivateKey(sk.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("DKIM key %s of %s: %w", sk.Selector, domain, err)
		}
		signer, ok := priv.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("DKIM key %s of %s is not a signing key", sk.Selector, domain)
		}
		keys = append(keys, Key{Domain: domain, Selector: sk.Selector, Algorithm: sk.Algorithm, Signer: signer, Created: sk.Created})
	}
	return keys, nil
}

func generate() ([]store.DKIMKey, error) {
	now := time.Now().UTC()
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	var out []store.DKIMKey
	for _, k := range []struct {
		sel, alg string
		key      any
	}{{SelectorEd25519, "ed25519", ed}, {SelectorRSA, "rsa", rk}} {
		der, err := x509.MarshalPKCS8PrivateKey(k.key)
		if err != nil {
			return nil, err
		}
		out = append(out, store.DKIMKey{Selector: k.sel, Algorithm: k.alg, PrivateKey: der, Created: now})
	}
	return out, nil
}
