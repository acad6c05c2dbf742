package tlsutil

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"
)

// Pair serves the certificate of a PEM chain and key file pair, and reads
// them again on Reload (after certbot or an admin replaced them), without
// a restart. Handshakes in progress keep the certificate they started with.
type Pair struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// LoadPair reads the pair once; an error if it cannot be used.
func LoadPair(certFile, keyFile string) (*Pair, error) {
	p := &Pair{certFile: certFile, keyFile: keyFile}
	if err := p.Reload(); err != nil {
		return nil, err
	}
	return p, nil
}

// SelfSignedPair is SelfSigned's certificate (generated for hostname on
// first use) as a Pair.
func SelfSignedPair(dir, hostname string) (*Pair, error) {
	if _, err := SelfSigned(dir, hostname); err != nil {
		return nil, err
	}
	return LoadPair(selfSignedCert(dir), SelfSignedKey(dir))
}

// Reload reads the files again. If they cannot be used (missing, not PEM,
// key not matching the certificate) the certificate served so far stays,
// and the error says why.
func (p *Pair) Reload() error {
	cert, err := tls.LoadX509KeyPair(p.certFile, p.keyFile)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	p.cur.Store(&cert)
	return nil
}

// Certificate is the certificate being served (its Leaf is set).
func (p *Pair) Certificate() *tls.Certificate { return p.cur.Load() }

// TLSConfig is the server config for every TLS listener; each handshake
// gets the certificate loaded last.
func (p *Pair) TLSConfig() *tls.Config {
	return &tls.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return p.cur.Load(), nil },
		MinVersion:     tls.VersionTLS12,
	}
}
