// Checker checks mail from the Internet (port 25) before it is
// delivered: SPF (RFC 7208, spf.go), DKIM signatures (RFC 6376,
// go-msgauth/dkim) and DMARC (RFC 7489, go-msgauth/dmarc, with alignment and
// the organizational-domain fallback done here). The results go into one
// Authentication-Results header (RFC 8601, go-msgauth/authres). Any such
// header that claims to come from us was removed when the message came in
// (smtpd, mailheader.StripOwned).
//
// DMARC p=reject with a failing message is refused with 550 5.7.1;
// p=quarantine delivers it to every recipient's Junk mailbox. A DNS failure
// that leaves the outcome open is refused with 451 4.4.3 (RFC 7208 section
// 8.6), so the sender retries and no mail is lost or misfiled. Mail from
// authenticated users (submission) is not checked.

package spf

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/publicsuffix"

	"yubin/internal/delivery"
)

// DefaultTimeout bounds all DNS lookups done for one message.
const DefaultTimeout = 30 * time.Second

// MaxSignatures is how many DKIM signatures of one message are verified.
const MaxSignatures = 5

// Checker is the delivery stage that runs the checks. The zero value of
// every field but Hostname is usable.
type Checker struct {
	// Hostname is this server's name: the authserv-id of the
	// Authentication-Results header.
	Hostname string
	// Resolver does every lookup; nil = the system's resolver.
	Resolver Resolver
	// Timeout bounds the lookups of one message; 0 = DefaultTimeout.
	Timeout time.Duration
	// Log gets a line for every quarantined message; nil = discard.
	Log *slog.Logger
	// Sample reports whether a message falls into a DMARC pct= sample
	// (called only when pct < 100); nil = random.
	Sample func(pct int) bool
}

var _ delivery.Stage = (*Checker)(nil)

// Name implements delivery.Stage.
func (c *Checker) Name() string { return "authcheck" }

// DKIMResult is the outcome of one DKIM signature.
type DKIMResult struct {
	Result     string // pass, fail, permerror, temperror (RFC 8601)
	Domain     string // d=
	Identifier string // i=
	Err        error
}

// DMARCResult is the DMARC outcome of a message.
type DMARCResult struct {
	Result string // pass, fail, none, temperror, permerror
	From   string // the RFC5322.From domain
	// Policy is what to do with the message: none, quarantine or reject
	// (after sp= and pct=); empty when there is no policy.
	Policy dmarc.Policy
	// PolicyDomain is where the record was found (the From domain or its
	// organizational domain).
	PolicyDomain string
	Reason       string
}

// Results are the outcomes of all checks of one message.
type Results struct {
	SPF         Result
	SPFIdentity Identity
	SPFErr      error
	DKIM        []DKIMResult // one per signature; none: no signature
	DMARC       DMARCResult
}

// Process implements delivery.Stage.
func (c *Checker) Process(ctx context.Context, m *delivery.Message) error {
	if m.Env.Source != delivery.MX {
		return nil // authenticated submission
	}
	res := c.check(ctx, m.Env, m.Raw, m.Reader())
	if rj := res.Refusal(); rj != nil {
		return rj
	}
	m.PrependHeader(res.Header(c.authservID()))
	m.Auth = res.Summary()
	c.logger().Debug("authentication results", "queue_id", m.Env.QueueID, "spf", string(res.SPF),
		"spf_domain", res.SPFIdentity.Domain, "dkim", len(res.DKIM), "dmarc", res.DMARC.Result, "from_domain", res.DMARC.From)
	if res.DMARC.Result == "fail" && res.DMARC.Policy == dmarc.PolicyQuarantine {
		for _, r := range m.Local {
			r.Mailbox = "Junk"
		}
		c.logger().Info("DMARC quarantine: delivered to Junk", "queue_id", m.Env.QueueID,
			"from_domain", res.DMARC.From, "policy_domain", res.DMARC.PolicyDomain)
	}
	return nil
}

func (c *Checker) authservID() string {
	if c.Hostname == "" {
		return "localhost"
	}
	return c.Hostname
}

func (c *Checker) logger() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

// Refusal is the SMTP reply the results call for, or nil to deliver.
func (r *Results) Refusal() *delivery.Reject {
	switch {
	case r.SPF == TempError:
		return &delivery.Reject{Code: 451, Enhanced: [3]int{4, 4, 3},
			Text: fmt.Sprintf("Temporary DNS failure checking the SPF policy of %s; please try again later", r.SPFIdentity.Domain)}
	case r.DMARC.Result == "temperror":
		return &delivery.Reject{Code: 451, Enhanced: [3]int{4, 4, 3},
			Text: fmt.Sprintf("Temporary DNS failure checking DMARC for %s; please try again later", r.DMARC.From)}
	case r.DMARC.Result == "fail" && r.DMARC.Policy == dmarc.PolicyReject:
		return &delivery.Reject{Code: 550, Enhanced: [3]int{5, 7, 1},
			Text: fmt.Sprintf("Message rejected: it fails DMARC and the policy of %s is reject", r.DMARC.PolicyDomain)}
	}
	return nil
}

