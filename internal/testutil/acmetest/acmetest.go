// Package acmetest runs Let's Encrypt's Pebble ACME CA in-process for tests:
// its web front end over httptest TLS, and its validation authority checking
// http-01 challenges on a chosen port of the host names a go-mockdns server
// resolves.
package acmetest

import (
	"crypto/x509"
	"encoding/pem"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/foxcpp/go-mockdns"
	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"

	"yubin/internal/testutil"
)

// CA is a running Pebble.
type CA struct {
	DirectoryURL string       // https://127.0.0.1:PORT/dir
	Client       *http.Client // trusts the directory's TLS certificate
	DirectoryCA  string       // PEM file of that certificate (tls.acme_directory_ca)
	Roots        *x509.CertPool
	pebble       *ca.CAImpl
	alpn         atomic.Int32
	logs         *testutil.Buffer
}

// Start runs Pebble until the test ends. hosts maps each host name to the
// IPv4 address Pebble's validation authority resolves it to; http-01
// challenges are fetched from httpPort there. A listener stands on the
// tls-alpn-01 port so that any attempt of that challenge is counted
// (TLSALPNAttempts).
func Start(t testing.TB, hosts map[string]string, httpPort int) *CA {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")      // validate at once
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0") // no random badNonce errors
	t.Setenv("PEBBLE_AUTHZREUSE", "0")

	zones := map[string]mockdns.Zone{}
	for h, ip := range hosts {
		zones[strings.ToLower(h)+"."] = mockdns.Zone{A: []string{ip}}
	}
	dnsSrv, err := mockdns.NewServerWithLogger(zones, log.New(ioDiscard{}, "", 0), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dnsSrv.Close() })

	c := &CA{logs: &testutil.Buffer{}}
	alpnLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alpnLn.Close() })
	go func() {
		for {
			conn, err := alpnLn.Accept()
			if err != nil {
				return
			}
			c.alpn.Add(1)
			conn.Close()
		}
	}()

	logger := log.New(c.logs, "pebble ", log.Lmicroseconds)
	store := db.NewMemoryStore()
	c.pebble = ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "test"}})
	v := va.New(logger, httpPort, alpnLn.Addr().(*net.TCPAddr).Port, false, dnsSrv.LocalAddr().String(), store)
	w := wfe.New(logger, store, v, c.pebble, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	ts := httptest.NewTLSServer(w.Handler())
	t.Cleanup(ts.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Pebble's log:\n%s", c.logs.String())
		}
	})
	c.DirectoryURL = ts.URL + wfe.DirectoryPath
	c.Client = ts.Client()
	c.DirectoryCA = filepath.Join(t.TempDir(), "directory-ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	if err := os.WriteFile(c.DirectoryCA, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	c.Roots = x509.NewCertPool()
	for i := 0; i < c.pebble.GetNumberOfRootCerts(); i++ {
		c.Roots.AddCert(c.pebble.GetRootCert(i).Cert)
	}
	return c
}

// TLSALPNAttempts is how many connections the validation authority made to
// the tls-alpn-01 port.
func (c *CA) TLSALPNAttempts() int { return int(c.alpn.Load()) }

// Logs returns what Pebble logged so far.
func (c *CA) Logs() string { return c.logs.String() }

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type ioDiscard struct{}

func (ioDiscard) Write(p []byte) (int, error) { return len(p), nil }
