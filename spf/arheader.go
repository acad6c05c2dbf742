package spf

import (
	"bytes"
	"strings"
)

// headerFields splits the header of raw into its fields, each with its
// continuation lines and line endings. The header ends at the first empty
// line (or the end of raw).
func headerFields(raw []byte) [][]byte {
	hdr, _ := splitHeader(raw)
	var fields [][]byte
	for len(hdr) > 0 {
		end := fieldEnd(hdr)
		fields = append(fields, hdr[:end])
		hdr = hdr[end:]
	}
	return fields
}

// splitHeader returns the header (without the empty line) and the rest of
// raw from the empty line on.
func splitHeader(raw []byte) (hdr, rest []byte) {
	off := 0
	for off < len(raw) {
		nl := bytes.IndexByte(raw[off:], '\n')
		line := raw[off:]
		if nl >= 0 {
			line = raw[off : off+nl+1]
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return raw[:off], raw[off:]
		}
		off += len(line)
	}
	return raw, nil
}

// fieldEnd returns the length of the first field of hdr: its first line and
// every following line that starts with a space or tab.
func fieldEnd(hdr []byte) int {
	off := 0
	for {
		nl := bytes.IndexByte(hdr[off:], '\n')
		if nl < 0 {
			return len(hdr)
		}
		off += nl + 1
		if off >= len(hdr) || (hdr[off] != ' ' && hdr[off] != '\t') {
			return off
		}
	}
}

// splitField returns a field's name and unfolded value.
func splitField(f []byte) (name, value string, ok bool) {
	i := bytes.IndexByte(f, ':')
	if i <= 0 {
		return "", "", false
	}
	name = strings.TrimRight(string(f[:i]), " \t")
	value = strings.NewReplacer("\r\n", "", "\n", "", "\r", "").Replace(string(f[i+1:]))
	return name, strings.TrimSpace(value), true
}

// StripOurs removes every Authentication-Results field of raw's header
// whose authserv-id is hostname (RFC 8601 section 5: a header claiming to
// be ours that we did not write is a forgery). The rest of raw is kept
// byte for byte.
func StripOurs(raw []byte, hostname string) []byte {
	hdr, rest := splitHeader(raw)
	var out []byte
	changed := false
	for off := 0; off < len(hdr); {
		end := off + fieldEnd(hdr[off:])
		f := hdr[off:end]
		if name, value, ok := splitField(f); ok && strings.EqualFold(name, "Authentication-Results") && claims(value, hostname) {
			if !changed {
				out = append(make([]byte, 0, len(raw)), hdr[:off]...)
				changed = true
			}
		} else if changed {
			out = append(out, f...)
		}
		off = end
	}
	if !changed {
		return raw
	}
	return append(out, rest...)
}

// claims reports whether an Authentication-Results value names id as its
// authserv-id (ignoring case, a trailing dot, comments and a version).
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
