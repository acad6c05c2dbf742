package queue

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/textproto"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// deliveryError is why a destination or a recipient failed.
type deliveryError struct {
	perm   bool
	status string // enhanced status code
	msg    string
	smtp   bool   // msg is a remote SMTP reply
	host   string // remote MTA, if any
}

func (e *deliveryError) Error() string { return e.msg }

func tempErr(status, format string, args ...any) *deliveryError {
	return &deliveryError{status: status, msg: fmt.Sprintf(format, args...)}
}

func permErr(status, format string, args ...any) *deliveryError {
	return &deliveryError{perm: true, status: status, msg: fmt.Sprintf(format, args...)}
}

// fromReply classifies an error of a go-smtp client call. A reply from the
// server is permanent for 5xx and temporary otherwise; anything else (the
// connection broke, a timeout) is temporary and conn is true.
func fromReply(err error, host string) (de *deliveryError, conn bool) {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		st := "4.0.0"
		if se.Code >= 500 {
			st = "5.0.0"
		}
		if se.EnhancedCode != smtp.NoEnhancedCode && se.EnhancedCode != (smtp.EnhancedCode{}) {
			st = fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
		}
		msg := strconv.Itoa(se.Code)
		if se.EnhancedCode != smtp.NoEnhancedCode && se.EnhancedCode != (smtp.EnhancedCode{}) {
			msg += " " + st
		}
		msg += " " + se.Message
		return &deliveryError{perm: se.Code >= 500 && se.Code < 600, status: st, msg: msg, smtp: true, host: host}, false
	}
	return &deliveryError{status: "4.4.2", msg: fmt.Sprintf("connection with %s failed: %v", host, err), host: host}, true
}

// route is where the mail for one destination goes.
type route struct {
	key    string // destination domain, or the smart host
	domain string // destination domain (MX delivery)
}

// conn is an open SMTP connection to a destination.
type conn struct {
	c    *smtp.Client
	host string // the MX host name (or smart host) it is connected to
	tls  bool
	ext  func(string) bool
}

func (cn *conn) close() { cn.c.Close() }

func (cn *conn) quit() {
	cn.c.Quit()
	cn.c.Close()
}

// target is one host to try, with its addresses.
type target struct {
	host  string
	addrs []string // host:port
}

// tlsMode is how a connection uses TLS.
type tlsMode int

const (
	tlsOpportunistic tlsMode = iota // STARTTLS when offered (MX hosts, RFC 7435)
	tlsRequired                     // STARTTLS, or nothing is sent
	tlsImplicit                     // TLS from the first byte
	tlsOff                          // never
)

// smartHostTLS is the TLS mode for the smart host: STARTTLS required
// unless the config says otherwise, and always when credentials go along.
func (r *Runner) smartHostTLS() tlsMode {
	switch r.cfg.SmartHostTLS {
	case "tls":
		return tlsImplicit
	case "opportunistic", "none":
		if r.cfg.SmartHostUser != "" {
			return tlsRequired // a password never goes in plain text
		}
		if r.cfg.SmartHostTLS == "none" {
			return tlsOff
		}
		return tlsOpportunistic
	}
	return tlsRequired // "starttls", and anything else
}

