package imapd

import "yubin/store"

// CONDSTORE and QRESYNC (RFC 7162) over the store's mod-sequences: SELECT
// (CONDSTORE) and (QRESYNC ...) in cmd_mailbox.go, STORE (UNCHANGEDSINCE)
// in cmd_store.go, FETCH MODSEQ and (CHANGEDSINCE) in cmd_fetch.go, SEARCH
// MODSEQ in cmd_search.go, VANISHED in conn.go.
func init() {
	authCaps = append(authCaps, "CONDSTORE", "QRESYNC")
	enableable["CONDSTORE"] = true
	enableable["QRESYNC"] = true
	statusExtra["HIGHESTMODSEQ"] = true
	statusValue = func(c *conn, meta store.Mailbox, item string) {
		switch item {
		case "HIGHESTMODSEQ":
			c.w.Num64(meta.HighestModSeq)
		default:
			c.w.Num(0)
		}
	}
}
