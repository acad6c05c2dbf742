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
