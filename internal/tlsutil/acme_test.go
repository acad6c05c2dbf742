package tlsutil_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"yubin/internal/testutil/acmetest"
	"yubin/internal/tlsutil"
)

const (
	acmeHost = "mail.example.com"
	acmeMX   = "mx.example.com"
)

// startACME runs Pebble and, on the port its validation authority checks,
// the http-01 handler of an ACME manager for acmeHost and acmeMX.
func startACME(t *testing.T) (*acmetest.CA, *tlsutil.ACME, string) {
	t.Helper()
	httpPort := acmetest.FreePort(t)
	ca := acmetest.Start(t, map[string]string{acmeHost: "127.0.0.1", acmeMX: "127.0.0.1", "other.example.com": "127.0.0.1"}, httpPort)
	cacheDir := filepath.Join(t.TempDir(), "acme")
	a, err := tlsutil.NewACME(tlsutil.ACMEConfig{
		Hosts: []string{acmeHost, acmeMX}, Email: "admin@example.com",
		DirectoryURL: ca.DirectoryURL, CacheDir: cacheDir, HTTPClient: ca.Client,
	})
	if err != nil {
		t.Fatal(err)
	}
	hln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", httpPort))
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: a.HTTPHandler()}
	go hs.Serve(hln)
	t.Cleanup(func() { hs.Close() })
	return ca, a, cacheDir
}

// serveTLS accepts implicit-TLS connections and greets like POP3S.
func serveTLS(t *testing.T, conf *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(2 * time.Minute))
				if c.(*tls.Conn).Handshake() == nil {
					fmt.Fprint(c, "+OK ready\r\n")
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// handshake connects with SNI sni ("" = none) and returns the server's
// chain after checking it against roots for wantName.
func handshake(addr, sni, wantName string, roots *x509.CertPool) ([]*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 2 * time.Minute}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{
		ServerName:         sni,
		InsecureSkipVerify: true, // verified below, for the name we expect (no SNI has no name to check)
		VerifyConnection: func(cs tls.ConnectionState) error {
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: wantName, Roots: roots, Intermediates: inter})
			return err
		},
	})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "+OK") {
		return nil, fmt.Errorf("greeting %q: %v", line, err)
	}
	return conn.ConnectionState().PeerCertificates, nil
}

func TestACMEWithPebble(t *testing.T) {
	ca, a, cacheDir := startACME(t)
	addr := serveTLS(t, a.TLSConfig())
	if cs := a.Certificates(t.Context()); len(cs) != 0 {
		t.Errorf("certificates before any was issued: %+v", cs)
	}

	// First handshake: the certificate is issued by Pebble, over http-01.
	chain, err := handshake(addr, acmeHost, acmeHost, ca.Roots)
	if err != nil {
		t.Fatalf("first handshake: %v", err)
	}
	leaf := chain[0]
	if !slices.Contains(leaf.DNSNames, acmeHost) || !strings.Contains(leaf.Issuer.CommonName, "Pebble") {
		t.Fatalf("certificate for %v issued by %q", leaf.DNSNames, leaf.Issuer.CommonName)
	}
	if n := ca.TLSALPNAttempts(); n != 0 {
		t.Errorf("the CA tried tls-alpn-01 %d times; only http-01 is to be used", n)
	}
	if !strings.Contains(ca.Logs(), "validate w/ HTTP: http://"+acmeHost+":") {
		t.Errorf("no http-01 validation in Pebble's log")
	}
	st, err := os.Stat(cacheDir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("cache dir: %v %v", st, err)
	}
	if _, err := os.Stat(filepath.Join(cacheDir, acmeHost)); err != nil {
		t.Errorf("certificate not in the cache: %v", err)
	}
	// What monitoring reports is the certificate served, read from the
	// cache without asking the CA.
	if cs := a.Certificates(t.Context()); len(cs) != 1 || cs[0].Name != acmeHost || !cs[0].NotAfter.Equal(leaf.NotAfter) || cs[0].Source != tlsutil.SourceACME {
		t.Errorf("certificates %+v, want %s until %v", cs, acmeHost, leaf.NotAfter)
	}

	// Second handshake: the same certificate.
	chain2, err := handshake(addr, acmeHost, acmeHost, ca.Roots)
	if err != nil {
		t.Fatalf("second handshake: %v", err)
	}
	if !chain2[0].Equal(leaf) {
		t.Error("second handshake got a different certificate")
	}

	// No SNI (a client connecting by IP address): the host name's certificate.
	chain3, err := handshake(addr, "", acmeHost, ca.Roots)
	if err != nil {
		t.Fatalf("handshake without SNI: %v", err)
	}
	if !chain3[0].Equal(leaf) {
		t.Error("no SNI got a different certificate")
	}

	// dns.mx_host, when different, gets its own certificate.
	chain4, err := handshake(addr, acmeMX, acmeMX, ca.Roots)
	if err != nil {
		t.Fatalf("handshake for the MX host: %v", err)
	}
	if !slices.Contains(chain4[0].DNSNames, acmeMX) {
		t.Errorf("MX host certificate for %v", chain4[0].DNSNames)
	}

	// A name outside the host policy is refused, and nothing is requested.
	orders := strings.Count(ca.Logs(), "Added order")
	if _, err := handshake(addr, "other.example.com", "other.example.com", ca.Roots); err == nil {
		t.Error("handshake for a name not in the host policy succeeded")
	}
	if n := strings.Count(ca.Logs(), "Added order"); n != orders {
		t.Errorf("a name outside the policy caused %d new orders", n-orders)
	}

	// After a restart, the certificate comes from the cache dir: this
	// manager's CA does not even exist.
	a2, err := tlsutil.NewACME(tlsutil.ACMEConfig{
		Hosts: []string{acmeHost}, DirectoryURL: "https://127.0.0.1:1/dir", CacheDir: cacheDir, HTTPClient: ca.Client,
	})
	if err != nil {
		t.Fatal(err)
	}
	chain5, err := handshake(serveTLS(t, a2.TLSConfig()), acmeHost, acmeHost, ca.Roots)
	if err != nil {
		t.Fatalf("handshake after restart: %v", err)
	}
	if !chain5[0].Equal(leaf) {
		t.Error("certificate not reused from the cache after a restart")
	}
}

// The http-01 handler answers only challenges: other requests are
// redirected to https (GET) or refused.
func TestACMEHTTPHandler(t *testing.T) {
	a, err := tlsutil.NewACME(tlsutil.ACMEConfig{Hosts: []string{acmeHost}, DirectoryURL: "https://127.0.0.1:1/dir", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: a.HTTPHandler()}
	go hs.Serve(ln)
	defer hs.Close()
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "https://") {
		t.Errorf("GET /: %s %q", resp.Status, resp.Header.Get("Location"))
	}
	resp, err = cl.Get("http://" + ln.Addr().String() + "/.well-known/acme-challenge/unknown")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusForbidden {
		t.Errorf("unknown token: %s", resp.Status)
	}
}

func TestNewACMEErrors(t *testing.T) {
	if _, err := tlsutil.NewACME(tlsutil.ACMEConfig{DirectoryURL: "https://ca/dir", CacheDir: t.TempDir()}); err == nil {
		t.Error("no host: no error")
	}
	if _, err := tlsutil.NewACME(tlsutil.ACMEConfig{Hosts: []string{acmeHost}, CacheDir: t.TempDir()}); err == nil {
		t.Error("no directory: no error")
	}
	if _, err := tlsutil.RootsClient(filepath.Join(t.TempDir(), "none.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing roots file: %v", err)
	}
}