// connect opens a connection to the destination of rt: the smart host, or
// the domain's MX hosts in order of preference (RFC 5321 section 5.1).
func (r *Runner) connect(ctx context.Context, rt route) (*conn, error) {
	var targets []target
	mode := tlsOpportunistic
	if r.cfg.SmartHost != "" {
		host, port, err := net.SplitHostPort(r.cfg.SmartHost)
		if err != nil {
			return nil, tempErr("4.3.5", "smart host %q: %v", r.cfg.SmartHost, err)
		}
		addrs, err := r.hostAddrs(ctx, host, port)
		if err != nil {
			return nil, err
		}
		targets = []target{{host, addrs}}
		mode = r.smartHostTLS()
	} else {
		hosts, err := r.mxHosts(ctx, rt.domain)
		if err != nil {
			return nil, err
		}
		var lastErr error
		for _, h := range hosts {
			addrs, err := r.hostAddrs(ctx, h, "25")
			if err != nil {
				lastErr = err
				continue
			}
			targets = append(targets, target{h, addrs})
		}
		if len(targets) == 0 {
			if lastErr == nil {
				lastErr = tempErr("4.4.4", "no address for the mail exchangers of %s", rt.domain)
			}
			return nil, lastErr
		}
	}
	var lastErr error
	for _, t := range targets {
		for _, a := range t.addrs {
			cn, err := r.dialHost(ctx, t.host, a, mode)
			if errors.Is(err, errTLSFailed) && mode == tlsOpportunistic {
				// Opportunistic TLS failed: try once more in the clear.
				r.log.Info("outbound STARTTLS failed, retrying without TLS", "host", t.host, "addr", a)
				cn, err = r.dialHost(ctx, t.host, a, tlsOff)
			}
			if err == nil {
				if err := r.authenticate(cn); err != nil {
					cn.quit()
					return nil, err
				}
				return cn, nil
			}
			r.log.Info("outbound connection failed", "host", t.host, "addr", a, "err", err)
			lastErr = err
			if ctx.Err() != nil {
				return nil, tempErr("4.4.2", "shutting down")
			}
		}
	}
	if de := (*deliveryError)(nil); errors.As(lastErr, &de) {
		return nil, de
	}
	return nil, tempErr("4.4.1", "no mail exchanger of %s answered: %v", rt.key, lastErr)
}

func (r *Runner) authenticate(cn *conn) error {
	if r.cfg.SmartHost == "" || r.cfg.SmartHostUser == "" {
		return nil
	}
	if !cn.tls {
		return tempErr("4.7.10", "smart host %s: refusing to send credentials without TLS", cn.host)
	}
	if err := cn.c.Auth(sasl.NewPlainClient("", r.cfg.SmartHostUser, r.cfg.SmartHostPassword)); err != nil {
		de, _ := fromReply(err, cn.host)
		de.perm = false // a configuration problem: keep the mail, tell the admin
		de.msg = "smart host authentication: " + de.msg
		return de
	}
	return nil
}

// mxHosts returns the domain's mail exchangers, best first, equal
// preferences shuffled; the domain itself when it has no MX (implicit MX).
func (r *Runner) mxHosts(ctx context.Context, domain string) ([]string, error) {
	mxs, err := r.res.LookupMX(ctx, domain)
	var dnsErr *net.DNSError
	switch {
	case err == nil && len(mxs) == 1 && (mxs[0].Host == "." || mxs[0].Host == ""):
		return nil, permErr("5.1.10", "%s does not accept mail (null MX, RFC 7505)", domain)
	case err == nil && len(mxs) > 0:
		rand.Shuffle(len(mxs), func(i, j int) { mxs[i], mxs[j] = mxs[j], mxs[i] })
		sort.SliceStable(mxs, func(i, j int) bool { return mxs[i].Pref < mxs[j].Pref })
		hosts := make([]string, 0, len(mxs))
		for _, mx := range mxs {
			hosts = append(hosts, strings.TrimSuffix(mx.Host, "."))
		}
		return hosts, nil
	case err == nil, errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		// No MX: the domain's own address records (RFC 5321 section 5.1).
		return []string{domain}, nil
	}
	return nil, tempErr("4.4.3", "looking up the MX of %s: %v", domain, err)
}

func (r *Runner) hostAddrs(ctx context.Context, host, port string) ([]string, error) {
	if ip := net.ParseIP(host); ip != nil {
		return []string{net.JoinHostPort(host, port)}, nil
	}
	ips, err := r.res.LookupIPAddr(ctx, host)
	var dnsErr *net.DNSError
	if err != nil && errors.As(err, &dnsErr) && dnsErr.IsNotFound || err == nil && len(ips) == 0 {
		return nil, permErr("5.1.2", "host %s not found", host)
	}
	if err != nil {
		return nil, tempErr("4.4.3", "looking up %s: %v", host, err)
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, net.JoinHostPort(ip.IP.String(), port))
	}
	return out, nil
}

var errTLSFailed = errors.New("TLS handshake failed")

