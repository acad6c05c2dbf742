package smtpd

import (
	"errors"
	"strings"

	"yubin/internal/address"
	"yubin/store"
)

// checkSender checks a non-null MAIL FROM on port 25: it must be a plain
// address (address.Parse), the same rules as for recipients.
func checkSender(from string) error {
	_, err := address.Parse(from)
	return err
}

// senderAllowed reports whether the authenticated account acct may use
// from as its envelope sender: its own address, or the same local part at
// a child domain of its domain; an admin may use any local part at its
// domain or the children. The null sender is not allowed on submission.
// domain looks a domain up (store.Domain).
func senderAllowed(acct store.Account, from string, domain func(string) (store.Domain, error)) bool {
	if from == "" {
		return false
	}
	a, err := address.Parse(from)
	if err != nil {
		return false
	}
	own, err := address.Parse(acct.Address)
	if err != nil {
		return false
	}
	if a.Domain != own.Domain {
		d, err := domain(a.Domain)
		if err != nil || d.Parent == "" || !strings.EqualFold(d.Parent, own.Domain) {
			return false
		}
	}
	return acct.Role == store.RoleAdmin || a.Local == own.Local
}

// rcptClass is what a RCPT TO address turned out to be.
type rcptClass int

const (
	rcptLocal      rcptClass = iota // an account here
	rcptNoSuchUser                  // one of our domains, no such account
	rcptRemote                      // not one of our domains
	rcptRouting                     // a routing trick: %-hack, bang path, quoted @, literal, trailing dot
	rcptTempFail                    // the store failed
)

// classifyRecipient decides what to do with a recipient. resolve is
// store.Resolve. go-smtp has already stripped any source route
// ("<@a,@b:user@domain>", which RFC 5321 says to ignore) and unquoted a
// quoted local part, so "\"a@b\"@example.com" arrives as "a@b@example.com"
// and is refused here as a routing form.
// isLocal is store.IsLocalDomain.
func classifyRecipient(to string, resolve func(string) (string, error), isLocal func(string) bool) (string, rcptClass, error) {
	a, err := address.Parse(to)
	if err != nil {
		if errors.Is(err, address.ErrRouting) {
			return "", rcptRouting, err
		}
		// Not a valid mailbox: if the domain is plausibly ours it is an
		// unknown user, otherwise relaying. Either way it is refused; only
		// the wording differs.
		if at := strings.LastIndexByte(to, '@'); at >= 0 {
			if d, derr := address.ParseDomain(to[at+1:]); derr == nil && isLocal(d) {
				return "", rcptNoSuchUser, err
			}
		}
		return "", rcptRouting, err
	}
	acct, err := resolve(a.String())
	switch {
	case err == nil:
		return acct, rcptLocal, nil
	case errors.Is(err, store.ErrNoSuchAccount):
		return "", rcptNoSuchUser, err
	case errors.Is(err, store.ErrNoSuchDomain):
		return "", rcptRemote, err
	case errors.Is(err, store.ErrInvalid):
		return "", rcptRouting, err
	}
	return "", rcptTempFail, err
}
