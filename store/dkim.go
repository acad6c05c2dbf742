package store

import "time"

// DKIMKey is one DKIM signing key of a domain, as stored.
type DKIMKey struct {
	Selector   string    `json:"selector"`
	Algorithm  string    `json:"algorithm"`   // "ed25519" or "rsa"
	PrivateKey []byte    `json:"private_key"` // PKCS #8, DER
	Created    time.Time `json:"created"`
}
