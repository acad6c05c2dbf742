package admin

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"yubin/internal/spam"
	"yubin/store"
)

// SpamPolicy is an account's spam filter policy, defaults filled in.
type SpamPolicy struct {
	Address   string           `json:"address"`
	Action    store.SpamAction `json:"action"`    // off, junk or quarantine
	Threshold float64          `json:"threshold"` // the score from which mail is spam
	// DefaultThreshold says the account uses store.DefaultSpamThreshold.
	DefaultThreshold bool `json:"default_threshold"`
	Tag              bool `json:"tag"` // [SPAM] before the Subject of mail put in Junk
}

// SpamPolicyChange is the request of OpSpamPolicy: the fields to change,
// as the CLI's flags give them; empty ones stay. The Service checks them.
type SpamPolicyChange struct {
	Address   string `json:"address"`
	Action    string `json:"action,omitempty"`    // off, junk or quarantine
	Threshold string `json:"threshold,omitempty"` // a number above 0 and at most 1, or "default"
	Tag       string `json:"tag,omitempty"`       // on or off
}

// SpamState is what "spam show" prints: an account's policy and the
// models that score its mail.
type SpamState struct {
	SpamPolicy
	// Model names the model that scores the account's mail now:
	// "account" (its own), "domain" (its domain's, standing in) or "none".
	Model       string           `json:"model"`
	OwnModel    store.SpamTotals `json:"own_model"`
	Domain      string           `json:"domain"`
	DomainModel store.SpamTotals `json:"domain_model"`
	// OwnNeeds and DomainNeeds are the spam and ham each model needs
	// before it scores (spam.AccountTraining, spam.MinTraining).
	OwnNeeds    int `json:"own_model_needs"`
	DomainNeeds int `json:"domain_model_needs"`
	// RejectScore is the domain's reject score (0 = off).
	RejectScore float64 `json:"reject_score"`
	// Quarantined is how many messages the account's quarantine holds.
	Quarantined int `json:"quarantined"`
}

// spamPolicy returns the account's policy and record.
func (s *Service) spamPolicy(ctx context.Context, addr string) (SpamPolicy, error) {
	a, err := parseAddress(addr)
	if err != nil {
		return SpamPolicy{}, err
	}
	acct, err := s.st.Account(ctx, a.String())
	if err != nil {
		return SpamPolicy{}, s.notFound(a.String(), err)
	}
	return policyView(acct.Address, acct.Spam), nil
}

func policyView(addr string, p store.SpamPolicy) SpamPolicy {
	e := p.Effective()
	return SpamPolicy{Address: addr, Action: e.Action, Threshold: e.Threshold, DefaultThreshold: p.Threshold == 0, Tag: e.Tag}
}

// SpamShow returns an account's spam filter policy and the state of the
// models that score its mail.
func (s *Service) SpamShow(ctx context.Context, addr string) (SpamState, error) {
	p, err := s.spamPolicy(ctx, addr)
	if err != nil {
		return SpamState{}, err
	}
	dom := domainOf(p.Address)
	st := SpamState{SpamPolicy: p, Domain: dom, OwnNeeds: spam.AccountTraining, DomainNeeds: spam.MinTraining}
	if st.OwnModel, err = s.st.SpamTotals(ctx, p.Address); err != nil {
		return SpamState{}, translate(err)
	}
	if st.DomainModel, err = s.st.SpamTotals(ctx, dom); err != nil {
		return SpamState{}, translate(err)
	}
	st.Model = spam.Speaker(st.OwnModel, st.DomainModel)
	ds, err := s.st.DomainSettings(ctx, dom)
	if err != nil {
		return SpamState{}, translate(err)
	}
	st.RejectScore = ds.SpamRejectScore
	held, err := s.st.Quarantined(ctx, store.QuarantineFilter{Account: p.Address})
	if err != nil {
		return SpamState{}, translate(err)
	}
	st.Quarantined = len(held)
	return st, nil
}

// SetSpamPolicy changes the fields of an account's spam filter policy
// that are set in ch; the others stay.
func (s *Service) SetSpamPolicy(ctx context.Context, ch SpamPolicyChange) (SpamPolicy, error) {
	if ch.Action == "" && ch.Threshold == "" && ch.Tag == "" {
		return SpamPolicy{}, errorf(store.ErrInvalid, "nothing to change (give an action, a threshold or a tag setting)")
	}
	a, err := parseAddress(ch.Address)
	if err != nil {
		return SpamPolicy{}, err
	}
	acct, err := s.st.Account(ctx, a.String())
	if err != nil {
		return SpamPolicy{}, s.notFound(a.String(), err)
	}
	p := acct.Spam
	switch act := store.SpamAction(strings.ToLower(strings.TrimSpace(ch.Action))); act {
	case "":
	case store.SpamOff, store.SpamJunk, store.SpamQuarantine:
		p.Action = act
	default:
		return SpamPolicy{}, errorf(store.ErrInvalid, "spam action must be off, junk or quarantine, not %q", ch.Action)
	}
	if t := strings.TrimSpace(ch.Threshold); t != "" {
		if strings.EqualFold(t, "default") {
			p.Threshold = 0
		} else if p.Threshold, err = score("spam threshold", t, 0); err != nil {
			return SpamPolicy{}, err
		}
	}
	switch strings.ToLower(strings.TrimSpace(ch.Tag)) {
	case "":
	case "on":
		p.Tag = true
	case "off":
		p.Tag = false
	default:
		return SpamPolicy{}, errorf(store.ErrInvalid, "spam tag must be on or off, not %q", ch.Tag)
	}
	if err := s.st.SetSpamPolicy(ctx, acct.Address, p); err != nil {
		return SpamPolicy{}, s.notFound(acct.Address, err)
	}
	return policyView(acct.Address, p), nil
}

