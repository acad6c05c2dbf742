package spam

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/publicsuffix"

	"yubin/internal/dnsbl"
	"yubin/internal/mailheader"
	"yubin/store"
)

// HeaderName is the field every message from port 25 carries with the
// filter's result.
const HeaderName = "X-Yubin-Spam"

// Signal is one named piece of evidence besides the classifier, with the
// weight it adds to the score (negative lowers it).
type Signal struct {
	Name   string
	Weight float64
}

// Weights of the signals the filter finds itself. They are small next to
// the classifier's range on purpose: alone (an untrained model) the header
// rules and authentication results take a message over the default
// threshold only when several agree; with a trained model they move the
// unsure middle.
const (
	WeightSPFFail     = 0.15
	WeightSPFSoftfail = 0.05
	WeightDKIMFail    = 0.10
	WeightDMARCFail   = 0.25
	WeightNoMessageID = 0.15
	WeightNoDate      = 0.10
	WeightFutureDate  = 0.20
	WeightFromSpoof   = 0.40
	// A listing of the client's IP on a DNSBL zone (not marked reject),
	// and of a URL host of the message on a URIBL zone: per zone.
	// A From address the model has seen only in ham, and a From domain
	// it has seen in KnownDomainHam ham and no spam: a sender the user
	// has kept mail from before (mox's reputation, in the model's terms).
	WeightKnownSender   = -0.5
	WeightKnownDomain   = -0.3
	KnownDomainHam      = 2
	WeightDNSBL         = 0.35
	WeightURIBL         = 0.35
	FutureDateTolerance = 48 * time.Hour
)

// MinTraining is the training a model needs before its opinion counts:
// this many spam and this many ham messages. With less the classifier is
// left out and only the signals make the score.
const MinTraining = 10

// AccountTraining is the training an account's own model needs before it
// is used instead of its domain's (SPEC section 10).
const AccountTraining = 50

// Auth is what the authentication checks found: "pass", "fail",
// "softfail", "none", ... ("" = not checked).
type Auth struct {
	SPF, DKIM, DMARC string
}

// Signals returns the authentication signals of a.
func (a Auth) Signals() []Signal {
	var out []Signal
	switch a.SPF {
	case "fail":
		out = append(out, Signal{"spf-fail", WeightSPFFail})
	case "softfail":
		out = append(out, Signal{"spf-softfail", WeightSPFSoftfail})
	}
	if a.DKIM == "fail" {
		out = append(out, Signal{"dkim-fail", WeightDKIMFail})
	}
	if a.DMARC == "fail" {
		out = append(out, Signal{"dmarc-fail", WeightDMARCFail})
	}
	return out
}

// Authenticated reports whether a message's From domain (fromDomain) can
// be believed as far as the checks tell: DMARC passed; or the domain has
// no DMARC policy, SPF passed and the envelope sender's domain
// (mailFromDomain) is in the same organizational domain; or the checks did
// not run at all (dns.check_inbound = false: the admin chose to take From
// as it is).
func (a Auth) Authenticated(fromDomain, mailFromDomain string) bool {
	switch {
	case a.SPF == "" && a.DKIM == "" && a.DMARC == "":
		return true
	case a.DMARC == "pass":
		return true
	case a.DMARC == "none" && a.SPF == "pass" && fromDomain != "":
		return orgDomain(fromDomain) == orgDomain(mailFromDomain)
	}
	return false
}

func orgDomain(d string) string {
	d = strings.ToLower(strings.TrimSuffix(d, "."))
	if reg, err := publicsuffix.EffectiveTLDPlusOne(d); err == nil {
		return reg
	}
	return d
}

// Reputation returns the signals of a sender the model knows from ham:
// "known-sender" when the From address (Tokenize's "from:addr:" token)
// was trained only as ham, else "known-domain" when the From domain
// ("from:dom:") or its registered domain ("from:org:") was trained as ham
// KnownDomainHam times and never as spam. counts[i] is the model's count of tokens[i]. Call it only for an
// authenticated From (Auth.Authenticated): a forged one is no
// acquaintance.
func Reputation(tokens []string, counts []store.SpamCount) []Signal {
	var addr, dom bool
	for i, t := range tokens {
		c := counts[i]
		switch {
		case strings.HasPrefix(t, "from:addr:"):
			if c.Ham >= 1 && c.Spam == 0 {
				addr = true
			}
		case strings.HasPrefix(t, "from:dom:"), strings.HasPrefix(t, "from:org:"):
			if c.Ham >= KnownDomainHam && c.Spam == 0 {
				dom = true
			}
		}
	}
	switch {
	case addr:
		return []Signal{{"known-sender", WeightKnownSender}}
	case dom:
		return []Signal{{"known-domain", WeightKnownDomain}}
	}
	return nil
}

// BlocklistSignals returns a signal for each zone that lists something in
// hits (kind "dnsbl" for the client's IP, "uribl" for URL hosts), named
// "dnsbl:ZONE" with the zone's weight.
func BlocklistSignals(kind string, hits []dnsbl.Hit) []Signal {
	weight := WeightDNSBL
	if kind == "uribl" {
		weight = WeightURIBL
	}
	var out []Signal
	seen := map[string]bool{}
	for _, h := range hits {
		if !seen[h.Zone] {
			seen[h.Zone] = true
			out = append(out, Signal{kind + ":" + h.Zone, weight})
		}
	}
	return out
}

