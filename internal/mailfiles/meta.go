package mailfiles

// What mail files record about a message besides its text: flags and the
// time it arrived.

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// maildirFlag maps the flags of Maildir's info ("unique:2,FRS") to IMAP
// flags. P (passed: resent, forwarded or bounced) has no IMAP system flag:
// it is the $Forwarded keyword (RFC 5788).
var maildirFlag = map[byte]string{
	'D': `\Draft`,
	'F': `\Flagged`,
	'P': "$Forwarded",
	'R': `\Answered`,
	'S': `\Seen`,
	'T': `\Deleted`,
}

// MaildirFlags returns the flags a Maildir file's name records after
// ":2,": D F P R S T are \Draft, \Flagged, $Forwarded, \Answered, \Seen,
// \Deleted; a lowercase letter is a keyword, a the first of keywords (the
// Maildir's dovecot-keywords), b the second... Unknown letters and names
// without ":2," give nothing.
func MaildirFlags(name string, keywords []string) []string {
	_, info, ok := strings.Cut(name, ":2,")
	if !ok {
		return nil
	}
	var out []string
	add := func(f string) {
		for _, have := range out {
			if have == f {
				return
			}
		}
		out = append(out, f)
	}
	for i := 0; i < len(info); i++ {
		c := info[i]
		switch {
		case maildirFlag[c] != "":
			add(maildirFlag[c])
		case c >= 'a' && c <= 'z' && int(c-'a') < len(keywords) && keywords[c-'a'] != "":
			add(keywords[c-'a'])
		}
	}
	return out
}

