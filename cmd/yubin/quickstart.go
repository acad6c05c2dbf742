package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"yubin/admin"
	"yubin/internal/address"
	"yubin/internal/config"
	"yubin/internal/dnsrecords"
	"yubin/internal/tlsutil"
	"yubin/store"
)

const quickstartSynopsis = "yubin quickstart ADDRESS [--hostname H] [--ipv4 A,B] [--ipv6 A,B] [--config FILE] [--data DIR]"

const quickstartHelp = `Usage: ` + quickstartSynopsis + `

First-time set-up for ADDRESS (e.g. admin@example.com), the domain's admin:
  - the data dir (--data, default ./data) and a config file (--config, default
    DATA/yubin.toml) with the host name and this server's public addresses;
  - the TLS certificate: from Let's Encrypt (ACME, tls.acme = true, with
    the http-01 challenge on port 80) when the host name already resolves to
    this machine, else a self-signed certificate for it in DATA/tls/;
  - the domain and the admin account, with a generated password printed once;
then it prints the DNS records to publish and the settings for mail clients.
Run it again at any time: nothing that exists is changed, and it says so.

  --hostname H   the mail host name: MX target, certificate, client settings
                 (default mail.DOMAIN)
  --ipv4 A,B     this server's public IPv4 addresses for SPF and the A record
                 (default: the global addresses of the network interfaces;
                 "none" for none)
  --ipv6 A,B     the same for IPv6
`

// quickstartLookupTimeout bounds the check whether the host name points here.
const quickstartLookupTimeout = 3 * time.Second

