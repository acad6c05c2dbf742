package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"yubin/internal/mailtext"
	"yubin/internal/spam"
	"yubin/store"
)

// QuarantineScope is the Scope of the quarantine operations' requests
// (see Scope in scope.go): an entry outside it is as if it did not exist,
// the same error as an unknown id, so a scope never learns what another
// holds.
type QuarantineScope = Scope

// QuarantineList is the request of OpQuarantineList.
type QuarantineList struct {
	// Of is an address (one account's quarantine) or a domain (every
	// account's of it; a child domain means its parent).
	Of    string          `json:"of"`
	Scope QuarantineScope `json:"scope"`
}

// QuarantineShow is the request of OpQuarantineShow.
type QuarantineShow struct {
	ID    string          `json:"id"`
	Scope QuarantineScope `json:"scope"`
}

// QuarantineIDs is the request of OpQuarantineRelease and
// OpQuarantineDelete.
type QuarantineIDs struct {
	IDs   []string        `json:"ids"`
	Scope QuarantineScope `json:"scope"`
}

// QuarantineEntry is one message held in an account's quarantine.
type QuarantineEntry = store.QuarantineEntry

// QuarantineMessage is what "quarantine show" prints: the entry, and the
// message as plain text (header fields, text, parts; never active HTML).
type QuarantineMessage struct {
	QuarantineEntry
	mailtext.View
}

// QuarantineReleased is where a released message went.
type QuarantineReleased struct {
	ID      string `json:"id"`
	Account string `json:"account"`
	Mailbox string `json:"mailbox"`
	UID     uint32 `json:"uid"`
}

// QuarantineScopeOf returns the scope of an account that is logged in:
// its domain's for an admin, its own for a user (ScopeOf).
func (s *Service) QuarantineScopeOf(ctx context.Context, addr string) (QuarantineScope, error) {
	return s.ScopeOf(ctx, addr)
}

// Quarantined lists the quarantine of an account or of a domain, oldest
// first, within the scope.
func (s *Service) Quarantined(ctx context.Context, q QuarantineList) ([]QuarantineEntry, error) {
	sc, err := s.requestScope(ctx, q.Scope)
	if err != nil {
		return nil, err
	}
	of := strings.TrimSpace(q.Of)
	var f store.QuarantineFilter
	if strings.Contains(of, "@") {
		a, err := parseAddress(of)
		if err != nil {
			return nil, err
		}
		// The scope first: out of it, whether the account exists is
		// none of the caller's business.
		if !sc.holds(a.String()) {
			return nil, errorf(ErrDenied, "the quarantine of %s is outside your scope (%s)", a, sc)
		}
		acct, err := s.account(ctx, a.String())
		if err != nil {
			return nil, err
		}
		f.Account = acct.Address
	} else {
		d, err := parseDomain("domain", of)
		if err != nil {
			return nil, err
		}
		denied := errorf(ErrDenied, "the quarantine of %s is outside your scope (%s)", d, sc)
		if sc.Account != "" {
			return nil, denied
		}
		dom, err := s.st.Domain(ctx, d)
		if err == nil && dom.Parent != "" {
			d = dom.Parent // its mail is its parent's accounts'
		}
		// The scope before the domain's existence, as for an account.
		if !sc.holds("@" + d) {
			return nil, denied
		}
		if err != nil {
			return nil, errorf(store.ErrNoSuchDomain, "unknown domain %s", d)
		}
		f.Domain = d
	}
	list, err := s.st.Quarantined(ctx, f)
	if err != nil {
		return nil, translate(err)
	}
	// The store filters by the domain's name; the scope has the last word.
	list = slices.DeleteFunc(list, func(e QuarantineEntry) bool { return !sc.holds(e.Account) })
	if list == nil {
		list = []QuarantineEntry{}
	}
	return list, nil
}