// Check runs SPF, DKIM and DMARC for a message as received (raw) with its
// envelope.
func (c *Checker) Check(ctx context.Context, env delivery.Envelope, raw []byte) Results {
	return c.check(ctx, env, raw, bytes.NewReader(raw))
}

// check is Check for a message whose header section starts header and
// whose whole content msg reads (a big message is read from its spool
// file as DKIM hashes it, never held in memory).
func (c *Checker) check(ctx context.Context, env delivery.Envelope, header []byte, msg io.Reader) Results {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := c.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	r = Transient(r) // any DNS failure is temporary: 451, not a verdict
	lookupTXT := func(name string) ([]string, error) { return r.LookupTXT(ctx, name) }

	var res Results
	res.SPF, res.SPFIdentity, res.SPFErr = Check(ctx, r, ipOf(env.RemoteAddr), env.Helo, env.From)

	verifs, err := dkim.VerifyWithOptions(msg, &dkim.VerifyOptions{LookupTXT: lookupTXT, MaxVerifications: MaxSignatures})
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		res.DKIM = append(res.DKIM, DKIMResult{Result: "permerror", Err: err})
	}
	for _, v := range verifs {
		d := DKIMResult{Result: "pass", Domain: v.Domain, Identifier: v.Identifier, Err: v.Err}
		switch {
		case v.Err == nil:
		case dkim.IsTempFail(v.Err):
			d.Result = "temperror"
		case dkim.IsPermFail(v.Err):
			d.Result = "permerror"
		default:
			d.Result = "fail"
		}
		res.DKIM = append(res.DKIM, d)
	}

	res.DMARC = c.dmarc(header, &res, lookupTXT)
	return res
}

// dmarc evaluates DMARC (RFC 7489 section 6.6) from the SPF and DKIM
// results.
func (c *Checker) dmarc(raw []byte, res *Results, lookupTXT func(string) ([]string, error)) DMARCResult {
	from, err := fromDomain(raw)
	if err != nil {
		return DMARCResult{Result: "permerror", Reason: err.Error()}
	}
	out := DMARCResult{From: from}
	org := OrgDomain(from)
	out.PolicyDomain = from
	rec, err := dmarc.LookupWithOptions(from, &dmarc.LookupOptions{LookupTXT: lookupTXT})
	if errors.Is(err, dmarc.ErrNoPolicy) && org != from {
		out.PolicyDomain = org
		rec, err = dmarc.LookupWithOptions(org, &dmarc.LookupOptions{LookupTXT: lookupTXT})
	}
	switch {
	case errors.Is(err, dmarc.ErrNoPolicy):
		out.Result, out.PolicyDomain = "none", ""
		return out
	case dmarc.IsTempFail(err):
		out.Result = "temperror"
		out.Reason = err.Error()
		return out
	case err != nil:
		out.Result = "permerror"
		out.Reason = err.Error()
		return out
	}

	out.Policy = rec.Policy
	if out.PolicyDomain != from && rec.SubdomainPolicy != "" {
		out.Policy = rec.SubdomainPolicy
	}

	spfAligned := res.SPF == Pass && aligned(res.SPFIdentity.Domain, from, rec.SPFAlignment)
	dkimAligned, dkimTemp := false, false
	for _, d := range res.DKIM {
		if d.Result == "pass" && aligned(d.Domain, from, rec.DKIMAlignment) {
			dkimAligned = true
		}
		if d.Result == "temperror" && aligned(d.Domain, from, rec.DKIMAlignment) {
			dkimTemp = true
		}
	}
	switch {
	case spfAligned || dkimAligned:
		out.Result = "pass"
		return out
	case dkimTemp && out.Policy != dmarc.PolicyNone:
		// The signature might verify once its key can be fetched.
		out.Result = "temperror"
		out.Reason = "DKIM key lookup failed"
		return out
	}
	out.Result = "fail"
	if rec.Percent != nil && *rec.Percent < 100 && !c.sample(*rec.Percent) {
		// Section 6.6.4: outside the sample, the next policy down applies.
		switch out.Policy {
		case dmarc.PolicyReject:
			out.Policy = dmarc.PolicyQuarantine
		case dmarc.PolicyQuarantine:
			out.Policy = dmarc.PolicyNone
		}
	}
	return out
}

func (c *Checker) sample(pct int) bool {
	if c.Sample != nil {
		return c.Sample(pct)
	}
	n, err := rand.Int(rand.Reader, big.NewInt(100))
	return err == nil && int(n.Int64()) < pct
}