// URLHosts returns the URL hosts among tokens (Tokenize's "url:" tokens),
// for URIBL lookups.
func URLHosts(tokens []string) []string {
	var out []string
	for _, t := range tokens {
		if h, ok := strings.CutPrefix(t, "url:"); ok && h != "ip" {
			out = append(out, h)
		}
	}
	return out
}

// HeaderRules returns the cheap rules' signals for a header section
// (SPEC section 10) and its summary (mailheader.Parse of a copy: Parse
// overwrites what it is given): no Message-ID, no Date, a Date far in the
// future, and a From display name that carries an address on one of our
// domains (ours reports whether a domain is) while the From address is
// another.
func HeaderRules(hdr []byte, sum mailheader.Summary, now time.Time, ours func(domain string) bool) []Signal {
	var out []Signal
	var hasID, hasDate bool
	for _, f := range fieldNames(hdr) {
		switch f {
		case "message-id":
			hasID = true
		case "date":
			hasDate = true
		}
	}
	if !hasID {
		out = append(out, Signal{"no-message-id", WeightNoMessageID})
	}
	if !hasDate {
		out = append(out, Signal{"no-date", WeightNoDate})
	} else if !sum.Date.IsZero() && sum.Date.After(now.Add(FutureDateTolerance)) {
		out = append(out, Signal{"future-date", WeightFutureDate})
	}
	for _, a := range sum.From {
		if spoofedName(a, ours) {
			out = append(out, Signal{"from-spoof", WeightFromSpoof})
			break
		}
	}
	return out
}

// spoofedName reports whether a From address's display name shows an
// address on one of our domains that is not the address itself.
func spoofedName(a mailheader.Address, ours func(string) bool) bool {
	from := strings.ToLower(a.Mailbox + "@" + a.Host)
	for _, w := range strings.FieldsFunc(a.Name, func(r rune) bool {
		return r == ' ' || r == '<' || r == '>' || r == '"' || r == '\'' || r == '(' || r == ')' || r == ',' || r == ';' || r == '[' || r == ']'
	}) {
		at := strings.LastIndexByte(w, '@')
		if at <= 0 || at == len(w)-1 {
			continue
		}
		w = strings.ToLower(strings.TrimRight(w, "."))
		if w != from && ours(w[at+1:]) {
			return true
		}
	}
	return false
}

// fieldNames returns the lower-cased names of the fields of a header
// section.
func fieldNames(hdr []byte) []string {
	var out []string
	for len(hdr) > 0 {
		i := 0
		for i < len(hdr) && hdr[i] != '\n' {
			i++
		}
		line := hdr[:i]
		if i < len(hdr) {
			hdr = hdr[i+1:]
		} else {
			hdr = nil
		}
		if len(line) == 0 || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		if c := strings.IndexByte(string(line), ':'); c > 0 {
			out = append(out, strings.ToLower(strings.TrimSpace(string(line[:c]))))
		}
	}
	return out
}

// Result is the filter's opinion of one message for one account.
type Result struct {
	// Score is the classifier's probability plus the signals' weights,
	// in [0, 1].
	Score float64
	// Bayes is the classifier's probability; Model is which model gave
	// it ("account", "domain"), "" when no model was trained enough; Clues
	// is how many tokens it found telling. Without a model or clues the
	// signals alone make the score: knowing nothing is not suspicion.
	Bayes float64
	Model string
	Clues int
	// Signals are the evidence besides the classifier.
	Signals []Signal
}

// NewResult combines the classifier's probability (when there is a model
// and it found clues) and the signals into a score.
func NewResult(bayes float64, model string, clues int, signals []Signal) Result {
	r := Result{Bayes: bayes, Model: model, Clues: clues, Signals: signals}
	score := 0.0
	if model != "" && clues > 0 {
		score = bayes
	}
	for _, s := range signals {
		score += s.Weight
	}
	// Rounded as the header shows it, so that what it says is what was
	// compared with the threshold.
	r.Score = math.Round(math.Min(math.Max(score, 0), 1)*100) / 100
	return r
}

// IsSpam reports whether the score reaches threshold.
func (r Result) IsSpam(threshold float64) bool { return r.Score >= threshold }

// SignalNames lists the classifier and the signals as the header writes
// them: "bayes-domain:0.93" ("bayes:untrained" without a model trained
// enough, "bayes-domain:unknown" when it found no clues), then
// "name:+weight".
func (r Result) SignalNames() []string {
	out := make([]string, 0, len(r.Signals)+1)
	switch {
	case r.Model == "":
		out = append(out, "bayes:untrained")
	case r.Clues == 0:
		out = append(out, "bayes-"+r.Model+":unknown")
	default:
		out = append(out, "bayes-"+r.Model+":"+strconv.FormatFloat(r.Bayes, 'f', 2, 64))
	}
	for _, s := range r.Signals {
		out = append(out, fmt.Sprintf("%s:%+.2f", headerSafe(s.Name), s.Weight))
	}
	return out
}

// HeaderValue is the value of X-Yubin-Spam, e.g.
// "yes; score=0.97; threshold=0.50; signals=bayes-domain:0.93,spf-fail:+0.15".
func (r Result) HeaderValue(threshold float64) string {
	verdict := "no"
	if r.IsSpam(threshold) {
		verdict = "yes"
	}
	return fmt.Sprintf("%s; score=%.2f; threshold=%.2f; signals=%s", verdict, r.Score, threshold, strings.Join(r.SignalNames(), ","))
}

// headerSafe keeps a signal name to characters that cannot break the
// header or its list.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r == ',' || r == ';' || r == 0x7f || r > 0x7e {
			return '_'
		}
		return r
	}, s)
}