// dialHost connects to addr and says EHLO, using TLS as mode says. With
// tlsRequired, a server that offers no STARTTLS, refuses it or fails the
// handshake gets nothing but EHLO and QUIT: the error is temporary (the
// mail stays queued) and logged as a warning. With tlsOpportunistic, a
// failed handshake is errTLSFailed (the caller may try again in the clear).
func (r *Runner) dialHost(ctx context.Context, host, addr string, mode tlsMode) (*conn, error) {
	dctx, cancel := context.WithTimeout(ctx, r.cfg.ConnectTimeout)
	nc, err := r.dial(dctx, "tcp", addr)
	cancel()
	if err != nil {
		return nil, tempErr("4.4.1", "connecting to %s (%s): %v", host, addr, err)
	}
	tlsConf := r.tlsConfig(host)
	deadline := func() { nc.SetDeadline(time.Now().Add(r.cfg.CommandTimeout)) }
	isTLS := false
	var greeted net.Conn
	if mode == tlsImplicit {
		deadline()
		tc := tls.Client(nc, tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, tempErr("4.7.5", "TLS with %s (%s): %v", host, addr, err)
		}
		greeted, isTLS = tc, true
	} else {
		// Greeting and EHLO by hand: go-smtp's client cannot upgrade a
		// connection after an EHLO of our choosing.
		deadline()
		tp := textproto.NewConn(nc)
		if _, _, err := tp.ReadResponse(220); err != nil {
			nc.Close()
			de, _ := fromReply(textprotoErr(err), host)
			de.perm = false // another MX may do better; try again later
			de.msg = "greeting: " + de.msg
			return nil, de
		}
		// noTLS ends a connection that must be encrypted and is not.
		noTLS := func(why string) (*conn, error) {
			tp.PrintfLine("QUIT")
			nc.Close()
			r.log.Warn("smart host without TLS: nothing sent, the mail stays queued (outbound.smart_host_tls = \"starttls\" requires TLS; \"opportunistic\" or \"none\" would allow plain text)",
				"host", host, "addr", addr, "reason", why)
			return nil, tempErr("4.7.10", "%s (%s) %s; TLS is required, nothing was sent", host, addr, why)
		}
		offered := false
		if mode != tlsOff {
			if err := tp.PrintfLine("EHLO %s", r.cfg.Hostname); err == nil {
				if _, msg, err := tp.ReadResponse(250); err == nil {
					for _, l := range strings.Split(msg, "\n")[1:] {
						if strings.EqualFold(strings.TrimSpace(l), "STARTTLS") {
							offered = true
						}
					}
				}
			}
		}
		if !offered && mode == tlsRequired {
			return noTLS("offers no STARTTLS")
		}
		if offered {
			deadline()
			if err := tp.PrintfLine("STARTTLS"); err != nil {
				nc.Close()
				return nil, tempErr("4.4.2", "%s: %v", host, err)
			}
			_, _, err := tp.ReadResponse(220)
			switch {
			case err == nil:
				tc := tls.Client(nc, tlsConf)
				if err := tc.HandshakeContext(ctx); err != nil {
					if mode == tlsRequired {
						return noTLS("failed the TLS handshake: " + err.Error())
					}
					nc.Close()
					return nil, fmt.Errorf("%s (%s): %w: %v", host, addr, errTLSFailed, err)
				}
				nc, isTLS = tc, true
			case mode == tlsRequired:
				return noTLS("refused STARTTLS: " + err.Error())
			}
		}
		// go-smtp reads a greeting first: give it the one already read.
		greeted = &pregreeted{Conn: nc, pre: []byte("220 " + host + "\r\n")}
	}
	c := smtp.NewClient(&writeDeadline{Conn: greeted, d: r.cfg.CommandTimeout})
	c.CommandTimeout = r.cfg.CommandTimeout
	c.SubmissionTimeout = r.cfg.DataTimeout
	if err := c.Hello(r.cfg.Hostname); err != nil {
		c.Close()
		de, _ := fromReply(err, host)
		de.perm = false
		return nil, de
	}
	return &conn{c: c, host: host, tls: isTLS, ext: func(e string) bool { ok, _ := c.Extension(e); return ok }}, nil
}

