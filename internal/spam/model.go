package spam

import "yubin/store"

// Which model scores an account's mail (see Speaker).
const (
	ModelAccount = "account" // the account's own
	ModelDomain  = "domain"  // its domain's, standing in
	ModelNone    = "none"    // neither is trained enough: the classifier adds nothing
)

// OwnModelReady reports whether an account's own model is trained enough
// to score its mail: AccountTraining spam and as many ham.
func OwnModelReady(account store.SpamTotals) bool {
	return account.Spam >= AccountTraining && account.Ham >= AccountTraining
}

// DomainModelReady reports whether a domain's model is trained enough to
// stand in for its accounts: MinTraining spam and as many ham.
func DomainModelReady(domain store.SpamTotals) bool {
	return domain.Spam >= MinTraining && domain.Ham >= MinTraining
}

// Speaker names the model that scores an account's mail, from the totals
// of the account's model and of its domain's: ModelAccount, ModelDomain or
// ModelNone.
func Speaker(account, domain store.SpamTotals) string {
	switch {
	case OwnModelReady(account):
		return ModelAccount
	case DomainModelReady(domain):
		return ModelDomain
	}
	return ModelNone
}