// score parses a score that must be above above and at most 1.
func score(what, v string, above float64) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || f <= above || f > 1 {
		return 0, errorf(store.ErrInvalid, "%s must be a number above %s and at most 1 (e.g. 0.7), not %q", what, strconv.FormatFloat(above, 'f', -1, 64), v)
	}
	return f, nil
}

// parseRejectScore checks a domain's reject score: "off" (or 0), or a
// score above the default spam threshold — it is the second, higher
// score of SPEC section 10 — and at most 1.
func parseRejectScore(v string) (float64, error) {
	v = strings.TrimSpace(v)
	if strings.EqualFold(v, "off") || v == "0" {
		return 0, nil
	}
	f, err := score("the spam reject score", v, store.DefaultSpamThreshold)
	if err != nil {
		return 0, errorf(store.ErrInvalid, "%s, or off", err)
	}
	return f, nil
}

// SpamTrainBatch is the request of OpSpamTrain: the tokens of messages
// (spam.Tokenize of each) to train a domain's model with, as spam or ham.
// The CLI reads the files and tokenizes them, and sends the tokens in
// batches of at most MaxTrainBatch messages.
type SpamTrainBatch struct {
	Domain   string     `json:"domain"`
	Class    string     `json:"class"` // spam or ham
	Messages [][]string `json:"messages"`
}

// SpamTrainResult says what a batch did: how many messages it trained,
// and the domain's model after it.
type SpamTrainResult struct {
	Domain  string           `json:"domain"`
	Class   string           `json:"class"`
	Trained int              `json:"trained"`
	Model   store.SpamTotals `json:"model"`
}

// Bounds of one training batch.
const (
	MaxTrainBatch = 500
	// maxTokenLen bounds a token: the tokenizer's words with the
	// longest prefix it writes.
	maxTokenLen = 4 * spam.MaxTokenLen
)

// TrainSpam trains a parent domain's model with the messages of a batch.
// The whole batch is checked first; then each message is trained in a
// transaction of its own (several at once, which the store commits
// together), so a store failure half-way leaves the messages before it
// trained.
func (s *Service) TrainSpam(ctx context.Context, b SpamTrainBatch) (SpamTrainResult, error) {
	d, err := s.parentDomainFor(ctx, b.Domain, "its spam model is %[2]s's: train %[2]s")
	if err != nil {
		return SpamTrainResult{}, err
	}
	class := store.NotTrained
	switch strings.ToLower(b.Class) {
	case "spam":
		class = store.Spam
	case "ham":
		class = store.Ham
	default:
		return SpamTrainResult{}, errorf(store.ErrInvalid, "train as spam or ham, not %q", b.Class)
	}
	if len(b.Messages) > MaxTrainBatch {
		return SpamTrainResult{}, errorf(store.ErrInvalid, "a training batch holds at most %d messages, not %d", MaxTrainBatch, len(b.Messages))
	}
	for i, toks := range b.Messages {
		if len(toks) > spam.MaxTokens {
			return SpamTrainResult{}, errorf(store.ErrInvalid, "message %d of the batch has %d tokens, more than %d", i+1, len(toks), spam.MaxTokens)
		}
		for _, t := range toks {
			if t == "" || len(t) > maxTokenLen {
				return SpamTrainResult{}, errorf(store.ErrInvalid, "message %d of the batch has a token of %d bytes (1 to %d)", i+1, len(t), maxTokenLen)
			}
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, toks := range b.Messages {
		g.Go(func() error {
			_, err := s.st.TrainSpam(gctx, store.SpamTraining{Owners: []string{d.Name}, Tokens: toks, Class: class})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return SpamTrainResult{}, translate(err)
	}
	tot, err := s.st.SpamTotals(ctx, d.Name)
	if err != nil {
		return SpamTrainResult{}, translate(err)
	}
	return SpamTrainResult{Domain: d.Name, Class: class.String(), Trained: len(b.Messages), Model: tot}, nil
}

// ErrDenied is the kind of error of an operation outside the caller's
// scope (see QuarantineScope).
var ErrDenied = errors.New("permission denied")
