package smtpd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"yubin/internal/address"
	"yubin/store"
)

// clip is a client's string (an address, a user name) for the log: cut
// after address.MaxAddress bytes, which is more than any valid address
// has. A command line may be much longer (Server.Serve).
func clip(s string) string {
	if len(s) <= address.MaxAddress {
		return s
	}
	return fmt.Sprintf("%s... (%d bytes)", s[:address.MaxAddress], len(s))
}

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
	rcptTooLong                     // over address.Parse's limits
	rcptTempFail                    // the store failed
)

// classifyRecipient decides what to do with a recipient and returns the
// accounts that receive its mail. resolve is recipientAccounts. go-smtp has already stripped any source route
// ("<@a,@b:user@domain>", which RFC 5321 says to ignore) and unquoted a
// quoted local part, so "\"a@b\"@example.com" arrives as "a@b@example.com"
// and is refused here as a routing form.
// isLocal is store.IsLocalDomain.
func classifyRecipient(to string, resolve func(string) ([]string, error), isLocal func(string) bool) ([]string, rcptClass, error) {
	a, err := address.Parse(to)
	if err != nil {
		switch {
		case errors.Is(err, address.ErrRouting):
			return nil, rcptRouting, err
		case errors.Is(err, address.ErrTooLong):
			return nil, rcptTooLong, err
		}
		// Not a valid mailbox: if the domain is plausibly ours it is an
		// unknown user, otherwise relaying. Either way it is refused; only
		// the wording differs.
		if at := strings.LastIndexByte(to, '@'); at >= 0 {
			if d, derr := address.ParseDomain(to[at+1:]); derr == nil && isLocal(d) {
				return nil, rcptNoSuchUser, err
			}
		}
		return nil, rcptRouting, err
	}
	accts, err := resolve(a.String())
	switch {
	case err == nil:
		return accts, rcptLocal, nil
	case errors.Is(err, store.ErrNoSuchAccount):
		return nil, rcptNoSuchUser, err
	case errors.Is(err, store.ErrNoSuchDomain):
		return nil, rcptRemote, err
	case errors.Is(err, store.ErrInvalid):
		return nil, rcptRouting, err
	}
	return nil, rcptTempFail, err
}

// roleLocalParts are mailboxes every domain of ours has, whether or not an
// account bears the name: postmaster (RFC 5321 section 4.5.1 requires it)
// and abuse (RFC 2142; where providers and feedback loops send
// complaints).
var roleLocalParts = []string{"postmaster", "abuse"}

// recipientAccounts returns the accounts that receive the mail of addr.
// That is the account store.Resolve finds (the address's own, or the
// parent domain's for a child domain); or, for postmaster@ and abuse@ one
// of our domains when no account has that name, the admin accounts of
// the domain (the parent's for a child domain), and when it has no admin,
// every account of it, so that the mail reaches someone who runs it. A
// domain without any account has nobody: store.ErrNoSuchAccount (550).
// This is the one place the rule lives; the other users of Resolve
// (forwarding targets, warning mails, the admin CLI) mean one account.
func recipientAccounts(ctx context.Context, dir store.Directory, addr string) ([]string, error) {
	acct, err := dir.Resolve(ctx, addr)
	if err == nil {
		return []string{acct}, nil
	}
	a, perr := address.Parse(addr)
	if !errors.Is(err, store.ErrNoSuchAccount) || perr != nil || !slices.Contains(roleLocalParts, a.Local) {
		return nil, err
	}
	d, derr := dir.Domain(ctx, a.Domain)
	if derr != nil {
		return nil, derr
	}
	accts, aerr := dir.Accounts(ctx, cmp.Or(d.Parent, d.Name))
	if aerr != nil {
		return nil, aerr
	}
	out := store.Admins(accts)
	if len(out) == 0 {
		for _, x := range accts {
			out = append(out, x.Address)
		}
	}
	if len(out) == 0 {
		return nil, err
	}
	return out, nil
}
