package imapd

import "strings"

// listMatch reports whether mailbox name matches a LIST reference and
// pattern (RFC 3501 6.3.8: '*' matches anything, '%' anything but the
// hierarchy delimiter). It does what imapserver.MatchList does, in time
// proportional to len(name) × len(pattern): the library's matcher
// backtracks, and a pattern like "%%%%%%%%%%%%%%z" took minutes of CPU.
func listMatch(name, ref, pattern string) bool {
	if strings.HasPrefix(pattern, "/") {
		ref, pattern = "", pattern[1:]
	}
	if ref != "" {
		if !strings.HasSuffix(ref, "/") {
			ref += "/"
		}
		if !strings.HasPrefix(name, ref) {
			return false
		}
		name = name[len(ref):]
	}
	// prev[j]: name[:i] matches pattern[:j], row by row over i.
	prev := make([]bool, len(pattern)+1)
	cur := make([]bool, len(pattern)+1)
	prev[0] = true
	for j := 1; j <= len(pattern); j++ {
		prev[j] = prev[j-1] && (pattern[j-1] == '*' || pattern[j-1] == '%')
	}
	for i := 1; i <= len(name); i++ {
		c := name[i-1]
		cur[0] = false
		for j := 1; j <= len(pattern); j++ {
			switch p := pattern[j-1]; p {
			case '*':
				cur[j] = cur[j-1] || prev[j]
			case '%':
				cur[j] = cur[j-1] || prev[j] && c != '/'
			default:
				cur[j] = prev[j-1] && c == p
			}
		}
		prev, cur = cur, prev
	}
	return prev[len(pattern)]
}