// maildirKeywords reads the keywords of the Maildir at dir from Dovecot's
// dovecot-keywords file ("0 $Junk" a line: keyword 0 is the letter a):
// nil when it has none. Keywords that are not IMAP atoms are left out.
func maildirKeywords(dir string) []string {
	f, err := os.Open(filepath.Join(dir, "dovecot-keywords"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var kw []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		num, name, ok := strings.Cut(sc.Text(), " ")
		i, err := strconv.Atoi(num)
		if !ok || err != nil || i < 0 || i >= 26 || !isKeyword(name) {
			continue
		}
		for len(kw) <= i {
			kw = append(kw, "")
		}
		kw[i] = name
	}
	return kw
}

// isKeyword reports whether s can be an IMAP keyword (an atom, not a
// system flag).
func isKeyword(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

// MaildirDate is when a Maildir message arrived: the earlier of the file's
// modification time and the time at the start of its name (the seconds
// since 1970 of its delivery, "1700000000.M1P2.host:2,S"). Dovecot and
// Courier keep a message's internal date as its file's modification time,
// which may be older than its name (mail moved in with its dates kept);
// a copy that did not keep modification times makes them newer, and then
// the name is right. Zero when neither is known.
func MaildirDate(name string, mtime time.Time) time.Time {
	var named time.Time
	digits := name
	if i := strings.IndexFunc(name, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		digits = name[:i]
	}
	if n, err := strconv.ParseInt(digits, 10, 64); err == nil && n > 0 && n < 1<<40 {
		named = time.Unix(n, 0).UTC()
	}
	switch {
	case named.IsZero():
		return mtime
	case mtime.IsZero() || mtime.Unix() <= 0 || named.Before(mtime):
		return named
	}
	return mtime
}

// FromLineDate is the date of an mbox From_ line ("From sender Mon Jan  2
// 15:04:05 2006", optionally with a zone before or after the year), or
// zero when it has none that reads. A date without a zone is taken as UTC.
func FromLineDate(line string) time.Time {
	line = strings.TrimRight(line, "\r\n")
	rest, ok := strings.CutPrefix(line, "From ")
	if !ok {
		return time.Time{}
	}
	f := strings.Fields(rest)
	// The date is at the end; the sender before it may hold spaces
	// (a quoted local part), so try the last 5, 6 and 7 fields.
	layouts := []string{
		"Mon Jan _2 15:04:05 2006",
		"Mon Jan _2 15:04:05 MST 2006",
		"Mon Jan _2 15:04:05 -0700 2006",
		"Mon Jan _2 15:04:05 2006 -0700",
		"Mon Jan _2 15:04 2006",
	}
	for n := 5; n <= 7 && n <= len(f); n++ {
		s := strings.Join(f[len(f)-n:], " ")
		for _, l := range layouts {
			if t, err := time.Parse(l, s); err == nil {
				return t
			}
		}
	}
	return time.Time{}
}

// mboxMetaFields are the header fields MUAs and servers write into an mbox
// to keep a message's state (mutt, Thunderbird, Dovecot, UW IMAP): they
// were not part of the message as it was sent. Status and X-Status hold
// flags, X-Keywords keywords, the others what the mbox's own IMAP server
// kept (UIDs, its UIDVALIDITY).
var mboxMetaFields = []string{"status", "x-status", "x-keywords", "x-uid", "x-imap", "x-imapbase"}

// MboxFlags returns the flags an mbox message's header records: Status R
// is \Seen (O, old, says nothing); X-Status A, F, T and D are \Answered,
// \Flagged, \Draft and \Deleted; X-Keywords lists keywords (separated by
// spaces or commas).
func MboxFlags(raw []byte) []string {
	var out []string
	add := func(f string) {
		for _, have := range out {
			if have == f {
				return
			}
		}
		out = append(out, f)
	}
	eachField(raw, func(name string, value []byte, _, _ int) {
		v := strings.TrimSpace(string(value))
		switch name {
		case "status":
			if strings.Contains(v, "R") {
				add(`\Seen`)
			}
		case "x-status":
			for _, c := range []byte(v) {
				switch c {
				case 'A':
					add(`\Answered`)
				case 'F':
					add(`\Flagged`)
				case 'T':
					add(`\Draft`)
				case 'D':
					add(`\Deleted`)
				}
			}
		case "x-keywords":
			for _, k := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' || r == '\r' || r == '\n' }) {
				if isKeyword(k) && !strings.HasPrefix(k, `\`) {
					add(k)
				}
			}
		}
	})
	return out
}

// StripMboxMeta returns raw without the header fields of mboxMetaFields
// (with their continuation lines); the rest is unchanged, byte for byte.
// pseudo reports the message UW IMAP and Dovecot keep first in an mbox to
// hold its state ("DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA",
// with an X-IMAP field): not mail.
func StripMboxMeta(raw []byte) (out []byte, pseudo bool) {
	var cut [][2]int
	eachField(raw, func(name string, _ []byte, start, end int) {
		for _, m := range mboxMetaFields {
			if name == m {
				cut = append(cut, [2]int{start, end})
				if name == "x-imap" {
					pseudo = true
				}
				return
			}
		}
	})
	if len(cut) == 0 {
		return raw, false
	}
	out = make([]byte, 0, len(raw))
	at := 0
	for _, c := range cut {
		out = append(out, raw[at:c[0]]...)
		at = c[1]
	}
	return append(out, raw[at:]...), pseudo
}

// eachField calls fn with each field of raw's header section: its name
// lower-cased, its value (continuation lines included) and where the
// field begins and ends in raw (its last line end included).
func eachField(raw []byte, fn func(name string, value []byte, start, end int)) {
	at := 0
	for at < len(raw) {
		start := at
		end := lineEnd(raw, at)
		line := bytes.TrimRight(raw[at:end], "\r\n")
		if len(line) == 0 {
			return // the header section ends
		}
		// Continuation lines belong to the field.
		for end < len(raw) && (raw[end] == ' ' || raw[end] == '\t') {
			end = lineEnd(raw, end)
		}
		at = end
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isField(line) {
			continue
		}
		name := strings.ToLower(string(line[:colon]))
		value := raw[start+colon+1 : end]
		fn(name, value, start, end)
	}
}

// lineEnd returns the index just past the line that starts at i.
func lineEnd(b []byte, i int) int {
	if j := bytes.IndexByte(b[i:], '\n'); j >= 0 {
		return i + j + 1
	}
	return len(b)
}
