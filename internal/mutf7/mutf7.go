// Package mutf7 is modified UTF-7 (RFC 3501 5.1.3), the form of IMAP
// mailbox names on the wire and of Maildir++ folder names.
package mutf7

import (
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

var (
	errUTF7    = errors.New("invalid modified UTF-7")
	errNUL     = errors.New("contains a NUL byte")
	errControl = errors.New("contains a control character")
)

// Decode decodes modified UTF-7 (RFC 3501 5.1.3), the form of mailbox
// names on the IMAP wire and in Maildir++ folder names; raw UTF-8 passes
// through. NUL and other control characters are refused.
func Decode(s string) (string, error) {
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

// Encode encodes a UTF-8 mailbox name in modified UTF-7.
func Encode(s string) string {
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
