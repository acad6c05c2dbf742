package delivery

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"slices"
	"strconv"
	"strings"
	"time"

	"yubin/internal/dnsbl"
	"yubin/internal/mailheader"
	"yubin/internal/spam"
	"yubin/store"
)

// SpamStore is what the spam stage reads: the recipients' policies and
// domains, their spam models, and whether they have a Junk mailbox.
type SpamStore interface {
	Account(ctx context.Context, addr string) (store.Account, error)
	IsLocalDomain(ctx context.Context, d string) bool
	DomainSettings(ctx context.Context, domain string) (store.DomainSettings, error)
	Mailbox(ctx context.Context, account, name string) (store.Mailbox, error)
	SpamTotals(ctx context.Context, owner string) (store.SpamTotals, error)
	SpamCounts(ctx context.Context, owner string, tokens []string) (store.SpamTotals, []store.SpamCount, error)
}

// SpamStage is the spam filter (SPEC section 10) on mail from port 25,
// after the authentication checks and scanning and before forwarding. Per
// recipient account it scores the message with the account's model (its
// domain's until the account has trained enough), the header rules, the
// authentication results, the client's DNSBL listings (Envelope.DNSBL)
// and the URIBL listings of its URL hosts;
// writes X-Yubin-Spam into the recipient's header fields; and applies the
// account's policy to spam: deliver as usual (off), to Junk with the
// Subject optionally tagged (junk), or hold in the quarantine
// (quarantine). When every recipient is on a domain whose reject score the
// message reaches, the message is refused with 550 5.7.1.
type SpamStage struct {
	Store SpamStore
	// Quarantine bounds each account's quarantine (zero: the store's
	// default).
	Quarantine store.QuarantineLimit
	// Blocklists looks the message's URL hosts up on the spam.uribl
	// zones (nil: none).
	Blocklists *dnsbl.Checker
	Log        *slog.Logger     // may be nil
	Now        func() time.Time // nil: time.Now
}

// Name implements Stage.
func (s *SpamStage) Name() string { return "spam" }

// SpamReject is the reply to mail every recipient's domain refuses as spam.
var SpamReject = &Reject{Code: 550, Enhanced: [3]int{5, 7, 1}, Text: "Message refused as spam"}

// Subject tags of spam delivered to Junk when the account asks for one.
const (
	SpamTag   = "[SPAM]"
	SpamTagJA = "[迷惑メール]"
)

