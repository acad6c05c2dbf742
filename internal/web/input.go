package web

import (
	"errors"
	"strings"

	"yubin/admin"
	"yubin/store"
)

// inputError returns the message of an admin error caused by the
// caller's input (something to show next to a field), or false for
// anything else (denied, or the server's failure: c.fail).
func inputError(err error) (string, bool) {
	if errors.Is(err, admin.ErrDenied) {
		return "", false
	}
	for _, k := range []error{store.ErrInvalid, store.ErrNoSuchAccount, store.ErrNoSuchDomain, store.ErrExists, store.ErrNoSuchMessage} {
		if errors.Is(err, k) {
			return err.Error(), true
		}
	}
	var qe *store.QuotaError
	if errors.As(err, &qe) {
		return err.Error(), true
	}
	return "", false
}

// explain words an admin service error (English, the CLI's) for the
// page: as it is in English; in Japanese, the page's own sentence (key)
// with the service's detail after it.
func (c *call) explain(key, msg string) string {
	if c.lang != "ja" {
		return msg
	}
	return c.t(key) + "（" + msg + "）"
}

// fieldOf picks the field an input error belongs to: the first of
// fields whose words the message contains, else def.
func fieldOf(msg, def string, fields ...[2]string) string {
	low := strings.ToLower(msg)
	for _, f := range fields {
		if strings.Contains(low, f[1]) {
			return f[0]
		}
	}
	return def
}

// splitTargets splits the addresses of a forwarding form: one a line,
// or separated by commas, semicolons or spaces; blanks dropped.
func splitTargets(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == '\n' || r == '\r' || r == ',' || r == ';' || r == ' ' || r == '\t'
	})
}
