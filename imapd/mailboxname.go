package imapd

// Mailbox names on the wire: astrings (atoms and quoted strings), modified
// UTF-7 (RFC 3501 5.1.3), and the check of a command's mailbox arguments
// that libConn makes before the library sees the command.

import (
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// parseAString reads an atom or a quoted string (RFC 3501 astring, without
// literals) from the start of s; rest is what follows it. Like the
// library, it takes any character after a backslash and a NUL in a quoted
// string (the mailbox check refuses the NUL with a reason).
func parseAString(s string) (value, rest string, ok bool) {
	if s == "" {
		return "", "", false
	}
	if s[0] == '"' {
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			switch c := s[i]; c {
			case '\\':
				if i+1 >= len(s) || s[i+1] == '\r' || s[i+1] == '\n' {
					return "", "", false
				}
				i++
				b.WriteByte(s[i])
			case '"':
				return b.String(), s[i+1:], true
			case '\r', '\n':
				return "", "", false
			default:
				b.WriteByte(c)
			}
		}
		return "", "", false
	}
	i := 0
	for i < len(s) && (isAtomChar(s[i]) || s[i] == ']') {
		i++
	}
	if i == 0 {
		return "", "", false
	}
	return s[:i], s[i:], true
}

// parseArg reads a command argument from the start of s, the command's
// text as the client sent it, literals in place ("{n}" or "{n+}", CRLF,
// n bytes): an astring or, with list, a LIST pattern (list-mailbox, whose
// atoms may hold % and *). pending says that s ends with the announcement
// of a literal that is the argument: its bytes have not come yet.
func parseArg(s string, list bool) (value, rest string, ok, pending bool) {
	switch {
	case strings.HasPrefix(s, "{"):
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return "", "", false, false
		}
		size, _, isLit := literalAtEnd([]byte(s[:end+1]))
		after := s[end+1:]
		switch {
		case !isLit || strings.LastIndexByte(s[:end], '{') != 0:
			return "", "", false, false
		case after == "":
			return "", "", false, true
		case strings.HasPrefix(after, "\r\n"):
			after = after[2:]
		case strings.HasPrefix(after, "\n"):
			after = after[1:]
		default:
			return "", "", false, false
		}
		if int64(len(after)) < size {
			return "", "", false, false
		}
		return after[:size], after[size:], true, false
	case list && !strings.HasPrefix(s, `"`):
		j := 0
		for j < len(s) && (isAtomChar(s[j]) || s[j] == ']' || s[j] == '*' || s[j] == '%') {
			j++
		}
		return s[:j], s[j:], j > 0, false
	}
	value, rest, ok = parseAString(s)
	return value, rest, ok, false
}

// quoteString writes s as an IMAP quoted string.
func quoteString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

var (
	errUTF7    = errors.New("invalid modified UTF-7")
	errNUL     = errors.New("contains a NUL byte")
	errControl = errors.New("contains a control character")
)

// decodeMailboxName decodes a mailbox name in modified UTF-7 (RFC 3501
// 5.1.3); like the library, it also takes raw UTF-8. INBOX is case-blind.
func decodeMailboxName(s string) (string, error) {
	if strings.EqualFold(s, "INBOX") {
		return "INBOX", nil
	}
	if !utf8.ValidString(s) {
		return "", errUTF7
	}
	var b strings.Builder
	afterShift := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '&' {
			switch {
			case c == 0:
				return "", errNUL
			case c < 0x20 || c == 0x7f:
				return "", errControl
			}
			b.WriteByte(c)
			afterShift = false
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return "", errUTF7
		}
		enc := s[i+1 : i+1+end]
		i += end + 1
		if enc == "" {
			b.WriteByte('&')
			afterShift = false
			continue
		}
		if afterShift { // "&...-&...-" must have been one shift
			return "", errUTF7
		}
		runes, err := decodeUTF7Base64(enc)
		if err != nil {
			return "", err
		}
		b.WriteString(runes)
		afterShift = true
	}
	return b.String(), nil
}