// Process implements Stage.
func (s *SpamStage) Process(ctx context.Context, m *Message) error {
	if m.Env.Source != MX {
		return nil // submission is rate-limited, not filtered
	}
	// A verdict from outside never gets here: smtpd strips every field
	// Yubin owns (mailheader.StripOwned) from what it receives.
	live := 0
	for _, r := range m.Local {
		if !r.Drop {
			live++
		}
	}
	if live == 0 {
		return nil
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	raw := m.Raw
	if m.Tail != nil {
		// Spooled (big): as much as training reads of a stored message.
		var err error
		if raw, err = io.ReadAll(io.LimitReader(m.Reader(), spam.MaxTrainBytes)); err != nil {
			return err
		}
	}
	tokens := spam.Tokenize(raw)
	hdr := m.Raw[:mailheader.HeaderSize(m.Raw)]
	summary := *m.Summary()
	signals := spam.HeaderRules(hdr, summary, now(), func(d string) bool { return s.Store.IsLocalDomain(ctx, d) })
	signals = append(signals, spam.Auth{SPF: m.Auth.SPF, DKIM: m.Auth.DKIM, DMARC: m.Auth.DMARC}.Signals()...)
	signals = append(signals, spam.BlocklistSignals("dnsbl", m.Env.DNSBL)...)
	if s.Blocklists.HasURIBL() {
		signals = append(signals, spam.BlocklistSignals("uribl", s.Blocklists.CheckHosts(ctx, spam.URLHosts(tokens)))...)
	}

	f := &spamFilter{s: s, ctx: ctx, m: m, base: tokens, signals: signals,
		classified: map[string]classified{}, domainTrained: map[string]bool{}, withHeader: map[string][]string{}, domains: map[string]store.DomainSettings{},
		tagged: map[taggedKey]*Body{}, holds: map[string]*store.QuarantineHold{}}
	f.summary = summary
	rejects := 0
	var verdicts []string
	for _, r := range m.Local {
		if r.Drop {
			continue
		}
		outcome, reject, err := f.recipient(r)
		if err != nil {
			return err
		}
		if reject {
			rejects++
		}
		if !contains(verdicts, outcome) {
			verdicts = append(verdicts, outcome)
		}
	}
	m.Verdict += "; spam=" + strings.Join(verdicts, ",")
	if rejects == len(m.Local) && len(m.Remote) == 0 {
		// Every recipient's domain refuses it (none was dropped by
		// scanning, so no report is lost by refusing).
		return SpamReject
	}
	return nil
}

// spamFilter is the spam stage's work on one message.
type spamFilter struct {
	s       *SpamStage
	ctx     context.Context
	m       *Message
	base    []string // tokens of the message
	signals []spam.Signal
	summary mailheader.Summary

	classified    map[string]classified // by owner and header fields
	domainTrained map[string]bool       // whether a domain's model is trained enough
	withHeader    map[string][]string   // tokens with a recipient's header fields
	domains       map[string]store.DomainSettings
	tagged        map[taggedKey]*Body
	holds         map[string]*store.QuarantineHold // by header value
}

type classified struct {
	bayes float64
	model string
	clues int
	known []spam.Signal // spam.Reputation's, when From is authenticated
}

type taggedKey struct {
	body *Body
	tag  string
}

// recipient scores the message for one recipient and applies its policy.
// It returns the outcome for the log line and whether the recipient's
// domain refuses the message.
func (f *spamFilter) recipient(r *Recipient) (string, bool, error) {
	ctx := f.ctx
	var pol store.SpamPolicy
	acct, err := f.s.Store.Account(ctx, r.Account)
	if err == nil {
		pol = acct.Spam
	}
	pol = pol.Effective()
	domain := r.Account[strings.LastIndexByte(r.Account, '@')+1:]
	c, err := f.classify(r, domain)
	if err != nil {
		return "", false, err
	}
	signals := f.signals
	if len(c.known) > 0 {
		signals = append(slices.Clip(f.signals), c.known...)
	}
	res := spam.NewResult(c.bayes, c.model, c.clues, signals)
	value := res.HeaderValue(pol.Threshold)
	r.Header = Prepend([]byte(spam.HeaderName+": "+value+"\r\n"), r.Header)
	score := strconv.FormatFloat(res.Score, 'f', 2, 64)
	if !res.IsSpam(pol.Threshold) {
		return score + ":no", false, nil
	}
	ds := f.domainSettings(domain)
	reject := ds.SpamRejectScore > 0 && res.Score >= ds.SpamRejectScore
	switch pol.Action {
	case store.SpamOff:
		return score + ":yes-off", reject, nil
	case store.SpamQuarantine:
		r.Quarantine = f.hold(value, res)
		return score + ":quarantine", reject, nil
	}
	if _, err := f.s.Store.Mailbox(ctx, r.Account, "Junk"); err == nil {
		r.Mailbox = "Junk"
	}
	if pol.Tag && (r.Body != nil || f.m.Tail == nil) { // a spooled message keeps its Subject
		tag := SpamTag
		if ds.Language == "ja" {
			tag = SpamTagJA
		}
		r.Body = f.tag(r.Body, tag)
	}
	return score + ":junk", reject, nil
}

// classify runs the classifier with the model that speaks for the
// account: its own once it has AccountTraining spam and ham, else its
// domain's once that has spam.MinTraining, else none.
func (f *spamFilter) classify(r *Recipient, domain string) (classified, error) {
	ctx := f.ctx
	owner, model := "", ""
	tot, err := f.s.Store.SpamTotals(ctx, r.Account)
	if err != nil {
		return classified{}, err
	}
	if spam.OwnModelReady(tot) {
		owner, model = r.Account, spam.ModelAccount
	} else {
		trained, ok := f.domainTrained[domain]
		if !ok {
			if tot, err = f.s.Store.SpamTotals(ctx, domain); err != nil {
				return classified{}, err
			}
			trained = spam.DomainModelReady(tot)
			f.domainTrained[domain] = trained
		}
		if trained {
			owner, model = domain, spam.ModelDomain
		}
	}
	if owner == "" {
		return classified{bayes: 0.5}, nil
	}
	key := owner + "\x00" + string(r.Header)
	if c, ok := f.classified[key]; ok {
		return c, nil
	}
	tokens := f.tokens(r.Header)
	tot, counts, err := f.s.Store.SpamCounts(ctx, owner, tokens)
	if err != nil {
		return classified{}, err
	}
	p, clues := spam.Classify(tot, tokens, counts)
	c := classified{bayes: p, model: model, clues: len(clues)}
	if f.fromAuthenticated() {
		c.known = spam.Reputation(tokens, counts)
	}
	f.classified[key] = c
	return c, nil
}

// tokens are the message's tokens with those of a recipient's header
// fields (Authentication-Results), as training will see the stored copy.
func (f *spamFilter) tokens(header []byte) []string {
	if !bytes.Contains(header, []byte("Authentication-Results:")) {
		return f.base // the other fields are ours, never tokens
	}
	if t, ok := f.withHeader[string(header)]; ok {
		return t
	}
	t := append(append([]string(nil), f.base...), spam.TokenizeHeader(header)...)
	f.withHeader[string(header)] = t
	return t
}

// fromAuthenticated reports whether the message's From can be believed
// (spam.Auth.Authenticated), so that the sender's reputation counts.
func (f *spamFilter) fromAuthenticated() bool {
	if len(f.summary.From) != 1 {
		return false
	}
	env := f.m.Env.From
	return spam.Auth{SPF: f.m.Auth.SPF, DKIM: f.m.Auth.DKIM, DMARC: f.m.Auth.DMARC}.
		Authenticated(f.summary.From[0].Host, env[strings.LastIndexByte(env, '@')+1:])
}

func (f *spamFilter) domainSettings(domain string) store.DomainSettings {
	if ds, ok := f.domains[domain]; ok {
		return ds
	}
	ds, err := f.s.Store.DomainSettings(f.ctx, domain)
	if err != nil && f.s.Log != nil {
		f.s.Log.Warn("spam: domain settings", "domain", domain, "err", err)
	}
	f.domains[domain] = ds
	return ds
}

// hold is the quarantine entry's details for a result; recipients with
// the same header value share it (and so one stored copy).
func (f *spamFilter) hold(value string, res spam.Result) *store.QuarantineHold {
	if h, ok := f.holds[value]; ok {
		return h
	}
	from := ""
	if len(f.summary.From) > 0 {
		a := f.summary.From[0]
		from = a.Mailbox + "@" + a.Host
		if a.Name != "" {
			from = a.Name + " <" + from + ">"
		}
	}
	h := &store.QuarantineHold{QueueID: f.m.Env.QueueID, Sender: f.m.Env.From, From: from, Subject: f.summary.Subject,
		Score: res.Score, Signals: res.SignalNames(), Limit: f.s.Quarantine}
	f.holds[value] = h
	return h
}

// tag returns body (nil: the message as received) with tag before its
// Subject, shared by the recipients that get the same.
func (f *spamFilter) tag(body *Body, tag string) *Body {
	k := taggedKey{body, tag}
	if b, ok := f.tagged[k]; ok {
		return b
	}
	raw := f.m.Raw
	if body != nil {
		raw = body.Raw
	}
	b := &Body{Raw: TagSubject(raw, tag)}
	f.tagged[k] = b
	return b
}

// TagSubject puts tag in front of the Subject of raw (adding a Subject
// when there is none), as an RFC 2047 encoded word if it is not ASCII. The
// rest of raw is kept byte for byte.
func TagSubject(raw []byte, tag string) []byte {
	word := tag
	for _, r := range tag {
		if r >= 0x80 {
			word = mime.BEncoding.Encode("UTF-8", tag)
			break
		}
	}
	end := mailheader.HeaderSize(raw)
	hdr := raw[:end]
	off := 0
	for off < len(hdr) {
		nl := strings.IndexByte(string(hdr[off:]), '\n')
		line := hdr[off:]
		if nl >= 0 {
			line = hdr[off : off+nl+1]
		}
		if len(line) > 8 && strings.EqualFold(string(line[:8]), "subject:") {
			at := off + 8
			out := make([]byte, 0, len(raw)+len(word)+2)
			out = append(out, raw[:at]...)
			out = append(out, ' ')
			out = append(out, word...)
			if at < len(raw) && raw[at] != ' ' && raw[at] != '\t' {
				out = append(out, ' ')
			}
			return append(out, raw[at:]...)
		}
		off += len(line)
	}
	// No Subject: add one at the end of the header section.
	at := end
	if at == 2 && string(raw[:2]) == "\r\n" || at >= 4 && string(raw[at-4:at]) == "\r\n\r\n" {
		at -= 2 // before the empty line
	}
	out := make([]byte, 0, len(raw)+len(word)+14)
	out = append(out, raw[:at]...)
	if at > 0 && raw[at-1] != '\n' {
		out = append(out, '\r', '\n')
	}
	out = fmt.Appendf(out, "Subject: %s\r\n", word)
	return append(out, raw[at:]...)
}
