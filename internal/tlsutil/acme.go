package tlsutil

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// ACMEConfig says which certificates to get from which ACME CA.
type ACMEConfig struct {
	// Hosts are the only names certificates are requested for (the host
	// policy). The first is used when a client sends no SNI (clients that
	// connect by IP address, old clients).
	Hosts        []string
	Email        string // contact given to the CA; "" = none
	DirectoryURL string // e.g. Let's Encrypt's production directory
	CacheDir     string // account key and certificates (created 0700)
	// HTTPClient talks to the CA; nil = http.DefaultClient's settings
	// (system roots). RootsPEM builds one trusting those roots instead.
	HTTPClient *http.Client
}

// ACME gets certificates on the first TLS handshake that needs them, keeps
// them in the cache dir and renews them (golang.org/x/crypto/acme/autocert).
//
// Only the http-01 challenge is used: the CA fetches a token over plain
// HTTP on port 80 (HTTPHandler). tls-alpn-01 needs port 443, which a mail
// server does not serve, so it is never attempted: the CA's offer of it is
// hidden from autocert (which would otherwise try it first, fail, and count
// a failed validation against the CA's rate limits on every issuance).
type ACME struct {
	m           *autocert.Manager
	defaultHost string
}

// NewACME sets up the manager; nothing is fetched until a handshake needs it.
func NewACME(c ACMEConfig) (*ACME, error) {
	if len(c.Hosts) == 0 || c.Hosts[0] == "" {
		return nil, errors.New("acme: no host name")
	}
	if c.DirectoryURL == "" {
		return nil, errors.New("acme: no directory URL")
	}
	if err := os.MkdirAll(c.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("acme: cache dir: %w", err)
	}
	if err := os.Chmod(c.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("acme: cache dir: %w", err)
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc2 := *hc
	hc2.Transport = http01Only{base}
	var hosts []string
	seen := map[string]bool{}
	for _, h := range c.Hosts {
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		if h != "" && !seen[h] {
			seen[h] = true
			hosts = append(hosts, h)
		}
	}
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(c.CacheDir),
		HostPolicy: autocert.HostWhitelist(hosts...),
		Email:      c.Email,
		Client:     &acme.Client{DirectoryURL: c.DirectoryURL, HTTPClient: &hc2},
	}
	return &ACME{m: m, defaultHost: hosts[0]}, nil
}

// HTTPHandler answers the CA's http-01 challenges; any other GET or HEAD is
// redirected to https, anything else is refused (autocert's fallback).
// It must be served on port 80 before the first handshake. A port in the
// Host header (a CA or proxy using another port) is ignored for the host
// policy, which autocert would otherwise apply to "host:port".
func (a *ACME) HTTPHandler() http.Handler {
	h := a.m.HTTPHandler(nil)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if host, _, err := net.SplitHostPort(r.Host); err == nil && strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
			r2 := *r
			r2.Host = host
			r = &r2
		}
		h.ServeHTTP(w, r)
	})
}

// TLSConfig returns the server config for every TLS listener. It does not
// offer the acme-tls/1 protocol: tls-alpn-01 is not used.
func (a *ACME) TLSConfig() *tls.Config {
	return &tls.Config{GetCertificate: a.GetCertificate, MinVersion: tls.VersionTLS12}
}

// GetCertificate is autocert's, with the default host name standing in for
// a missing SNI.
func (a *ACME) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if hello.ServerName == "" {
		h := *hello
		h.ServerName = a.defaultHost
		hello = &h
	}
	return a.m.GetCertificate(hello)
}

// RootsClient returns an HTTP client that trusts only the CA certificates
// in a PEM file (for a private ACME CA's directory).
func RootsClient(pemFile string) (*http.Client, error) {
	b, err := os.ReadFile(pemFile)
	if err != nil {
		return nil, fmt.Errorf("acme: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("acme: %s: no PEM certificates", pemFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: time.Minute}, nil
}

// http01Only removes the tls-alpn-01 challenge from the authorizations the
// CA returns, so that autocert goes straight to http-01. Anything it cannot
// parse passes unchanged (autocert then tries tls-alpn-01, fails, and falls
// back to http-01 itself).
type http01Only struct{ next http.RoundTripper }

func (t http01Only) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), "json") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var authz map[string]json.RawMessage
	if json.Unmarshal(body, &authz) != nil || authz["challenges"] == nil || authz["identifier"] == nil {
		return resp, nil
	}
	var chals []map[string]json.RawMessage
	if json.Unmarshal(authz["challenges"], &chals) != nil {
		return resp, nil
	}
	kept := chals[:0]
	for _, c := range chals {
		var typ string
		if json.Unmarshal(c["type"], &typ) == nil && typ == "tls-alpn-01" {
			continue
		}
		kept = append(kept, c)
	}
	if len(kept) == len(chals) {
		return resp, nil
	}
	if authz["challenges"], err = json.Marshal(kept); err != nil {
		return resp, nil
	}
	nb, err := json.Marshal(authz)
	if err != nil {
		return resp, nil
	}
	resp.Body = io.NopCloser(bytes.NewReader(nb))
	resp.ContentLength = int64(len(nb))
	resp.Header.Del("Content-Length")
	return resp, nil
}
