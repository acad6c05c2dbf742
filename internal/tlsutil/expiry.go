package tlsutil

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// CertInfo describes a certificate the server presents, for monitoring
// (the metrics' days left, yubin status).
type CertInfo struct {
	Name     string    `json:"name"` // the host name it is for
	NotAfter time.Time `json:"not_after"`
	Issuer   string    `json:"issuer,omitempty"`
	Source   string    `json:"source"` // "configured", "self-signed", "acme"
}

// Where certificates come from (CertInfo.Source).
const (
	SourceConfigured = "configured"
	SourceSelfSigned = "self-signed"
	SourceACME       = "acme"
)

func info(c *x509.Certificate, name, source string) CertInfo {
	if name == "" {
		name = c.Subject.CommonName
		if len(c.DNSNames) > 0 {
			name = c.DNSNames[0]
		}
	}
	return CertInfo{Name: name, NotAfter: c.NotAfter, Issuer: c.Issuer.CommonName, Source: source}
}

// Certificates describes the certificate the pair serves now (after the
// last Reload), from source.
func (p *Pair) Certificates(source string) func(context.Context) []CertInfo {
	return func(context.Context) []CertInfo {
		c := p.Certificate()
		leaf := c.Leaf
		if leaf == nil && len(c.Certificate) > 0 {
			leaf, _ = x509.ParseCertificate(c.Certificate[0])
		}
		if leaf == nil {
			return nil
		}
		return []CertInfo{info(leaf, "", source)}
	}
}

// FileCert describes the first certificate of a PEM file (a chain's leaf).
func FileCert(path, source string) (CertInfo, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return CertInfo{}, err
	}
	c, err := firstCert(data)
	if err != nil {
		return CertInfo{}, fmt.Errorf("%s: %w", path, err)
	}
	return info(c, "", source), nil
}

// SelfSignedCert is the certificate file SelfSigned keeps in dir.
func SelfSignedCert(dir string) string { return selfSignedCert(dir) }

func firstCert(data []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no certificate in the file")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

// ACMECached describes the certificates autocert keeps in cacheDir for
// hosts, without asking the CA for anything: a host without one yet (no
// TLS client has asked for it) is left out.
func ACMECached(cacheDir string, hosts []string) []CertInfo {
	var out []CertInfo
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		// autocert's cache keys: the host for an ECDSA certificate,
		// host+rsa for an RSA one (for clients without ECDSA).
		for _, key := range []string{h, h + "+rsa"} {
			data, err := os.ReadFile(filepath.Join(cacheDir, key))
			if err != nil {
				continue
			}
			if c, err := firstCert(data); err == nil {
				out = append(out, info(c, h, SourceACME))
				break
			}
		}
	}
	return out
}

// Certificates describes the certificates in the cache (ACMECached).
func (a *ACME) Certificates(context.Context) []CertInfo {
	return ACMECached(a.conf.CacheDir, a.hosts)
}
