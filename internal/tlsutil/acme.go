package tlsutil

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
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
	// Log gets a line for each failed issuance, with the time of the next
	// attempt; nil = none.
	Log *slog.Logger
	// Now is the clock of the cooldowns; nil = time.Now.
	Now func() time.Time
}

// ACMECooldown is how long no new issuance is attempted for a name after
// its failures-th failure in a row: 1 minute, then three times longer each
// time (3, 9, 27, 81 minutes), at most ACMECooldownMax. That stays within
// Let's Encrypt's limit of 5 failed validations per name and account an
// hour (attempts at 0, 1, 4, 13 and 40 minutes, the next at 121): a host
// whose DNS or port 80 is wrong does not lock itself out of the CA.
func ACMECooldown(failures int) time.Duration {
	d := time.Minute
	for i := 1; i < failures && d < ACMECooldownMax; i++ {
		d *= 3
	}
	return min(d, ACMECooldownMax)
}

// ACMECooldownMax bounds ACMECooldown.
const ACMECooldownMax = 4 * time.Hour

// ACME gets certificates on the first TLS handshake that needs them, keeps
// them in the cache dir and renews them (golang.org/x/crypto/acme/autocert).
//
// Only the http-01 challenge is used: the CA fetches a token over plain
// HTTP on port 80 (HTTPHandler). tls-alpn-01 needs port 443, which a mail
// server does not serve, so it is never attempted: the CA's offer of it is
// hidden from autocert (which would otherwise try it first, fail, and count
// a failed validation against the CA's rate limits on every issuance).
//
// A failed issuance is not retried by the next handshake: for ACMECooldown
// after it, handshakes needing that certificate fail at once, without
// contacting the CA (autocert alone retries a minute after every failure,
// whatever the number of failures). Each certificate (a name, with an ECDSA
// or, for the rare client without ECDSA, an RSA key) has an autocert
// manager of its own, so that one failing does not hold back another, and
// a failed one is replaced by a fresh manager when its cooldown ends.
type ACME struct {
	hosts       []string
	defaultHost string
	accountKey  crypto.Signer
	conf        ACMEConfig
	hc          *http.Client // with the tls-alpn-01 filter
	now         func() time.Time
	log         *slog.Logger

	mu    sync.Mutex
	certs map[certID]*acmeCert
}

// certID is one certificate autocert keeps: a name and its key type.
type certID struct {
	host string
	rsa  bool
}

// acmeCert is the manager of one certificate and its failures.
type acmeCert struct {
	m        *autocert.Manager
	http     http.Handler // m's http-01 handler (which also turns http-01 on in m)
	failed   bool         // m failed an issuance: replaced after the cooldown
	failures int          // in a row
	until    time.Time    // no issuance attempt before
	lastErr  error
}

// NewACME sets up the managers; nothing is fetched until a handshake needs
// it. The ACME account key is read from the cache dir, or made and kept
// there (as autocert keeps it).
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
	key, err := accountKey(autocert.DirCache(c.CacheDir))
	if err != nil {
		return nil, err
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
	a := &ACME{hosts: hosts, defaultHost: hosts[0], accountKey: key, conf: c, hc: &hc2,
		now: c.Now, log: c.Log, certs: map[certID]*acmeCert{}}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	for _, h := range hosts {
		for _, rsa := range []bool{false, true} {
			c := &acmeCert{}
			a.renew(c, h)
			a.certs[certID{h, rsa}] = c
		}
	}
	return a, nil
}

// renew gives c a fresh manager for host.
func (a *ACME) renew(c *acmeCert, host string) {
	c.m = &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(a.conf.CacheDir),
		HostPolicy: autocert.HostWhitelist(host),
		Email:      a.conf.Email,
		// A client of its own (autocert sets fields of it), with the one
		// account key.
		Client: &acme.Client{DirectoryURL: a.conf.DirectoryURL, HTTPClient: a.hc, Key: a.accountKey},
	}
	c.http = c.m.HTTPHandler(nil)
	c.failed = false
}

// HTTPHandler answers the CA's http-01 challenges; any other GET or HEAD is
// redirected to https, anything else is refused (autocert's fallback).
// It must be served on port 80 before the first handshake. A port in the
// Host header (a CA or proxy using another port) is ignored for the host
// policy, which autocert would otherwise apply to "host:port".
func (a *ACME) HTTPHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
			if h, _, err := net.SplitHostPort(r.Host); err == nil {
				r2 := *r
				r2.Host = h
				r = &r2
				host = h
			}
		}
		// The tokens are in the cache dir too: the manager of either key
		// type answers for both. Another name: the default host's
		// manager refuses it (403), or redirects.
		a.mu.Lock()
		c := a.certs[certID{strings.ToLower(strings.TrimSuffix(host, ".")), false}]
		if c == nil {
			c = a.certs[certID{a.defaultHost, false}]
		}
		h := c.http
		a.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// TLSConfig returns the server config for every TLS listener. It does not
