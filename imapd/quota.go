package imapd

import (
	"fmt"
	"strings"
)

// quotaCommand answers GETQUOTA and GETQUOTAROOT (RFC 9208) for the
// logged-in account. Every mailbox of an account shares one quota root,
// "", with one resource: STORAGE in units of 1024 bytes. An account without
// a quota has no quota root.
func (s *session) quotaCommand(tag, cmd, args string) []string {
	arg, rest, ok, _ := parseArg(args, false)
	if !ok || rest != "" {
		return []string{tag + " BAD Syntax: " + cmd + " takes one argument"}
	}
	acct, err := s.srv.st.Account(s.ctx(), s.account)
	if err != nil {
		return []string{tag + " NO [SERVERBUG] Internal error"}
	}
	var quota string
	if acct.Quota > 0 {
		quota = fmt.Sprintf(`* QUOTA "" (STORAGE %d %d)`, (acct.Used+1023)/1024, acct.Quota/1024)
	}
	switch cmd {
	case "GETQUOTA":
		if arg != "" || quota == "" {
			return []string{tag + " NO [NONEXISTENT] No such quota root"}
		}
		return []string{quota, tag + " OK GETQUOTA completed"}
	default: // GETQUOTAROOT
		name, err := decodeMailboxName(arg)
		if err != nil {
			return []string{tag + " BAD Invalid mailbox name: " + err.Error()}
		}
		if _, err := s.srv.st.Mailbox(s.ctx(), s.account, name); err != nil {
			return []string{tag + " NO [NONEXISTENT] No such mailbox"}
		}
		echo := quoteString(arg)
		if strings.EqualFold(arg, "INBOX") {
			echo = "INBOX"
		}
		if quota == "" {
			return []string{"* QUOTAROOT " + echo, tag + " OK GETQUOTAROOT completed"}
		}
		return []string{"* QUOTAROOT " + echo + ` ""`, quota, tag + " OK GETQUOTAROOT completed"}
	}
}
