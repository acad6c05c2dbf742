package mailheader

import (
	"bytes"
	"strings"
)

// OwnedPrefix starts the name of every header field Yubin owns outright:
// X-Yubin-Scan (the scan verdict), X-Yubin-Queue-ID (in DSNs), and any
// X-Yubin-* field added later. The whole prefix is reserved, so a field
// such as X-Yubin-Scanner-Foo counts as ours too.
const OwnedPrefix = "X-Yubin-"

// Owned reports whether a header field is one Yubin writes and readers
// trust, so that one arriving with a message is a forgery: every
// X-Yubin-* field, and an Authentication-Results field whose authserv-id is
// host (RFC 8601 section 5; an empty host owns none). name is compared
// ignoring case and surrounding white space (obsolete syntax allows
// "Name :"); value is the field body, folded or not.
func Owned(name, value, host string) bool {
	return owned([]byte(strings.TrimSpace(name)), value, host)
}

func owned(name []byte, value, host string) bool {
	if len(name) >= len(OwnedPrefix) && bytes.EqualFold(name[:len(OwnedPrefix)], []byte(OwnedPrefix)) {
		return true
	}
	return host != "" && bytes.EqualFold(name, []byte("Authentication-Results")) && claims(value, host)
}

// StripOwned returns msg without the header fields that are Owned for
// host, each with its continuation lines, however the field is written
// (any case, white space before the colon, folded). The header section is
// what HeaderSize counts: everything through the first empty line. The
// body is never changed, and msg itself is returned when nothing is
// removed. This is the one place forged fields are removed: smtpd calls
// it on every message it receives, before delivery.
func StripOwned(msg []byte, host string) []byte {
	end := HeaderSize(msg)
	var out []byte // nil until a field is removed
	for off := 0; off < end; {
		next := fieldEnd(msg[:end], off)
		field := msg[off:next]
		drop := false
		if colon := bytes.IndexByte(field, ':'); colon > 0 {
			name := bytes.TrimSpace(field[:colon])
			drop = owned(name, string(field[colon+1:]), host)
		}
		switch {
		case drop && out == nil:
			out = append(make([]byte, 0, len(msg)), msg[:off]...)
		case !drop && out != nil:
			out = append(out, field...)
		}
		off = next
	}
	if out == nil {
		return msg
	}
	return append(out, msg[end:]...)
}

// fieldEnd returns where the header line starting at off ends, with the
// continuation lines (starting with a space or tab) that follow it.
func fieldEnd(hdr []byte, off int) int {
	for {
		nl := bytes.IndexByte(hdr[off:], '\n')
		if nl < 0 {
			return len(hdr)
		}
		off += nl + 1
		if off == len(hdr) || (hdr[off] != ' ' && hdr[off] != '\t') {
			return off
		}
	}
}

// claims reports whether an Authentication-Results value names id as its
// authserv-id (ignoring case, a trailing dot, comments, folding and a
// version).
func claims(value, id string) bool {
	v := stripComments(value)
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	f := strings.Fields(v)
	if len(f) == 0 {
		return false
	}
	return strings.EqualFold(strings.TrimSuffix(f[0], "."), strings.TrimSuffix(id, "."))
}

// stripComments removes RFC 5322 comments (nested, with quoted pairs).
func stripComments(s string) string {
	var b strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && depth > 0:
			i++
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteByte(c)
		}
	}
	return b.String()
}