// textprotoErr turns a textproto reply error into go-smtp's form.
func textprotoErr(err error) error {
	var te *textproto.Error
	if errors.As(err, &te) {
		return &smtp.SMTPError{Code: te.Code, EnhancedCode: smtp.NoEnhancedCode, Message: te.Msg}
	}
	return err
}

func (r *Runner) tlsConfig(host string) *tls.Config {
	c := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if r.tlsBase != nil {
		c = r.tlsBase.Clone()
		if c.ServerName == "" {
			c.ServerName = host
		}
	}
	// Opportunistic TLS (RFC 7435): most MX certificates do not match the
	// MX name, and a failed check would only push the mail to plain text.
	// The smart host is checked unless configured otherwise.
	if !r.cfg.VerifyTLS && !(r.cfg.SmartHost != "" && r.cfg.SmartHostVerifyTLS) {
		c.InsecureSkipVerify = true
	}
	return c
}

// pregreeted replays a greeting already consumed, then reads from Conn.
type pregreeted struct {
	net.Conn
	pre []byte
}

func (p *pregreeted) Read(b []byte) (int, error) {
	if len(p.pre) > 0 {
		n := copy(b, p.pre)
		p.pre = p.pre[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// writeDeadline bounds every write (go-smtp sets no deadline while the
// message body is written).
type writeDeadline struct {
	net.Conn
	d time.Duration
}

func (w *writeDeadline) Write(b []byte) (int, error) {
	w.Conn.SetWriteDeadline(time.Now().Add(w.d))
	return w.Conn.Write(b)
}

// sendResult is what happened to one entry's recipients on one attempt.
type sendResult struct {
	sent   []string
	failed map[string]*deliveryError // rcpt -> why (perm or temp)
	broken bool                      // the connection is unusable now
}

// send transmits one message to rcpts over cn. signature is put in front
// of msg.
func (cn *conn) send(from string, rcpts []string, signature, msg []byte) sendResult {
	res := sendResult{failed: map[string]*deliveryError{}}
	all := func(de *deliveryError, conn bool) sendResult {
		for _, rc := range rcpts {
			if _, done := res.failed[rc]; !done {
				res.failed[rc] = de
			}
		}
		res.sent = nil
		res.broken = conn
		return res
	}
	opts := &smtp.MailOptions{Size: int64(len(signature) + len(msg))}
	if needsUTF8(from, rcpts, msg) {
		if cn.ext("SMTPUTF8") {
			opts.UTF8 = true
		} else if !isASCII(from) || !allASCII(rcpts) {
			return all(permErr("5.6.7", "%s does not support SMTPUTF8, needed for a non-ASCII address", cn.host), false)
		}
		// Non-ASCII header text without SMTPUTF8: sent as is (8BITMIME,
		// offered by practically every server, is announced by go-smtp).
	}
	if err := cn.c.Mail(from, opts); err != nil {
		de, broken := fromReply(err, cn.host)
		if !broken {
			cn.c.Reset()
		}
		return all(de, broken)
	}
	var accepted []string
	for _, rc := range rcpts {
		if err := cn.c.Rcpt(rc, nil); err != nil {
			de, broken := fromReply(err, cn.host)
			if broken {
				return all(de, true)
			}
			res.failed[rc] = de
			continue
		}
		accepted = append(accepted, rc)
	}
	if len(accepted) == 0 {
		if err := cn.c.Reset(); err != nil {
			res.broken = true
		}
		return res
	}
	w, err := cn.c.Data()
	if err != nil {
		de, broken := fromReply(err, cn.host)
		if !broken {
			cn.c.Reset()
		}
		return all(de, broken)
	}
	_, err = io.Copy(w, io.MultiReader(bytes.NewReader(signature), bytes.NewReader(msg)))
	if err == nil {
		err = w.Close()
	} else {
		w.Close()
	}
	if err != nil {
		de, broken := fromReply(err, cn.host)
		return all(de, broken)
	}
	res.sent = accepted
	return res
}

func needsUTF8(from string, rcpts []string, msg []byte) bool {
	if !isASCII(from) || !allASCII(rcpts) {
		return true
	}
	h := msg
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		h = msg[:i]
	}
	for _, c := range h {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func allASCII(ss []string) bool {
	for _, s := range ss {
		if !isASCII(s) {
			return false
		}
	}
	return true
}