func cmdQuickstart(e *env, args []string) int {
	fset := flag.NewFlagSet("quickstart", flag.ContinueOnError)
	var c common
	c.register(fset, false)
	hostname := fset.String("hostname", "", "the mail host name `H` (default mail.DOMAIN)")
	ipv4 := fset.String("ipv4", "", "this server's public IPv4 addresses, comma-separated (default: detected; \"none\")")
	ipv6 := fset.String("ipv6", "", "this server's public IPv6 addresses, comma-separated (default: detected; \"none\")")
	pos, err := parseArgs(fset, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(e.stdout, quickstartHelp)
		return 0
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "yubin: %v\nusage: %s\n", err, quickstartSynopsis)
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintf(e.stderr, "usage: %s\n", quickstartSynopsis)
		return 2
	}
	addr, err := address.ParseAccount(strings.TrimSpace(pos[0]))
	if err != nil {
		return fail(e, "quickstart: %v", err)
	}
	domain := addr.Domain
	q := &quickstart{e: e}

	// The config: kept when it exists, else written from the example.
	dataDir := c.dataDir
	if dataDir == "" {
		dataDir = config.Default().DataDir
	}
	if dataDir, err = filepath.Abs(dataDir); err != nil {
		return fail(e, "%v", err)
	}
	cfgPath := c.configPath
	if cfgPath == "" {
		cfgPath = filepath.Join(dataDir, "yubin.toml")
	}
	if cfgPath, err = filepath.Abs(cfgPath); err != nil {
		return fail(e, "%v", err)
	}
	_, statErr := os.Stat(dataDir)
	dataDirExisted := statErr == nil
	var cfg config.Config
	where, whereErr := hostUnchecked, error(nil)
	if _, err := os.Stat(cfgPath); err == nil {
		if cfg, err = config.Load(cfgPath); err != nil {
			return fail(e, "%v", err)
		}
		if c.dataDir != "" {
			cfg.DataDir = dataDir
		}
		note := "exists, kept"
		if *hostname != "" || *ipv4 != "" || *ipv6 != "" {
			note += " (--hostname/--ipv4/--ipv6 ignored: edit the file)"
		}
		q.step("config", cfgPath, note)
	} else {
		h := strings.ToLower(strings.TrimSuffix(*hostname, "."))
		if h == "" {
			h = "mail." + domain
		}
		v4, v6 := detectAddrs()
		if *ipv4 != "" {
			if v4, err = addrList(*ipv4, true); err != nil {
				return fail(e, "quickstart: --ipv4: %v", err)
			}
		}
		if *ipv6 != "" {
			if v6, err = addrList(*ipv6, false); err != nil {
				return fail(e, "quickstart: --ipv6: %v", err)
			}
		}
		if err := os.MkdirAll(filepath.Dir(cfgPath), 0o700); err != nil {
			return fail(e, "%v", err)
		}
		where, whereErr = hostWhere(h)
		if cfg, err = writeConfig(cfgPath, h, dataDir, v4, v6, where == hostHere, addr.String()); err != nil {
			return fail(e, "quickstart: %v", err)
		}
		q.step("config", cfgPath, "created")
	}

	// The data dir (listed first).
	if cfg.DataDir != dataDir {
		_, statErr = os.Stat(cfg.DataDir)
		dataDirExisted = !errors.Is(statErr, fs.ErrNotExist)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fail(e, "%v", err)
	}
	dirRow := []string{"  data dir", cfg.DataDir, "exists"}
	if !dataDirExisted {
		dirRow[2] = "created"
	}
	q.rows = append([][]string{dirRow}, q.rows...)

	// The certificate.
	selfSigned := cfg.TLS.Cert == "" && !cfg.TLS.ACME
	switch {
	case cfg.TLS.Cert != "":
		q.step("certificate", cfg.TLS.Cert, "configured (tls.cert), kept")
	case cfg.TLS.ACME && where == hostHere:
		q.step("certificate", "ACME for "+cfg.Hostname, "tls.acme set ("+cfg.Hostname+" resolves to this machine): fetched on the first TLS connection")
	case cfg.TLS.ACME:
		q.step("certificate", "ACME for "+cfg.Hostname, "configured (tls.acme), kept")
	default:
		dir := filepath.Join(cfg.DataDir, "tls")
		certFile := filepath.Join(dir, "cert.pem")
		_, statErr := os.Stat(certFile)
		if _, err := tlsutil.SelfSigned(dir, cfg.Hostname); err != nil {
			return fail(e, "quickstart: certificate: %v", err)
		}
		if statErr == nil {
			q.step("certificate", certFile, "exists, kept")
		} else {
			q.step("certificate", certFile, "created (self-signed for "+cfg.Hostname+")")
		}
	}

	// The domain, the admin account and the DNS records, through the
	// running server when there is one.
	api, release, err := admin.Open(cfg)
	if err != nil {
		return fail(e, "%v", err)
	}
	defer release()
	ctx := context.Background()
	password := ""
	ds, err := admin.Do(ctx, api, admin.OpDomainList, admin.None{})
	if err != nil {
		return fail(e, "%v", err)
	}
	i := slices.IndexFunc(ds, func(d admin.Domain) bool { return d.Name == domain })
	switch {
	case i >= 0 && ds[i].Parent != "":
		return fail(e, "quickstart: %s is a child domain of %s and has no accounts of its own; run yubin quickstart with an address at %s", domain, ds[i].Parent, ds[i].Parent)
	case i >= 0:
		q.step("domain", domain, "exists")
	default:
		if _, err := admin.Do(ctx, api, admin.OpDomainAdd, admin.NewDomain{Name: domain}); err != nil {
			return fail(e, "%v", err)
		}
		q.step("domain", domain, "added")
	}
	if a, err := admin.Do(ctx, api, admin.OpAccountShow, addr.String()); err == nil {
		q.step("account", a.Address, "exists (role "+a.Role+"), password unchanged")
	} else if errors.Is(err, store.ErrNoSuchAccount) {
		if password, err = generatePassword(); err != nil {
			return fail(e, "%v", err)
		}
		if _, err := admin.Do(ctx, api, admin.OpAccountAdd, admin.NewAccount{Address: addr.String(), Password: password, Role: admin.RoleAdmin}); err != nil {
			return fail(e, "%v", err)
		}
		q.step("account", addr.String(), "added (role admin)")
	} else {
		return fail(e, "%v", err)
	}
	recs, err := admin.Do(ctx, api, admin.OpDNSRecords, domain)
	if err != nil {
		return fail(e, "%v", err)
	}
	release()

	w := e.stdout
	fmt.Fprintf(w, "Yubin quickstart for %s\n\n", addr)
	table(w, q.rows)
	if password != "" {
		fmt.Fprintf(w, "\nPassword of %s (shown only this once; change it with yubin account passwd):\n\n    %s\n", addr, password)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "DNS records to publish (yubin dns records prints them again, yubin dns check checks them):")
	fmt.Fprintln(w)
	printZone(w, recs.Host, recs.Records)
	fmt.Fprintln(w)
	printClientSettings(w, dnsrecords.FromConfig(cfg), addr.String())
	fmt.Fprintln(w)
	switch {
	case cfg.TLS.ACME:
		fmt.Fprint(w, acmeAdvice(cfg))
	case selfSigned:
		if where == hostUnchecked {
			where, whereErr = hostWhere(cfg.Hostname)
		}
		fmt.Fprint(w, certAdvice(cfg.Hostname, where, whereErr))
	}
	fmt.Fprintf(w, "Start the server:\n\n    yubin serve --config %s\n\n", cfgPath)
	fmt.Fprintf(w, "Give every admin command the same --config %s.\n", cfgPath)
	return 0
}

