// Package tlstest makes a self-signed certificate for a test server, with
// a client configuration that trusts it.
package tlstest

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"yubin/internal/testutil"
	"yubin/internal/tlsutil"
)

// Cert is a self-signed certificate made by tlsutil, as a server uses it.
type Cert struct {
	// Server serves the certificate.
	Server *tls.Config
	// Client trusts the certificate (and nothing else) for the host name.
	Client *tls.Config
	// File is the certificate in PEM, for outside clients.
	File string
}

// SelfSigned makes a certificate for host in a temporary directory.
func SelfSigned(t testing.TB, host string) *Cert {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tls")
	server, err := tlsutil.SelfSigned(dir, host)
	testutil.Must(t, err)
	file := filepath.Join(dir, "cert.pem")
	pem, err := os.ReadFile(file)
	testutil.Must(t, err)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", file)
	}
	return &Cert{Server: server, Client: &tls.Config{RootCAs: pool, ServerName: host}, File: file}
}