const utf7Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,"

func decodeUTF7Base64(enc string) (string, error) {
	var bits, nbits uint32
	var units []uint16
	for i := 0; i < len(enc); i++ {
		v := strings.IndexByte(utf7Alphabet, enc[i])
		if v < 0 {
			return "", errUTF7
		}
		bits = bits<<6 | uint32(v)
		nbits += 6
		if nbits >= 16 {
			nbits -= 16
			units = append(units, uint16(bits>>nbits))
			bits &= 1<<nbits - 1
		}
	}
	if nbits >= 6 || bits != 0 || len(units) == 0 {
		return "", errUTF7 // padding must be short and zero
	}
	var b strings.Builder
	for i := 0; i < len(units); i++ {
		u := rune(units[i])
		switch {
		case utf16.IsSurrogate(u):
			if i+1 >= len(units) {
				return "", errUTF7
			}
			r := utf16.DecodeRune(u, rune(units[i+1]))
			if r == utf8.RuneError {
				return "", errUTF7
			}
			b.WriteRune(r)
			i++
		case u >= 0x20 && u <= 0x7e:
			return "", errUTF7 // printable ASCII must not be encoded
		default:
			b.WriteRune(u)
		}
	}
	return b.String(), nil
}

// encodeMailboxName encodes a UTF-8 mailbox name in modified UTF-7.
func encodeMailboxName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r >= 0x20 && r <= 0x7e {
			if r == '&' {
				b.WriteString("&-")
			} else {
				b.WriteRune(r)
			}
			i += size
			continue
		}
		// A run of characters that need encoding.
		var units []uint16
		for i < len(s) {
			r, size = utf8.DecodeRuneInString(s[i:])
			if r >= 0x20 && r <= 0x7e {
				break
			}
			units = utf16.AppendRune(units, r)
			i += size
		}
		b.WriteByte('&')
		var bits, nbits uint32
		for _, u := range units {
			bits = bits<<16 | uint32(u)
			nbits += 16
			for nbits >= 6 {
				nbits -= 6
				b.WriteByte(utf7Alphabet[(bits>>nbits)&0x3f])
			}
			bits &= 1<<nbits - 1
		}
		if nbits > 0 {
			b.WriteByte(utf7Alphabet[(bits<<(6-nbits))&0x3f])
		}
		b.WriteByte('-')
	}
	return b.String()
}

// checkMailboxArgs decodes the mailbox arguments of a command the way the
// library will, so that a name in bad modified UTF-7 (or with a NUL) gets
// a clean BAD instead of the library's "internal server error". args is
// the text after the command name as the client sent it so far, literals
// in place; more says that it ends with the announcement of a literal that
// is a mailbox argument, to be checked when its bytes have come. Anything
// it cannot parse is left to the library.
func checkMailboxArgs(cmd, args string) (more bool, err error) {
	var n int // mailbox arguments to check
	switch cmd {
	case "SELECT", "EXAMINE", "CREATE", "DELETE", "SUBSCRIBE", "UNSUBSCRIBE", "STATUS", "APPEND", "GETQUOTAROOT":
		n = 1
	case "RENAME":
		n = 2
	case "COPY", "MOVE":
		_, args, _ = strings.Cut(args, " ") // the message set
		n = 1
	case "LIST", "LSUB":
		if strings.HasPrefix(args, "(") {
			return false, nil // LIST-EXTENDED selection options: the library's job
		}
		n = 2
	default:
		return false, nil
	}
	list := cmd == "LIST" || cmd == "LSUB"
	for i := 0; i < n; i++ {
		v, rest, ok, pending := parseArg(args, list)
		if pending {
			return true, nil
		}
		if !ok {
			return false, nil
		}
		if _, err := decodeMailboxName(v); err != nil {
			return false, err
		}
		if !strings.HasPrefix(rest, " ") {
			return false, nil
		}
		args = rest[1:]
	}
	return false, nil
}