type quickstart struct {
	e    *env
	rows [][]string
}

func (q *quickstart) step(what, which, outcome string) {
	q.rows = append(q.rows, []string{"  " + what, which, outcome})
}

// writeConfig writes the example configuration with the host name, data
// dir and addresses filled in, never over an existing file, and returns it
// as loaded back.
//
// With acme, the config gets its certificate from Let's Encrypt (tls.acme,
// the CA's http-01 challenge on port 80, acmeEmail as the contact).
func writeConfig(path, hostname, dataDir string, v4, v6 []string, acme bool, acmeEmail string) (config.Config, error) {
	text := config.Example
	var err error
	kvs := []struct{ section, key, value string }{
		{"", "hostname", tomlString(hostname)},
		{"", "data_dir", tomlString(dataDir)},
		{"dns", "ipv4", tomlList(v4)},
		{"dns", "ipv6", tomlList(v6)},
	}
	if acme {
		kvs = append(kvs, []struct{ section, key, value string }{
			{"listen", "http", tomlString("0.0.0.0:80")},
			{"tls", "acme", "true"},
			{"tls", "acme_email", tomlString(acmeEmail)},
		}...)
	}
	for _, kv := range kvs {
		if text, err = setKey(text, kv.section, kv.key, kv.value); err != nil {
			return config.Config{}, err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return config.Config{}, err
	}
	if _, err := io.WriteString(f, text); err != nil {
		f.Close()
		return config.Config{}, err
	}
	if err := f.Close(); err != nil {
		return config.Config{}, err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return cfg, err
	}
	if cfg.Hostname != hostname || cfg.DataDir != dataDir || len(cfg.DNS.IPv4) != len(v4) || len(cfg.DNS.IPv6) != len(v6) || cfg.TLS.ACME != acme {
		return cfg, fmt.Errorf("the config written to %s does not read back as written; please report this", path)
	}
	return cfg, nil
}

// setKey replaces the value of key in section ("" = the top level) of a
// TOML text, keeping the line's comment.
func setKey(text, section, key, value string) (string, error) {
	lines := strings.Split(text, "\n")
	cur := ""
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
			cur = strings.Trim(t, "[]")
			continue
		}
		k, _, ok := strings.Cut(t, "=")
		if cur != section || !ok || strings.TrimSpace(k) != key || strings.HasPrefix(t, "#") {
			continue
		}
		comment := ""
		if j := strings.Index(l, "#"); j >= 0 {
			comment = "  " + l[j:]
		}
		lines[i] = key + " = " + value + comment
		return strings.Join(lines, "\n"), nil
	}
	return "", fmt.Errorf("the example config has no %s.%s", section, key)
}

