package auth

// NamesKept returns the lengths of the account names whose failures are
// kept.
func (a *Authenticator) NamesKept() []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []int
	for name := range a.byUser {
		out = append(out, len(name))
	}
	return out
}