// entries returns the entries of ids, all within the scope, or an error
// naming the first that is not (unknown, or outside the scope: the same
// error). Repeated ids count once.
func (s *Service) entries(ctx context.Context, ids []string, sc QuarantineScope) ([]QuarantineEntry, error) {
	sc, err := s.requestScope(ctx, sc)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, errorf(store.ErrInvalid, "give the ids of quarantined messages (yubin quarantine list shows them)")
	}
	var out []QuarantineEntry
	seen := map[string]bool{}
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if seen[id] {
			continue
		}
		seen[id] = true
		e, err := s.st.QuarantineEntry(ctx, id)
		if err != nil && !errors.Is(err, store.ErrNoSuchMessage) {
			return nil, translate(err)
		}
		if err != nil || !sc.holds(e.Account) {
			return nil, errorf(store.ErrNoSuchMessage, "no quarantined message %s", id)
		}
		out = append(out, e)
	}
	return out, nil
}

// QuarantineShow returns a held message as plain text: its header fields
// decoded, its text (HTML converted to text, never shown as HTML), and the
// list of its parts.
func (s *Service) QuarantineShow(ctx context.Context, q QuarantineShow) (QuarantineMessage, error) {
	es, err := s.entries(ctx, []string{q.ID}, q.Scope)
	if err != nil {
		return QuarantineMessage{}, err
	}
	r, e, err := s.st.OpenQuarantined(ctx, es[0].ID)
	if errors.Is(err, store.ErrNoSuchMessage) {
		return QuarantineMessage{}, errorf(store.ErrNoSuchMessage, "no quarantined message %s", q.ID)
	} else if err != nil {
		return QuarantineMessage{}, translate(err)
	}
	defer r.Close()
	return QuarantineMessage{QuarantineEntry: e, View: mailtext.Render(r)}, nil
}

// SetTrainer gives the Service the trainer that releases held messages
// and learns them as ham (the server's, which logs; by default one of its
// own over the store).
func (s *Service) SetTrainer(t *spam.Trainer) { s.trainer = t }

// QuarantineRelease delivers held messages to their accounts' INBOX as
// they arrived and learns them as ham (spam.Trainer.Release). Every id is
// checked first; a message released before is unknown, so releasing twice
// delivers once. A release that fails (a full mailbox) leaves that entry
// held and stops there; the error names the ones released before it.
func (s *Service) QuarantineRelease(ctx context.Context, q QuarantineIDs) ([]QuarantineReleased, error) {
	es, err := s.entries(ctx, q.IDs, q.Scope)
	if err != nil {
		return nil, err
	}
	var out []QuarantineReleased
	for _, e := range es {
		d, err := s.trainer.Release(ctx, e.ID)
		if err != nil {
			if errors.Is(err, store.ErrNoSuchMessage) {
				err = errorf(store.ErrNoSuchMessage, "no quarantined message %s (released or deleted meanwhile)", e.ID)
			}
			return nil, releaseError(out, e.ID, translate(err))
		}
		out = append(out, QuarantineReleased{ID: e.ID, Account: d.Account, Mailbox: d.Mailbox, UID: d.UID})
	}
	return out, nil
}

// releaseError is err for id, naming what was released before it.
func releaseError(done []QuarantineReleased, id string, err error) error {
	msg := fmt.Sprintf("quarantined message %s not released: %v", id, err)
	if len(done) > 0 {
		var ids []string
		for _, d := range done {
			ids = append(ids, d.ID)
		}
		msg = fmt.Sprintf("released %s; %s", strings.Join(ids, ", "), msg)
	}
	var ae *Error
	if errors.As(err, &ae) {
		return &Error{Kind: ae.Kind, Msg: msg}
	}
	return &Error{Kind: kindErr(kindOf(err)), Msg: msg}
}

// QuarantineDelete deletes held messages and returns how many. Every id
// is checked first: an unknown one deletes nothing.
func (s *Service) QuarantineDelete(ctx context.Context, q QuarantineIDs) (int, error) {
	es, err := s.entries(ctx, q.IDs, q.Scope)
	if err != nil {
		return 0, err
	}
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.ID
	}
	n, err := s.st.DeleteQuarantined(ctx, ids)
	return n, translate(err)
}