func tomlString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func tomlList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = tomlString(x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// addrList parses a comma-separated list of addresses of one family;
// "none" is the empty list.
func addrList(s string, v4 bool) ([]string, error) {
	if strings.EqualFold(strings.TrimSpace(s), "none") {
		return []string{}, nil
	}
	out := []string{}
	for _, a := range strings.Split(s, ",") {
		ip := net.ParseIP(strings.TrimSpace(a))
		if ip == nil || (ip.To4() != nil) != v4 {
			return nil, fmt.Errorf("%q is not an IPv%s address", a, map[bool]string{true: "4", false: "6"}[v4])
		}
		out = append(out, ip.String())
	}
	return out, nil
}

// detectAddrs returns the public (global, not private) addresses of the
// machine's network interfaces.
func detectAddrs() (v4, v6 []string) {
	v4, v6 = []string{}, []string{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || !n.IP.IsGlobalUnicast() || n.IP.IsPrivate() {
			continue
		}
		if n.IP.To4() != nil {
			v4 = append(v4, n.IP.String())
		} else {
			v6 = append(v6, n.IP.String())
		}
	}
	return
}

const passwordAlphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// generatePassword returns 20 random characters (about 116 bits).
func generatePassword() (string, error) {
	b := make([]byte, 20)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(passwordAlphabet))))
		if err != nil {
			return "", err
		}
		b[i] = passwordAlphabet[n.Int64()]
	}
	return string(b), nil
}

func printClientSettings(w io.Writer, s dnsrecords.Settings, user string) {
	fmt.Fprintf(w, "Mail client settings (user name: the full address, e.g. %s; password: the account's):\n\n", user)
	rows := [][]string{{"  direction", "protocol", "server", "port", "security", "authentication"}}
	for _, out := range []bool{false, true} {
		for _, sv := range s.Services {
			if sv.Outgoing != out {
				continue
			}
			dir, auth := "incoming", "normal password"
			if out {
				dir, auth = "outgoing", "required (SMTP AUTH), normal password"
			}
			rows = append(rows, []string{"  " + dir, sv.Protocol, s.Host, fmt.Sprint(sv.Port), sv.TLS, auth})
		}
	}
	table(w, rows)
}

// Where a host name points, as far as this machine can tell.
const (
	hostUnchecked = iota
	hostUnresolved
	hostHere
	hostElsewhere
)

// lookupIPAddr resolves the host name (tests replace it).
var lookupIPAddr = net.DefaultResolver.LookupIPAddr

// hostWhere reports whether host resolves to an address of this machine's
// network interfaces.
func hostWhere(host string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), quickstartLookupTimeout)
	defer cancel()
	ips, err := lookupIPAddr(ctx, host)
	if err != nil {
		return hostUnresolved, err
	}
	local := map[string]bool{}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				local[n.IP.String()] = true
			}
		}
	}
	for _, ip := range ips {
		if local[ip.IP.String()] {
			return hostHere, nil
		}
	}
	return hostElsewhere, nil
}

// acmeAdvice says where the ACME certificate comes from and what it needs.
func acmeAdvice(cfg config.Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "TLS certificate: ACME (tls.acme = true), from %s.\n", cfg.TLS.ACMEDirectory)
	fmt.Fprintf(&b, "It is fetched for %s on the first TLS connection, kept in %s\n", cfg.Hostname, filepath.Join(cfg.DataDir, "acme"))
	fmt.Fprintf(&b, "and renewed automatically. The CA checks the host name over HTTP: keep port 80\n")
	fmt.Fprintf(&b, "(listen.http = %q) open to the Internet, and %s pointing to this machine.\n\n", cfg.Listen.HTTP, cfg.Hostname)
	return b.String()
}

// certAdvice says what the self-signed certificate means and how to get a
// trusted one, given where the host name points.
func certAdvice(host string, where int, err error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "The certificate is self-signed: mail clients will ask to trust it once.\n")
	acme := "set tls.acme = true and listen.http = \"0.0.0.0:80\" in the config (a Let's Encrypt\n" +
		"certificate, fetched and renewed automatically), or set tls.cert and tls.key to a certificate of your own.\n\n"
	switch where {
	case hostHere:
		fmt.Fprintf(&b, "%s resolves to this machine: for a trusted certificate, ", host)
	case hostElsewhere:
		fmt.Fprintf(&b, "%s resolves, but not to an address of this machine (behind NAT?). If port 80\n", host)
		b.WriteString("reaches this machine, or once the name points here: ")
	default:
		fmt.Fprintf(&b, "%s does not resolve yet (%v): publish its A record above. Once it points to this\n", host, err)
		b.WriteString("machine: ")
	}
	b.WriteString(acme)
	return b.String()
}