// offer the acme-tls/1 protocol: tls-alpn-01 is not used.
func (a *ACME) TLSConfig() *tls.Config {
	return &tls.Config{GetCertificate: a.GetCertificate, MinVersion: tls.VersionTLS12}
}

// GetCertificate is autocert's, with the default host name standing in for
// a missing SNI, and the cooldown after a failed issuance.
func (a *ACME) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if hello.ServerName == "" {
		h := *hello
		h.ServerName = a.defaultHost
		hello = &h
	}
	id := certID{strings.ToLower(strings.TrimSuffix(hello.ServerName, ".")), !supportsECDSA(hello)}
	a.mu.Lock()
	c := a.certs[id]
	if c == nil {
		a.mu.Unlock()
		return nil, fmt.Errorf("acme: no certificate for %q: not one of the configured host names", hello.ServerName)
	}
	if c.failed {
		if a.now().Before(c.until) {
			err := fmt.Errorf("acme: no certificate for %s: issuance failed %d time(s) in a row, next attempt after %s; last error: %w",
				id.host, c.failures, c.until.Format(time.RFC3339), c.lastErr)
			a.mu.Unlock()
			return nil, err
		}
		a.renew(c, id.host) // autocert's own state would refuse for another minute
	}
	m := c.m
	a.mu.Unlock()

	cert, err := m.GetCertificate(hello)

	a.mu.Lock()
	defer a.mu.Unlock()
	if c.m != m { // replaced meanwhile (a reset): its outcome no longer counts
		return cert, err
	}
	if err == nil {
		if c.failures > 0 {
			a.log.Info("ACME: certificate obtained after failures", "host", id.host, "rsa", id.rsa, "failures", c.failures)
			c.failures = 0
		}
		return cert, nil
	}
	// Handshakes that waited for the failed issuance get autocert's
	// "missing certificate": one failure is counted once, with its cause.
	if !c.failed && !isAutocertWaiterError(err) {
		c.failed = true
		c.failures++
		c.until = a.now().Add(ACMECooldown(c.failures))
		c.lastErr = err
		a.log.Warn("ACME: could not get a certificate; handshakes needing it fail until the next attempt",
			"host", id.host, "rsa", id.rsa, "failures", c.failures, "next_attempt", c.until.Format(time.RFC3339), "err", err)
	}
	return nil, err
}

// ResetCooldown forgets the failures: the next handshake needing a
// certificate that failed tries again at once (after the DNS or port 80 was
// fixed; on SIGHUP).
func (a *ACME) ResetCooldown() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.certs {
		c.failures = 0
		c.until = time.Time{}
	}
}

// isAutocertWaiterError is what autocert returns to the handshakes that
// waited on an issuance that failed (and for a minute after it).
func isAutocertWaiterError(err error) bool {
	s := err.Error()
	return s == "acme/autocert: missing certificate" || s == "acme/autocert: missing signer"
}

// accountKey reads the ACME account key from the cache as autocert does
// (acme_account+key, or acme_account.key of older versions), or makes an
// ECDSA P-256 key and keeps it there in autocert's format.
func accountKey(cache autocert.DirCache) (crypto.Signer, error) {
	ctx := context.Background()
	data, err := cache.Get(ctx, "acme_account+key")
	if errors.Is(err, autocert.ErrCacheMiss) {
		data, err = cache.Get(ctx, "acme_account.key")
	}
	if errors.Is(err, autocert.ErrCacheMiss) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, err
		}
		if err := cache.Put(ctx, "acme_account+key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})); err != nil {
			return nil, fmt.Errorf("acme: account key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("acme: account key: %w", err)
	}
	b, _ := pem.Decode(data)
	if b == nil || !strings.Contains(b.Type, "PRIVATE") {
		return nil, errors.New("acme: account key in the cache dir is not a PEM private key")
	}
	if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
	}
	if k, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("acme: account key in the cache dir cannot be parsed")
}

// supportsECDSA is autocert's choice of the key type for a handshake
// (copied from golang.org/x/crypto/acme/autocert, BSD licence), so that
// each manager sees one key type.
func supportsECDSA(hello *tls.ClientHelloInfo) bool {
	if hello.SignatureSchemes != nil {
		ecdsaOK := false
	schemeLoop:
		for _, scheme := range hello.SignatureSchemes {
			const tlsECDSAWithSHA1 tls.SignatureScheme = 0x0203
			switch scheme {
			case tlsECDSAWithSHA1, tls.ECDSAWithP256AndSHA256,
				tls.ECDSAWithP384AndSHA384, tls.ECDSAWithP521AndSHA512:
				ecdsaOK = true
				break schemeLoop
			}
		}
		if !ecdsaOK {
			return false
		}
	}
	if hello.SupportedCurves != nil {
		ecdsaOK := false
		for _, curve := range hello.SupportedCurves {
			if curve == tls.CurveP256 {
				ecdsaOK = true
				break
			}
		}
		if !ecdsaOK {
			return false
		}
	}
	for _, suite := range hello.CipherSuites {
		switch suite {
		case tls.TLS_ECDHE_ECDSA_WITH_RC4_128_SHA,
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305:
			return true
		}
	}
	return false
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