// aligned compares two domains in DMARC strict or relaxed mode.
func aligned(a, b string, mode dmarc.AlignmentMode) bool {
	a, b = normDomain(a), normDomain(b)
	if a == "" || b == "" {
		return false
	}
	if mode == dmarc.AlignmentStrict {
		return a == b
	}
	return OrgDomain(a) == OrgDomain(b)
}

func normDomain(d string) string { return strings.ToLower(strings.TrimSuffix(d, ".")) }

// OrgDomain is the organizational domain of d (RFC 7489 section 3.2): the
// public suffix plus one label.
func OrgDomain(d string) string {
	d = normDomain(d)
	if org, err := publicsuffix.EffectiveTLDPlusOne(d); err == nil {
		return org
	}
	return d
}

// fromDomain returns the domain of the message's RFC5322.From (section
// 6.6.1). A missing From, several From fields or addresses of different
// domains are errors (DMARC permerror).
func fromDomain(raw []byte) (string, error) {
	fields := headerFields(raw)
	var values []string
	for _, f := range fields {
		if name, value, ok := splitField(f); ok && strings.EqualFold(name, "From") {
			values = append(values, value)
		}
	}
	switch len(values) {
	case 0:
		return "", errors.New("no From header")
	case 1:
	default:
		return "", errors.New("several From headers")
	}
	var domains []string
	if addrs, err := mail.ParseAddressList(values[0]); err == nil {
		for _, a := range addrs {
			domains = append(domains, a.Address[strings.LastIndexByte(a.Address, '@')+1:])
		}
	} else {
		// Unparseable: take every "@domain" in it, so that a malformed
		// From does not escape the policy of the domain it shows.
		for _, part := range strings.Split(values[0], "@")[1:] {
			end := strings.IndexAny(part, " \t\r\n>,;()\"<")
			if end >= 0 {
				part = part[:end]
			}
			if part != "" {
				domains = append(domains, part)
			}
		}
	}
	var d string
	for _, x := range domains {
		x = normDomain(x)
		if d != "" && x != d {
			return "", errors.New("From addresses of several domains")
		}
		d = x
	}
	if !ValidDomain(d) {
		return "", errors.New("no usable domain in From")
	}
	return d, nil
}

func ipOf(a net.Addr) net.IP {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP
	case nil:
		return nil
	}
	if h, _, err := net.SplitHostPort(a.String()); err == nil {
		return net.ParseIP(h)
	}
	return nil
}

// Summary is the results in one word each, for the stages after the
// checks (the spam filter): DKIM is "pass" if any signature passed, else
// "fail" if any failed, else the first signature's result ("none" when
// there is none).
func (r *Results) Summary() delivery.AuthResults {
	out := delivery.AuthResults{SPF: string(r.SPF), DKIM: "none", DMARC: r.DMARC.Result}
	for i, d := range r.DKIM {
		switch {
		case d.Result == "pass":
			out.DKIM = "pass"
		case d.Result == "fail" && out.DKIM != "pass":
			out.DKIM = "fail"
		case i == 0:
			out.DKIM = d.Result
		}
	}
	return out
}

// Header returns the Authentication-Results header field (folded, without
// the final CRLF) for the results.
func (r *Results) Header(authservID string) string {
	var parts []authres.Result
	s := &authres.SPFResult{Value: authres.ResultValue(r.SPF)}
	if r.SPFIdentity.Helo {
		s.Helo = r.SPFIdentity.HeloName
	} else {
		s.From = r.SPFIdentity.Sender
	}
	if (r.SPF == PermError || r.SPF == TempError) && r.SPFErr != nil {
		s.Reason = r.SPFErr.Error()
	}
	parts = append(parts, s)
	if len(r.DKIM) == 0 {
		parts = append(parts, &authres.DKIMResult{Value: authres.ResultNone})
	}
	for _, d := range r.DKIM {
		dr := &authres.DKIMResult{Value: authres.ResultValue(d.Result), Domain: d.Domain, Identifier: d.Identifier}
		if d.Err != nil {
			dr.Reason = d.Err.Error()
		}
		parts = append(parts, dr)
	}
	dm := &authres.DMARCResult{Value: authres.ResultValue(r.DMARC.Result), From: r.DMARC.From}
	if r.DMARC.Result == "fail" && r.DMARC.Policy != "" {
		dm.Reason = "p=" + string(r.DMARC.Policy)
	} else if r.DMARC.Reason != "" && r.DMARC.Result != "pass" {
		dm.Reason = r.DMARC.Reason
	}
	parts = append(parts, dm)

	id := headerSafe(authservID)
	var b strings.Builder
	b.WriteString("Authentication-Results: ")
	b.WriteString(id)
	for _, p := range parts {
		one := authres.Format(id, []authres.Result{p})
		b.WriteString(";\r\n\t")
		b.WriteString(headerSafe(strings.TrimSpace(strings.TrimPrefix(one, id+"; "))))
	}
	return b.String()
}

// headerSafe replaces control characters (CR, LF, ...) so that nothing
// taken from the message or the client can break out of the header.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
