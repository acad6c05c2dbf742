package forward

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"

	"yubin/forward/srs"
	"yubin/internal/delivery"
	"yubin/store"
)

// DefaultMaxHops is how many Received: and Delivered-To: fields a message
// may carry and still be forwarded (Postfix's hopcount_limit is 50).
const DefaultMaxHops = 30

// Store is what forwarding reads: which domains and accounts are ours, and
// their forwarding rules and SRS key.
type Store interface {
	store.Directory
	store.Settings
}

// Stage applies the forwarding rules of the local recipients (SPEC
// section 5). It runs after scanning, so what it forwards is what the
// recipient would have got: the scanned, possibly stripped content; a
// recipient whose copy was dropped (discarded as a virus) forwards nothing.
//
// Each forwarded copy gets "Delivered-To: <account>" on top. A copy that
// already carries the account's Delivered-To (it went round in a loop), or
// a message with more than MaxHops trace fields, is not forwarded again but
// delivered to the account's mailbox. Local targets are added as local
// recipients of the same transaction (and their own rules apply); remote
// targets go to the outbound queue with an SRS-rewritten envelope sender
// when the sender is not on one of our domains.
type Stage struct {
	Store   Store
	SRS     *srs.SRS
	MaxHops int          // 0: DefaultMaxHops
	Log     *slog.Logger // may be nil
}

// NewStage returns the stage with the store's SRS secret.
func NewStage(ctx context.Context, st Store, log *slog.Logger) (*Stage, error) {
	key, err := st.SRSSecret(ctx)
	if err != nil {
		return nil, err
	}
	return &Stage{Store: st, SRS: srs.New(key, nil), Log: log}, nil
}

// Name implements delivery.Stage.
func (f *Stage) Name() string { return "forward" }

// Process implements delivery.Stage.
func (f *Stage) Process(ctx context.Context, m *delivery.Message) error {
	maxHops := f.MaxHops
	if maxHops <= 0 {
		maxHops = DefaultMaxHops
	}
	receiving := map[string]bool{}
	for _, r := range m.Local {
		if !r.Drop {
			receiving[r.Account] = true
		}
	}
	work := append([]*delivery.Recipient(nil), m.Local...)
	for len(work) > 0 {
		r := work[0]
		work = work[1:]
		if r.Drop || r.Quarantine != nil {
			continue // held spam is not sent on
		}
		rule, err := f.Store.GetForward(ctx, r.Account)
		if errors.Is(err, store.ErrNoSuchAccount) {
			continue
		}
		if err != nil {
			return err
		}
		if len(rule.Targets) == 0 {
			continue
		}
		header := m.HeaderSection(r)
		if hasDeliveredTo(header, r.Account) {
			f.logf("forwarding loop: kept in the mailbox", m, "account", r.Account)
			continue
		}
		if hops := traceFields(header); hops >= maxHops {
			f.logf("too many hops to forward: kept in the mailbox", m, "account", r.Account, "hops", hops)
			continue
		}
		// A forwarded copy is the recipient's copy with Delivered-To on top.
		fwd := delivery.Prepend([]byte("Delivered-To: "+r.Account+"\r\n"), r.Header)
		used := false
		var remote []string
		for _, t := range rule.Targets {
			acct, err := f.Store.Resolve(ctx, t)
			switch {
			case err == nil:
				used = true
				if receiving[acct] {
					continue // gets this message anyway
				}
				nr := &delivery.Recipient{Account: acct, Header: fwd, Body: r.Body}
				m.Local = append(m.Local, nr)
				receiving[acct] = true
				work = append(work, nr)
			case errors.Is(err, store.ErrNoSuchDomain):
				remote = append(remote, t)
			case errors.Is(err, store.ErrNoSuchAccount), errors.Is(err, store.ErrInvalid):
				f.logf("forward target no longer exists: skipped", m, "account", r.Account, "target", t)
			default:
				return err
			}
		}
		if len(remote) > 0 {
			from, rp := f.sender(ctx, m.Env.From, r.Account)
			m.Remote = append(m.Remote, &delivery.RemoteCopy{From: from, ReturnPath: rp, To: remote, Header: fwd, Body: r.Body, Origin: store.OriginForward})
			used = true
		}
		if used && !rule.KeepCopy {
			r.Drop, r.Why = true, "forwarded"
			delete(receiving, r.Account)
		}
	}
	return nil
}

// sender returns the envelope sender of a copy forwarded by account, and
// where a DSN about it goes.
func (f *Stage) sender(ctx context.Context, from, account string) (string, string) {
	if from == "" {
		return "", "" // a bounce stays a bounce
	}
	at := strings.LastIndexByte(from, '@')
	if at < 0 || f.Store.IsLocalDomain(ctx, from[at+1:]) {
		return from, from // our own domain: SPF passes as it is
	}
	domain := account[strings.LastIndexByte(account, '@')+1:]
	if a, ok := f.SRS.Forward(from, domain); ok {
		return a, from
	}
	// Too long for SRS: the account itself is the sender, and gets the
	// bounces.
	return account, account
}

func (f *Stage) logf(msg string, m *delivery.Message, args ...any) {
	if f.Log != nil {
		f.Log.Info(msg, append([]any{"queue_id", m.Env.QueueID}, args...)...)
	}
}

// headerFields calls fn with the name and value of every header field
// (unfolded) until fn returns false.
func headerFields(msg []byte, fn func(name, value string) bool) {
	end := bytes.Index(msg, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(msg)
	}
	var name, value string
	flush := func() bool {
		if name == "" {
			return true
		}
		return fn(name, strings.TrimSpace(value))
	}
	for _, line := range strings.Split(string(msg[:end]), "\r\n") {
		if line != "" && (line[0] == ' ' || line[0] == '\t') {
			value += " " + strings.TrimSpace(line)
			continue
		}
		if !flush() {
			return
		}
		name, value = "", ""
		if i := strings.IndexByte(line, ':'); i > 0 {
			name, value = line[:i], line[i+1:]
		}
	}
	flush()
}

func hasDeliveredTo(msg []byte, account string) bool {
	found := false
	headerFields(msg, func(name, value string) bool {
		if strings.EqualFold(strings.TrimSpace(name), "Delivered-To") &&
			strings.EqualFold(strings.Trim(value, "<> "), account) {
			found = true
			return false
		}
		return true
	})
	return found
}

func traceFields(msg []byte) int {
	n := 0
	headerFields(msg, func(name, _ string) bool {
		name = strings.TrimSpace(name)
		if strings.EqualFold(name, "Received") || strings.EqualFold(name, "Delivered-To") {
			n++
		}
		return true
	})
	return n
}
